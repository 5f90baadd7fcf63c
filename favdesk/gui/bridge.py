"""The only way between the GUI thread and everything that may block.

`Bridge.run_in_background(task, on_done, on_error)` runs `task` on a worker thread and calls
back on the GUI thread (Anki's `taskman.run_in_background`). `WorkerEvents` is the embedded
worker's listener and `ScheduleEvents` the automatic backups' timer's: their callbacks arrive on
those threads and leave as Qt signals, which Qt queues to the GUI thread because the objects
live there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from favdesk.errors import FavdeskError
from favdesk.schedule import ScheduleListener, SchedulePlan, Slot, SlotOutcome
from favdesk.worker_events import WorkerListener, WorkerState

log = logging.getLogger(__name__)

#: Enough threads for one blocking link wait, one status read and a few short calls at once.
MAX_THREADS = 6
#: What runs on the GUI thread after a task: with its result, or with the error it raised.
OnDone = Callable[[Any], None] | None
OnError = Callable[[BaseException], None] | None


def user_message(error: BaseException) -> str:
    """A line for the UI: favdesk's own message, or the error's type for anything unexpected."""
    if isinstance(error, FavdeskError):
        return str(error)
    return f"Unexpected error ({type(error).__name__}); details are in the log."


class Bridge(QObject):
    """Runs blocking calls on worker threads and hands results back on the GUI thread."""

    _deliver = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="favdesk-gui")
        self._closed = False
        self._deliver.connect(self._run_delivery)

    def run_in_background(
        self,
        task: Callable[[], Any],
        on_done: OnDone = None,
        on_error: OnError = None,
    ) -> Future[Any]:
        """Run `task` off the GUI thread; `on_done(result)` or `on_error(exc)` run on it."""
        if QThread.currentThread() is not self.thread():
            raise RuntimeError("run_in_background must be called from the GUI thread")
        future = self._pool.submit(task)
        future.add_done_callback(lambda f: self._hand_back(f, on_done, on_error))
        return future

    def call_on_main(self, function: Callable[[], None]) -> None:
        """Queue `function` to run on the GUI thread (safe from any thread)."""
        self._deliver.emit(function)

    def _hand_back(self, future: Future[Any], on_done: OnDone, on_error: OnError) -> None:
        """Runs on the worker thread: queue the callbacks for the GUI thread unless closed."""
        if self._closed or future.cancelled():
            return
        self._deliver.emit(lambda: self._finish(future, on_done, on_error))

    def _finish(self, future: Future[Any], on_done: OnDone, on_error: OnError) -> None:
        error = future.exception()
        if error is None:
            if on_done is not None:
                on_done(future.result())
            return
        if not isinstance(error, FavdeskError):
            log.error("background task failed", exc_info=error)
        if on_error is not None:
            on_error(error)

    def _run_delivery(self, function: Callable[[], None]) -> None:
        if not self._closed:
            function()

    def close(self, wait: bool = True) -> None:
        """Stop delivering results and let running tasks finish (they are not interrupted)."""
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)


class WorkerEvents(QObject, WorkerListener):
    """The embedded worker's listener; each callback becomes a signal named for what happened."""

    #: a WorkerState
    state_changed = Signal(object)
    job_started = Signal(str, str)
    #: job_id, user_id, fetched, total (None until the first page), phase
    job_progress = Signal(str, str, int, object, str)
    #: job_id, user_id, ok, error message (None on success)
    job_finished = Signal(str, str, bool, object)
    log_line = Signal(str)
    #: the queue was paused (True) or resumed, as the worker heard it
    queue_paused = Signal(bool)

    def on_state(self, state: WorkerState) -> None:
        self.state_changed.emit(state)

    def on_queue_paused(self, paused: bool) -> None:
        self.queue_paused.emit(bool(paused))

    def on_job_started(self, job_id: str, user_id: str | None) -> None:
        self.job_started.emit(job_id, user_id or "")

    def on_job_progress(
        self, job_id: str, user_id: str | None, fetched: int, total: int | None, phase: str
    ) -> None:
        self.job_progress.emit(job_id, user_id or "", int(fetched), total, str(phase or ""))

    def on_job_finished(
        self, job_id: str, user_id: str | None, ok: bool, error: str | None
    ) -> None:
        message = None if error is None else str(error)
        self.job_finished.emit(job_id, user_id or "", bool(ok), message)

    def on_log(self, line: str) -> None:
        self.log_line.emit(str(line))


class ScheduleEvents(QObject, ScheduleListener):
    """The automatic backups' listener; each callback becomes a signal named for what happened."""

    #: a SchedulePlan: when the next automatic backup is queued
    plan_changed = Signal(object)
    #: a SlotOutcome: a slot was queued here, found queued, or claimed by another app
    slot_queued = Signal(object)
    #: user_id, message: a due slot could not be queued (it is tried again)
    slot_failed = Signal(str, str)

    def on_plan(self, plan: SchedulePlan) -> None:
        self.plan_changed.emit(plan)

    def on_slot(self, outcome: SlotOutcome) -> None:
        self.slot_queued.emit(outcome)

    def on_slot_failed(self, user_id: str, slot: Slot, message: str) -> None:
        self.slot_failed.emit(user_id, message)
