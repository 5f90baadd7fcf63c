"""The headless commands, run as a person would: `python -m favdesk ...` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis

from favdesk import keys, queue, queue_status
from favdesk.runtime import Runtime
from favdesk.sandbox import SpotifySandbox, follow_login
from favdesk.settings import load_settings
from favdesk.storage import BUCKET
from tests.test_ingest import configured_sandbox, login_request, today_keys

#: Each test runs favdesk's CLI in a subprocess, with its stand-ins and Redis.
pytestmark = pytest.mark.slow

USER = "zoe"
JOB_ID = queue.import_job_id(USER)
TRACKS = 130
URL_PREFIX = "Open this URL to log in to Spotify: "


@pytest.fixture
def sandbox(redis_url, monkeypatch):
    with configured_sandbox(TRACKS, redis_url, monkeypatch) as server:
        yield server


@pytest.fixture
def app_redis(redis_url):
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


def link_in_process(sandbox: SpotifySandbox) -> None:
    """Link the account through the import API (its first import stays queued)."""
    with Runtime(load_settings()) as runtime:
        assert runtime.import_spotify(login_request(sandbox)).ok


def stored_file(key: str) -> Path:
    return load_settings().storage_dir / BUCKET / key


def error_line(result: subprocess.CompletedProcess) -> str:
    """The `favdesk:` line a failed command ends with, on stderr."""
    return result.stderr.strip().splitlines()[-1]


# --- link ------------------------------------------------------------------------------------


def test_link_without_a_browser_prints_the_url_then_the_account_and_its_job(sandbox, app_redis):
    process = subprocess.Popen(
        [sys.executable, "-m", "favdesk", "link", "--no-browser", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    url_shown = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            url_shown.set() if line.startswith(URL_PREFIX) else None

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert url_shown.wait(30), process.stderr.read() if process.poll() is not None else lines
        url = next(line for line in lines if line.startswith(URL_PREFIX)).removeprefix(URL_PREFIX)
        page = follow_login(url)  # the person logs in from another device's browser
        assert process.wait(30) == 0, process.stderr.read()
    finally:
        process.kill()
        reader.join(10)
    assert page.status_code == 200 and "sync started" in page.text
    assert lines[-2:] == [
        f"Linked Zoë Listener ({USER})",
        f"jobId: {JOB_ID} (the app or `favdesk worker` runs it, or `favdesk sync --wait`)",
    ]
    assert app_redis.lrange(keys.QUEUE_KEY, 0, -1) == [JOB_ID.encode()]  # left for a worker


# --- sync ------------------------------------------------------------------------------------


def test_sync_wait_runs_the_import_and_prints_the_storage_key(sandbox, favdesk_cli, app_redis):
    link_in_process(sandbox)
    result = favdesk_cli("sync", "--wait")
    assert result.returncode == 0, result.stderr
    assert f"jobId: {JOB_ID} (already queued or running)" in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"done: {TRACKS} tracks -> {BUCKET}/")
    key = last.partition(f"-> {BUCKET}/")[2]
    assert key in today_keys()
    assert json.loads(stored_file(key).read_bytes()) == sandbox.items()
    assert app_redis.get(keys.sync_key(USER)) == b"done"


def test_sync_wait_exits_non_zero_with_the_reason_when_the_import_fails(
    sandbox, favdesk_cli, app_redis
):
    link_in_process(sandbox)
    assert favdesk_cli("sync", "--wait").returncode == 0  # leaves `done: 130/130` behind
    sandbox.expire_access_tokens()
    sandbox.revoke_refresh_tokens()
    result = favdesk_cli("sync", "--wait")
    assert result.returncode == 1
    assert f"{TRACKS}/{TRACKS}" not in result.stdout  # not the previous run's last progress
    assert error_line(result).startswith("favdesk: import failed (error:reauth): The Spotify link")
    assert "link Spotify again" in error_line(result)
    assert app_redis.get(keys.sync_key(USER)) == b"error:reauth"


def test_ctrl_c_during_sync_wait_cancels_between_pages_and_keeps_the_import_queued(
    sandbox, app_redis
):
    sandbox.add_tracks(2000 - TRACKS)
    sandbox.faults.latency = 0.2
    link_in_process(sandbox)
    process = subprocess.Popen(
        [sys.executable, "-m", "favdesk", "sync", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FAVDESK_FETCH_CONCURRENCY": "1"},
    )
    for line in process.stdout:
        if line.startswith("fetching: "):
            break
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Stopping: the import is cancelled between pages and stays queued" in out
    assert queue_status.import_state(app_redis, USER, JOB_ID).job.state.value == "queued"
    assert sandbox.stats.tracks_requests < 2000 // 50  # it did not run to the end
    pages = list((load_settings().data_dir / "imports" / USER).glob("page-*.json"))
    assert pages  # kept for the resume


# --- unlink ----------------------------------------------------------------------------------


def test_unlink_forgets_the_account_its_tokens_and_its_queued_import_but_keeps_backups(
    sandbox, favdesk_cli, app_redis
):
    link_in_process(sandbox)
    assert favdesk_cli("worker", "--burst").returncode == 0
    with Runtime(load_settings()) as runtime:
        (key,) = today_keys() & {f.key for f in runtime.files()}
    link_in_process(sandbox)  # a second import, queued
    entries = json.loads(Path(os.environ["FAVDESK_TEST_KEYRING_FILE"]).read_text())
    assert [u for s, u, _ in entries if s == "favdesk"]

    result = favdesk_cli("unlink")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Unlinked Zoë Listener (zoe): its tokens are deleted")
    entries = json.loads(Path(os.environ["FAVDESK_TEST_KEYRING_FILE"]).read_text())
    assert [u for s, u, _ in entries if s == "favdesk"] == []
    assert app_redis.llen(keys.QUEUE_KEY) == 0 and not app_redis.exists(keys.job_key(JOB_ID))
    assert stored_file(key).exists()
    later = favdesk_cli("sync")
    assert later.returncode != 0 and "link" in error_line(later).lower()


def test_sync_without_a_linked_account_says_to_link_first(sandbox, favdesk_cli, app_redis):
    result = favdesk_cli("sync")
    assert result.returncode == 1
    assert error_line(result).startswith("favdesk: No Spotify account is linked yet: run")
    assert app_redis.llen(keys.QUEUE_KEY) == 0


# --- status and files ------------------------------------------------------------------------


def test_status_and_files_as_json_after_an_import(sandbox, favdesk_cli, redis_url):
    link_in_process(sandbox)
    assert favdesk_cli("sync", "--wait").returncode == 0

    status = favdesk_cli("status", "--json")
    assert status.returncode == 0, status.stderr
    snapshot = json.loads(status.stdout)
    assert snapshot["redis"]["reachable"] is True and snapshot["redis"]["latency_ms"] > 0
    assert snapshot["redis"]["where"].startswith("unix socket ")
    assert snapshot["counts"] == {
        "queued": 0, "started": 0, "finished": 1, "failed": 0, "deferred": 0, "scheduled": 0
    }  # fmt: skip
    assert snapshot["syncs"][USER]["state"] == "done"
    assert snapshot["progress"][USER]["fetched"] == TRACKS
    (job,) = snapshot["jobs"]
    assert (job["id"], job["state"], job["tracks"]) == (JOB_ID, "finished", TRACKS)

    files = favdesk_cli("files", "--json")
    assert files.returncode == 0, files.stderr
    (listed,) = json.loads(files.stdout)
    assert listed["key"] in today_keys()
    assert listed["path"] == f"{BUCKET}/{listed['key']}"
    assert listed["size"] == stored_file(listed["key"]).stat().st_size

    text = favdesk_cli("status").stdout.splitlines()
    assert f"Sync Zoë Listener [{USER}]: done" in text
    assert text[1] == "Queue spotify-ingest: queued 0, started 0, finished 1, failed 0, " + (
        "deferred 0, scheduled 0"
    )
    text = favdesk_cli("files").stdout.splitlines()
    assert text[0] == f"1 file(s) in local folder {load_settings().storage_dir}"
    assert text[1].startswith(f"  {listed['path']}  ")


def test_status_with_redis_unreachable_says_so_without_the_password(favdesk_cli, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nobody listens
    monkeypatch.setenv("REDIS_URL", f"redis://default:s3cret-pass@127.0.0.1:{port}/0")
    result = favdesk_cli("status", "--json")
    assert result.returncode == 1
    health = json.loads(result.stdout)["redis"]
    assert health["reachable"] is False and "is unreachable" in health["error"]
    assert health["where"] == f"127.0.0.1:{port} db 0"
    assert "s3cret-pass" not in result.stdout + result.stderr


# --- worker ----------------------------------------------------------------------------------


def test_worker_burst_runs_the_queued_import_and_exits_0(sandbox, favdesk_cli, app_redis):
    link_in_process(sandbox)
    result = favdesk_cli("worker", "--burst")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    key = lines[4].removeprefix(f"upload complete -> {BUCKET}/")
    assert key in today_keys()
    assert lines[0].startswith("Redis: unix socket ") and "; Storage: local folder " in lines[0]
    assert lines[1:] == [
        "[spotify-ingest] worker started (one burst)",
        f"[spotify-ingest] started {JOB_ID} (user {USER})",
        f"[spotify-ingest] tracks: {TRACKS}",
        f"upload complete -> {BUCKET}/{key}",
        f"[spotify-ingest] DONE {JOB_ID}",
        f"[spotify-ingest] finished {JOB_ID}: ok",
        "[spotify-ingest] worker stopped after 1 job(s)",
    ]
    assert json.loads(stored_file(key).read_bytes()) == sandbox.items()
    assert app_redis.get(keys.sync_key(USER)) == b"done"


# --- demo ------------------------------------------------------------------------------------


def summary_of(stdout: str) -> dict[str, str]:
    """The demo's closing summary: `  label   value` lines after `Summary`."""
    rows = stdout.split("\nSummary\n", 1)[1].splitlines()
    return dict(re.fullmatch(r"  (\S+(?: \S+)?) {2,}(.*)", row).groups() for row in rows)


