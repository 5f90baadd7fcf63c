"""The spotify-ingest job end to end: link -> enqueue -> worker -> upload -> `done`, and failures.

Real Redis, real rq, the real `supabase` client against the Storage stand-in and real HTTP to
the Spotify stand-in. Helpers here are shared with the import API and CLI tests.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from rq import SimpleWorker
from rq.job import Job, JobStatus

from favdesk import keys, queue, retries, sync_status
from favdesk.accounts import AccountStore
from favdesk.checkpoint import PageCheckpoint
from favdesk.runtime import Runtime
from favdesk.sandbox import SpotifySandbox, follow_login
from favdesk.sandbox.storage import StorageSandbox
from favdesk.settings import load_settings
from favdesk.spotify.auth import new_verifier
from favdesk.storage import BUCKET
from favdesk.worker_events import WorkerListener
from tests.support.spotify_tokens import REDIRECT_URI, authorize_code, sandbox_app

USER = "zoe"
JOB_ID = queue.import_job_id(USER)
TRACKS = 230
PAGES = math.ceil(TRACKS / 50)


# --- helpers shared with test_importer.py and test_commands.py -----------------------------------


def spotify_env(sandbox: SpotifySandbox) -> dict[str, str]:
    """The settings that point favdesk at a Spotify stand-in."""
    return {
        "SPOTIFY_CLIENT_ID": sandbox.client_id,
        "SPOTIFY_ACCOUNTS_URL": sandbox.accounts_url,
        "SPOTIFY_API_URL": sandbox.api_url,
    }


def supabase_env(server: StorageSandbox) -> dict[str, str]:
    return {
        "NEXT_PUBLIC_SUPABASE_URL": server.url,
        "SUPABASE_SERVICE_ROLE_KEY": server.service_role_key,
    }


def login_request(sandbox: SpotifySandbox) -> dict[str, str]:
    """What the web route receives after a browser login: `{code, code_verifier, redirect_uri}`."""
    verifier = new_verifier()
    code = authorize_code(sandbox_app(sandbox), verifier)
    return {"code": code, "code_verifier": verifier, "redirect_uri": REDIRECT_URI}


def browser(url: str) -> bool:
    """An `open_browser` that logs in like a person who clicks Agree."""
    return follow_login(url).status_code == 200


def today_keys(user_id: str = USER) -> set[str]:
    """Today's key (and tomorrow's, should the UTC date turn during the test)."""
    day = datetime.now(UTC).date()
    days = {day, datetime.fromtimestamp(time.time() + 60, UTC).date()}
    return {f"spotify/{user_id}/{d.isoformat()}.json" for d in days}


class Recorder(WorkerListener):
    """What the embedded worker reports; lets a test wait for an event without sleeping."""

    def __init__(self) -> None:
        self.logs: list[str] = []
        self.progress: list[tuple[int, int, str]] = []
        self.finished: list[tuple[str, bool, str | None]] = []
        self.changed = threading.Condition()

    def _add(self, events: list, event: object) -> None:
        with self.changed:
            events.append(event)
            self.changed.notify_all()

    def on_job_progress(self, job_id, user_id, fetched, total, phase):
        self._add(self.progress, (fetched, total, phase))

    def on_log(self, line):
        self._add(self.logs, line)

    def on_job_finished(self, job_id, user_id, ok, error):
        self._add(self.finished, (job_id, ok, error))

    def wait_for(self, check: Callable[[], bool], timeout: float = 20) -> None:
        with self.changed:
            assert self.changed.wait_for(check, timeout), (self.logs, self.finished)

    def wait_finished(self, count: int = 1, timeout: float = 20) -> tuple[str, bool, str | None]:
        """The `count`-th finished job (1-based)."""
        self.wait_for(lambda: len(self.finished) >= count, timeout)
        return self.finished[count - 1]


@pytest.fixture
def open_runtime(monkeypatch):
    """Open Runtimes from the environment (plus `env`), each with a Recorder; closed at the end."""
    opened: list[Runtime] = []

    def open_(**env: str) -> tuple[Runtime, Recorder]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        recorder = Recorder()
        runtime = Runtime(load_settings(), listener=recorder)
        opened.append(runtime)
        return runtime, recorder

    yield open_
    for runtime in opened:
        runtime.worker.stop(cancel_current=True)
        runtime.close()


# --- fixtures of this file -----------------------------------------------------------------------


@contextmanager
def configured_sandbox(tracks: int, redis_url: str, monkeypatch) -> Iterator[SpotifySandbox]:
    """A Spotify stand-in favdesk is configured for (in the environment a CLI inherits too),
    with Redis from the test server."""
    with SpotifySandbox(tracks=tracks, user_id=USER, display_name="Zoë Listener") as server:
        for name, value in {**spotify_env(server), "REDIS_URL": redis_url}.items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def sandbox(redis_url, monkeypatch):
    with configured_sandbox(TRACKS, redis_url, monkeypatch) as server:
        yield server


@dataclass
class Backend:
    """Where the file lands, read behind favdesk's back."""

    name: str
    server: StorageSandbox | None

    def read(self, key: str) -> bytes:
        if self.server is None:
            return (load_settings().storage_dir / BUCKET / key).read_bytes()
        return self.server.object_path(BUCKET, key).read_bytes()

    def content_type(self, key: str) -> str:
        assert self.server is not None
        response = httpx.get(
            f"{self.server.url}/storage/v1/object/authenticated/{BUCKET}/{key}",
            headers={"Authorization": f"Bearer {self.server.service_role_key}"},
        )
        assert response.status_code == 200
        return response.headers["content-type"]


