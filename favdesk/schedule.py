"""When automatic backups are due: the schedule from the settings, its slots, and what the
timer (`scheduler.py`) reports about them.

A slot is one due backup: daily at a time, or weekly on a day at a time, in local time. Its id
names the schedule and the local date it starts on (`daily-2026-12-06`, `weekly-2026-12-07`),
so every app and worker with the same schedule agrees on it; the per-slot marker in Redis
(`scheduler.py`) is keyed by it. As with anacron only the newest slot counts: a computer that
was off for three days runs one backup, not three. A slot that started before the account was
linked is not owed (linking runs the first import). Qt-free and Redis-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_TIME = time(12, 0)


class Frequency(StrEnum):
    """`FAVDESK_BACKUP_SCHEDULE`'s values."""

    OFF = "off"
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Slot:
    """One due backup: which schedule, the local date it starts on, and when (aware)."""

    frequency: Frequency
    day: date
    starts: datetime

    @property
    def id(self) -> str:
        return f"{self.frequency.value}-{self.day.isoformat()}"


@dataclass(frozen=True)
class BackupSchedule:
    """Off, daily at `at`, or weekly on `weekday` (0: Monday) at `at`; local time."""

    frequency: Frequency = Frequency.DAILY
    at: time = DEFAULT_TIME
    weekday: int = 0

    @property
    def enabled(self) -> bool:
        return self.frequency is not Frequency.OFF

    @property
    def period(self) -> timedelta:
        return timedelta(days=7 if self.frequency is Frequency.WEEKLY else 1)

    def describe(self) -> str:
        """`daily at 12:00`, `weekly on Monday at 12:00`, `off`."""
        clock = self.at.strftime("%H:%M")
        if self.frequency is Frequency.DAILY:
            return f"daily at {clock}"
        if self.frequency is Frequency.WEEKLY:
            return f"weekly on {WEEKDAY_NAMES[self.weekday]} at {clock}"
        return "off"

    def slot_at(self, moment: datetime, tz: tzinfo | None = None) -> Slot | None:
        """The newest slot that has started by `moment` (None when off); `tz` None: the
        computer's local time zone."""
        if not self.enabled:
            return None
        day = moment.astimezone(tz).date()
        if self.frequency is Frequency.WEEKLY:
            day -= timedelta(days=(day.weekday() - self.weekday) % 7)
        slot = self._slot(day, tz)
        if slot.starts > moment:
            slot = self._slot(day - self.period, tz)
        return slot

    def slot_after(self, moment: datetime, tz: tzinfo | None = None) -> Slot | None:
        """The first slot that starts after `moment`."""
        current = self.slot_at(moment, tz)
        if current is None:
            return None
        return self._slot(current.day + self.period, tz)

    def _slot(self, day: date, tz: tzinfo | None) -> Slot:
        naive = datetime.combine(day, self.at)
        starts = naive.astimezone() if tz is None else naive.replace(tzinfo=tz)
        return Slot(self.frequency, day, starts)


def due_slot(
    schedule: BackupSchedule,
    now: datetime,
    last_run: datetime | None,
    linked_at: datetime,
    tz: tzinfo | None = None,
) -> Slot | None:
    """The slot to run now for an account: the newest one, unless it ran already (`last_run`:
    the start of the last slot run) or started before the account was linked."""
    slot = schedule.slot_at(now, tz)
    if slot is None or slot.starts < linked_at:
        return None
    if last_run is not None and slot.starts <= last_run:
        return None
    return slot


def next_run(
    schedule: BackupSchedule,
    now: datetime,
    last_run: datetime | None,
    linked_at: datetime,
    tz: tzinfo | None = None,
) -> datetime | None:
    """When the account's next backup is due: `now` if a slot is owed, else the next slot."""
    if due_slot(schedule, now, last_run, linked_at, tz) is not None:
        return now
    following = schedule.slot_after(now, tz)
    return following.starts if following is not None else None


class SlotResult(StrEnum):
    QUEUED = "queued"  # this process queued the import
    ALREADY = "already"  # an import of the user was queued or running: it serves the slot
    TAKEN = "taken"  # another app or worker claimed the slot


@dataclass(frozen=True)
class SlotOutcome:
    user_id: str
    slot: Slot
    result: SlotResult
    job_id: str | None = None


@dataclass(frozen=True)
class SchedulePlan:
    """What the tray and the dashboard say about automatic backups."""

    schedule: BackupSchedule
    #: When the next import is queued (now, if one is owed); None: off or no account.
    next_run: datetime | None = None
    #: The worker is paused or stopped: an owed slot waits for it to resume.
    held: bool = False


class ScheduleListener:
    """Callbacks from the timer's thread; they must not block. Override what you need."""

    def on_plan(self, plan: SchedulePlan) -> None:
        pass

    def on_slot(self, outcome: SlotOutcome) -> None:
        pass

    def on_slot_failed(self, user_id: str, slot: Slot, message: str) -> None:
        pass
