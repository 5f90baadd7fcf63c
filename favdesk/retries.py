"""Delayed retries without RQ's scheduler: a sorted set favdesk's worker reads when it wakes.

RQ's scheduler polls (about 540 commands a minute); a worker instead sets a local timer for
`next_retry_at` and enqueues what is due (`queue.enqueue_due_retries`).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import cast

import redis

from favdesk.keys import RETRY_KEY
from favdesk.redisconn import redis_call


@redis_call
def schedule_retry(conn: redis.Redis, user_id: str, resume_at: datetime) -> None:
    """Ask for a user's import to run again at `resume_at` (e.g. after a long 429)."""
    conn.zadd(RETRY_KEY, {user_id: resume_at.timestamp()})


@redis_call
def cancel_retry(conn: redis.Redis, user_id: str) -> None:
    conn.zrem(RETRY_KEY, user_id)


@redis_call
def claim(conn: redis.Redis, user_id: str) -> bool:
    """Take a due retry: True for exactly one of the callers that race for it."""
    return bool(conn.zrem(RETRY_KEY, user_id))


@redis_call
def due_retries(conn: redis.Redis, now: float | None = None) -> list[str]:
    """Users whose retry time has come."""
    moment = time.time() if now is None else now
    members = cast(list[bytes], conn.zrangebyscore(RETRY_KEY, "-inf", moment))
    return [m.decode() for m in members]


@redis_call
def next_retry_at(conn: redis.Redis) -> float | None:
    """Epoch seconds of the earliest pending retry, so a worker can set a local timer for it."""
    first = conn.zrange(RETRY_KEY, 0, 0, withscores=True)
    return float(first[0][1]) if first else None
