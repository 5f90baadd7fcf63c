"""Automatic backups on a real Redis: missed slots, several apps, holding, what waiting costs."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from favdesk import queue, scheduler
from favdesk.accounts import Account
from favdesk.errors import RedisUnavailable
from favdesk.keys import slot_key
from favdesk.schedule import (
    BackupSchedule,
    Frequency,
    ScheduleListener,
    SchedulePlan,
    Slot,
    SlotOutcome,
    SlotResult,
)
from favdesk.scheduler import BackupScheduler, SlotLog, queue_slot
from tests.jobs import CommandMeter

USER = "zoe"
DAILY = BackupSchedule(Frequency.DAILY)
PERIOD = DAILY.period


def account(linked_days_ago: float = 10) -> Account:
    linked = time.time() - linked_days_ago * 86400
    return Account(USER, USER, "Zoë", "user-library-read", linked + 3600, linked, linked)


class Events(ScheduleListener):
    """What a scheduler reported; lets a test wait for it without sleeping."""

    def __init__(self) -> None:
        self.plans: list[SchedulePlan] = []
        self.slots: list[SlotOutcome] = []
        self.failures: list[str] = []
        self.changed = threading.Condition()

    def _add(self, events: list, event: object) -> None:
        with self.changed:
            events.append(event)
            self.changed.notify_all()

    def on_plan(self, plan):
        self._add(self.plans, plan)

    def on_slot(self, outcome):
        self._add(self.slots, outcome)

    def on_slot_failed(self, user_id, slot, message):
        self._add(self.failures, message)

    def wait_for(self, check, timeout: float = 10.0) -> None:
        with self.changed:
            assert self.changed.wait_for(check, timeout), (self.plans, self.slots, self.failures)


@pytest.fixture
def conn(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def made(tmp_path):
    """Build schedulers over the test's Redis; all are stopped at the end."""
    running: list[BackupScheduler] = []

    def make(conn, log_dir="app", accounts=None, **options) -> tuple[BackupScheduler, Events]:
        events = Events()
        timer = BackupScheduler(
            options.pop("schedule", DAILY),
            accounts=accounts or (lambda: [account()]),
            log=SlotLog(tmp_path / log_dir / "schedule.json"),
            run_slot=options.pop("run_slot", None)
            or (lambda user, slot: queue_slot(conn, user, slot, PERIOD)),
            listener=events,
            startup_delay=options.pop("startup_delay", 0.0),
            **options,
        )
        running.append(timer)
        return timer, events

    yield make
    for timer in running:
        timer.stop()


def ran_days_ago(log: SlotLog, days: int) -> None:
    slot = DAILY.slot_at(datetime.now(UTC) - timedelta(days=days))
    log.record(SlotOutcome(USER, slot, SlotResult.QUEUED))


def queued_jobs(conn) -> list[str]:
    return queue.ingest_queue(conn).job_ids


def test_a_missed_slot_runs_once_after_a_restart(conn, made):
    first, events = made(conn)
    ran_days_ago(first.log, 3)  # the computer was off for three days
    first.start()
    events.wait_for(lambda: events.slots)
    (outcome,) = events.slots
    assert outcome.result is SlotResult.QUEUED and outcome.slot == DAILY.slot_at(datetime.now(UTC))
    assert queued_jobs(conn) == [queue.import_job_id(USER)]
    first.stop()

    queue.delete_job(conn, outcome.job_id)  # the import ran meanwhile
    conn.delete(slot_key(USER, outcome.slot.id))  # so that only the local record can stop it
    again, events = made(conn)
    again.start()
    events.wait_for(
        lambda: any(p.next_run and p.next_run > datetime.now(UTC) for p in events.plans)
    )
    assert events.slots == [] and queued_jobs(conn) == []
    assert again.plan.next_run == DAILY.slot_after(datetime.now(UTC)).starts


def test_two_apps_on_one_redis_queue_once_per_slot(conn, made):
    one, one_events = made(conn, "one")
    two, two_events = made(conn, "two")
    ran_days_ago(one.log, 1)
    ran_days_ago(two.log, 1)
    one.start()
    two.start()
    for events in (one_events, two_events):
        events.wait_for(lambda events=events: events.slots)
    results = sorted(e.slots[0].result.value for e in (one_events, two_events))
    assert results == ["queued", "taken"]
    assert queued_jobs(conn) == [queue.import_job_id(USER)]

    queue.delete_job(conn, queue.import_job_id(USER))  # it ran; a third app starts later
    third, third_events = made(conn, "three")
    ran_days_ago(third.log, 1)
    third.start()
    third_events.wait_for(lambda: third_events.slots)
    assert third_events.slots[0].result is SlotResult.TAKEN and queued_jobs(conn) == []


