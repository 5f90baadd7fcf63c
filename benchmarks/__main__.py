"""Every benchmark as one table, each figure beside its target: `make bench`.

    .venv/bin/python -m benchmarks            # the published sizes (under 10 minutes, 2 cores)
    .venv/bin/python -m benchmarks --smoke    # every benchmark at a tiny size (tests run this)

In order: the fetch (`fetch_library`), the whole import at 1,000, 10,000 and 50,000 songs
(`big_library`, when it is there), Redis commands (`redis_commands`) and shutdown times
(`shutdown`). The machine and its load average before and after come first and last: figures
taken while other work ran are noisy, so rerun when the machine is quiet.
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from typing import Any

from benchmarks import fetch_library, redis_commands, shutdown
from benchmarks.table import Row, Section, print_rows
from favdesk.sandbox.spotify import SpotifySandbox

MB = 1024 * 1024
#: Issue 9's targets for the whole import.
RSS_TARGET = 64 * MB


@dataclass(frozen=True)
class Sizes:
    tracks: int = 10_000
    limited_tracks: int = 10_000
    limits: tuple[tuple[int, float, int | None], ...] = fetch_library.LIMITS
    import_songs: tuple[int, ...] = (1_000, 10_000, 50_000)
    backends: tuple[str, ...] = ("local", "supabase")
    window_songs: int = 10_000
    redis_window: float = 10.0
    redis_songs: int = 2_345
    shutdown_tracks: int = 2_345
    shutdown_runs: int = 3


SMOKE = Sizes(
    tracks=120,
    limited_tracks=300,
    limits=((3, 1.0, None),),
    import_songs=(120,),
    backends=("local",),
    window_songs=0,
    redis_window=0.2,
    redis_songs=120,
    shutdown_tracks=50,
    shutdown_runs=1,
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.platform(terse=True)}, "
        f"Python {platform.python_version()}"
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def whole_import(sizes: Sizes) -> Iterator[Row | Section]:
    """`benchmarks/big_library.py`'s figures (issue 9), as rows with their targets."""
    if find_spec("benchmarks.big_library") is None:
        yield Section("Whole import: benchmarks/big_library.py is not there yet; not measured")
        return
    big_library = import_module("benchmarks.big_library")
    latency = 0.005
    yield Section(
        f"Whole import, Spotify stand-in ({latency * 1000:g} ms) -> file in Storage, real "
        "`favdesk worker --burst` (benchmarks.big_library; peak RSS is VmHWM, idle the same "
        "command on an empty queue; the window: the app offscreen, Sync now -> done)"
    )
    for songs in sizes.import_songs:
        with SpotifySandbox(tracks=songs, user_id=big_library.USER) as sandbox:
            sandbox.faults.latency = latency
            for backend in sizes.backends:
                window = songs == sizes.window_songs and backend == sizes.backends[0]
                figures = big_library.measure(songs, backend, sandbox, window)
                yield from import_rows(figures)


def import_rows(figures: Any) -> Iterator[Row]:
    """One size on one backend: a `big_library.Figures`."""
    yield Row(
        f"import {figures.songs:,} songs, {figures.backend}",
        f"{figures.took:5.1f} s, {figures.file_bytes / MB:.1f} MB file, "
        f"{'exact' if figures.exact else 'NOT exact'}",
        "exact file",
        figures.exact,
    )
    if figures.split:
        split = ", ".join(f"{name} {seconds:.2f}" for name, seconds in figures.split.items())
        yield Row("  where the time went (s)", split)
    delta = figures.peak_rss - figures.idle_rss
    yield Row(
        "  peak RSS",
        f"{figures.peak_rss / MB:.1f} MB (idle {figures.idle_rss / MB:.1f}, +{delta / MB:.1f})",
        "<= idle + 64 MB",
        delta <= RSS_TARGET,
    )
    if figures.stalls is None:
        return
    yield Row(
        "  window: Sync now -> done shown",
        f"{figures.window_took:.1f} s ({figures.window_outcome})",
    )
    longest = f"{max(figures.stalls) * 1000:.0f} ms" if figures.stalls else "none"
    yield Row(
        "  longest event-loop stall (>= 50 ms)",
        f"{longest} ({len(figures.stalls)} stalls)",
        "no stall",
        not figures.stalls,
    )


def everything(sizes: Sizes) -> Iterator[Row | Section]:
    yield Section(f"Machine: {machine()}; {load()} at the start")
    yield from fetch_library.rows(sizes.tracks, sizes.limited_tracks, limits=sizes.limits)
    yield from whole_import(sizes)
    yield from redis_commands.rows(sizes.redis_window, sizes.redis_songs)
    yield from shutdown.rows(sizes.shutdown_tracks, sizes.shutdown_runs)
    yield Section(f"Done; {load()} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every benchmark at a tiny size")
    args = parser.parse_args()
    print_rows(everything(SMOKE if args.smoke else Sizes()))


if __name__ == "__main__":
    main()
