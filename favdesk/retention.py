"""Retention: keep the newest N daily snapshots plus the newest one of each month; by default
everything is kept.

It deletes only what favdesk wrote: a user's `spotify/{userId}/YYYY-MM-DD.json` that the
record of written snapshots (`history.py`'s `written.json`) holds with the size Storage still
reports. Other names, other users' folders, snapshots the web app or another computer wrote,
and a snapshot replaced since favdesk wrote it are never touched. A plan is made first, shown
(`favdesk prune --dry-run`, the window's question), and carried out only on request; it is
checked against a fresh listing right before each deletion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from favdesk.history import HistoryFolder, day_files, forget
from favdesk.storage import Storage, StoredFile


@dataclass(frozen=True)
class RetentionPlan:
    """What retention would do with a user's snapshots, newest first in each group."""

    user_id: str
    keep_daily: int
    #: Kept by the rule (the newest N, and each month's newest).
    keep: tuple[StoredFile, ...]
    #: Outside the rule and written by favdesk here: these would be deleted.
    delete: tuple[StoredFile, ...]
    #: Outside the rule but not favdesk's to delete (another writer, or changed since).
    foreign: tuple[StoredFile, ...]


def plan(
    user_id: str, files: Iterable[StoredFile], keep_daily: int, written: Mapping[str, int]
) -> RetentionPlan:
    """The plan for `files` (a user's listing) under "keep the newest `keep_daily` plus each
    month's newest"; `written` is favdesk's record, key -> size."""
    if keep_daily < 1:
        raise ValueError("keep_daily must be at least 1")
    snapshots = list(reversed(day_files(files)))
    months: set[tuple[int, int]] = set()
    keep, delete, foreign = [], [], []
    for position, stored in enumerate(snapshots):
        assert stored.day is not None
        month = (stored.day.year, stored.day.month)
        newest_of_month = month not in months
        months.add(month)
        if position < keep_daily or newest_of_month:
            keep.append(stored)
        elif written.get(stored.key) == stored.size:
            delete.append(stored)
        else:
            foreign.append(stored)
    return RetentionPlan(user_id, keep_daily, tuple(keep), tuple(delete), tuple(foreign))


def make_plan(storage: Storage, data_dir: Path, user_id: str, keep_daily: int) -> RetentionPlan:
    """The plan for a user's snapshots as Storage lists them now."""
    written = HistoryFolder(data_dir, user_id).written()
    return plan(user_id, storage.list_files(user_id), keep_daily, written)


def apply(storage: Storage, data_dir: Path, planned: RetentionPlan) -> list[StoredFile]:
    """Delete what `planned` would delete and is still as planned: listed with the same size
    and still in favdesk's record. The deleted files."""
    fresh = make_plan(storage, data_dir, planned.user_id, planned.keep_daily)
    still = {(f.key, f.size) for f in fresh.delete}
    deleted = []
    for stored in planned.delete:
        if (stored.key, stored.size) not in still:
            continue
        storage.delete(stored.key)
        deleted.append(stored)
    forget(data_dir, planned.user_id, (f.key for f in deleted))
    return deleted
