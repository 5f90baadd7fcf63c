"""The history of big snapshots: time and peak memory of listing, comparing and exporting
50,000-song snapshots (about 175 MB each, markets included) on both backends: figures, not a test.

Two snapshots of a day apart (the second with 12 songs liked and 3 unliked) are stored in the
local folder and in the Storage stand-in (over real HTTP). Each step runs in a child process of
its own, so its peak RSS (VmHWM) is its own: the history listed with no index (every file
read once), listed again (nothing read), the diff of the two, and the newer one as CSV.

    .venv/bin/python -m benchmarks.history [--songs 50000] [--backends local supabase]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path

from favdesk.history import HistoryFolder, refresh
from favdesk.sandbox.spotify_library import LibraryGenerator
from favdesk.sandbox.storage import StorageSandbox
from favdesk.secret import Secret
from favdesk.storage import Storage, raw_key
from favdesk.storage.local import LocalStorage
from favdesk.storage.supabase import SupabaseStorage

USER = "zoe"
DAYS = (date(2026, 11, 1), date(2026, 11, 2))
MARKETS = [a + b for a in "ABCDEFGHIJKLMN" for b in "ABCDEFGHIJKLM"][:185]
STEPS = ("baseline", "history (no index)", "history (indexed)", "diff", "export CSV")
MB = 1024 * 1024


def write_snapshot(path: Path, serials: list[int]) -> None:
    """A snapshot as the import writes it, with `available_markets` as Spotify sends them."""
    generator = LibraryGenerator(3)
    with path.open("wb") as out:
        out.write(b"[")
        for position, serial in enumerate(serials):
            item = generator.item(serial)
            track = item["track"]
            if track and not track.get("is_local"):
                track["available_markets"] = track["album"]["available_markets"] = MARKETS
            out.write(
                (b"," if position else b"") + json.dumps(item, separators=(",", ":")).encode()
            )
        out.write(b"]")


def open_storage(kind: str, where: str) -> Storage:
    if kind == "local":
        return LocalStorage(Path(where))
    url, key = where.split(" ", 1)
    return SupabaseStorage(url, Secret(key), timeout=120)


def step(kind: str, where: str, data_dir: str, name: str) -> dict:
    """One step in this (child) process: its time, and the process's peak RSS."""
    storage = open_storage(kind, where)
    started = time.perf_counter()
    read = 0
    if name == "history (no index)":
        HistoryFolder(Path(data_dir), USER).index_path.unlink(missing_ok=True)
        for path in (HistoryFolder(Path(data_dir), USER).directory / "ids").glob("*"):
            path.unlink()
        read = refresh(storage, Path(data_dir), USER).read
    elif name == "history (indexed)":
        read = refresh(storage, Path(data_dir), USER).read
    elif name == "diff":
        from favdesk.diff import compare, pick
        from favdesk.history import identities

        found = refresh(storage, Path(data_dir), USER)
        old, new = pick(found, None, None)
        folder = HistoryFolder(Path(data_dir), USER)
        changes = compare(storage, USER, old, new, lambda s: identities(storage, folder, s))
        read = len(changes.added) + len(changes.removed)
    elif name == "export CSV":
        from favdesk.export import export_to_file

        with tempfile.TemporaryDirectory() as folder:
            read = export_to_file(storage, raw_key(USER, DAYS[1]), Path(folder, "liked.csv"))
    seconds = time.perf_counter() - started
    storage.close()
    return {"seconds": round(seconds, 2), "peak_mb": round(peak_rss_mb(), 1), "count": read}


def peak_rss_mb() -> float:
    """This process's peak RSS since its exec (VmHWM; `ru_maxrss` would carry the parent's
    from the fork, and the parent holds the Storage stand-in)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_steps(kind: str, where: str, data_dir: Path) -> list[tuple[str, dict]]:
    results = []
    for name in STEPS:
        command = [sys.executable, "-m", "benchmarks.history", "--child", kind, where]
        output = subprocess.run(
            [*command, str(data_dir), name], capture_output=True, text=True, check=True
        ).stdout
        results.append((name, json.loads(output)))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=50_000)
    parser.add_argument("--backends", nargs="+", default=["local", "supabase"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(step(*args.child)))
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        first = list(range(args.songs - 1, -1, -1))
        second = list(range(args.songs + 11, args.songs - 1, -1)) + first[:100] + first[103:]
        files = []
        for day, serials in zip(DAYS, (first, second), strict=True):
            files.append(root / f"{day}.json")
            write_snapshot(files[-1], serials)
        size = files[0].stat().st_size / MB
        print(f"{args.songs:,} songs, {size:.0f} MB a snapshot; peak RSS of each step's process")
        for kind in args.backends:
            with ExitStack() as stack:
                where = str(root / "bucket")
                if kind == "supabase":
                    server = stack.enter_context(
                        StorageSandbox(root / "server", max_object_size=2**40)
                    )
                    where = f"{server.url} {server.service_role_key}"
                storage = open_storage(kind, where)
                storage.ensure_bucket()
                for day, path in zip(DAYS, files, strict=True):
                    storage.upload_file(raw_key(USER, day), path)
                storage.close()
                for name, result in run_steps(kind, where, root / f"data-{kind}"):
                    print(
                        f"  {kind:<8} {name:<20} {result['seconds']:>7.2f} s "
                        f"{result['peak_mb']:>7.1f} MB  ({result['count']:,})",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