def test_the_slot_marker_is_one_command_and_expires_after_the_slot(conn):
    slot = DAILY.slot_at(datetime.now(UTC))
    meter = CommandMeter(conn)
    assert queue_slot(conn, USER, slot, PERIOD).result is SlotResult.QUEUED
    assert meter.delta()["set"] == 1
    meter.reset()
    assert queue_slot(conn, USER, slot, PERIOD).result is SlotResult.TAKEN
    assert meter.total() == 1
    ttl = conn.ttl(slot_key(USER, slot.id))
    assert PERIOD.total_seconds() < ttl <= (PERIOD + scheduler.MARKER_MARGIN).total_seconds()


def test_a_failed_queue_releases_the_marker(conn, monkeypatch):
    slot = DAILY.slot_at(datetime.now(UTC))

    def refuse(*args, **kwargs):
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(queue, "enqueue_import", refuse)
    with pytest.raises(RedisUnavailable):
        queue_slot(conn, USER, slot, PERIOD)
    assert not conn.exists(slot_key(USER, slot.id))


def test_a_slot_that_comes_while_it_runs_is_queued_at_its_time(conn, made):
    now = datetime.now(UTC)
    slot = DAILY.slot_after(now)
    shift = slot.starts - now - timedelta(seconds=0.25)  # the slot comes in a quarter second
    timer, events = made(conn, clock=lambda: datetime.now(UTC) + shift)
    timer.log.record(SlotOutcome(USER, DAILY.slot_at(now + shift), SlotResult.QUEUED))
    started = time.monotonic()
    timer.start()
    events.wait_for(lambda: events.slots, timeout=5)
    assert events.slots[0].slot.id == slot.id
    assert 0.15 < time.monotonic() - started < 3


def test_held_it_queues_nothing_and_runs_the_owed_slot_on_release(conn, made):
    timer, events = made(conn)
    ran_days_ago(timer.log, 1)
    timer.hold(True)
    timer.start()
    events.wait_for(lambda: any(p.held for p in events.plans))
    time.sleep(0.2)
    assert events.slots == [] and queued_jobs(conn) == []
    timer.hold(False)
    events.wait_for(lambda: events.slots)
    assert events.slots[0].result is SlotResult.QUEUED


def test_a_slot_redis_refused_is_tried_again_with_backoff(conn, made, monkeypatch):
    monkeypatch.setattr(scheduler, "RETRY_FIRST", 0.05)
    calls: list[Slot] = []

    def flaky(user: str, slot: Slot) -> SlotOutcome:
        calls.append(slot)
        if len(calls) < 3:
            raise RedisUnavailable("Redis at test is unreachable")
        return queue_slot(conn, user, slot, PERIOD)

    timer, events = made(conn, run_slot=flaky)
    ran_days_ago(timer.log, 1)
    timer.start()
    events.wait_for(lambda: events.slots)
    assert len(events.failures) == 2 and len(calls) == 3
    assert events.slots[0].result is SlotResult.QUEUED


def test_off_it_starts_no_timer(conn, made):
    timer, events = made(conn, schedule=BackupSchedule(Frequency.OFF))
    timer.start()
    assert timer._thread is None
    assert timer.plan.next_run is None


def test_waiting_sends_redis_nothing(private_redis, made):
    client = redis.Redis.from_url(private_redis.url)
    waiting, waiting_events = made(client, "waiting")
    ran_days_ago(waiting.log, 0)  # the newest slot ran already: it waits for the next
    held, held_events = made(client, "held")
    ran_days_ago(held.log, 2)  # owed, but held
    held.hold(True)
    meter = CommandMeter(client)
    waiting.start()
    held.start()
    waiting_events.wait_for(lambda: waiting_events.plans)
    held_events.wait_for(lambda: any(p.held for p in held_events.plans))
    time.sleep(0.3)
    waiting.wake()
    time.sleep(0.1)
    assert meter.total() == 0
    client.close()
