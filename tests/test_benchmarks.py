"""The benchmarks run, so none rots: each at a tiny size, printing its part of the one table.

Their figures are not checked here (benchmarks are not tests); `make bench` prints them and
docs/benchmarks.md keeps a run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.table import header

REPO = Path(__file__).resolve().parents[1]


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_make_bench_prints_every_benchmark_as_one_table_at_a_tiny_size():
    done = run_module("benchmarks", "--smoke")

    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == header()
    sections = [line.removeprefix("-- ") for line in lines if line.startswith("-- ")]
    for title in (
        "Machine: ",
        "Fetch 120 liked songs",
        "Rolling limit 3 per 1 s",
        "Whole import",
        "Redis commands",
        "Shutdown",
        "Done; load average",
    ):
        assert any(section.startswith(title) for section in sections), title
    assert "favdesk, default" in done.stdout
    assert "stock rq worker, suspended, per hour" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("module", ["fetch_library", "redis_commands", "shutdown"])
def test_each_benchmark_runs_on_its_own(module):
    done = run_module(f"benchmarks.{module}", "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: ")
