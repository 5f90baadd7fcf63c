"""The Backup history tab, the next automatic backup (Account card, tray) and the settings that
choose them: rendered from plain data, clicks turned into controller calls."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog, QMessageBox

from favdesk.diff import SnapshotDiff
from favdesk.gui.describe import next_backup
from favdesk.gui.panels.history import MAX_CHANGE_ROWS
from favdesk.gui.settings_dialog import SettingsDialog
from favdesk.gui.tray import Tray
from favdesk.history import History, Snapshot
from favdesk.retention import RetentionPlan
from favdesk.schedule import BackupSchedule, Frequency, SchedulePlan
from favdesk.settings import load_settings
from favdesk.snapshot import Track, TrackKind
from favdesk.storage import StoredFile, raw_key
from tests.gui.test_window_states import READY

USER = "demo-listener"
DAYS = (date(2026, 11, 3), date(2026, 11, 2), date(2026, 11, 1))


def snapshot(day: date, count: int, added=None, removed=None, previous=None) -> Snapshot:
    return Snapshot(
        day, raw_key(USER, day), count * 2000, count, f"digest-{count}",
        previous=previous, added=added, removed=removed,
    )  # fmt: skip


HISTORY = History(
    USER,
    (
        snapshot(DAYS[0], 1243, 0, 0, DAYS[1]),
        snapshot(DAYS[1], 1243, 12, 3, DAYS[2]),
        snapshot(DAYS[2], 1234),
    ),
)
SHOWN = replace(READY, history=HISTORY)


def track(n: int, kind=TrackKind.TRACK) -> Track:
    uri = f"spotify:track:{n}"
    return Track(uri, kind, f"Song {n}", ("A", "B"), "Album", "2026-11-02T10:00:00Z", 180000, uri)


def changes(added: int, removed: int) -> SnapshotDiff:
    return SnapshotDiff(
        USER, HISTORY.snapshots[1], HISTORY.snapshots[0],
        tuple(track(n) for n in range(added)),
        tuple(track(n, TrackKind.UNAVAILABLE) for n in range(removed)),
    )  # fmt: skip


def cells(table) -> list[list[str]]:
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


@pytest.fixture
def tab(window):
    window.tabs.setCurrentWidget(window.history)
    window.show_state(SHOWN)
    return window.history


def test_each_snapshot_shows_its_songs_size_and_change_and_the_chart_its_count(tab, screenshot):
    assert cells(tab.table) == [
        ["2026-11-03", "1,243", "2.5 MB", "+0, -0"],
        ["2026-11-02", "1,243", "2.5 MB", "+12, -3"],
        ["2026-11-01", "1,234", "2.5 MB", "first"],
    ]
    assert tab.where.text().startswith("3 snapshots in local folder")
    assert tab.chart.points == ((DAYS[2], 1234), (DAYS[1], 1243), (DAYS[0], 1243))
    assert "from 2026-11-01 (1,234 songs) to 2026-11-03 (1,243 songs)" in (
        tab.chart.accessibleDescription()
    )
    screenshot(tab.window(), "history-tab")


def test_what_changed_compares_the_selection(qtbot, tab, monkeypatch):
    asked: list[str] = []
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *args: (asked.append(args[2]), ("", ""))[1]
    )
    with qtbot.waitSignal(tab.compare_clicked) as nothing_selected:
        tab.compare.click()
    assert nothing_selected.args == [DAYS[1], DAYS[0]]
    tab.table.selectRow(1)
    assert tab.export.isEnabled()
    with qtbot.waitSignal(tab.compare_clicked) as one:
        tab.compare.click()
    assert one.args == [DAYS[2], DAYS[1]]
    tab.table.selectRow(0)
    tab.table.selectionModel().select(
        tab.table.model().index(2, 0),
        tab.table.selectionModel().SelectionFlag.Select
        | tab.table.selectionModel().SelectionFlag.Rows,
    )
    assert not tab.export.isEnabled()
    with qtbot.waitSignal(tab.compare_clicked) as two:
        tab.compare.click()
    assert two.args == [DAYS[2], DAYS[0]]
    tab.table.clearSelection()
    tab.table.selectRow(2)
    assert not tab.compare.isEnabled()  # the first snapshot has none before it
    with qtbot.waitSignal(tab.export_clicked) as export:
        tab.export.click()
    assert export.args == [DAYS[2]] and asked == ["liked-songs-2026-11-01.csv"]


def test_the_songs_that_changed_are_listed_and_many_are_capped(window, tab):
    window.show_state(replace(SHOWN, diff=changes(2, 1)))
    assert tab.changes_title.text() == "2026-11-02 -> 2026-11-03: +2 songs, -1 song"
    assert cells(tab.changes) == [
        ["+", "Song 0", "A, B", "Album", "2026-11-02"],
        ["+", "Song 1", "A, B", "Album", "2026-11-02"],
        ["-", "(a song Spotify no longer serves)", "A, B", "Album", "2026-11-02"],
    ]
    window.show_state(replace(SHOWN, diff=changes(MAX_CHANGE_ROWS + 5, 0)))
    assert tab.changes.rowCount() == MAX_CHANGE_ROWS
    assert "`favdesk diff 2026-11-02 2026-11-03` lists them all" in tab.changes_title.text()


def test_retention_is_offered_only_when_set(window, tab):
    assert not tab.prune.isEnabled() and "Keep snapshots in Settings" in tab.prune.toolTip()
    window.show_state(replace(SHOWN, keep_daily=30))
    assert tab.prune.isEnabled()


def test_reading_and_failing_say_so(window, tab):
    window.show_state(replace(SHOWN, history_reading=(2, 5, DAYS[1])))
    assert tab.where.text() == "Reading the snapshot of 2026-11-02 (2 of 5) to count its songs..."
    window.show_state(replace(SHOWN, history=None, history_error="Storage is down"))
    assert "Could not list the snapshots" in tab.where.text()
    assert tab.chart.points == () and tab.table.rowCount() == 0


def test_the_chart_paints_one_point_none_and_many(qtbot, window, tab):
    for history in (History(USER, HISTORY.snapshots[:1]), History(USER, ()), HISTORY):
        window.show_state(replace(SHOWN, history=history))
        assert not tab.chart.grab().isNull()


def test_the_retention_question_lists_the_snapshots_and_deletes_only_on_yes(
    qtbot, window, monkeypatch
):
    files = tuple(
        StoredFile(raw_key(USER, DAYS[2] - timedelta(days=n)), "x.json", 1_000_000,
                   datetime(2026, 1, 1, tzinfo=UTC))
        for n in range(25)
    )  # fmt: skip
    files = tuple(replace(f, name=f.key.rsplit("/", 1)[1]) for f in files)
    plan = RetentionPlan(USER, 7, (), files, ())
    pruned: list[RetentionPlan] = []
    monkeypatch.setattr(window.controller, "prune", pruned.append)
    for answer, expected in (("&Keep them", []), ("&Delete 25 snapshots", [plan])):
        window.ask_prune(plan)
        box = window.findChild(QMessageBox, "delete-old-snapshots")
        assert "2026-11-01  (1.0 MB)" in box.text() and "... and 5 more" in box.text()
        assert "25.0 MB in all" in box.text()
        button = next(b for b in box.buttons() if b.text() == answer)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.findChild(QMessageBox, "delete-old-snapshots") is None)
        assert pruned == expected


PLAN = SchedulePlan(BackupSchedule(Frequency.DAILY, time(12, 0)), None)


def test_the_next_automatic_backup_in_words():
    now = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    soon = now + timedelta(hours=2)
    on = replace(READY, schedule=replace(PLAN, next_run=soon))
    assert next_backup(on, now).startswith("Automatic backups daily at 12:00: next ")
    assert next_backup(replace(on, schedule=replace(PLAN, next_run=now)), now).endswith("next now")
    held = replace(on, schedule=replace(PLAN, next_run=now, held=True))
    assert next_backup(held, now).endswith("one is due and runs when you resume the worker")
    off = replace(READY, schedule=SchedulePlan(BackupSchedule(Frequency.OFF)))
    assert next_backup(off, now) == "Automatic backups are off (Settings)"
    assert next_backup(replace(READY, schedule=PLAN), now).endswith("once an account is linked")
    assert next_backup(READY, now) == ""


def test_the_account_card_and_the_tray_show_the_next_run(qtbot, window):
    state = replace(READY, schedule=replace(PLAN, next_run=datetime.now(UTC) + timedelta(hours=3)))
    window.show_state(state)
    assert window.account.backups.isVisible()
    assert window.account.backups.text().startswith("Automatic backups daily at 12:00: next ")
    tray = Tray()
    tray.show_state(state)
    assert "\nAutomatic backups daily at 12:00: next " in tray.icon.toolTip()
    tray.close()


def test_the_settings_dialog_sets_the_schedule_and_retention(qtbot, settings):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.frequency.currentText() == "Daily" and not dialog.weekday.isEnabled()
    assert dialog.keep_daily.text() == "all: delete nothing"
    dialog.frequency.setCurrentIndex(dialog.frequency.findData("weekly"))
    assert dialog.weekday.isEnabled()
    dialog.weekday.setCurrentIndex(4)
    dialog.backup_time.setTime(dialog.backup_time.time().fromString("07:30", "HH:mm"))
    dialog.keep_daily.setValue(30)
    with qtbot.waitSignal(dialog.saved):
        qtbot.mouseClick(
            dialog.buttons.button(QDialogButtonBox.StandardButton.Save), Qt.MouseButton.LeftButton
        )
    text = (settings.config_dir / ".env").read_text()
    assert 'FAVDESK_BACKUP_SCHEDULE="weekly"' in text and 'FAVDESK_KEEP_DAILY="30"' in text
    loaded = load_settings()
    assert loaded.backup_schedule == BackupSchedule(Frequency.WEEKLY, time(7, 30), 4)
    assert loaded.keep_daily == 30


def test_default_schedule_settings_are_not_written(qtbot, settings):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.saved):
        qtbot.mouseClick(
            dialog.buttons.button(QDialogButtonBox.StandardButton.Save), Qt.MouseButton.LeftButton
        )
    assert "FAVDESK_BACKUP" not in (settings.config_dir / ".env").read_text()
    assert "FAVDESK_KEEP" not in (settings.config_dir / ".env").read_text()
