"""When automatic backups are due: slots, missed runs, and the settings that choose them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from favdesk.errors import SettingsError
from favdesk.schedule import BackupSchedule, Frequency, due_slot, next_run
from favdesk.settings import settings_from_values

TZ = timezone(timedelta(hours=1))
DAILY = BackupSchedule(Frequency.DAILY, time(12, 0))
WEEKLY = BackupSchedule(Frequency.WEEKLY, time(9, 30), weekday=0)  # Mondays


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_the_newest_daily_slot_is_todays_once_its_time_has_come():
    before, after = (
        DAILY.slot_at(at("2026-12-06 11:59"), TZ),
        DAILY.slot_at(at("2026-12-06 12:00"), TZ),
    )
    assert (before.id, before.starts) == ("daily-2026-12-05", at("2026-12-05 12:00"))
    assert (after.id, after.starts) == ("daily-2026-12-06", at("2026-12-06 12:00"))
    assert DAILY.slot_after(at("2026-12-06 12:00"), TZ).starts == at("2026-12-07 12:00")


def test_the_newest_weekly_slot_is_the_last_monday_at_its_time():
    sunday = WEEKLY.slot_at(at("2026-12-13 23:00"), TZ)  # 2026-12-07 is a Monday
    assert (sunday.id, sunday.starts) == ("weekly-2026-12-07", at("2026-12-07 09:30"))
    monday_early = WEEKLY.slot_at(at("2026-12-14 09:00"), TZ)
    assert monday_early.id == "weekly-2026-12-07"
    assert WEEKLY.slot_after(at("2026-12-14 09:00"), TZ).starts == at("2026-12-14 09:30")


def test_slots_follow_local_time_across_a_daylight_saving_change():
    zoneinfo = pytest.importorskip("zoneinfo")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    before = DAILY.slot_at(datetime(2026, 3, 28, 12, 0, tzinfo=berlin), berlin)
    after = DAILY.slot_at(datetime(2026, 3, 29, 12, 0, tzinfo=berlin), berlin)
    assert before.starts.astimezone(UTC).hour == 11 and after.starts.astimezone(UTC).hour == 10


def test_off_has_no_slots():
    off = BackupSchedule(Frequency.OFF)
    assert off.slot_at(at("2026-12-06 12:00")) is None
    assert next_run(off, at("2026-12-06 12:00"), None, at("2026-01-01 00:00")) is None


def test_a_computer_off_for_three_days_owes_one_backup_the_newest_slot():
    now, linked = at("2026-12-06 08:00"), at("2026-11-01 10:00")
    last = at("2026-12-02 12:00")
    slot = due_slot(DAILY, now, last, linked, TZ)
    assert slot.id == "daily-2026-12-05"
    assert due_slot(DAILY, now, slot.starts, linked, TZ) is None  # once it ran, nothing is owed
    assert next_run(DAILY, now, slot.starts, linked, TZ) == at("2026-12-06 12:00")
    assert next_run(DAILY, now, last, linked, TZ) == now


def test_a_slot_before_the_account_was_linked_is_not_owed():
    now = at("2026-12-06 13:00")
    assert due_slot(DAILY, now, None, at("2026-12-06 12:30"), TZ) is None
    assert due_slot(DAILY, now, None, at("2026-12-06 11:00"), TZ).id == "daily-2026-12-06"
    assert next_run(DAILY, now, None, at("2026-12-06 12:30"), TZ) == at("2026-12-07 12:00")


def test_the_settings_choose_the_schedule_and_retention(tmp_path):
    base = {"FAVDESK_DATA_DIR": str(tmp_path)}
    default = settings_from_values(base)
    assert default.backup_schedule == BackupSchedule(Frequency.DAILY, time(12, 0), 0)
    assert default.keep_daily is None
    chosen = settings_from_values(
        base
        | {
            "FAVDESK_BACKUP_SCHEDULE": "Weekly",
            "FAVDESK_BACKUP_TIME": "7:05",
            "FAVDESK_BACKUP_DAY": "friday",
            "FAVDESK_KEEP_DAILY": "30",
        }
    )
    assert chosen.backup_schedule == BackupSchedule(Frequency.WEEKLY, time(7, 5), 4)
    assert chosen.backup_schedule.describe() == "weekly on Friday at 07:05"
    assert chosen.keep_daily == 30


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("FAVDESK_BACKUP_SCHEDULE", "hourly", "use off, daily or weekly"),
        ("FAVDESK_BACKUP_TIME", "25:00", "use HH:MM"),
        ("FAVDESK_BACKUP_TIME", "noon", "use HH:MM"),
        ("FAVDESK_BACKUP_DAY", "someday", "a day of the week"),
        ("FAVDESK_KEEP_DAILY", "0", "between 1 and"),
        ("FAVDESK_KEEP_DAILY", "lots", "neither `all` nor a number"),
    ],
)
def test_a_bad_schedule_setting_names_the_variable_and_the_fix(tmp_path, name, value, message):
    with pytest.raises(SettingsError, match=message) as caught:
        settings_from_values({"FAVDESK_DATA_DIR": str(tmp_path), name: value})
    assert caught.value.variable == name
