"""The dashboard's steering of every worker on the Redis, and its command meter.

A part of `AppController`: Pause/Resume the queue, cancel a running job, stop a worker and
clean up expired ones become runtime calls off the GUI thread, and their results changes to
the `Dashboard`. Every worker is read only while the Queue tab is in front of a visible window,
right after each dashboard poll; the meter is read from this process every few seconds while
the window is visible (no Redis command). While this app's worker waits out a queue pause, the
dashboard stops polling as it does when paused: the worker hears the resume itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer

from favdesk.worker_events import WorkerState

if TYPE_CHECKING:
    from favdesk.fleet import Fleet
    from favdesk.gui.controller import AppController
    from favdesk.meter import CommandUsage
    from favdesk.queue import QueuePause
    from favdesk.runtime import Runtime, StatusSnapshot

#: How often the meter is read while the window is visible (milliseconds; no Redis command).
METER_MS = 5000


class Steering(QObject):
    """Created after the controller connected its own slots, so these run after them."""

    def __init__(self, app: AppController) -> None:
        super().__init__(app)
        self.app = app
        self._visible = False
        self._queue_tab = True
        self._timer = QTimer(self)
        self._timer.setObjectName("command-meter-timer")
        self._timer.setInterval(METER_MS)
        self._timer.timeout.connect(self.read_meter)
        app.events.state_changed.connect(self._worker_state)
        app.events.queue_paused.connect(self._queue_heard)
        app.poller.polled.connect(self._polled)

    @property
    def workers_shown(self) -> bool:
        return self._visible and self._queue_tab

    # -- what the window says -------------------------------------------------------------------

    def window_visible(self, visible: bool) -> None:
        """Read the meter while someone looks (it costs Redis nothing, but the GUI some work)."""
        self._visible = visible
        if visible:
            self._timer.start()
            self.read_meter()
        else:
            self._timer.stop()

    def queue_tab_shown(self, shown: bool) -> None:
        """The Queue tab, which lists the workers, came to the front (or left it)."""
        was = self.workers_shown
        self._queue_tab = shown
        if self.workers_shown and not was:
            self.load_workers()

    # -- clicks ---------------------------------------------------------------------------------

    def pause_queue(self, cancel_running: bool = False) -> None:
        """Every favdesk worker stops taking jobs; running ones finish, or are cancelled
        between pages (and re-queued) with `cancel_running`."""
        self.app._call(
            lambda r: r.pause_queue(cancel_running=cancel_running, by="favdesk app"),
            "pause the queue",
            self._paused,
            pending="queue",
        )

    def resume_queue(self) -> None:
        self.app._call(lambda r: r.resume_queue(), "resume the queue", self._resumed, "queue")

    def cancel_job(self, job_id: str) -> None:
        if job_id:
            self.app._call(lambda r: r.cancel_job(job_id), "cancel the job", self._steered)

    def stop_worker(self, name: str) -> None:
        if name:
            self.app._call(lambda r: r.stop_worker(name), "stop the worker", self._steered)

    def clean_workers(self) -> None:
        fleet = self.app.state.fleet
        names = [w.name for w in fleet.expired] if fleet is not None else []
        if names:
            self.app._call(lambda r: r.clean_workers(names), "clean up workers", self._steered)

    # -- reads ----------------------------------------------------------------------------------

    def load_workers(self) -> None:
        runtime = self.app.runtime
        if runtime is None or "workers" in self.app.state.pending:
            return

        def read(r: Runtime) -> tuple[Fleet, str | None]:
            return r.workers(), r.worker.worker_name

        def done(result: tuple[Fleet, str | None]) -> None:
            fleet, own = result
            self._update(
                pending=self.app._pending("workers", False),
                fleet=fleet,
                fleet_error=None,
                worker_name=own,
                **self._pause_changes(fleet.pause),
            )

        def failed(error: BaseException) -> None:
            from favdesk.gui.bridge import user_message

            self._update(
                pending=self.app._pending("workers", False), fleet_error=user_message(error)
            )

        self._update(pending=self.app._pending("workers", True))
        self.app._run(runtime, read, done, failed)

    def read_meter(self) -> None:
        runtime = self.app.runtime
        if runtime is not None:
            self.app._run(runtime, lambda r: r.command_usage(), self._metered, _ignore)

    # -- results and events ---------------------------------------------------------------------

    def _update(self, **changes: Any) -> None:
        self.app._update(**changes)

    def _metered(self, usage: CommandUsage) -> None:
        if usage != self.app.state.commands:
            self._update(commands=usage)

    def _paused(self, pause: QueuePause) -> None:
        self._update(queue_paused=True, queue_pause=pause)
        self._steered()

    def _resumed(self, _was_paused: bool) -> None:
        self._update(queue_paused=False, queue_pause=None)
        self._steered()

    def _steered(self, _result: object = None) -> None:
        """After a click: read again now (the Workers list too, if it is shown)."""
        self.app.poller.poll_now(force=True)
        if self.workers_shown:
            self.load_workers()

    def _pause_changes(self, pause: QueuePause | None) -> dict[str, Any]:
        return {"queue_paused": pause is not None, "queue_pause": pause}

    def _worker_state(self, state: WorkerState) -> None:
        if state == WorkerState.QUEUE_PAUSED:
            self.app.poller.update(paused=True)  # the worker hears the resume: no need to poll
            if not self.app.state.queue_paused:
                self._update(queue_paused=True)

    def _queue_heard(self, paused: bool) -> None:
        if paused != self.app.state.queue_paused:
            self._update(
                queue_paused=paused, queue_pause=self.app.state.queue_pause if paused else None
            )

    def _polled(self, snapshot: StatusSnapshot) -> None:
        changes: dict[str, Any] = {}
        if snapshot.redis.reachable:
            changes |= self._pause_changes(snapshot.queue_paused)
        if snapshot.commands is not None:
            changes["commands"] = snapshot.commands
        if snapshot.server_commands is not None:
            changes["server_commands"] = (snapshot.server_commands, snapshot.taken_at)
        self._update(**changes)
        if snapshot.queue_paused is not None and self.app.state.worker == WorkerState.IDLE:
            # an idle burst worker hears nothing: started, it waits for the resume silently
            self.app._call(lambda r: r.worker.kick(), "wait for the queue to resume")
        if self.workers_shown:
            self.load_workers()


def _ignore(_error: BaseException) -> None:
    """A meter read that failed (the runtime closing) is simply not shown."""
