"""What a job sees of the worker running it: its cancel flag, and sinks for progress and logs.

favdesk's own worker sets a context for each job; under a stock `rq worker` the job gets a
default one whose report and log only log and whose cancel never fires.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from rq.job import get_current_job

from favdesk.queue import job_user_id
from favdesk.services import Services

logger = logging.getLogger("favdesk.worker")


@dataclass
class JobContext:
    """What favdesk's worker gives the job it runs: cancel flag, progress and log sinks."""

    job_id: str | None
    user_id: str | None
    cancel: threading.Event
    #: The app's services; None under a worker that is not favdesk's (the job opens its own).
    services: Services | None = None
    on_report: Callable[[int, int, str], None] | None = field(default=None, repr=False)
    on_log: Callable[[str], None] | None = field(default=None, repr=False)
    #: False once another worker took the job over (this one was asleep past its heartbeat).
    is_current: Callable[[], bool] | None = field(default=None, repr=False)

    def still_current(self) -> bool:
        """Whether this run still owns its job (one Redis command; True when unknown).

        A run whose worker slept past its heartbeat may wake after another worker resumed
        and finished the job: it must not upload or write the job's status any more.
        """
        return self.is_current is None or self.is_current()

    def report(self, fetched: int, total: int, phase: str) -> None:
        """Progress for the local listener (free: no Redis command)."""
        if self.on_report is None:
            logger.debug("%s: %s %d/%d", self.job_id, phase, fetched, total)
            return
        self.on_report(fetched, total, phase)

    def log(self, line: str) -> None:
        """A worker log line (`[spotify-ingest] ...`) for the dashboard."""
        if self.on_log is None:
            logger.info("%s", line)
            return
        self.on_log(line)


_current_context: ContextVar[JobContext | None] = ContextVar("favdesk_job_context", default=None)


def current_job_context() -> JobContext:
    """The running job's context; under another worker (a stock `rq worker`) a default one

    whose report/log only log and whose cancel never fires.
    """
    context = _current_context.get()
    if context is not None:
        return context
    job = get_current_job()
    return JobContext(
        job_id=job.id if job else None,
        user_id=job_user_id(job) if job else None,
        cancel=threading.Event(),
    )


@contextlib.contextmanager
def running_with(context: JobContext) -> Iterator[JobContext]:
    """Make `context` the one `current_job_context()` returns while the job runs."""
    token = _current_context.set(context)
    try:
        yield context
    finally:
        _current_context.reset(token)
