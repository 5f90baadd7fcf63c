"""The window steering every worker on a real Redis: a `favdesk worker` process beside the app is
listed, paused with the queue (both go silent), resumed, and stopped from the Workers list."""

from __future__ import annotations

import pytest
import redis

from favdesk import fleet, queue
from favdesk.worker_events import WorkerState
from tests.gui.test_app_live import (  # noqa: F401 - fixtures
    LONG,
    answer,
    app_settings,
    click,
    launch,
    spotify,
)
from tests.jobs import CommandMeter
from tests.test_queue_pause import quiet_window, start_worker_process, wake_ups_done

pytestmark = pytest.mark.slow


def test_pause_the_queue_reaches_another_worker_and_resume_runs_what_waited(
    qtbot,
    launch,  # noqa: F811
    app_settings,  # noqa: F811
    redis_url,
    screenshot,
):
    desktop = launch(app_settings())
    window, controller = desktop.window, desktop.controller
    conn = redis.Redis.from_url(redis_url)
    process = start_worker_process(redis_url)
    try:
        window.refresh_action.trigger()
        table = window.queue.workers.table
        qtbot.waitUntil(lambda: table.rowCount() == 1, timeout=LONG)
        assert table.item(0, 1).text() == "favdesk worker"

        click(qtbot, window.worker.queue)  # nothing runs: no question
        qtbot.waitUntil(lambda: controller.state.worker == WorkerState.QUEUE_PAUSED, timeout=LONG)
        assert window.worker.queue.text() == "Resume the queue"
        assert not controller.poller.plan.active, "the dashboard stops polling too"
        qtbot.waitUntil(
            lambda: {w.state for w in fleet.read_fleet(conn).workers} == {"suspended"},
            timeout=LONG,
        )
        wake_ups_done()
        quiet_window(2.5)  # the other process's wake-up of its blocked pop ends meanwhile
        meter = CommandMeter(conn)
        quiet_window(2.0)
        assert meter.delta() == {}, "the app and the other worker, both paused"
        screenshot(window, "live-queue-paused")

        queue.enqueue_import(conn, "u1", func="tests.jobs.quick")
        click(qtbot, window.worker.queue)
        qtbot.waitUntil(lambda: not controller.state.queue_paused, timeout=LONG)
        qtbot.waitUntil(
            lambda: (
                queue.queue_pause(conn) is None
                and conn.hget("rq:job:ingest-u1", "status") == b"finished"
            ),
            timeout=LONG,
        )
        qtbot.waitUntil(lambda: controller.state.worker == WorkerState.IDLE, timeout=LONG)

        window.refresh_action.trigger()
        name = process_worker(conn)
        qtbot.waitUntil(lambda: row_of(table, name) is not None, timeout=LONG)
        table.selectRow(row_of(table, name))
        click(qtbot, window.queue.workers.stop)
        answer(qtbot, window, "stop-a-worker", "&Stop it")
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)


def process_worker(conn: redis.Redis) -> str:
    (found,) = [w.name for w in fleet.read_fleet(conn).workers if w.kind == "favdesk worker"]
    return found


def row_of(table, name: str) -> int | None:
    rows = [r for r in range(table.rowCount()) if table.item(r, 0).text() == name]
    return rows[0] if rows else None
