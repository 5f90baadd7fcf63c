"""What changed between two snapshots: the songs added and removed, by identity.

Identities are `snapshot.py`'s (the uri; a null track by its `added_at`; duplicates numbered),
so the counts always agree with the song counts: new count = old count + added - removed. Both
files are streamed: the older one's identities first (or the copy the history keeps), then the
newer one, keeping only the added songs' details, then the older one again only if songs were
removed. Equal digests mean equal songs: nothing is read at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from favdesk.errors import FavdeskError, SnapshotUnreadable
from favdesk.history import History, Snapshot, change_words
from favdesk.snapshot import Identities, Track, numbered, stored_items, track_of
from favdesk.storage import Storage


@dataclass(frozen=True)
class SnapshotDiff:
    """The songs in `new` that are not in `old`, and the other way round, in file order."""

    user_id: str
    old: Snapshot
    new: Snapshot
    added: tuple[Track, ...]
    removed: tuple[Track, ...]

    @property
    def summary(self) -> str:
        """`+12 songs, -3 songs` (the words of the notification and the CLI)."""
        return change_words(len(self.added), len(self.removed))


def pick(history: History, first: date | None, second: date | None) -> tuple[Snapshot, Snapshot]:
    """The two snapshots to compare, older first: the last two by default; one date: that one
    and the newest; two dates: those two, in whichever order they were given."""
    snapshots = history.snapshots
    if first is None:
        if len(snapshots) < 2:
            have = "no snapshot" if not snapshots else "only one snapshot"
            raise FavdeskError(f"There is {have} of user {history.user_id} yet: a diff needs two")
        return snapshots[1], snapshots[0]
    older = find(history, first)
    newer = find(history, second) if second is not None else snapshots[0]
    if older.day == newer.day:
        raise FavdeskError(
            f"{older.day} is the newest snapshot: give an older date too, as in "
            f"`favdesk diff {snapshots[-1].day} {older.day}`"
            if second is None
            else "Give two different dates"
        )
    return (older, newer) if older.day < newer.day else (newer, older)


def find(history: History, day: date) -> Snapshot:
    """The snapshot of `day`, or an error listing the newest days there are."""
    found = history.find(day)
    if found is not None:
        return found
    days = ", ".join(str(s.day) for s in history.snapshots[:10]) or "none"
    raise FavdeskError(
        f"No snapshot of {day} for user {history.user_id}: the newest are {days} "
        "(`favdesk history` lists them all)"
    )


def compare(
    storage: Storage,
    user_id: str,
    old: Snapshot,
    new: Snapshot,
    identities_of: Callable[[Snapshot], Identities],
) -> SnapshotDiff:
    """Compare two snapshots, streaming each file (see the module's doc)."""
    for snapshot in (old, new):
        if snapshot.problem:
            raise SnapshotUnreadable(f"{snapshot.path} cannot be compared: {snapshot.problem}")
    if old.digest == new.digest:
        return SnapshotDiff(user_id, old, new, (), ())
    before = identities_of(old).members
    added: list[Track] = []
    after: set[str] = set()
    for identity, item in numbered(stored_items(storage, new.key)):
        after.add(identity)
        if identity not in before:
            added.append(track_of(identity, item))
    gone = before - after
    removed = [
        track_of(identity, item)
        for identity, item in numbered(stored_items(storage, old.key))
        if identity in gone
    ] if gone else []  # fmt: skip
    return SnapshotDiff(user_id, old, new, tuple(added), tuple(removed))