def test_demo_on_an_empty_data_dir_with_nothing_configured(favdesk_cli):
    data_dir = load_settings().data_dir
    assert not data_dir.exists()
    assert not [name for name in os.environ if name.startswith(("SPOTIFY_", "REDIS_", "SUPA"))]

    result = favdesk_cli("demo", timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    summary = summary_of(result.stdout)
    assert summary["sync status"] == "done"
    path, _, size = summary["file"].partition(" (")
    assert path.removeprefix(f"{BUCKET}/") in today_keys("demo-listener")
    on_disk = Path(summary["on disk"])
    assert on_disk.is_relative_to(data_dir) and on_disk.is_file()
    assert size == f"{on_disk.stat().st_size:,} bytes)"
    assert json.loads(on_disk.read_bytes()) == SpotifySandbox().items()  # the demo's library


def test_with_no_redis_configured_a_queued_sync_waits_in_the_embedded_redis(
    sandbox, favdesk_cli, monkeypatch
):
    monkeypatch.delenv("REDIS_URL")
    link_in_process(sandbox)  # each command starts the embedded Redis and stops it on exit
    assert favdesk_cli("sync").returncode == 0
    status = json.loads(favdesk_cli("status", "--json").stdout)
    assert status["redis"]["where"].startswith("unix socket ")  # favdesk's own server
    assert status["counts"]["queued"] == 1

    assert favdesk_cli("worker", "--burst").returncode == 0
    status = json.loads(favdesk_cli("status", "--json").stdout)
    assert (status["counts"]["queued"], status["counts"]["finished"]) == (0, 1)
    assert status["syncs"][USER]["state"] == "done"
