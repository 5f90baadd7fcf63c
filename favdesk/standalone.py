"""`favdesk worker`: the same worker in the foreground, for servers and many machines."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

import redis

from favdesk.keys import QUEUE_NAME
from favdesk.queue import IMPORT_FUNC
from favdesk.services import Services
from favdesk.worker import WorkerController
from favdesk.worker_events import WorkerListener


class _Printer(WorkerListener):
    """What `favdesk worker` prints: one line per job event and the jobs' own log lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def on_job_started(self, job_id: str, user_id: str | None) -> None:
        self._print(f"[{QUEUE_NAME}] started {job_id} (user {user_id})")

    def on_job_finished(
        self, job_id: str, user_id: str | None, ok: bool, error: str | None
    ) -> None:
        self._print(f"[{QUEUE_NAME}] finished {job_id}: {'ok' if ok else error}")

    def on_log(self, line: str) -> None:
        self._print(line)


class _SignalStop:
    """Ctrl-C/SIGTERM: finish the current job; again: cancel it (re-queued); a third: quit now.

    The handler only counts: a second signal can interrupt the first handler, so the steering
    happens in `act()`, called by the main loop between waits.
    """

    def __init__(self, controller: WorkerController, out: TextIO) -> None:
        self.controller = controller
        self.out = out
        self.received = 0
        self.acted = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _SignalStop:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def handle(self, signum: int, frame: object) -> None:
        self.received += 1
        if self.received >= 3:
            self.__exit__()
            raise KeyboardInterrupt

    def act(self) -> None:
        while self.acted < self.received:
            self.acted += 1
            if self.acted == 1:
                print(
                    "stopping after the current job (again: cancel it)", file=self.out, flush=True
                )
                self.controller.stop()
            else:
                print("cancelling the current job; it will be re-queued", file=self.out, flush=True)
                self.controller.stop(cancel_current=True)


def run_standalone(
    connection_factory: Callable[[], redis.Redis],
    *,
    burst: bool,
    services: Services | None = None,
    import_func: str | Callable[..., Any] = IMPORT_FUNC,
    out: TextIO | None = None,
) -> int:
    """`favdesk worker [--burst]`: the same worker in the foreground until done or signalled.

    The worker runs on the controller's thread while this (main) thread only waits for it and
    handles signals, so a stop never injects an exception into a job or a Redis call. Any
    number of these, on any machines, can share one Redis. Exit code 0, or 1 if Redis failed.
    """
    out = out or sys.stdout
    controller = WorkerController(
        connection_factory,
        services=services,
        wait_for_other_jobs=not burst,
        listener=_Printer(out),
        import_func=import_func,
        keep_trying=not burst,
    )
    mode = "one burst" if burst else "waiting for jobs; Ctrl-C to stop"
    with _SignalStop(controller, out) as signals:
        controller.start()
        print(f"[{QUEUE_NAME}] worker started ({mode})", file=out, flush=True)
        while not controller.join(timeout=0.2):
            signals.act()
        controller.stop()
    print(
        f"[{QUEUE_NAME}] worker stopped after {controller.jobs_done} job(s)", file=out, flush=True
    )
    return 1 if controller.last_error else 0
