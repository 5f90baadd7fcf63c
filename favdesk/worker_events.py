"""What a favdesk worker reports: its state, and callbacks for its jobs' events."""

from __future__ import annotations

from enum import StrEnum


class WorkerState(StrEnum):
    STOPPED = "stopped"
    IDLE = "idle"  # running, nothing to do, sending nothing
    BUSY = "busy"  # running a job
    WAITING = "waiting"  # blocking wait for jobs from other apps
    PAUSED = "paused"
    QUEUE_PAUSED = "queue-paused"  # the queue is paused for all: waiting for a resume, silent
    WAITING_FOR_REDIS = "waiting-for-redis"  # Redis failed under it: retrying with backoff
    STOPPING = "stopping"


class WorkerListener:
    """Callbacks from the worker; they run on the worker thread and must not block.

    A change made by a call (pause, stop, ...) while no job runs is reported on the
    calling thread. Subclass and override what you need; the defaults do nothing.
    """

    def on_state(self, state: WorkerState) -> None:
        pass

    def on_job_started(self, job_id: str, user_id: str | None) -> None:
        pass

    def on_job_progress(
        self, job_id: str, user_id: str | None, fetched: int, total: int, phase: str
    ) -> None:
        pass

    def on_job_finished(
        self, job_id: str, user_id: str | None, ok: bool, error: str | None
    ) -> None:
        pass

    def on_log(self, line: str) -> None:
        pass

    def on_queue_paused(self, paused: bool) -> None:
        """The queue was paused or resumed (by anyone), as the worker heard it."""
