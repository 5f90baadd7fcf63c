"""Load: 200 users' imports queued at once, run by the app's worker and four `favdesk worker`
processes on one Redis. Every import runs exactly once and ends as one exact file; nothing is
left in `started`; the dashboard keeps answering. The figures go to docs/reliability.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from favdesk import keys, queue
from favdesk.runtime import Runtime
from favdesk.sandbox import SpotifySandbox
from favdesk.settings import load_settings
from favdesk.spotify.api import SpotifyUser
from favdesk.storage import BUCKET
from favdesk.worker_events import WorkerListener
from tests.jobs import CommandMeter
from tests.support.spotify_tokens import login
from tests.test_ingest import spotify_env, today_keys

USERS = 200
PROCESSES = 4
TRACKS = 120


class Started(WorkerListener):
    def __init__(self) -> None:
        self.job_ids: list[str] = []

    def on_job_started(self, job_id, user_id) -> None:
        self.job_ids.append(job_id)


def user(i: int) -> str:
    return f"load-{i:03d}"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_200_imports_on_five_workers_each_run_once_to_one_exact_file(
    private_redis, monkeypatch, capsys, tmp_path
):
    with SpotifySandbox(tracks=TRACKS, user_id="listener") as spotify:
        for name, value in {**spotify_env(spotify), "REDIS_URL": private_redis.url}.items():
            monkeypatch.setenv(name, value)
        tokens = login(spotify)
        expected = spotify.items()
        listener = Started()
        with Runtime(load_settings(), listener=listener) as runtime:
            for i in range(USERS):  # 200 linked accounts (one Spotify library serves them all)
                runtime.accounts.save_link(SpotifyUser(user(i), f"Listener {i}"), tokens, user(i))
            meter = CommandMeter(runtime.app_redis)
            started = time.monotonic()
            for i in range(USERS):
                assert queue.enqueue_import(runtime.app_redis, user(i)).created
            workers = [
                subprocess.Popen(
                    [sys.executable, "-m", "favdesk", "worker", "--burst"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for _ in range(PROCESSES)
            ]
            runtime.worker.start()
            latencies = poll_dashboard_until(
                runtime,
                lambda: all(w.poll() is not None for w in workers) and runtime.worker.join(0),
            )
            outputs = [w.communicate()[0] for w in workers]
            elapsed = time.monotonic() - started
            commands = meter.total()
            assert all(w.returncode == 0 for w in workers), outputs

            runs = Counter(listener.job_ids)
            for output in outputs:
                runs.update(
                    line.split()[2] for line in output.splitlines() if " started ingest-" in line
                )
            assert runs == Counter({queue.import_job_id(user(i)): 1 for i in range(USERS)})
            conn = runtime.app_redis
            assert conn.zcard(keys.REGISTRY_KEYS["started"]) == 0
            assert conn.llen(keys.QUEUE_KEY) == 0
            assert conn.zcard(keys.REGISTRY_KEYS["finished"]) == USERS
            assert {conn.get(keys.sync_key(user(i))) for i in range(USERS)} == {b"done"}
            storage = load_settings().storage_dir / BUCKET
            for i in range(USERS):
                (key,) = today_keys(user(i))
                assert json.loads((storage / key).read_bytes()) == expected
    with capsys.disabled():
        print(
            f"\nload: {USERS} imports of {TRACKS} songs on 1 + {PROCESSES} workers in "
            f"{elapsed:.1f} s; {commands} Redis commands ({commands / USERS:.0f} per import); "
            f"dashboard reads {len(latencies)}, slowest {max(latencies) * 1000:.0f} ms; "
            f"runs by the app's worker {len(listener.job_ids)}"
        )


def start_worker(log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "favdesk", "worker", "--burst"], stdout=out, stderr=out
        )


def poll_dashboard_until(runtime: Runtime, done) -> list[float]:
    """Read the dashboard as the window does while the load runs; the read times."""
    latencies = []
    while not done():
        started = time.monotonic()
        snapshot = runtime.status(full=True)
        assert snapshot.redis.reachable
        latencies.append(time.monotonic() - started)
        time.sleep(0.5)
    return latencies