@pytest.fixture
def storage_server(tmp_path, monkeypatch):
    """A Supabase Storage stand-in favdesk is configured for."""
    with StorageSandbox(tmp_path / "storage-server") as server:
        for name, value in supabase_env(server).items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture(params=["local", "supabase"])
def backend(request) -> Backend:
    if request.param == "local":
        return Backend("local", None)
    return Backend("supabase", request.getfixturevalue("storage_server"))


def linked(open_runtime, **env: str) -> tuple[Runtime, Recorder]:
    """A Runtime whose account is linked and whose first import is queued but not started."""
    runtime, recorder = open_runtime(**env)
    result = runtime.link(open_browser=browser, run_import_here=False)
    assert result.job_id == JOB_ID
    return runtime, recorder


def run_queued(runtime: Runtime, recorder: Recorder, count: int = 1):
    runtime.worker.start()
    return recorder.wait_finished(count)


def stored_items(backend: Backend, runtime: Runtime) -> tuple[str, list]:
    (stored,) = runtime.files(USER)
    return stored.key, json.loads(backend.read(stored.key))


def sync_value(runtime: Runtime, user_id: str = USER) -> str | None:
    raw = runtime.app_redis.get(keys.sync_key(user_id))
    return raw.decode() if raw else None


def checkpoint_pages(runtime: Runtime, user_id: str = USER) -> dict:
    return PageCheckpoint.for_user(runtime.settings.data_dir, user_id).load()


# --- the whole flow --------------------------------------------------------------------------


def test_link_queues_the_import_and_the_worker_stores_spotifys_exact_items(
    sandbox, backend, open_runtime
):
    runtime, recorder = open_runtime()
    result = runtime.link(open_browser=browser)  # through the import API; wakes the worker

    assert recorder.wait_finished() == (result.job_id, True, None)
    key, items = stored_items(backend, runtime)
    assert key in today_keys()
    assert items == sandbox.items()  # same order, nothing dropped or rewritten
    assert [item for item in items if item["track"] is None]
    assert [item for item in items if item["track"] and item["track"]["is_local"]]
    if backend.server is not None:
        assert backend.content_type(key) == "application/json"
        assert not (runtime.settings.storage_dir / BUCKET).exists()
    assert sync_value(runtime) == "done"
    job = Job.fetch(result.job_id, connection=runtime.app_redis)
    assert job.get_status() is JobStatus.FINISHED
    result = job.return_value()
    assert (result["tracks"], result["key"]) == (TRACKS, f"{BUCKET}/{key}")
    assert set(result["seconds"]) == {"fetch", "page_writes", "assembly", "upload"}
    assert not checkpoint_pages(runtime)


