"""Automatic backups: a local timer that queues each linked account's import when its slot comes.

Waiting costs Redis nothing: the timer is a thread asleep on an event until the next slot. It
sleeps at most `MAX_SLEEP` at a time, because the monotonic clock timers use stops while the
computer sleeps; each wake-up looks only at the wall clock. When a slot is due it sends one
`SET fav:slot:{userId}:{slot} 1 NX EX` (of all the apps and workers on one Redis, one sets it)
and, if it did, queues the import (one job per user: a queued or running import answers for
it). A slot missed while the computer was off or asleep runs once, `STARTUP_DELAY` after the
next start: the last slot run is kept in `{data dir}/schedule.json` (`SlotLog`).

Held (the app's worker is paused or stopped): nothing is sent; a slot that comes meanwhile is
owed and queued once on release, like a missed one. Redis down at a slot: retried with backoff
(a failed connection is not a billed command).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from favdesk import queue
from favdesk.errors import FavdeskError
from favdesk.keys import slot_key
from favdesk.redisconn import redis_call
from favdesk.schedule import (
    BackupSchedule,
    ScheduleListener,
    SchedulePlan,
    Slot,
    SlotOutcome,
    SlotResult,
    due_slot,
    next_run,
)
from favdesk.storage.local import write_atomic

if TYPE_CHECKING:
    from favdesk.accounts import Account

log = logging.getLogger(__name__)

#: A missed slot runs this long after the start (the app and Redis settle first).
STARTUP_DELAY = 30.0
#: The longest sleep between looks at the wall clock (local only: no Redis command).
MAX_SLEEP = 900.0
#: Retries of a slot that failed (Redis down): this long first, doubling up to `MAX_SLEEP`.
RETRY_FIRST = 60.0
#: A slot's marker outlives the slot by this much (clocks of different computers differ).
MARKER_MARGIN = timedelta(hours=1)


class SlotLog:
    """`{data dir}/schedule.json`: per user, the start of the last slot run from this data dir
    (queued here, or claimed by another app or worker)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def last_run(self, user_id: str) -> datetime | None:
        entry = self._read().get(user_id)
        try:
            return datetime.fromisoformat(entry["starts"]) if isinstance(entry, dict) else None
        except (KeyError, TypeError, ValueError):
            return None

    def record(self, outcome: SlotOutcome) -> None:
        with self._lock:
            entries = self._read()
            entries[outcome.user_id] = {
                "slot": outcome.slot.id,
                "starts": outcome.slot.starts.isoformat(),
                "result": outcome.result.value,
                "at": datetime.now(UTC).isoformat(),
            }
            write_atomic(self.path, json.dumps(entries, indent=1, sort_keys=True).encode())

    def _read(self) -> dict:
        try:
            raw = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}


@redis_call
def queue_slot(conn: redis.Redis, user_id: str, slot: Slot, period: timedelta) -> SlotOutcome:
    """Claim the user's slot (one `SET NX EX`) and, if claimed, queue the import."""
    key = slot_key(user_id, slot.id)
    seconds = int((period + MARKER_MARGIN).total_seconds())
    if not conn.set(key, b"1", nx=True, ex=seconds):
        return SlotOutcome(user_id, slot, SlotResult.TAKEN)
    try:
        result = queue.enqueue_import(conn, user_id)
    except BaseException:
        _release(conn, key)  # nothing was queued: let the next try (or another app) claim it
        raise
    state = SlotResult.QUEUED if result.created else SlotResult.ALREADY
    return SlotOutcome(user_id, slot, state, result.job_id)


def _release(conn: redis.Redis, key: str) -> None:
    try:
        conn.delete(key)
    except redis.RedisError:
        log.warning("schedule: could not release %s; that slot is skipped", key)


#: `run_slot(user_id, slot) -> SlotOutcome`: claim and queue (`Runtime.queue_slot`).
RunSlot = Callable[[str, Slot], SlotOutcome]


