"""Job functions for the queue and worker tests, and a Redis command meter.

They are importable by subprocess workers too (`tests.jobs.<name>`). In-process tests steer a
job through `PLANS[user_id]`; subprocess jobs through marker files in `$FAVDESK_TEST_MARKERS`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from rq import get_current_job

from favdesk import retries, sync_status
from favdesk.errors import FetchCancelled, NoAccount, RateLimited
from favdesk.job_context import current_job_context

#: How often a waiting job looks at its gate and its cancel flag ("between pages").
PAGE_POLL = 0.01


@dataclass
class Plan:
    """How `paged` behaves for one user: it waits for `gate` before page `hold_at`."""

    pages: int = 3
    hold_at: int | None = 0
    gate: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    runs: int = 0


PLANS: dict[str, Plan] = {}
SERVICES: dict[str, object] = {}


def quick(user_id: str) -> dict[str, Any]:
    """A job that fetches one page at once."""
    context = current_job_context()
    context.report(1, 1, "done")
    context.log(f"[spotify-ingest] tracks: 1 ({user_id})")
    SERVICES[user_id] = context.services
    return {"tracks": 1}


def paged(user_id: str) -> dict[str, Any]:
    """Fetch `pages` pages; before page `hold_at` wait for the gate; honour cancel between pages."""
    plan = PLANS[user_id]
    plan.runs += 1
    context = current_job_context()
    for page in range(plan.pages):
        if page == plan.hold_at:
            _hold(plan, context.cancel)
        if context.cancel.is_set():
            raise FetchCancelled(f"stopped after {page} pages")
        context.report(page + 1, plan.pages, "fetching")
    return {"tracks": plan.pages}


def _hold(plan: Plan, cancel: threading.Event) -> None:
    plan.holding.set()
    while not plan.gate.wait(PAGE_POLL) and not cancel.is_set():
        pass


def probe(user_id: str) -> dict[str, Any]:
    """Return what the job sees of its context (for a worker that is not favdesk's)."""
    context = current_job_context()
    context.report(1, 2, "probing")
    context.log(f"probe {user_id}")
    return {
        "job_id": context.job_id,
        "user_id": context.user_id,
        "cancel": context.cancel.is_set(),
        "services": context.services,
    }


#: `limited_once` asks to be retried this many seconds later.
RETRY_DELAY = 1.0
STARTS: dict[str, list[float]] = {}


def limited_once(user_id: str) -> dict[str, Any]:
    """First run: a long 429 (retry in RETRY_DELAY s), like the ingest job; second run: done."""
    STARTS.setdefault(user_id, []).append(time.time())
    if len(STARTS[user_id]) > 1:
        return {"tracks": 1}
    resume_at = datetime.now(UTC) + timedelta(seconds=RETRY_DELAY)
    conn = get_current_job().connection
    retries.schedule_retry(conn, user_id, resume_at)
    sync_status.set_sync_status(
        conn, user_id, f"error:ratelimited:{sync_status.format_time(resume_at)}"
    )
    raise RateLimited("Spotify asked to wait", resume_at)


def no_account(user_id: str) -> None:
    raise NoAccount(f"No Spotify account is linked for user {user_id}: link Spotify first")


def _marker(name: str) -> Path:
    return Path(os.environ["FAVDESK_TEST_MARKERS"]) / name


def hang_once(user_id: str) -> dict[str, Any]:
    """First run: say so and block (the test kills the worker); later runs finish."""
    started = _marker(f"{user_id}.started")
    if not started.exists():
        started.touch()
        threading.Event().wait(600)
    return {"tracks": 7}


def until_released(user_id: str) -> dict[str, Any]:
    """Wait for a release file page by page; a cancel between pages stops it."""
    _marker(f"{user_id}.started").touch()
    cancel = current_job_context().cancel
    while not _marker(f"{user_id}.release").exists():
        if cancel.wait(PAGE_POLL):
            raise FetchCancelled("stopped between pages")
    return {"tracks": 3}


class CommandMeter:
    """Counts the commands a Redis server executed, from `INFO commandstats` deltas."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self.base = self._calls()

    def _calls(self) -> Counter[str]:
        stats = self.conn.info("commandstats")
        return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()})

    def delta(self) -> Counter[str]:
        """Commands since the last reset, without the meter's own INFO."""
        now = self._calls()
        counts = now - self.base
        counts["info"] -= 1
        return +counts

    def reset(self) -> None:
        self.base = self._calls()

    def total(self) -> int:
        return sum(self.delta().values())