def test_a_second_sync_on_the_same_day_replaces_that_days_file(sandbox, backend, open_runtime):
    runtime, recorder = open_runtime()
    runtime.link(open_browser=browser)
    assert recorder.wait_finished()[1]
    first_key, _ = stored_items(backend, runtime)

    sandbox.add_tracks(7)
    sandbox.remove_tracks(3, at=100)
    runtime.sync()
    assert recorder.wait_finished(2)[1]

    key, items = stored_items(backend, runtime)  # still exactly one file
    assert key == first_key
    assert items == sandbox.items() and len(items) == TRACKS + 4


def test_a_stock_rq_worker_runs_the_import_in_demo_mode(redis_url, open_runtime):
    """A worker that is not favdesk's builds the services itself, stand-in included."""
    runtime, _ = open_runtime(REDIS_URL=redis_url)  # demo mode: no SPOTIFY_CLIENT_ID
    result = runtime.link(open_browser=browser, run_import_here=False)
    runtime.close()  # the app quits; its Spotify stand-in stops with it

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with redis.Redis.from_url(redis_url) as conn:
        try:
            SimpleWorker([keys.QUEUE_NAME], connection=conn).work(burst=True)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        job = Job.fetch(result.job_id, connection=conn)
        assert job.get_status() is JobStatus.FINISHED, job.meta
        assert conn.get(keys.sync_key(result.account.user_id)) == b"done"
    key = job.return_value()["key"].removeprefix(f"{BUCKET}/")
    assert json.loads(Backend("local", None).read(key)) == SpotifySandbox().items()


# --- failures --------------------------------------------------------------------------------


def assert_failed(runtime: Runtime, recorder: Recorder, reason: str, *, count: int = 1) -> str:
    """The job failed visibly: error:<reason> status, rq `failed`, the jobs table and the log."""
    job_id, ok, message = recorder.wait_finished(count)
    assert not ok and message
    status = sync_value(runtime, queue.user_id_from_job_id(job_id))
    assert status is not None and status.startswith(f"error:{reason}"), status
    assert Job.fetch(job_id, connection=runtime.app_redis).get_status() is JobStatus.FAILED
    (row,) = [job for job in runtime.status().jobs if job.id == job_id]
    assert row.state is JobStatus.FAILED and row.error == message
    assert recorder.logs[-1] == f"[spotify-ingest] FAILED {job_id} {status.removeprefix('error:')}"
    return status


def revoke_link(sandbox: SpotifySandbox) -> None:
    sandbox.expire_access_tokens()
    sandbox.revoke_refresh_tokens()


def refuse_user(sandbox: SpotifySandbox) -> None:
    sandbox.faults.not_allowlisted = True


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(revoke_link, "reauth"), (refuse_user, "notallowed")],
    ids=["revoked", "not-allow-listed"],
)
def test_spotify_refusals_set_their_reason_and_fail_the_job(sandbox, open_runtime, fault, reason):
    runtime, recorder = linked(open_runtime)
    fault(sandbox)
    runtime.worker.start()
    assert assert_failed(runtime, recorder, reason) == f"error:{reason}"
    assert runtime.accounts.by_user_id(USER).needs_relink is (reason == "reauth")
    assert runtime.files(USER) == []


def test_a_job_for_a_user_without_a_linked_account_fails_with_noaccount(sandbox, open_runtime):
    runtime, recorder = open_runtime()
    queue.enqueue_import(runtime.app_redis, "ghost")
    runtime.worker.start()
    assert assert_failed(runtime, recorder, "noaccount") == "error:noaccount"
    assert "ghost" in recorder.finished[0][2]


def block_local_folder(runtime: Runtime, server: StorageSandbox) -> None:
    runtime.settings.storage_dir.mkdir(parents=True)
    (runtime.settings.storage_dir / BUCKET).write_text("not a folder")


def stop_server(runtime: Runtime, server: StorageSandbox) -> None:
    server.stop()


