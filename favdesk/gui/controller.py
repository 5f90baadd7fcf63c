"""The app's state and the one place that turns the user's intents into runtime calls.

Every runtime call runs through the bridge on a worker thread; results come back on the GUI
thread and replace the `Dashboard` value, which the window and the tray render. The embedded
worker's live state comes from its callbacks (`WorkerEvents`), never from Redis.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import threading
import webbrowser
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from favdesk.errors import LinkCancelled
from favdesk.gui.bridge import Bridge, ScheduleEvents, WorkerEvents, user_message
from favdesk.gui.describe import HALTED, can_sync, number, remedy
from favdesk.gui.poller import StatusPoller
from favdesk.gui.state import Dashboard, JobOutcome, LinkState, LiveJob
from favdesk.gui.steering import Steering
from favdesk.settings import Settings
from favdesk.worker_events import WorkerListener, WorkerState

if TYPE_CHECKING:
    from favdesk.accounts import Account
    from favdesk.history import History
    from favdesk.link import LinkResult
    from favdesk.queue import EnqueueResult
    from favdesk.retention import RetentionPlan
    from favdesk.runtime import Runtime, StatusSnapshot
    from favdesk.schedule import SlotOutcome
    from favdesk.storage import StoredFile
    from favdesk.sync_status import SyncStatus

log = logging.getLogger(__name__)

LINK_TIMEOUT = 300.0
#: The history of another user (or runtime) is not shown: these fields start over.
NO_HISTORY: dict[str, Any] = {
    "history": None,
    "history_error": None,
    "history_reading": None,
    "diff": None,
}
#: The window shows a running sync's progress at most this often (milliseconds).
PROGRESS_RENDER_MS = 100
#: Opens the runtime (blocking): `opener(settings, listener) -> Runtime`.
Opener = Callable[[Settings, WorkerListener], "Runtime"]


def default_opener(settings: Settings, listener: WorkerListener) -> Runtime:
    from favdesk.runtime import open_runtime

    return open_runtime(settings, listener=listener)


def opened_runtime(opening: Future | None) -> Runtime | None:
    """What an opening returned, once it has ended (None if it failed or was cancelled)."""
    if opening is None:
        return None
    wait([opening])
    if opening.cancelled() or opening.exception() is not None:
        return None
    return opening.result()


class AppController(QObject):
    """Holds the runtime and the `Dashboard`; every method here returns at once."""

    changed = Signal(object)
    #: title, message: a desktop notification (the tray shows it where there is one)
    notified = Signal(str, str)
    file_saved = Signal(str)
    #: a RetentionPlan with something to delete: the window asks before `prune(plan)`
    retention_planned = Signal(object)
    #: the app may quit now (the worker stopped, or nothing was running)
    quit_ready = Signal()

    def __init__(
        self, settings: Settings, opener: Opener = default_opener, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.opener = opener
        self.runtime: Runtime | None = None
        self.bridge = Bridge(self)
        self.events = WorkerEvents(self)
        self.schedule_events = ScheduleEvents(self)
        self.poller = StatusPoller(self.bridge, self)
        self.state = Dashboard(
            demo_mode=settings.demo_mode,
            wait_for_other_jobs=settings.wait_for_other_jobs,
            keep_daily=settings.keep_daily,
        )
        self.quitting = False
        self._link_cancel: threading.Event | None = None
        self._opening: Future | None = None
        #: numbers each opening: a result from an older one is dropped (a later swap closes it)
        self._openings = 0
        #: calls in flight, each with the runtime it uses (closed only after they end)
        self._calls: dict[Future, Runtime] = {}
        self._visible = False
        self._files_stale = True
        #: the History tab is in front of a visible window: only then is Storage listed for it
        self._history_visible = False
        self._history_stale = True
        #: imports the schedule queued: their end is notified with what changed
        self._automatic: set[str] = set()
        #: a due slot could not be queued and that was said (said once until one is queued)
        self._slot_failing = False
        #: the notice Sync now itself showed last (the next sync clears only that one)
        self._sync_notice: str | None = None
        #: the newest progress the worker reported; the window shows it at most 10 times a
        #: second (a render per page would compete with the import for the GIL)
        self._progress: LiveJob | None = None
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_RENDER_MS)
        self._progress_timer.timeout.connect(self._show_progress)
        self._connect()
        #: Every worker on the Redis and the command meter (its slots run after these).
        self.steering = Steering(self)

    def _connect(self) -> None:
        self.events.state_changed.connect(self._worker_state)
        self.events.job_started.connect(self._job_started)
        self.events.job_progress.connect(self._job_progress)
        self.events.job_finished.connect(self._job_finished)
        self.poller.polled.connect(self._polled)
        self.poller.failed.connect(self._poll_failed)
        self.poller.plan_changed.connect(lambda plan: self._update(poll=plan))
        self.schedule_events.plan_changed.connect(lambda plan: self._update(schedule=plan))
        self.schedule_events.slot_queued.connect(self._slot_queued)
        self.schedule_events.slot_failed.connect(self._slot_failed)

    def _update(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        self.changed.emit(self.state)

    def _pending(self, name: str, on: bool) -> frozenset[str]:
        return self.state.pending | {name} if on else self.state.pending - {name}

    def note(self, text: str | None) -> None:
        """Show (or clear, with None) a message in the window's notice banner."""
        self._update(notice=text)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Open the runtime in the background; the window says "Starting..." meanwhile."""
        if self.runtime is not None or (self._opening is not None and not self._opening.done()):
            return
        self._update(startup="starting", startup_error=None)
        settings = self.settings
        self._open(lambda: self.opener(settings, self.events))

    def reopen(self, settings: Settings) -> None:
        """Apply new settings: close the runtime and open one with `settings`, in the background.

        A browser wait is cancelled first; the old runtime (or the one still opening) is closed
        once the calls running against it have ended, and their results are dropped.
        """
        previous, calls = self._opening, self._running_calls()
        self.runtime = None
        link = self._cancel_link_for_reopen()
        self.poller.stop()
        self.poller.update(ready=False)
        self.settings = settings
        self._update(
            demo_mode=settings.demo_mode,
            wait_for_other_jobs=settings.wait_for_other_jobs,
            keep_daily=settings.keep_daily,
            startup="starting",
            startup_error=None,
            snapshot=None,
            status_error=None,
            pending=frozenset(),
            link=link,
            schedule=None,
            **NO_HISTORY,
        )
        self._history_stale = True

        def swap() -> Runtime:
            wait(calls)
            old = opened_runtime(previous)
            if old is not None:
                old.close()
            return self.opener(settings, self.events)

        self._open(swap)

    def _open(self, task: Callable[[], Runtime]) -> None:
        """Run an opening; only the newest one's result is taken."""
        self._openings += 1
        number = self._openings

        def opened(runtime: Runtime) -> None:
            if number == self._openings:
                self._opened(runtime)

        def failed(error: BaseException) -> None:
            if number == self._openings:
                self._open_failed(error)

        self._opening = self.bridge.run_in_background(task, opened, failed)

    def _running_calls(self) -> list[Future]:
        """The calls still running against the runtime, and the status read in flight."""
        calls = [call for call in self._calls if not call.done()]
        polling = self.poller.running
        return calls + [polling] if polling is not None else calls

    def _cancel_link_for_reopen(self) -> LinkState:
        """End a browser wait (its runtime is about to close) and say why."""
        if not self.state.link.waiting:
            return self.state.link
        if self._link_cancel is not None:
            self._link_cancel.set()
        self._link_cancel = None
        return LinkState(message="Login cancelled: settings changed.")

    def _opened(self, runtime: Runtime) -> None:
        log.info("favdesk is ready: Redis %s, %s", runtime.redis_where, runtime.storage_description)
        self.runtime = runtime
        self.poller.fetch = runtime.status
        self._update(
            startup="ready",
            storage_description=runtime.storage_description,
            redis_where=runtime.redis_where,
            worker=runtime.worker.state,
        )
        self.load_accounts()
        self.poller.update(ready=True, paused=self.state.worker == WorkerState.PAUSED)
        # What start-up made (Qt wrappers; the modules of Redis, RQ, Storage) lives as long as
        # the app: kept out of the collector's full passes, which an import's allocations
        # trigger and which would each stop the event loop for tens of milliseconds.
        gc.freeze()
        self._call(lambda r: r.worker.start(), "start the worker")
        runtime.scheduler.listener = self.schedule_events
        halted = self.state.worker in HALTED
        self._call(lambda r: _start_schedule(r, halted), "start the automatic backups")
        if self._history_visible:
            self.load_history()

    def _open_failed(self, error: BaseException) -> None:
        self._update(startup="failed", startup_error=user_message(error))

    def shutdown(self) -> None:
        """Cancel a browser wait, stop polling and close the runtime (blocks: call at exit)."""
        self.quitting = True
        if self._link_cancel is not None:
            self._link_cancel.set()
        self.poller.stop()
        self.bridge.close(wait=True)
        # the newest opening's runtime (older ones are closed by the swap after them)
        runtime, self.runtime = self.runtime or opened_runtime(self._opening), None
        if runtime is not None:
            runtime.close()

    def quit(self, cancel_current: bool = False) -> None:
        """Quit once the worker is done: at once when idle, after (or cancelling) a running job."""
        self.quitting = True
        if self.runtime is None or self.state.job is None:
            self.quit_ready.emit()
            return
        self.note(
            "Cancelling the current sync between pages, then quitting..."
            if cancel_current
            else "favdesk quits when the current sync finishes..."
        )
        self.stop(cancel_current)

    # -- the window ---------------------------------------------------------------------------

    def set_window_visible(self, visible: bool) -> None:
        """Someone is (or stops) looking: poll Redis only while they are."""
        if visible == self._visible:
            return
        self._visible = visible
        self.steering.window_visible(visible)
        self.poller.update(visible=visible)
        if visible and self._files_stale:
            self.load_files()

    def set_history_visible(self, visible: bool) -> None:
        """The History tab came to the front (or left it): list the snapshots if stale."""
        self._history_visible = visible
        if visible and self._history_stale:
            self.load_history()

    def select_user(self, user_id: str) -> None:
        if user_id == self.state.user_id:
            return
        self._update(
            user_id=user_id,
            files=(),
            files_error=None,
            queued_job=None,
            **NO_HISTORY,
        )
        self._history_stale = True
        self.load_files()
        if self._history_visible:
            self.load_history()

    def refresh(self) -> None:
        """The user asked: read Redis once now (even while paused), reload accounts and files."""
        self.poller.poll_now(force=True)
        self._files_stale = True
        self._history_stale = True
        self.load_accounts()
        if self._history_visible:
            self.load_history()

    # -- runtime calls ------------------------------------------------------------------------

    def _call(
        self,
        task: Callable[[Runtime], Any],
        what: str,
        on_done: Callable[[Any], None] | None = None,
        pending: str | None = None,
    ) -> None:
        """Run `task(runtime)` in the background; a failure shows as "Could not <what>: ..."."""
        runtime = self.runtime
        if runtime is None:
            return
        if pending:
            self._update(pending=self._pending(pending, True))

        def done(result: Any) -> None:
            if pending:
                self._update(pending=self._pending(pending, False))
            if on_done is not None:
                on_done(result)

        def failed(error: BaseException) -> None:
            changes: dict[str, Any] = {"notice": f"Could not {what}: {user_message(error)}"}
            if pending:
                changes["pending"] = self._pending(pending, False)
            self._update(**changes)

        self._run(runtime, task, done, failed)

    def _run(
        self,
        runtime: Runtime,
        task: Callable[[Runtime], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Run `task(runtime)` in the background; drop its result if `runtime` was replaced."""

        def current(callback: Callable[[Any], None]) -> Callable[[Any], None]:
            return lambda result: callback(result) if self.runtime is runtime else None

        call = self.bridge.run_in_background(
            lambda: task(runtime), current(on_done), current(on_error)
        )
        self._calls = {c: r for c, r in self._calls.items() if not c.done()}
        self._calls[call] = runtime

    def load_accounts(self) -> None:
        self._call(lambda r: tuple(r.accounts.list()), "read the linked accounts", self._accounts)

    def _accounts(self, accounts: tuple[Account, ...]) -> None:
        known = {a.user_id for a in accounts}
        user_id = self.state.user_id
        if user_id not in known:
            preferred = self.settings.user_id
            first = accounts[0].user_id if accounts else None
            user_id = preferred if preferred in known else first
        changed_user = user_id != self.state.user_id
        self._update(accounts=accounts, user_id=user_id)
        if changed_user or self._files_stale:
            self.load_files()

    def load_files(self) -> None:
        user_id = self.state.user_id
        if user_id is None or self.runtime is None:
            return
        self._files_stale = False

        def listed(files: list[StoredFile]) -> None:
            if user_id == self.state.user_id:
                self._update(
                    files=tuple(files), files_error=None, pending=self._pending("files", False)
                )

        def failed(error: BaseException) -> None:
            self._update(files_error=user_message(error), pending=self._pending("files", False))

        self._update(pending=self._pending("files", True))
        self._run(self.runtime, lambda r: r.files(user_id), listed, failed)

    # -- the history ---------------------------------------------------------------------------

    def load_history(self) -> None:
        """List the selected user's snapshots; those the index does not know are read (the
        window says which, as it goes)."""
        user_id = self.state.user_id
        if user_id is None or self.runtime is None or "history" in self.state.pending:
            return
        self._history_stale = False

        def reading(done: int, total: int, day: date) -> None:
            self.bridge.call_on_main(
                lambda: (
                    self._update(history_reading=(done, total, day))
                    if user_id == self.state.user_id
                    else None
                )
            )

        def listed(history: History) -> None:
            changes: dict[str, Any] = {
                "pending": self._pending("history", False),
                "history_reading": None,
            }
            if user_id == self.state.user_id:
                changes |= {"history": history, "history_error": None}
            self._update(**changes)

        def failed(error: BaseException) -> None:
            self._update(
                history_error=user_message(error),
                history_reading=None,
                pending=self._pending("history", False),
            )

        self._update(pending=self._pending("history", True))
        self._run(self.runtime, lambda r: r.history(user_id, on_progress=reading), listed, failed)

    def compare(self, older: date, newer: date) -> None:
        """What changed between two snapshots of the selected user (History tab)."""
        user_id = self.state.user_id
        if user_id is None:
            return
        self._call(
            lambda r: r.diff(older, newer, user_id),
            "compare the snapshots",
            lambda changes: self._update(diff=changes),
            pending="diff",
        )

    def export_snapshot(self, day: date, path: str) -> None:
        """Write a snapshot as CSV (Exportify's columns) to `path`."""
        user_id = self.state.user_id
        if user_id is None:
            return
        self._call(
            lambda r: r.export_csv(day, Path(path), user_id),
            "export the snapshot",
            lambda count: self.note(f"Exported {count:,} songs of {day} to {path}"),
            pending="export",
        )

    def plan_retention(self) -> None:
        """Work out what retention would delete; the window asks before anything is."""
        user_id = self.state.user_id
        if user_id is None:
            return

        def planned(plan: RetentionPlan) -> None:
            if plan.delete:
                self.retention_planned.emit(plan)
                return
            text = "Nothing to delete: every snapshot favdesk wrote is within retention."
            if plan.foreign:
                text += f" {len(plan.foreign)} older ones other programs wrote are kept."
            self.note(text)

        self._call(
            lambda r: r.retention_plan(user_id=user_id),
            "plan the retention",
            planned,
            pending="prune",
        )

    def prune(self, plan: RetentionPlan) -> None:
        """Delete what `plan` would (asked and answered in the window)."""

        def deleted(files: list[StoredFile]) -> None:
            self.note(f"Deleted {len(files)} old snapshot{'s' if len(files) != 1 else ''}.")
            self._files_stale = self._history_stale = True
            self.load_files()
            self.load_history()

        self._call(lambda r: r.prune(plan), "delete old snapshots", deleted, pending="prune")

    def link(self) -> None:
        """Link Spotify in the system browser; the wait can be cancelled."""
        if self.runtime is None or self.state.link.waiting:
            return
        cancel = self._link_cancel = threading.Event()
        self._update(link=LinkState(waiting=True))

        def show_url(url: str) -> None:
            self.bridge.call_on_main(lambda: self._link_url(cancel, url))

        asked = datetime.now(UTC)
        self._run(
            self.runtime,
            lambda r: r.link(
                open_browser=webbrowser.open, on_url=show_url, cancel=cancel, timeout=LINK_TIMEOUT
            ),
            lambda result: self._linked(result, asked),
            self._link_failed,
        )

    def _link_url(self, cancel: threading.Event, url: str) -> None:
        if cancel is self._link_cancel and self.state.link.waiting:
            self._update(link=replace(self.state.link, url=url))

    def cancel_link(self) -> None:
        if self._link_cancel is not None:
            self._link_cancel.set()

    def _linked(self, result: LinkResult, asked: datetime) -> None:
        self._link_cancel = None
        account = result.account
        name = account.display_name or account.spotify_id
        message = f"Linked {name}."
        if result.job_id:
            message += f" Its first sync is under way (job {result.job_id})."
        self._update(
            link=LinkState(message=message),
            user_id=account.user_id,
            queued_job=self._still_queued(result.job_id, asked),
        )
        self.load_accounts()
        self.poller.poll_now()

    def _link_failed(self, error: BaseException) -> None:
        self._link_cancel = None
        if isinstance(error, LinkCancelled):
            self._update(link=LinkState(message="Login cancelled: nothing was linked."))
            return
        self._update(link=LinkState(error=f"Linking failed: {user_message(error)}"))

    def sync(self) -> None:
        """Queue an import for the selected user (a waiting job is answered with its own id).

        Not for an account whose link expired: that one needs Link again first.
        """
        user_id = self.state.user_id
        if user_id is None or not can_sync(self.state):
            return

        asked = datetime.now(UTC)

        def queued(result: EnqueueResult) -> None:
            notice = None if result.created else f"A sync is already queued (job {result.job_id})."
            other = self.state.notice if self.state.notice != self._sync_notice else None
            self._sync_notice = notice
            queued_job = self._still_queued(result.job_id, asked)
            self._update(queued_job=queued_job, notice=notice or other)
            self.poller.poll_now()

        self._call(lambda r: r.sync(user_id), "start a sync", queued, pending="sync")

    def _still_queued(self, job_id: str | None, asked: datetime) -> str | None:
        """`job_id` unless the worker's callbacks (which may overtake the answer) saw it run."""
        job, outcome = self.state.job, self.state.outcome
        if job is not None and job.job_id == job_id:
            return None
        if outcome is not None and outcome.job_id == job_id and outcome.at >= asked:
            return None
        return job_id

    def pause(self) -> None:
        self._call(lambda r: r.worker.pause(), "pause the worker")

    def resume(self) -> None:
        """Resume a paused worker, or start a stopped one."""
        if self.state.worker == WorkerState.STOPPED:
            self._call(lambda r: r.worker.start(), "start the worker")
            return
        self._call(lambda r: r.worker.resume(), "resume the worker")

    def stop(self, cancel_current: bool = False) -> None:
        """Stop the worker: a running sync finishes first, or (`cancel_current`) ends between
        pages, keeping what it fetched for the next sync."""
        if self.state.job is not None:
            self._update(stopping="cancel" if cancel_current else "finish")
        self._call(lambda r: r.worker.stop(cancel_current=cancel_current), "stop the worker")

    def retry_job(self, job_id: str) -> None:
        if job_id:
            self._call(lambda r: r.retry_job(job_id), "retry the job", self._force_poll)

    def delete_job(self, job_id: str) -> None:
        if job_id:
            self._call(lambda r: r.delete_job(job_id), "delete the job", self._force_poll)

    def _force_poll(self, _result: Any = None) -> None:
        self.poller.poll_now(force=True)

    def open_file(self, key: str) -> None:
        """Download a copy to a private temp folder and open it with the desktop's app for JSON."""

        def write(runtime: Runtime) -> str:
            folder = Path(tempfile.mkdtemp(prefix="favdesk-"))
            path = folder / Path(key).name
            path.write_bytes(runtime.download(key))
            return str(path)

        def opened(path: str) -> None:
            if not QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
                self.note(f"No app opened the file; it is at {path}")

        self._call(write, "open the file", opened)

    def save_file(self, key: str, path: str) -> None:
        def write(runtime: Runtime) -> str:
            target = Path(path)
            temporary = target.with_name(f".{target.name}.part")
            temporary.write_bytes(runtime.download(key))
            os.replace(temporary, target)
            return str(target)

        self._call(write, "save the file", self.file_saved.emit)

    # -- worker callbacks (already on the GUI thread) --------------------------------------

    def _worker_state(self, state: WorkerState) -> None:
        busy = state in (WorkerState.BUSY, WorkerState.STOPPING)
        down = self.state.redis_down_since
        if state == WorkerState.WAITING_FOR_REDIS:
            down = down or datetime.now(UTC)
        elif self.state.worker == WorkerState.WAITING_FOR_REDIS or busy:
            down = None  # the worker reached Redis again
        self._update(
            worker=state, stopping=self.state.stopping if busy else None, redis_down_since=down
        )
        self.poller.update(paused=state == WorkerState.PAUSED, busy=busy)
        if self.runtime is not None:  # paused or stopped: the schedule queues nothing
            held = state in HALTED
            self._call(lambda r: r.scheduler.hold(held), "hold the automatic backups")
        if self.quitting and state == WorkerState.STOPPED:
            self.quit_ready.emit()

    def _job_started(self, job_id: str, user_id: str) -> None:
        queued = None if self.state.queued_job == job_id else self.state.queued_job
        self._progress = None
        self._update(job=LiveJob(job_id, user_id), queued_job=queued)
        self.poller.update(busy=True)
        self.notified.emit("Sync started", f"Importing the Liked Songs of user {user_id}.")

    def _job_progress(
        self, job_id: str, user_id: str, fetched: int, total: int | None, phase: str
    ) -> None:
        previous, self._progress = self._progress, LiveJob(job_id, user_id, fetched, total, phase)
        if previous is not None and previous.phase != phase:
            self._show(previous)  # a phase's last step is always shown (the bar reaches its end)
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _show_progress(self) -> None:
        if self._progress is not None:
            self._show(self._progress)

    def _show(self, progress: LiveJob) -> None:
        job = self.state.job
        if job is not None and progress.job_id == job.job_id:
            self._update(job=progress)

    def _job_finished(self, job_id: str, user_id: str, ok: bool, error: str | None) -> None:
        job = self._progress or self.state.job
        outcome = JobOutcome(job_id, user_id, ok, error, datetime.now(UTC))
        link = self.state.link if self.state.link.waiting else LinkState()
        self._update(job=None, outcome=outcome, link=link)
        self.poller.update(busy=False)
        if job_id in self._automatic:
            self._automatic.discard(job_id)
            self._report_backup(user_id, ok, error)
        elif ok:
            count = number(job.fetched) if job is not None and job.job_id == job_id else "All"
            self.notified.emit("Sync done", f"{count} liked songs saved for user {user_id}.")
        else:
            self.notified.emit("Sync failed", error or "The import failed: see the dashboard.")
        self._files_stale = self._history_stale = True
        self.load_accounts()  # a failed sync may have marked the link as needing re-linking
        if self._history_visible:
            self.load_history()
        self.poller.poll_now()

    # -- automatic backups (callbacks on the GUI thread) ---------------------------------------

    def _slot_queued(self, outcome: SlotOutcome) -> None:
        """The schedule queued a user's import (or found one queued): its end is reported."""
        self._slot_failing = False
        if outcome.job_id is not None:
            self._automatic.add(outcome.job_id)
        self.poller.poll_now()

    def _slot_failed(self, user_id: str, message: str) -> None:
        if self._slot_failing:
            return
        self._slot_failing = True
        self.notified.emit(
            "Automatic backup not queued",
            f"{message}. favdesk tries again by itself; Sync now works once Redis answers.",
        )

    def _report_backup(self, user_id: str, ok: bool, error: str | None) -> None:
        """After an automatic backup: what changed, or why it failed and what to do."""
        if ok:

            def said(history: History) -> None:
                latest = history.latest
                summary = latest.summary if latest is not None else "no snapshot found"
                self.notified.emit("Automatic backup done", f"User {user_id}: {summary}.")
                if user_id == self.state.user_id:
                    self._update(history=history, history_error=None)

            self._call(lambda r: r.history(user_id), "read what the backup changed", said)
            return

        def failed(status: SyncStatus) -> None:
            reason = status.reason.partition(":")[0] if status.reason else None
            halted = self.state.worker in HALTED
            advice = remedy(reason, status.resume_at, halted)
            self.notified.emit("Automatic backup failed", f"{error or 'It failed'}. {advice}")

        self._call(lambda r: r.sync_status(user_id), "read why the backup failed", failed)

    # -- Redis reads ----------------------------------------------------------------------------

    def _polled(self, snapshot: StatusSnapshot) -> None:
        from rq.job import JobStatus  # loaded by the runtime that took the snapshot

        queued = self.state.queued_job
        ended = (JobStatus.FINISHED, JobStatus.FAILED)
        if queued is not None and any(j.id == queued and j.state in ended for j in snapshot.jobs):
            queued = None
        back = snapshot.redis.reachable and self.state.status_error is not None
        error = None if snapshot.redis.reachable else snapshot.redis.error or "no answer"
        down = None if snapshot.redis.reachable else self._redis_down_since()
        self._update(
            snapshot=snapshot, status_error=error, queued_job=queued, redis_down_since=down
        )
        if back:
            self._redis_back()

    def _redis_back(self) -> None:
        """Redis answers again: run what a burst that failed meanwhile left queued.

        A burst that hits a Redis error ends without retrying, so without this a queued (or
        recovered) job would wait for Sync now. A pause or stop by the user stands.
        """
        if self.quitting or self.state.worker in HALTED:
            return
        self._call(lambda r: r.worker.kick(), "restart the worker after the Redis outage")

    def _poll_failed(self, message: str) -> None:
        self._update(status_error=message, redis_down_since=self._redis_down_since())

    def _redis_down_since(self) -> datetime:
        return self.state.redis_down_since or datetime.now(UTC)


def _start_schedule(runtime: Runtime, halted: bool) -> None:
    """Start the automatic backups, held if the worker is paused or stopped."""
    runtime.scheduler.hold(halted)
    runtime.scheduler.start()