class BackupScheduler:
    """The timer thread; every method returns at once and may be called from any thread."""

    def __init__(
        self,
        schedule: BackupSchedule,
        *,
        accounts: Callable[[], Iterable[Account]],
        log: SlotLog,
        run_slot: RunSlot,
        listener: ScheduleListener | None = None,
        startup_delay: float = STARTUP_DELAY,
        max_sleep: float = MAX_SLEEP,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.schedule = schedule
        self.accounts = accounts
        self.log = log
        self.run_slot = run_slot
        #: Set before `start()`; its callbacks run on the timer's thread.
        self.listener = listener or ScheduleListener()
        self.startup_delay = startup_delay
        self.max_sleep = max_sleep
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._held = False
        self._failures = 0
        self._plan = SchedulePlan(schedule)
        #: Nothing is queued before this (the start plus `startup_delay`).
        self._not_before = datetime.min.replace(tzinfo=UTC)

    @property
    def plan(self) -> SchedulePlan:
        return self._plan

    def start(self) -> None:
        """Start the timer (a no-op when the schedule is off or it runs already)."""
        with self._lock:
            if self._thread is not None or not self.schedule.enabled:
                self._publish(SchedulePlan(self.schedule, held=self._held))
                return
            self._stopped = False
            self._thread = threading.Thread(target=self._main, name="favdesk-schedule", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def hold(self, held: bool) -> None:
        """Held: queue nothing (the worker is paused or stopped); released: run what is owed."""
        with self._lock:
            if held == self._held:
                return
            self._held = held
        self._wake.set()

    def wake(self) -> None:
        """Look again now (an account was linked or removed)."""
        self._wake.set()

    # the thread

    def _main(self) -> None:
        """Say when the first run is, let the app settle, then run slots as they come."""
        now = self.clock()
        self._not_before = now + timedelta(seconds=self.startup_delay)
        self._publish(self._planned(self._linked(), now))
        deadline = time.monotonic() + self.startup_delay
        while not self._stopped and (left := deadline - time.monotonic()) > 0:
            self._sleep(left)
        while not self._stopped:
            try:
                wait = self._step()
            except Exception:
                log.exception("schedule: unexpected failure; looking again later")
                wait = self.max_sleep
            self._sleep(wait)

    def _sleep(self, seconds: float) -> None:
        if self._stopped:
            return
        self._wake.wait(max(0.0, seconds))
        self._wake.clear()

    def _linked(self) -> list[Account]:
        try:
            return list(self.accounts())
        except Exception:  # noqa: BLE001 - a locked or damaged database: try again later
            log.exception("schedule: could not read the linked accounts")
            return []

    def _step(self) -> float:
        """Queue what is owed (unless held) and say when to look again, in seconds."""
        now = self.clock()
        accounts = self._linked()
        if not self._held and not self._run_owed(accounts, now):
            self._failures += 1
            retry = min(RETRY_FIRST * 2 ** (self._failures - 1), self.max_sleep)
            self._publish(self._planned(accounts, now))
            return retry
        self._failures = 0
        plan = self._planned(accounts, now)
        self._publish(plan)
        if plan.next_run is None or plan.held:
            return self.max_sleep
        wait = (plan.next_run - now).total_seconds()
        return min(max(wait, 0.0), self.max_sleep)

    def _run_owed(self, accounts: list[Account], now: datetime) -> bool:
        """Queue each account's owed slot; False if any failed (it stays owed)."""
        ok = True
        for account in accounts:
            slot = self._owed(account, now)
            if slot is None:
                continue
            try:
                outcome = self.run_slot(account.user_id, slot)
            except (FavdeskError, redis.RedisError) as error:
                ok = False
                log.warning("schedule: the backup of %s is not queued: %s", account.user_id, error)
                self._tell("on_slot_failed", account.user_id, slot, str(error))
                continue
            self._tell("on_slot", outcome)
            try:
                self.log.record(outcome)
            except OSError as error:  # it would stay owed: back off instead of claiming again
                ok = False
                log.warning("schedule: could not note the slot run in %s: %s", self.log.path, error)
        return ok

    def _owed(self, account: Account, now: datetime) -> Slot | None:
        linked = datetime.fromtimestamp(account.linked_at, UTC)
        return due_slot(self.schedule, now, self.log.last_run(account.user_id), linked)

    def _planned(self, accounts: list[Account], now: datetime) -> SchedulePlan:
        times = [
            next_run(
                self.schedule,
                now,
                self.log.last_run(a.user_id),
                datetime.fromtimestamp(a.linked_at, UTC),
            )
            for a in accounts
        ]
        soonest = min((t for t in times if t is not None), default=None)
        if soonest is not None and soonest < self._not_before:
            soonest = self._not_before
        return SchedulePlan(self.schedule, soonest, self._held)

    def _publish(self, plan: SchedulePlan) -> None:
        if plan == self._plan:
            return
        self._plan = plan
        self._tell("on_plan", plan)

    def _tell(self, name: str, *args: object) -> None:
        try:
            getattr(self.listener, name)(*args)
        except Exception:
            log.exception("schedule listener %s failed", name)