@pytest.mark.parametrize(
    ("backend_name", "breakage", "words"),
    [
        ("local", block_local_folder, "could not create"),
        ("supabase", stop_server, "could not reach Supabase"),
    ],
    ids=["local-folder-blocked", "supabase-down"],
)
def test_storage_failures_set_error_storage_and_keep_the_fetched_pages(
    sandbox, open_runtime, tmp_path, backend_name, breakage, words
):
    with StorageSandbox(tmp_path / "storage-server") as server:
        env = supabase_env(server) if backend_name == "supabase" else {}
        runtime, recorder = linked(open_runtime, **env)
        breakage(runtime, server)
        runtime.worker.start()
        assert assert_failed(runtime, recorder, "storage") == "error:storage"
    assert words in recorder.finished[0][2]
    assert len(checkpoint_pages(runtime)) == PAGES  # a retry re-reads only page 0
    assert not list(PageCheckpoint.for_user(runtime.settings.data_dir, USER).directory.glob("lib*"))


def test_a_file_over_supabases_limit_ends_toolarge_and_a_retry_after_raising_it_fetches_no_page(
    sandbox, open_runtime, tmp_path
):
    with StorageSandbox(tmp_path / "storage-server", max_object_size=200_000) as server:
        runtime, recorder = linked(open_runtime, **supabase_env(server))
        runtime.worker.start()
        assert assert_failed(runtime, recorder, "toolarge") == "error:toolarge"
        message = recorder.finished[0][2]
        assert "over the project's upload limit of 0.2 MB" in message and "Ways out" in message
        assert len(checkpoint_pages(runtime)) == PAGES

        server.max_object_size = 50 * 1024 * 1024  # the user raised the project's limit
        sandbox.stats.reset()
        runtime.sync()
        assert recorder.wait_finished(2)[1]
        assert sandbox.stats.tracks_requests == 1  # page 0 (is it the same library?) only
        assert stored_items(Backend("supabase", server), runtime)[1] == sandbox.items()


@pytest.mark.parametrize("quota", [False, True], ids=["retry-after-an-hour", "quota-exceeded"])
def test_a_long_429_ends_the_job_at_once_and_schedules_the_retry(sandbox, open_runtime, quota):
    runtime, recorder = linked(open_runtime)
    if quota:
        sandbox.faults.quota_exceeded = True
    else:
        sandbox.faults.rate_limit, sandbox.faults.retry_after = (3, 30.0), 3600
    started = time.monotonic()
    runtime.worker.start()
    status = assert_failed(runtime, recorder, "ratelimited")

    assert time.monotonic() - started < 10  # no hours of sleep in the worker
    resume_at = sync_status.SyncStatus.parse(status).resume_at
    expected_wait = 86400 if quota else 3600
    assert abs(resume_at.timestamp() - (time.time() + expected_wait)) < 30
    assert abs(retries.next_retry_at(runtime.app_redis) - resume_at.timestamp()) < 1
    assert retries.due_retries(runtime.app_redis) == []
    assert retries.due_retries(runtime.app_redis, resume_at.timestamp() + 1) == [USER]
    assert sandbox.stats.requests_inside_retry_after == 0


@pytest.mark.parametrize(("quota", "floor"), [(False, 60), (True, 3600)], ids=["429", "quota"])
def test_a_429_with_a_tiny_retry_after_is_not_retried_every_second(
    sandbox, open_runtime, quota, floor
):
    runtime, recorder = linked(open_runtime, FAVDESK_MAX_RATE_LIMIT_WAIT="0")
    sandbox.faults.quota_exceeded = quota
    sandbox.faults.rate_limit, sandbox.faults.retry_after = (2, 30.0), 1
    runtime.worker.start()
    status = assert_failed(runtime, recorder, "ratelimited")
    resume_at = sync_status.SyncStatus.parse(status).resume_at.timestamp()
    assert resume_at >= time.time() + floor - 5
    assert abs(retries.next_retry_at(runtime.app_redis) - resume_at) < 1


# --- resuming --------------------------------------------------------------------------------


