"""Faults a backup tool meets in the field, each ending with the right file or a clear error.

docs/reliability.md lists every scenario with its last result.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from favdesk import keys
from favdesk.embedded_redis import EmbeddedRedis
from favdesk.runtime import Runtime
from favdesk.sandbox import follow_login
from favdesk.settings import load_settings
from favdesk.storage import BUCKET
from favdesk.worker_events import WorkerListener, WorkerState
from tests.test_ingest import configured_sandbox, login_request, today_keys

USER = "zoe"
TRACKS = 2_000
#: Seconds per Spotify request: the import takes long enough to restart Redis in its middle.
LATENCY = 0.1


@pytest.fixture
def durable_redis(tmp_path):
    """A private Redis that keeps its data over a stop and start (append-only file), as a
    managed Redis does over a restart."""
    server = EmbeddedRedis(tmp_path / "durable-redis", persistent=True).start()
    yield server
    server.stop()


@pytest.fixture
def slow_spotify(durable_redis, monkeypatch):
    with configured_sandbox(TRACKS, durable_redis.url, monkeypatch) as sandbox:
        sandbox.faults.latency = LATENCY
        yield sandbox


def follow_login_ok(url: str) -> bool:
    """A browser that logs in like a person who clicks Agree."""
    return follow_login(url).status_code == 200


def link(sandbox) -> None:
    """Link the account through the import API; its first import stays queued."""
    with Runtime(load_settings()) as runtime:
        assert runtime.import_spotify(login_request(sandbox)).ok


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


def restart_mid_import(server: EmbeddedRedis, sandbox, outage: float = 3.0) -> None:
    """Stop Redis once the import has fetched some pages, and start it again `outage` s later."""
    wait_for(lambda: sandbox.stats.tracks_requests >= 5, "the import's first pages")
    server.stop()
    time.sleep(outage)  # the outage itself, not a wait for an event
    server.start()


def assert_imported_once(app: redis.Redis) -> None:
    assert app.get(keys.sync_key(USER)) == b"done"
    (key,) = today_keys()
    stored = load_settings().storage_dir / BUCKET / key
    assert stored.exists()
    assert app.zcard(keys.REGISTRY_KEYS["started"]) == 0, "a job is left in started"
    assert app.llen(keys.QUEUE_KEY) == 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_standalone_worker_rides_out_a_redis_restart_mid_import(durable_redis, slow_spotify):
    link(slow_spotify)
    worker = subprocess.Popen(
        [sys.executable, "-m", "favdesk", "worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        restart_mid_import(durable_redis, slow_spotify)
        app = redis.Redis.from_url(durable_redis.url)
        wait_for(lambda: app.get(keys.sync_key(USER)) == b"done", "the import", timeout=90)
        assert worker.poll() is None, "the worker process ended"
        assert_imported_once(app)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
        print(output)  # shown when the test fails
    assert worker.returncode == 0, output
    assert "There exists an active worker" not in output


class Finished(WorkerListener):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.results: list[tuple[bool, str | None]] = []
        self.states: list[WorkerState] = []

    def on_state(self, state: WorkerState) -> None:
        self.states.append(state)

    def on_job_finished(self, job_id, user_id, ok, error) -> None:
        self.results.append((ok, error))
        if ok:
            self.done.set()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_apps_worker_rides_out_a_redis_restart_mid_import(durable_redis, slow_spotify):
    link(slow_spotify)
    listener = Finished()
    with Runtime(load_settings(), listener=listener) as runtime:
        runtime.worker.start()
        restart_mid_import(durable_redis, slow_spotify)
        assert listener.done.wait(90), listener.results
        assert_imported_once(runtime.app_redis)
        assert runtime.worker.last_error is None
        assert runtime.worker.redis_down_since is None
    waiting = listener.states.index(WorkerState.WAITING_FOR_REDIS)  # said while Redis was away
    assert WorkerState.BUSY in listener.states[waiting:]  # then it ran the job again


#: A `favdesk worker` whose heartbeats expire within 2 s, as a test's stand-in for minutes.
SHORT_HEARTBEAT_WORKER = (
    "import sys; import favdesk.rq_worker as w; w.HEARTBEAT_INTERVAL = 1; w.HEARTBEAT_GRACE = 1; "
    "from favdesk.cli import main; sys.exit(main(['worker'{burst}]))"
)


def short_heartbeat_worker(log: Path, burst: bool = False) -> subprocess.Popen:
    code = SHORT_HEARTBEAT_WORKER.format(burst=", '--burst'" if burst else "")
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=out)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_worker_asleep_mid_import_past_its_heartbeat_finishes_it_on_waking(
    durable_redis, slow_spotify, tmp_path
):
    link(slow_spotify)
    worker = short_heartbeat_worker(tmp_path / "worker.log")
    try:
        wait_for(lambda: slow_spotify.stats.tracks_requests >= 5, "the import's first pages")
        worker.send_signal(signal.SIGSTOP)  # the laptop's lid closes
        time.sleep(4)  # asleep for twice its heartbeat's lifetime
        worker.send_signal(signal.SIGCONT)
        app = redis.Redis.from_url(durable_redis.url)
        wait_for(lambda: app.get(keys.sync_key(USER)) == b"done", "the import", timeout=90)
        wait_for(lambda: app.zcard(keys.REGISTRY_KEYS["finished"]) == 1, "the job's end")
        assert_imported_once(app)
    finally:
        worker.terminate()
        worker.wait(30)
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()


@pytest.fixture
def small_disk(tmp_path):
    """The local storage folder on a 1 MB tmpfs (mounting needs root; skipped without)."""
    folder = tmp_path / "data" / "storage"
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
def test_a_full_disk_keeps_the_previous_file_whole_and_says_storage(
    small_disk, redis_url, monkeypatch
):
    with configured_sandbox(200, redis_url, monkeypatch) as spotify:
        listener = Finished()
        with Runtime(load_settings(), listener=listener) as runtime:
            runtime.link(open_browser=follow_login_ok)
            wait_for(lambda: len(listener.results) == 1, "the first import")
            assert listener.results == [(True, None)]
            (key,) = today_keys()
            first = (small_disk / BUCKET / key).read_bytes()

            spotify.add_tracks(400)  # today's file no longer fits beside the first one
            runtime.sync(USER)
            wait_for(lambda: len(listener.results) == 2, "the second import")
            ok, error = listener.results[1]
            assert not ok and "the disk is full: free some space" in error, error
            assert runtime.app_redis.get(keys.sync_key(USER)) == b"error:storage"
            assert (small_disk / BUCKET / key).read_bytes() == first  # whole, not half-written
            assert [p.name for p in (small_disk / BUCKET / key).parent.iterdir()] == [
                Path(key).name
            ]  # no temporary file left behind


def start_app(log: Path) -> subprocess.Popen:
    """The desktop app, offscreen, as its own process (it runs the queued import at start)."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "favdesk"], stdout=out, stderr=out)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_app_quit_mid_import_keeps_the_job_and_the_next_start_resumes_it(
    durable_redis, slow_spotify, tmp_path
):
    link(slow_spotify)
    app = redis.Redis.from_url(durable_redis.url)
    first = start_app(tmp_path / "first.log")
    try:
        wait_for(lambda: slow_spotify.stats.tracks_requests >= 10, "the import's first pages")
        first.send_signal(signal.SIGTERM)  # logging out quits the app mid-import
        assert first.wait(10) == 0, (tmp_path / "first.log").read_text()
    finally:
        first.kill()
    assert app.get(keys.sync_key(USER)) != b"done"
    assert app.zcard(keys.REGISTRY_KEYS["started"]) == 0, "the job is left in started"
    assert app.llen(keys.QUEUE_KEY) == 1, "the import is no longer queued"
    fetched_before = slow_spotify.stats.tracks_requests

    second = start_app(tmp_path / "second.log")
    try:
        wait_for(lambda: app.get(keys.sync_key(USER)) == b"done", "the resumed import", 90)
        wait_for(lambda: app.zcard(keys.REGISTRY_KEYS["finished"]) == 1, "the job's end")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(10)
    assert_imported_once(app)
    pages = TRACKS // 50
    assert slow_spotify.stats.tracks_requests - fetched_before < pages, "it fetched all again"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_job_whose_worker_sleeps_is_taken_over_and_the_sleeper_waking_loses_nothing(
    durable_redis, slow_spotify, tmp_path
):
    link(slow_spotify)
    sleeper = short_heartbeat_worker(tmp_path / "sleeper.log")
    try:
        wait_for(lambda: slow_spotify.stats.tracks_requests >= 5, "the import's first pages")
        sleeper.send_signal(signal.SIGSTOP)
        time.sleep(3)  # its heartbeat expires
        other = short_heartbeat_worker(tmp_path / "other.log", burst=True)
        assert other.wait(90) == 0, (tmp_path / "other.log").read_text()
        app = redis.Redis.from_url(durable_redis.url)
        assert app.get(keys.sync_key(USER)) == b"done"  # taken over and finished
        sleeper.send_signal(signal.SIGCONT)  # wakes in the middle of a job that is done
        time.sleep(3)  # lets its run end (a window to watch, not a wait for an event)
        assert_imported_once(app)
        assert sleeper.poll() is None, "the sleeper crashed on waking"
    finally:
        sleeper.terminate()
        sleeper.wait(30)
    assert sleeper.returncode == 0, (tmp_path / "sleeper.log").read_text()
