"""The words, tones and looks the dashboard derives from state (no widgets involved)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from rq.job import JobStatus

from favdesk.gui.describe import (
    REASON_WORDS,
    REMEDIES,
    REMEDY_ACTIONS,
    clock,
    redis_activity,
    redis_view,
    size,
    status_line,
    sync_view,
    tray_look,
    worker_view,
)
from favdesk.gui.state import Dashboard, JobOutcome, LiveJob, PollPlan
from favdesk.sync_status import SyncErrorReason
from favdesk.worker_events import WorkerState
from tests.gui import samples

READY = Dashboard(
    startup="ready", accounts=(samples.account(),), user_id="demo-listener", worker=WorkerState.IDLE
)


def test_live_job_wins_over_an_older_redis_status():
    d = replace(
        READY,
        snapshot=samples.snapshot(sync="done"),
        job=LiveJob("ingest-demo-listener", "demo-listener", 50, 120, "fetching"),
    )
    view = sync_view(d, samples.NOW)
    assert (view.words, view.tone, view.fetched, view.total, view.active) == (
        "Syncing: fetching", "busy", 50, 120, True,
    )  # fmt: skip


def test_expired_link_says_to_link_again():
    view = sync_view(replace(READY, snapshot=samples.snapshot(sync="error", reason="reauth")))
    assert view.tone == "error"
    assert "expired" in view.words
    assert "press Link again" in view.remedy
    assert view.action == "relink"


def test_rate_limit_says_when_it_resumes_by_itself():
    resume = samples.NOW + timedelta(hours=2)
    snapshot = samples.snapshot(sync="error", reason="ratelimited", resume_at=resume)
    view = sync_view(replace(READY, snapshot=snapshot))
    assert view.words == f"Waiting for Spotify until {clock(resume)}"
    assert f"resumes by itself at {clock(resume)}" in view.remedy
    assert view.action is None


def test_settings_error_points_at_settings():
    view = sync_view(replace(READY, snapshot=samples.snapshot(sync="error", reason="settings")))
    assert "Settings" in view.remedy
    assert view.action == "settings"


def test_a_newer_worker_outcome_wins_over_an_older_snapshot():
    stale = samples.snapshot(sync="syncing", taken_at=samples.NOW - timedelta(minutes=1))
    outcome = JobOutcome(
        "ingest-demo-listener", "demo-listener", False, "error:storage", samples.NOW
    )
    view = sync_view(replace(READY, snapshot=stale, outcome=outcome))
    assert view.words == "Error: Storage refused the file"
    assert "service-role key" in view.remedy
    assert view.detail == "error:storage"


def test_a_newer_snapshot_wins_over_an_older_outcome():
    outcome = JobOutcome("j", "demo-listener", False, "boom", samples.NOW - timedelta(minutes=5))
    view = sync_view(replace(READY, snapshot=samples.snapshot(sync="done"), outcome=outcome))
    assert view.tone == "ok"
    assert view.words.startswith("Done at ")


def test_last_success_comes_from_the_newest_evidence():
    done_at = samples.NOW - timedelta(days=2)
    jobs = [samples.job(state=JobStatus.FAILED, error="boom")]
    snapshot = samples.snapshot(sync="idle", jobs=jobs, progress=samples.progress(done_at=done_at))
    assert sync_view(replace(READY, snapshot=snapshot), samples.NOW).last_success == clock(
        done_at, samples.NOW
    )
    assert sync_view(replace(READY, snapshot=None)).last_success == "never"


def test_queued_sync_behind_a_paused_worker_says_to_resume():
    view = sync_view(replace(READY, queued_job="ingest-demo-listener", worker=WorkerState.PAUSED))
    assert view.words == "Queued"
    assert "Resume" in view.remedy
    assert view.action == "resume"


def test_no_account_says_to_link():
    view = sync_view(replace(READY, accounts=(), user_id=None))
    assert view.action == "link"
    assert status_line(replace(READY, accounts=(), user_id=None)) == "No Spotify account linked"


def test_redis_unreachable_shows_the_reason():
    snapshot = samples.snapshot(reachable=False, error="Connection refused")
    view = redis_view(replace(READY, snapshot=snapshot, status_error="Connection refused"))
    assert view.words == "Redis unreachable: Connection refused"
    assert view.tone == "error"


def test_redis_activity_says_polling_or_quiet():
    polling = replace(READY, poll=PollPlan(True, 30.0, "visible"), worker=WorkerState.IDLE)
    assert redis_activity(polling) == "Polling: the dashboard is reading the queue every 30 s"
    paused = replace(
        READY, poll=PollPlan(False, None, "the worker is paused"), worker=WorkerState.PAUSED
    )
    assert redis_activity(paused) == (
        "Quiet: favdesk sends Redis no commands (the worker is paused)"
    )
    waiting = replace(paused, worker=WorkerState.WAITING)
    assert "blocking read" in redis_activity(waiting)


def test_tray_look_follows_the_state():
    assert tray_look(READY) == "idle"
    assert tray_look(replace(READY, worker=WorkerState.PAUSED)) == "paused"
    assert tray_look(replace(READY, job=LiveJob("j", "demo-listener"))) == "syncing"
    failed = samples.snapshot(sync="error", reason="network")
    assert tray_look(replace(READY, snapshot=failed)) == "error"
    assert tray_look(Dashboard(startup="failed", startup_error="no redis")) == "error"


def test_sizes_read_like_a_file_manager():
    assert [size(812), size(12_345), size(4_100_000)] == ["812 B", "12.3 kB", "4.1 MB"]


def test_a_job_requeued_by_a_stop_shows_as_queued_once_redis_says_so():
    cancelled = JobOutcome(
        "ingest-demo-listener", "demo-listener", False, "cancelled: re-queued", samples.NOW
    )
    waiting = [samples.job(state=JobStatus.QUEUED, tracks=None)]
    before = samples.snapshot(jobs=waiting, taken_at=samples.NOW - timedelta(seconds=1))
    after = samples.snapshot(jobs=waiting, taken_at=samples.NOW + timedelta(seconds=1))
    stopped = replace(READY, worker=WorkerState.STOPPED, outcome=cancelled)
    assert sync_view(replace(stopped, snapshot=before)).words == "Error: stopped before it finished"
    view = sync_view(replace(stopped, snapshot=after))
    assert (view.words, view.action) == ("Queued", "start")


def test_a_stop_says_whether_the_running_sync_finishes_or_is_cancelled():
    stopping = replace(READY, worker=WorkerState.STOPPING)
    finish, _tone = worker_view(replace(stopping, stopping="finish"))
    cancel, _tone = worker_view(replace(stopping, stopping="cancel"))
    assert finish == "Stopping: the current sync finishes first, then no new ones start"
    assert cancel == "Stopping: the current sync ends after the page it is fetching"
    assert worker_view(stopping)[0] == "Stopping after the current job..."


def test_with_redis_away_the_worker_tray_and_tooltip_say_it_waits_for_redis_since_when():
    down = replace(READY, redis_down_since=samples.NOW)
    since = clock(samples.NOW)
    assert worker_view(down) == (
        f"Waiting for Redis since {since}: jobs run when it answers again",
        "warn",
    )
    assert status_line(down) == f"Waiting for Redis since {since}"
    assert tray_look(down) == "error"
    paused = replace(down, worker=WorkerState.PAUSED)  # a pause by the person stands first
    assert (worker_view(paused)[0], status_line(paused)) == (
        "Paused: queued jobs wait until you resume",
        "Paused",
    )
    assert worker_view(READY) == ("Running, idle", "ok")


def test_an_expired_link_is_the_status_line_when_nothing_failed():
    d = replace(READY, accounts=(samples.account(needs_relink=True),))
    assert status_line(d) == "The Spotify link expired: link again"


@pytest.mark.parametrize("worker", [WorkerState.PAUSED, WorkerState.STOPPED])
def test_rate_limit_with_the_worker_halted_says_to_press_resume(worker):
    resume = samples.NOW + timedelta(hours=2)
    snapshot = samples.snapshot(sync="error", reason="ratelimited", resume_at=resume)
    view = sync_view(replace(READY, snapshot=snapshot, worker=worker))
    assert f"press Resume; it then continues at {clock(resume)}" in view.remedy
    assert "by itself" not in view.remedy


def test_every_reason_the_dashboard_explains_is_one_favdesk_writes():
    assert {*REMEDIES, *REASON_WORDS, *REMEDY_ACTIONS} <= set(SyncErrorReason)


def test_a_file_over_supabases_limit_says_the_ways_out():
    view = sync_view(replace(READY, snapshot=samples.snapshot(sync="error", reason="toolarge")))
    assert view.words == "Error: the file is over Supabase's size limit"
    assert "upload limit" in view.remedy and "local folder" in view.remedy
    assert "kept" in view.remedy and view.action == "sync"


def test_the_upload_counts_megabytes_in_the_window_the_tray_and_redis_readers():
    mib = 1024 * 1024
    job = LiveJob("j", "demo-listener", 40 * mib, 99 * mib, "uploading")
    assert status_line(replace(READY, worker=WorkerState.BUSY, job=job)) == "Syncing: 40 / 99 MB"
    progress = samples.progress(fetched=40 * mib, total=99 * mib, phase="uploading")
    view = sync_view(replace(READY, snapshot=samples.snapshot(sync="syncing", progress=progress)))
    assert (view.words, view.phase, view.fetched) == ("Syncing: uploading", "uploading", 40 * mib)
