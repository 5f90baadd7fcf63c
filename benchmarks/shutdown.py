"""How long favdesk's processes take to end once their work is done: figures, not a test.

A backup tool is started and stopped by scripts, timers and logouts, so a process that lingers
after its last job holds up all of them. Measured on real processes against a private
redis-server and the Spotify stand-in:

- `favdesk worker --burst`: from its last job's `finished` line to the process's exit;
- `favdesk sync --wait`: from the outcome line to the exit;
- the desktop app (offscreen): from SIGTERM to the exit, right after start-up and after a sync.

    .venv/bin/python -m benchmarks.shutdown [--tracks N] [--runs N]

(run from the repository root; `VENV=... ` to compare another resolution: the figure that
matters is the same on the lock and on the newest allowed versions.)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keyring
import redis

from benchmarks.table import Row, Section, print_rows
from favdesk import keys
from favdesk.embedded_redis import EmbeddedRedis
from favdesk.runtime import Runtime
from favdesk.sandbox import SpotifySandbox
from favdesk.settings import load_settings
from tests.support.memkeyring import FileKeyring
from tests.test_ingest import login_request, spotify_env

USER = "zoe"
REPO = Path(__file__).resolve().parents[1]


def tail_after(args: list[str], marker: Callable[[str], bool]) -> float:
    """Run a favdesk command; seconds from the first stdout line `marker` accepts to the exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "favdesk", *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    seen_at = None
    for line in process.stdout:
        if seen_at is None and marker(line):
            seen_at = time.monotonic()
    code = process.wait()
    if seen_at is None or code != 0:
        raise SystemExit(f"favdesk {' '.join(args)} exited {code} without the expected line")
    return time.monotonic() - seen_at


def app_quit(log: Path, sync_first: bool) -> float:
    """Seconds from SIGTERM to the exit of the desktop app, offscreen."""
    with log.open("w") as stderr:
        app = subprocess.Popen(
            [sys.executable, "-m", "favdesk"], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        wait_for(lambda: "favdesk is ready" in log.read_text(), "the window")
        if sync_first:
            conn = redis.Redis.from_url(os.environ["REDIS_URL"])
            wait_for(lambda: conn.get(keys.sync_key(USER)) == b"done", "the sync")
        sent = time.monotonic()
        app.send_signal(signal.SIGTERM)
        code = app.wait(timeout=120)
        if code != 0:
            raise SystemExit(f"the app exited {code}: see {log}")
        return time.monotonic() - sent
    finally:
        app.kill()
        app.wait()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not get there in {timeout} s")
        time.sleep(0.05)


def link(sandbox: SpotifySandbox) -> None:
    """Link the account through the import API; its first import stays queued."""
    with Runtime(load_settings()) as runtime:
        assert runtime.import_spotify(login_request(sandbox)).ok


#: Targets (issue 7): seconds from the last job (or the outcome) to the exit, and from SIGTERM.
BURST_TARGET = WAIT_TARGET = 1.0
APP_TARGET = 2.0


def row(label: str, seconds: list[float], target: float) -> Row:
    measured = f"median {statistics.median(seconds):5.2f} s, max {max(seconds):5.2f} s"
    return Row(label, measured, f"<= {target:g} s", max(seconds) <= target)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """The settings every favdesk process of the run reads; the caller's come back after."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def rows(tracks: int = 2345, runs: int = 3) -> Iterator[Row | Section]:
    import redis as redis_py
    import rq

    yield Section(
        f"Shutdown: real processes, private redis-server, Spotify stand-in with {tracks} songs; "
        f"redis-py {redis_py.__version__}, rq {rq.__version__}, {runs} runs"
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp, "redis"), persistent=False) as server,
        SpotifySandbox(tracks=tracks, user_id=USER) as sandbox,
        environment(
            {
                **spotify_env(sandbox),
                "REDIS_URL": server.url,
                "FAVDESK_DATA_DIR": f"{tmp}/data",
                "FAVDESK_CONFIG_DIR": f"{tmp}/config",
                "PYTHON_KEYRING_BACKEND": "tests.support.memkeyring.FileKeyring",
                "FAVDESK_TEST_KEYRING_FILE": f"{tmp}/keyring.json",
                "PYTHONPATH": str(REPO),
                "QT_QPA_PLATFORM": "offscreen",
            }
        ),
    ):
        keyring.set_keyring(FileKeyring())
        burst, wait, quit_idle, quit_after_sync = [], [], [], []
        for _ in range(runs):
            link(sandbox)
            burst.append(tail_after(["worker", "--burst"], lambda line: "finished " in line))
            wait.append(tail_after(["sync", "--wait"], lambda line: " tracks -> " in line))
            quit_idle.append(app_quit(Path(tmp, "app.log"), sync_first=False))
            link(sandbox)
            quit_after_sync.append(app_quit(Path(tmp, "app.log"), sync_first=True))
    yield row("worker --burst: last job finished -> exit", burst, BURST_TARGET)
    yield row("sync --wait: outcome printed -> exit", wait, WAIT_TARGET)
    yield row("app: SIGTERM right after start-up -> exit", quit_idle, APP_TARGET)
    yield row("app: SIGTERM after its sync -> exit", quit_after_sync, APP_TARGET)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=2345)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    print_rows(rows(options.tracks, options.runs))


if __name__ == "__main__":
    main()
