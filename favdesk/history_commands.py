"""CLI handlers of the backup history: `history`, `diff`, `export` and `prune`.

Each takes (args, settings), calls the runtime as the History tab does, prints plain lines (or
JSON) and returns an exit code; errors are printed by `favdesk.cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from favdesk.commands import to_jsonable
from favdesk.diff import SnapshotDiff
from favdesk.errors import FavdeskError
from favdesk.history import History
from favdesk.retention import RetentionPlan
from favdesk.runtime import Runtime
from favdesk.schedule import next_run
from favdesk.settings import Settings
from favdesk.snapshot import Track, TrackKind
from favdesk.storage import StoredFile, megabytes

LATEST = "latest"


def _progress(done: int, total: int, day: date) -> None:
    print(f"reading the snapshot of {day} ({done} of {total})...", file=sys.stderr, flush=True)


# --- history ---------------------------------------------------------------------------------


def history(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk history [--json]`: every snapshot, by day, with songs, size and change."""
    with Runtime(settings) as runtime:
        found = runtime.history(args.user, on_progress=_progress)
        where = runtime.storage_description
        next_at = _next_backup(runtime, found.user_id)
    if args.json:
        print(json.dumps(to_jsonable(found.snapshots), indent=2, default=str))
        return 0
    print_history(found, where, settings, next_at)
    return 0


def _next_backup(runtime: Runtime, user_id: str) -> datetime | None:
    account = runtime.default_account(user_id)
    last = runtime.scheduler.log.last_run(user_id)
    linked = datetime.fromtimestamp(account.linked_at, UTC)
    return next_run(runtime.settings.backup_schedule, datetime.now(UTC), last, linked)


def print_history(found: History, where: str, settings: Settings, next_at: datetime | None) -> None:
    count = len(found.snapshots)
    print(f"{count} snapshot{'s' if count != 1 else ''} of user {found.user_id} in {where}")
    if count:
        print(f"  {'date':<10}  {'songs':>8}  {'size':>8}  change")
    for snapshot in found.snapshots:
        songs = f"{snapshot.count:,}" if snapshot.count is not None else "?"
        change = snapshot.problem or snapshot.change
        print(f"  {snapshot.day}  {songs:>8}  {megabytes(snapshot.size):>8}  {change}")
    schedule = settings.backup_schedule
    when = f"; next {next_at.astimezone():%Y-%m-%d %H:%M}" if next_at and schedule.enabled else ""
    print(f"Automatic backups: {schedule.describe()}{when}")


# --- diff ------------------------------------------------------------------------------------


def diff(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk diff [DATE_A [DATE_B]] [--json]`: songs added and removed between two snapshots."""
    with Runtime(settings) as runtime:
        changes = runtime.diff(args.first, args.second, args.user)
    if args.json:
        print(json.dumps(to_jsonable(changes), indent=2, default=str))
        return 0
    print_diff(changes)
    return 0


def print_diff(changes: SnapshotDiff) -> None:
    old, new = changes.old, changes.new
    print(
        f"{changes.user_id}: {old.day} -> {new.day}: {changes.summary} "
        f"({_songs(old.count)} -> {_songs(new.count)})"
    )
    for title, sign, tracks in (("Added", "+", changes.added), ("Removed", "-", changes.removed)):
        if tracks:
            print(f"{title} ({len(tracks):,}):")
        for track in tracks:
            print(f"  {sign} {track_line(track)}")


def track_line(track: Track) -> str:
    """`Name - Artist, Artist - Album (added 2026-05-03)`; local files and null tracks say so."""
    added = f"(added {track.added_at[:10]})" if track.added_at else "(no date)"
    if track.kind is TrackKind.UNAVAILABLE:
        return f"[a song Spotify no longer serves] {added}"
    parts = [track.name or "(no name)"]
    if track.artists:
        parts.append(", ".join(track.artists))
    if track.album:
        parts.append(track.album)
    local = " [local file]" if track.kind is TrackKind.LOCAL else ""
    return printable(f"{' - '.join(parts)}{local} {added}")


def printable(text: str) -> str:
    """Names as a terminal shows them, never as commands to it: control characters (escape
    sequences, carriage returns) become their \\x escapes."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _songs(count: int | None) -> str:
    return f"{count:,} songs" if count is not None else "? songs"


# --- export ----------------------------------------------------------------------------------


def export(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk export DATE [--out FILE]`: a snapshot as Exportify's CSV (stdout by default)."""
    with Runtime(settings) as runtime:
        day = _export_day(runtime, args.user, args.day)
        if args.out is None:
            runtime.export_csv(day, sys.stdout, args.user)
            return 0
        target = Path(args.out).expanduser()
        count = runtime.export_csv(day, target, args.user)
    print(f"Wrote {count:,} songs of {day} to {target}", file=sys.stderr)
    return 0


def _export_day(runtime: Runtime, user_id: str | None, text: str) -> date:
    if text != LATEST:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise FavdeskError(f"{text!r} is not a date: use YYYY-MM-DD or `latest`") from None
    latest = runtime.history(user_id).latest
    if latest is None:
        raise FavdeskError("There is no snapshot yet: run `favdesk sync` first")
    return latest.day


# --- prune -----------------------------------------------------------------------------------


def prune(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk prune [--keep N] [--dry-run] [--yes]`: retention, shown first, asked on a
    terminal; only favdesk's own snapshots are ever deleted."""
    with Runtime(settings) as runtime:
        plan = runtime.retention_plan(args.keep, args.user)
        print_plan(plan)
        if args.dry_run or not plan.delete:
            return 0
        if not args.yes and not _confirmed(len(plan.delete)):
            print("Nothing was deleted.")
            return 1
        deleted = runtime.prune(plan)
    skipped = len(plan.delete) - len(deleted)
    print(f"Deleted {len(deleted)} snapshot{'s' if len(deleted) != 1 else ''}.")
    if skipped:
        print(f"{skipped} changed or went away meanwhile and were left alone.")
    return 0


def print_plan(plan: RetentionPlan) -> None:
    print(
        f"Retention for user {plan.user_id}: keep the newest {plan.keep_daily} snapshots and "
        "the newest of each month."
    )
    size = sum(f.size for f in plan.delete)
    if plan.delete:
        print(f"Would delete {len(plan.delete)} snapshot(s), {megabytes(size)}:")
    else:
        print("Nothing to delete.")
    for stored in plan.delete:
        print(f"  {_file_line(stored)}")
    print(f"Keeping {len(plan.keep)} snapshot(s) by the rule.")
    if plan.foreign:
        print(
            f"Also keeping {len(plan.foreign)} older snapshot(s) favdesk did not write on this "
            "computer (the web app or another computer did, or they changed since):"
        )
        for stored in plan.foreign:
            print(f"  {_file_line(stored)}")


def _file_line(stored: StoredFile) -> str:
    return f"{stored.path}  {megabytes(stored.size)}"


def _confirmed(count: int) -> bool:
    if not sys.stdin.isatty():
        raise FavdeskError(
            "Not deleting without a question answered: run with --dry-run to see the plan, "
            "then with --yes to carry it out"
        )
    answer = input(f"Delete these {count} snapshot(s)? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
