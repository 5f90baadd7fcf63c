"""`favdesk worker [--schedule]`: the same worker in the foreground, for servers and many
machines; with `--schedule` it also runs the automatic backups of the accounts linked there."""

from __future__ import annotations

import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

import redis

from favdesk.errors import FavdeskError
from favdesk.fleet import STANDALONE
from favdesk.keys import QUEUE_NAME
from favdesk.queue import IMPORT_FUNC
from favdesk.schedule import ScheduleListener, SchedulePlan, Slot, SlotOutcome, SlotResult
from favdesk.scheduler import BackupScheduler
from favdesk.services import Services
from favdesk.worker import WorkerController
from favdesk.worker_events import WorkerListener


class _Printer(WorkerListener, ScheduleListener):
    """What `favdesk worker` prints: one line per job event and the jobs' own log lines; with
    `--schedule` also each slot queued, the next one, and each automatic backup's outcome."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        #: Jobs the schedule queued, and (user, ok, error) of those that ended, for the report.
        self.automatic: set[str] = set()
        self.ended: queue.SimpleQueue[tuple[str, bool, str | None]] = queue.SimpleQueue()

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def on_job_started(self, job_id: str, user_id: str | None) -> None:
        self._print(f"[{QUEUE_NAME}] started {job_id} (user {user_id})")

    def on_job_finished(
        self, job_id: str, user_id: str | None, ok: bool, error: str | None
    ) -> None:
        self._print(f"[{QUEUE_NAME}] finished {job_id}: {'ok' if ok else error}")
        if job_id in self.automatic and user_id:
            self.automatic.discard(job_id)
            self.ended.put((user_id, ok, error))

    def on_log(self, line: str) -> None:
        self._print(line)

    def on_plan(self, plan: SchedulePlan) -> None:
        when = f"{plan.next_run.astimezone():%Y-%m-%d %H:%M}" if plan.next_run else "none"
        self._print(f"[schedule] {plan.schedule.describe()}; next backup: {when}")

    def on_slot(self, outcome: SlotOutcome) -> None:
        if outcome.job_id is not None:
            self.automatic.add(outcome.job_id)
        words = {
            SlotResult.QUEUED: f"queued {outcome.job_id}",
            SlotResult.ALREADY: f"{outcome.job_id} was already queued",
            SlotResult.TAKEN: "another app or worker queued it",
        }
        self._print(
            f"[schedule] {outcome.slot.id} for user {outcome.user_id}: {words[outcome.result]}"
        )

    def on_slot_failed(self, user_id: str, slot: Slot, message: str) -> None:
        self._print(f"[schedule] {slot.id} for user {user_id} not queued yet: {message}")

    def report(self, describe: Callable[[str], str]) -> None:
        """Print what each automatic backup that ended changed (on the main thread)."""
        while not self.ended.empty():
            user_id, ok, error = self.ended.get()
            if not ok:
                self._print(f"[schedule] the automatic backup of {user_id} failed: {error}")
                continue
            try:
                self._print(f"[schedule] backup of {user_id}: {describe(user_id)}")
            except FavdeskError as failure:
                self._print(f"[schedule] backup of {user_id} done; its history: {failure}")


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
    scheduler: BackupScheduler | None = None,
    describe_backup: Callable[[str], str] | None = None,
) -> int:
    """`favdesk worker [--burst]`: the same worker in the foreground until done or signalled.

    The worker runs on the controller's thread while this (main) thread only waits for it and
    handles signals, so a stop never injects an exception into a job or a Redis call. Any
    number of these, on any machines, can share one Redis. Exit code 0, or 1 if Redis failed.
    """
    out = out or sys.stdout
    printer = _Printer(out)
    controller = WorkerController(
        connection_factory,
        services=services,
        wait_for_other_jobs=not burst,
        listener=printer,
        import_func=import_func,
        keep_trying=not burst,
        kind=STANDALONE,
    )
    mode = "one burst" if burst else "waiting for jobs; Ctrl-C to stop"
    with _SignalStop(controller, out) as signals:
        controller.start()
        print(f"[{QUEUE_NAME}] worker started ({mode})", file=out, flush=True)
        if scheduler is not None:
            scheduler.listener = printer
            scheduler.start()
        while not controller.join(timeout=0.2):
            signals.act()
            if describe_backup is not None:
                printer.report(describe_backup)
        if scheduler is not None:
            scheduler.stop()
        controller.stop()
    print(
        f"[{QUEUE_NAME}] worker stopped after {controller.jobs_done} job(s)", file=out, flush=True
    )
    return 1 if controller.last_error else 0