def test_after_a_long_429_the_retry_fetches_only_the_missing_pages(sandbox, backend, open_runtime):
    runtime, recorder = linked(open_runtime, FAVDESK_FETCH_CONCURRENCY="2")
    sandbox.faults.rate_limit, sandbox.faults.retry_after = (3, 30.0), 3600
    runtime.worker.start()
    status = assert_failed(runtime, recorder, "ratelimited")
    kept = checkpoint_pages(runtime)
    assert 0 < len(kept) < PAGES

    sandbox.faults.rate_limit = sandbox.faults.retry_after = None
    sandbox.stats.reset()
    resume_at = sync_status.SyncStatus.parse(status).resume_at.timestamp()
    assert queue.enqueue_due_retries(runtime.app_redis, now=resume_at + 1) == [
        queue.EnqueueResult(JOB_ID, created=True)
    ]
    runtime.worker.kick()
    assert recorder.wait_finished(2)[1]

    # page 0 again (is the library unchanged?), the missing pages, page 0 once more (still?)
    assert sandbox.stats.tracks_requests == 1 + (PAGES - len(kept)) + 1
    assert stored_items(backend, runtime)[1] == sandbox.items()
    assert f"[spotify-ingest] resuming with {len(kept)} pages" in " ".join(recorder.logs)
    assert not checkpoint_pages(runtime)
    assert sync_value(runtime) == "done" and retries.next_retry_at(runtime.app_redis) is None


def test_a_resume_after_the_library_changed_still_stores_the_exact_library(sandbox, open_runtime):
    runtime, recorder = linked(open_runtime)
    sandbox.faults.rate_limit, sandbox.faults.retry_after = (3, 30.0), 3600
    runtime.worker.start()
    assert_failed(runtime, recorder, "ratelimited")
    assert checkpoint_pages(runtime)

    sandbox.faults.rate_limit = sandbox.faults.retry_after = None
    sandbox.add_tracks(5)  # liked meanwhile: every kept page is now shifted
    sandbox.remove_tracks(2, at=140)
    runtime.sync()
    assert recorder.wait_finished(2)[1]
    assert stored_items(Backend("local", None), runtime)[1] == sandbox.items()
    assert not checkpoint_pages(runtime)


@pytest.mark.slow
def test_the_app_runs_a_rate_limited_import_again_at_the_resume_time(
    sandbox, open_runtime, monkeypatch
):
    """No scheduler process: the embedded worker's own timer picks the retry up."""
    monkeypatch.setattr("favdesk.ingest.RETRY_FLOOR", timedelta(0))
    runtime, recorder = linked(open_runtime, FAVDESK_MAX_RATE_LIMIT_WAIT="0")
    sandbox.faults.rate_limit, sandbox.faults.retry_after = (2, 30.0), 2
    runtime.worker.start()
    status = assert_failed(runtime, recorder, "ratelimited")
    resume_at = sync_status.SyncStatus.parse(status).resume_at.timestamp()
    sandbox.faults.rate_limit = sandbox.faults.retry_after = None

    assert recorder.wait_finished(2, timeout=15) == (JOB_ID, True, None)
    assert time.time() >= resume_at
    assert sync_value(runtime) == "done" and retries.next_retry_at(runtime.app_redis) is None
    assert stored_items(Backend("local", None), runtime)[1] == sandbox.items()


@pytest.mark.slow
def test_an_import_stopped_between_pages_resumes_where_it_stopped(sandbox, open_runtime):
    sandbox.add_tracks(1000 - TRACKS)
    pages = 20
    runtime, recorder = linked(open_runtime, FAVDESK_FETCH_CONCURRENCY="2")
    sandbox.faults.latency = 0.1
    runtime.worker.start()
    recorder.wait_for(lambda: any(fetched >= 300 for fetched, _, _ in recorder.progress))

    assert runtime.worker.stop(cancel_current=True, timeout=10)
    job_id, ok, error = recorder.wait_finished()
    assert not ok and "re-queued" in error
    assert Job.fetch(job_id, connection=runtime.app_redis).get_status() is JobStatus.QUEUED
    kept = checkpoint_pages(runtime)
    assert 6 <= len(kept) < pages

    sandbox.faults.latency = 0
    sandbox.stats.reset()
    runtime.worker.start()
    assert recorder.wait_finished(2)[1]
    assert sandbox.stats.tracks_requests == 1 + (pages - len(kept)) + 1
    assert stored_items(Backend("local", None), runtime)[1] == sandbox.items()
    assert not checkpoint_pages(runtime)


# --- what other processes and the log see ----------------------------------------------------


