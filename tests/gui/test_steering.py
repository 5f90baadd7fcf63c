"""Every worker in view and steered from the window: the queue's pause on the Worker card, the
Workers list under the jobs, cancel a running job, and the command meter on the Redis card."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox
from rq.job import JobStatus

from favdesk.fleet import Fleet, WorkerInfo
from favdesk.gui import describe
from favdesk.meter import CommandUsage, count
from favdesk.queue import QueuePause
from favdesk.worker_events import WorkerState
from tests.gui import samples
from tests.gui.test_window_states import READY

OWN = "favdesk-app-0a1b2c"
FLEET = Fleet(
    workers=(
        WorkerInfo(OWN, "favdesk app", "laptop", 4242, "idle", ("spotify-ingest",)),
        WorkerInfo(
            "favdesk-worker-9f8e7d",
            "favdesk worker",
            "server",
            77,
            "busy",
            ("spotify-ingest",),
            job_id="ingest-zoe",
            user_id="zoe",
            progress=samples.progress(1200, 10_000),
            last_heartbeat=samples.NOW,
        ),
        WorkerInfo("6c1d0e", "stock RQ", "box", 9, "idle", ("spotify-ingest",)),
        WorkerInfo("favdesk-worker-dead01", "favdesk worker"),
    ),
    pause=None,
    taken_at=samples.NOW,
)
PAUSE = QueuePause(samples.NOW - timedelta(minutes=3), "favdesk pause on server")
PAUSED = replace(READY, queue_paused=True, queue_pause=PAUSE, fleet=FLEET, worker_name=OWN)
HOUR = count([{1000 - 60 * m: 10 for m in range(60)} | {1000: 25}], now=1000)
USAGE = CommandUsage.of(count([{1000: 5}], now=1000), HOUR, quota=500_000)


@pytest.fixture
def steered(window, monkeypatch):
    """The window, with the steering calls it makes recorded instead of run."""
    calls: list[tuple] = []
    steering = window.controller.steering
    for name in ("pause_queue", "resume_queue", "cancel_job", "stop_worker", "clean_workers"):
        monkeypatch.setattr(steering, name, lambda *a, name=name: calls.append((name, *a)))
    window.calls = calls
    return window


def answer(qtbot, window, name: str, button_text: str) -> None:
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, name) is not None)
    box = window.findChild(QMessageBox, name)
    qtbot.mouseClick(
        next(b for b in box.buttons() if b.text() == button_text), Qt.MouseButton.LeftButton
    )


def test_the_worker_card_says_the_queue_runs_and_offers_to_pause_it(steered, qtbot):
    steered.show_state(READY)
    card = steered.worker
    assert card.queue_status.words == "Queue: running for every worker"
    assert card.queue.text() == "Pause the queue" and card.queue.isEnabled()
    assert not card.queue_note.isVisible()
    qtbot.mouseClick(card.queue, Qt.MouseButton.LeftButton)  # nothing runs: no question
    assert steered.calls == [("pause_queue",)]


def test_a_paused_queue_says_since_when_and_by_whom_and_whom_it_misses(steered, qtbot, screenshot):
    steered.show_state(PAUSED)
    card = steered.worker
    assert card.queue_status.words.startswith("Queue paused since ")
    assert "by favdesk pause on server: no favdesk worker takes a job" in card.queue_status.words
    assert card.queue_note.isVisible()
    assert card.queue_note.text().startswith("1 stock RQ worker(s) on the queue do not hear")
    assert card.queue.text() == "Resume the queue"
    assert steered.windowTitle().startswith("Queue paused for every worker")
    screenshot(steered, "queue-paused-with-workers")
    qtbot.mouseClick(card.queue, Qt.MouseButton.LeftButton)
    assert steered.calls == [("resume_queue",)]


def test_pausing_the_queue_with_imports_running_asks_what_becomes_of_them(steered, qtbot):
    counts = dict(READY.snapshot.counts, started=1)
    steered.show_state(replace(READY, snapshot=replace(READY.snapshot, counts=counts)))
    qtbot.mouseClick(steered.worker.queue, Qt.MouseButton.LeftButton)
    answer(qtbot, steered, "pause-the-queue", "Cancel them &between pages")
    assert steered.calls == [("pause_queue", True)]


def test_ctrl_shift_p_pauses_the_queue(steered, qtbot):
    steered.show_state(READY)
    steered.activateWindow()
    assert QTest.qWaitForWindowActive(steered)
    QTest.keySequence(steered, "Ctrl+Shift+P")
    assert steered.calls == [("pause_queue",)]


def test_a_worker_waiting_out_the_pause_says_so(window):
    window.show_state(replace(PAUSED, worker=WorkerState.QUEUE_PAUSED, queued_job="ingest-x"))
    assert window.worker.status.words.startswith("Waiting for the queue to resume")
    assert window.sync.remedy.text().startswith("The queue is paused for every worker")
    assert window.worker.pause.isEnabled() and window.worker.stop.isEnabled()


def test_the_workers_list_shows_every_worker_and_stops_or_cleans_them(steered, qtbot, screenshot):
    steered.show_state(PAUSED)
    screenshot(steered.queue, "workers-list")
    table = steered.queue.workers.table
    assert table.rowCount() == 4
    rows = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(4)]
    assert rows[0][:4] == [OWN, "favdesk app (this app)", "laptop pid 4242", "idle"]
    assert rows[1][3:6] == ["running a job", "ingest-zoe", "fetching: 1,200 / 10,000 songs"]
    assert rows[2][1] == "stock RQ"
    assert rows[3][3] == "gone: heartbeat expired"
    summary = steered.queue.workers.summary.text()
    assert summary.startswith("2 favdesk, 1 stock RQ, 1 expired")

    workers = steered.queue.workers
    table.selectRow(3)
    assert not workers.stop.isEnabled(), "an expired worker cannot be stopped"
    qtbot.mouseClick(workers.clean, Qt.MouseButton.LeftButton)
    table.selectRow(1)
    qtbot.mouseClick(workers.stop, Qt.MouseButton.LeftButton)
    answer(qtbot, steered, "stop-a-worker", "&Stop it")
    assert steered.calls == [("clean_workers",), ("stop_worker", "favdesk-worker-9f8e7d")]


def test_a_running_job_can_be_cancelled_between_pages(steered, qtbot):
    running = samples.job(job_id="ingest-zoe", state=JobStatus.STARTED, user="zoe")
    steered.show_state(replace(READY, snapshot=samples.snapshot(jobs=[running, samples.job()])))
    queue = steered.queue
    queue.table.selectRow(1)
    assert not queue.cancel.isEnabled()
    queue.table.selectRow(0)
    assert queue.cancel.isEnabled()
    qtbot.mouseClick(queue.cancel, Qt.MouseButton.LeftButton)
    answer(qtbot, steered, "cancel-the-job", "Cancel it &between pages")
    assert steered.calls == [("cancel_job", "ingest-zoe")]


def test_the_redis_card_shows_the_meter_the_month_and_redis_own_count(window, screenshot):
    d = replace(READY, commands=USAGE, server_commands=(123_456, samples.NOW))
    window.show_state(d)
    card = window.redis
    assert card.sent.text() == ("25 in the last minute, 615 in the last hour (this app: 5 and 5)")
    assert card.month.words == "442,800 a month at this rate: 89% of your 500,000"
    assert card.month.tone == "warn"
    assert card.sparkline.values == HOUR.per_minute
    assert card.server.text().startswith("123,456 since Redis started, all its clients")
    screenshot(window.redis, "redis-command-meter")


def test_the_meter_reads_flat_and_ok_when_nothing_was_sent(window):
    quiet = CommandUsage.of(count([]), count([]), quota=500_000)
    window.show_state(replace(READY, commands=quiet))
    assert window.redis.month.tone == "ok"
    assert set(window.redis.sparkline.values) == {0}


def test_over_the_quota_is_an_error_tone():
    hour = count([{1000: 1000}], now=1000)
    d = replace(READY, commands=CommandUsage.of(hour, hour, quota=500_000))
    assert describe.meter_view(d).tone == "error"


def test_every_worker_state_has_words():
    assert set(describe.WORKER_WORDS) == set(WorkerState)


def test_the_command_quota_is_set_in_settings_and_read_back(qtbot, settings):
    from favdesk.gui.settings_dialog import SettingsDialog
    from favdesk.settings import load_settings

    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.quota.value() == 500_000
    dialog.quota.setValue(1_000_000)
    with qtbot.waitSignal(dialog.saved):
        dialog.save()
    assert "FAVDESK_COMMAND_QUOTA" in (settings.config_dir / ".env").read_text()
    assert load_settings().command_quota == 1_000_000


def test_a_sync_queued_behind_a_paused_queue_says_so_while_the_apps_worker_idles(window):
    window.show_state(replace(PAUSED, worker=WorkerState.IDLE, queued_job="ingest-x"))
    assert window.sync.remedy.text().startswith("The queue is paused for every worker")
    own = replace(PAUSED, worker=WorkerState.PAUSED, queued_job="ingest-x")
    window.show_state(own)
    assert window.sync.remedy.text() == "The worker is paused: press Resume to run the sync."
