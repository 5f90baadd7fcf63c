"""Big libraries: the memory of `favdesk worker --burst`, where an import's time goes, and how
smooth the app's window stays, at any library size on both backends: figures, not a test.

For each size and backend, against a private redis-server, the Spotify stand-in (answering in
`--latency` seconds) and, for Supabase, the Storage stand-in, all in this process:

- peak RSS (the kernel's VmHWM of the process, read until it exits) of `favdesk worker --burst`
  on an empty queue (idle), then importing the library; the stored file is checked byte for
  byte against Spotify's items in today's compact encoding;
- the import's time split, from the job's result: fetch (waiting for Spotify and parsing),
  page writes (the checkpoint), assembly (the day's file from the pages), upload;
- the desktop app in a child process (offscreen, its own embedded worker): a 5 ms timer in its
  event loop from Sync now to done; every gap of 50 ms or more between two ticks is a stall.

    .venv/bin/python -m benchmarks.big_library [--songs 10000 50000] [--backends local supabase]
        [--latency 0.005] [--no-window]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import keyring
import redis
from rq.job import Job

from favdesk import queue
from favdesk.embedded_redis import EmbeddedRedis
from favdesk.runtime import Runtime
from favdesk.sandbox import SpotifySandbox
from favdesk.sandbox.storage import StorageSandbox
from favdesk.settings import load_settings
from favdesk.storage import BUCKET
from tests.support.memkeyring import FileKeyring
from tests.test_ingest import login_request, spotify_env, supabase_env

USER = "zoe"
REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
#: The event-loop probe: a tick every 5 ms; a gap of 50 ms or more is a stall.
PROBE_MS = 5
STALL = 0.050
SPLIT = ("fetch", "page_writes", "assembly", "upload")
#: The Storage stand-in's global file limit: a paid plan's (the free plan's 50 MB would refuse
#: 50,000 songs, as it should: `error:toolarge`).
PAID_PLAN_LIMIT = 500 * 1024**3


@dataclass
class Figures:
    """One size on one backend."""

    songs: int
    backend: str
    item_bytes: float = 0.0
    file_bytes: int = 0
    exact: bool = False
    idle_rss: int = 0
    peak_rss: int = 0
    took: float = 0.0
    split: dict[str, float] = field(default_factory=dict)
    outcome: str = ""
    stalls: list[float] | None = None
    window_took: float = 0.0
    window_outcome: str = ""


def run_worker() -> tuple[int, float, str]:
    """Run `favdesk worker --burst`; (peak RSS in bytes, seconds, its `finished` line)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "favdesk", "worker", "--burst"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = PeakRss(process.pid)
    peak.start()
    assert process.stdout is not None
    finished = ""
    for line in process.stdout:
        if " finished " in line:
            finished = line.strip()
    peak.stop.set()
    peak.join()
    if process.wait() != 0:
        raise SystemExit(f"favdesk worker --burst exited {process.returncode}: {finished}")
    return peak.bytes, time.monotonic() - started, finished


class PeakRss(threading.Thread):
    """Reads a process's VmHWM until told to stop: the kernel's high-water mark of its RSS.

    Not `ru_maxrss` from wait4: for a child started by fork (or vfork) and exec, that also
    counts the parent's RSS at the fork, this benchmark's own stand-ins included.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.bytes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            self.bytes = max(self.bytes, self.read())
            if self.stop.wait(0.02):
                self.bytes = max(self.bytes, self.read())
                return

    def read(self) -> int:
        try:
            text = self.status.read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0  # exiting: its memory is gone already


def expected_digest(sandbox: SpotifySandbox) -> tuple[str, int]:
    """SHA-256 and size of Spotify's items as one compact JSON array, built item by item."""
    digest, size = hashlib.sha256(b"["), 1
    library = sandbox.library
    for index, serial in enumerate(library.serials):
        data = (b"," if index else b"") + library.encoded(serial)
        digest.update(data)
        size += len(data)
    digest.update(b"]")
    return digest.hexdigest(), size + 1


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


def link(sandbox: SpotifySandbox) -> None:
    """Link the account through the import API; its first import stays queued."""
    with Runtime(load_settings()) as runtime:
        assert runtime.import_spotify(login_request(sandbox)).ok


def import_result(redis_url: str) -> dict:
    with redis.Redis.from_url(redis_url) as conn:
        job = Job.fetch(queue.import_job_id(USER), connection=conn)
        result = job.return_value()
        return result if isinstance(result, dict) else {"error": job.meta.get("error")}


@contextmanager
def environment(tmp: Path, sandbox: SpotifySandbox, redis_url: str, backend: str) -> Iterator:
    """The settings every favdesk process of one run reads; the Storage stand-in if asked."""
    with ExitStack() as stack:
        env = {
            **spotify_env(sandbox),
            "REDIS_URL": redis_url,
            "FAVDESK_DATA_DIR": str(tmp / "data"),
            "FAVDESK_CONFIG_DIR": str(tmp / "config"),
            "PYTHON_KEYRING_BACKEND": "tests.support.memkeyring.FileKeyring",
            "FAVDESK_TEST_KEYRING_FILE": str(tmp / "keyring.json"),
            "PYTHONPATH": str(REPO),
            "QT_QPA_PLATFORM": "offscreen",
        }
        server = None
        if backend == "supabase":
            server = stack.enter_context(
                StorageSandbox(tmp / "storage-server", max_object_size=PAID_PLAN_LIMIT)
            )
            env.update(supabase_env(server))
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            yield server
        finally:
            os.environ.clear()
            os.environ.update(saved)


