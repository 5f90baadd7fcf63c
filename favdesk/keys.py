"""The Redis keys favdesk reads and writes: its own, and RQ's for the `spotify-ingest` queue.

RQ's names come from RQ's own classes, so that favdesk follows them if RQ renames a key.
"""

from __future__ import annotations

from rq import Queue
from rq.executions import Execution
from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.worker import Worker
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

QUEUE_NAME = "spotify-ingest"
QUEUE_KEY = Queue.redis_queue_namespace_prefix + QUEUE_NAME
#: The queue's registries by the state they hold, in the order the dashboard shows them.
REGISTRY_KEYS = {
    "started": StartedJobRegistry.key_template.format(QUEUE_NAME),
    "finished": FinishedJobRegistry.key_template.format(QUEUE_NAME),
    "failed": FailedJobRegistry.key_template.format(QUEUE_NAME),
    "deferred": DeferredJobRegistry.key_template.format(QUEUE_NAME),
    "scheduled": ScheduledJobRegistry.key_template.format(QUEUE_NAME),
}
#: Users whose import must run again at a time (score: epoch seconds), e.g. after a long 429.
RETRY_KEY = "fav:retry"
#: Set while the queue is paused for every favdesk worker; its value says since when and by whom.
QUEUE_PAUSED_KEY = "fav:queue:paused"
#: Pause and resume notices for favdesk's workers: waiting on a subscription sends nothing.
QUEUE_CONTROL_CHANNEL = "fav:queue:control"
#: RQ's sets of the live workers' keys: every worker on this Redis, and the queue's own.
WORKERS_KEY = Worker.redis_workers_keys
QUEUE_WORKERS_KEY = WORKERS_BY_QUEUE_KEY % QUEUE_NAME


def sync_key(user_id: str) -> str:
    """The web app's sync status: `syncing`, `done` or `error:<reason>`."""
    return f"fav:sync:{user_id}"


def progress_key(user_id: str) -> str:
    return f"fav:progress:{user_id}"


def slot_key(user_id: str, slot_id: str) -> str:
    """Set once per user and backup slot (`daily-2026-12-06`): whoever sets it queues the import."""
    return f"fav:slot:{user_id}:{slot_id}"


def job_key(job_id: str) -> str:
    return Job.key_for(job_id)


def execution_key(started_member: str) -> str:
    """The execution behind a started-registry member (`job_id:execution_id`)."""
    return Execution.from_composite_key(started_member, connection=None).key  # type: ignore[arg-type]


def worker_key(name: str) -> str:
    return Worker.redis_worker_namespace_prefix + name