@pytest.mark.slow
def test_progress_reaches_redis_about_once_a_second_not_per_page(
    sandbox, private_redis, open_runtime
):
    sandbox.add_tracks(2000 - TRACKS)
    pages = 40
    runtime, recorder = linked(
        open_runtime, REDIS_URL=private_redis.url, FAVDESK_FETCH_CONCURRENCY="1"
    )
    sandbox.faults.latency = 0.05
    observer = redis.Redis.from_url(private_redis.url)
    observer.config_set("notify-keyspace-events", "Kh")  # one event per write of the hash
    writes = observer.pubsub()
    writes.subscribe(f"__keyspace@0__:{keys.progress_key(USER)}")
    seen: list[tuple[int, int, str]] = []

    def look() -> None:
        progress = sync_status.Progress.parse(observer.hgetall(keys.progress_key(USER)))
        if progress is not None:
            seen.append((progress.fetched, progress.total, progress.phase))

    started = time.monotonic()
    runtime.worker.start()
    while not recorder.finished:  # another process's view, polled as a dashboard would
        look()
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    look()
    assert recorder.finished[0][1]

    fetching = [fetched for fetched, total, phase in seen if phase == "fetching" and total]
    assert len(set(fetching) - {0, 2000}) >= 2, seen  # fetched/total advanced while it ran
    assert fetching == sorted(fetching) and seen[-1] == (2000, 2000, "done")
    hsets = [
        m for m in iter(lambda: writes.get_message(timeout=0.5), None) if m["type"] == "message"
    ]
    assert len(hsets) <= elapsed + 4  # about once a second, plus one per phase
    assert len(hsets) < pages / 4
    assert len([p for p in recorder.progress if p[2] == "fetching"]) > pages  # local: per page
    writes.close()


def test_other_processes_see_the_uploading_phase_during_the_upload(
    sandbox, storage_server, open_runtime, redis_url
):
    runtime, recorder = linked(open_runtime)
    observer = redis.Redis.from_url(redis_url)
    phases: list[str] = []

    def look(method: str, path: str, status: int) -> None:
        if method == "PUT":
            phases.append(
                sync_status.Progress.parse(observer.hgetall(keys.progress_key(USER))).phase
            )

    storage_server.on_request = look
    assert run_queued(runtime, recorder)[1]
    assert phases == ["uploading"]


def test_worker_log_lines_follow_the_web_app_and_never_carry_a_secret(
    sandbox, storage_server, open_runtime, caplog
):
    caplog.set_level(logging.DEBUG)
    runtime, recorder = linked(open_runtime)
    assert run_queued(runtime, recorder)[1]
    (key,) = [stored.key for stored in runtime.files(USER)]
    assert recorder.logs == [
        f"[spotify-ingest] tracks: {TRACKS}",
        f"upload complete -> {BUCKET}/{key}",
        f"[spotify-ingest] DONE {JOB_ID}",
    ]

    sandbox.expire_access_tokens()  # the next run refreshes, then Spotify refuses the user
    refuse_user(sandbox)
    runtime.sync()
    assert_failed(runtime, recorder, "notallowed", count=2)
    assert recorder.logs[-1] == f"[spotify-ingest] FAILED {JOB_ID} notallowed"

    tokens = AccountStore(runtime.settings.database_path).load_tokens(USER)
    secrets = [
        tokens.access_token.reveal(),
        tokens.refresh_token.reveal(),
        storage_server.service_role_key,
        *storage_server.issued_tokens,
    ]
    assert storage_server.issued_tokens and sandbox.stats.token_requests["refresh_token"] == 1
    text = "\n".join([*recorder.logs, caplog.text, *(str(f[2]) for f in recorder.finished)])
    assert "token=" not in text.replace("token=<hidden>", "")
    assert [s for s in secrets if s in text] == []


def test_an_unexpected_failure_still_ends_syncing_and_fails_the_job(sandbox, open_runtime):
    runtime, recorder = linked(open_runtime)
    blocked = PageCheckpoint.for_user(runtime.settings.data_dir, USER).directory
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the pages folder should be")
    runtime.worker.start()
    assert assert_failed(runtime, recorder, "failed") == "error:failed"
    assert "unexpected" in recorder.finished[0][2]


def test_a_user_id_storage_would_refuse_fails_before_fetching_anything():
    from favdesk.errors import StorageError
    from favdesk.ingest import fetch_library

    with pytest.raises(StorageError, match="cannot be used in a storage key"):
        fetch_library(None, "../escape", None, None, None)  # type: ignore[arg-type]
