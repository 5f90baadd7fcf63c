"""Big libraries stream: pages to disk, the day's file from them, the upload from the file.

The figures at 10,000 and 50,000 songs (memory, time split, the window's event loop) are the
benchmark's (`benchmarks/big_library.py`); here it runs at a tiny size so it never rots, and
memory is checked where it is decided: what the fetch holds while the library goes to disk.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from favdesk.checkpoint import PageCheckpoint
from favdesk.sandbox.spotify import SpotifySandbox
from favdesk.spotify.library import LibraryFetcher
from tests.support.spotify_tokens import SandboxTokens

REPO = Path(__file__).resolve().parents[1]


def peak_while(call) -> int:
    """Peak bytes Python allocated during `call` (the stand-in's own included)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_fetching_to_disk_holds_pages_not_the_library(tmp_path):
    with SpotifySandbox(tracks=8_000, seed=5) as sandbox:
        fetcher = LibraryFetcher(sandbox.api_url, SandboxTokens(sandbox), max_concurrency=2)
        items = fetcher.fetch()  # also warms the stand-in's cache of encoded items
        checkpoint = PageCheckpoint(tmp_path / "pages")

        in_memory = peak_while(fetcher.fetch)
        to_disk = peak_while(lambda: fetcher.fetch_to(checkpoint.save))

    print(f"\nfetch(): {in_memory / 1e6:.1f} MB, fetch_to(disk): {to_disk / 1e6:.1f} MB")
    assert to_disk < in_memory / 5
    assert checkpoint.assemble(len(items)).stat().st_size > 8_000 * 1_000


@pytest.mark.slow
def test_the_big_library_benchmark_runs_at_a_tiny_size():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.big_library", "--songs", "120"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.lstrip().startswith("120 ")]
    assert [(row[1], row[6]) for row in rows[:2]] == [("local", "yes"), ("supabase", "yes")]
    assert [row[1] for row in rows[2:]] == ["local", "supabase"]
    assert all(row[-1] == "(done)" for row in rows[2:]), done.stdout