def measure(songs: int, backend: str, sandbox: SpotifySandbox, window: bool) -> Figures:
    figures = Figures(songs, backend)
    digest, size = expected_digest(sandbox)
    figures.item_bytes = size / max(songs, 1)
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder, "redis"), persistent=False) as server,
        environment(Path(folder), sandbox, server.url, backend) as storage,
    ):
        keyring.set_keyring(FileKeyring())
        figures.idle_rss, _, _ = run_worker()
        link(sandbox)
        figures.peak_rss, figures.took, figures.outcome = run_worker()
        result = import_result(server.url)
        figures.split = result.get("seconds", {})
        key = str(result.get("key", "")).removeprefix(f"{BUCKET}/")
        if key:
            path = (
                storage.object_path(BUCKET, key)
                if storage is not None
                else load_settings().storage_dir / BUCKET / key
            )
            figures.file_bytes = path.stat().st_size
            figures.exact = figures.file_bytes == size and file_digest(path) == digest
        if window:
            probe = window_probe()
            figures.stalls = probe["stalls"]
            figures.window_took = probe["took"]
            figures.window_outcome = probe["outcome"]
    return figures


def window_probe() -> dict:
    """Run the app offscreen in a child process; its stall figures from Sync now to done."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.big_library", "--probe-window"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the window probe failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def probe_window() -> None:
    """Child process: the real app; press Sync now, tick every 5 ms until the sync ends."""
    from PySide6.QtCore import QTimer

    from favdesk.gui.app import Desktop, application
    from favdesk.gui.describe import can_sync

    app = application()
    desktop = Desktop(load_settings(), quit_app=lambda: None)
    ticks: list[float] = []
    clicked: list[float] = []
    before: list[object] = []
    outcome: list[str] = []

    def step() -> None:
        state = desktop.controller.state
        if not clicked:
            if state.ready and state.worker == "idle" and can_sync(state):
                before.append(state.outcome)
                probe.start(PROBE_MS)
                clicked.append(time.monotonic())
                desktop.window.account.sync.click()
            return
        if state.outcome is not None and state.outcome is not before[0]:
            outcome.append("done" if state.outcome.ok else f"failed: {state.outcome.error}")
            app.quit()

    probe = QTimer()
    probe.timeout.connect(lambda: ticks.append(time.monotonic()))
    steps = QTimer()
    steps.timeout.connect(step)
    steps.start(20)
    desktop.start()
    app.exec()
    took = time.monotonic() - clicked[0]
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    desktop.close()
    stalls = [round(gap, 4) for gap in gaps if gap >= STALL]
    print(json.dumps({"stalls": stalls, "took": took, "outcome": outcome[0]}), flush=True)


def mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def report(rows: list[Figures]) -> None:
    print(
        f"{'songs':>7} {'backend':<9} {'item':>7} {'file':>9} {'exact':<5} {'idle RSS':>9} "
        f"{'peak RSS':>9} {'delta':>9} {'import':>7}  " + " ".join(f"{name:>11}" for name in SPLIT)
    )
    for row in rows:
        split = " ".join(
            f"{row.split[name]:>9.2f} s" if name in row.split else f"{'-':>11}" for name in SPLIT
        )
        print(
            f"{row.songs:>7,} {row.backend:<9} {row.item_bytes:>5.0f} B {mb(row.file_bytes):>9} "
            f"{'yes' if row.exact else 'NO':<5} {mb(row.idle_rss):>9} {mb(row.peak_rss):>9} "
            f"{mb(row.peak_rss - row.idle_rss):>9} {row.took:>5.1f} s  {split}"
        )
        if row.outcome and "ok" not in row.outcome.split(": ")[-1]:
            print(f"        worker: {row.outcome}")
    print()
    print(f"{'songs':>7} {'backend':<9} window: Sync now -> done, stalls of 50 ms or more")
    for row in rows:
        if row.stalls is None:
            continue
        longest = f"{max(row.stalls) * 1000:.0f} ms" if row.stalls else "-"
        print(
            f"{row.songs:>7,} {row.backend:<9} {row.window_took:6.1f} s, "
            f"{len(row.stalls)} stalls, longest {longest} ({row.window_outcome})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--backends", nargs="+", default=["local", "supabase"])
    parser.add_argument("--latency", type=float, default=0.005, help="Spotify's, in seconds")
    parser.add_argument("--no-window", action="store_true", help="skip the app's event loop")
    parser.add_argument("--probe-window", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.probe_window:
        probe_window()
        return
    rows = []
    for songs in options.songs:
        with SpotifySandbox(tracks=songs, user_id=USER) as sandbox:
            sandbox.faults.latency = options.latency
            for backend in options.backends:
                rows.append(measure(songs, backend, sandbox, not options.no_window))
    print(f"Spotify stand-in answering in {options.latency * 1000:g} ms")
    report(rows)


if __name__ == "__main__":
    main()
