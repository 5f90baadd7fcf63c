"""A user's snapshots over time, listed from a small local index instead of downloading them.

A snapshot is a `YYYY-MM-DD.json` file in the user's folder (the web app's layout: one a day).
The index, `{data dir}/history/{userId}/index.json`, keeps for each one its day, size, etag and
Storage's time, the song count, the digest of its identities (`snapshot.py`), and the change from
the snapshot before it (songs added, removed, and which snapshot that was). It is filled as
favdesk writes a snapshot (`record_written`, from the import, which has the file on disk) and
brought up to date by `refresh` from one Storage listing: only a file it does not know, or whose
size, etag or time changed, is read (streamed, once); a change is recounted only when the
snapshot before it changed, and equal digests mean equal songs, so nothing is read for them.
The identities of the two newest snapshots are kept beside it (`ids/`, about 1 MB each for
50,000 songs), so the next day's change costs no download.

`index.json` and `ids/` are caches: deleted, they are rebuilt from Storage. `written.json` is
not: it is favdesk's record of the snapshots it wrote on this computer (key and size), which
retention needs before it deletes anything.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from favdesk.errors import FavdeskError, SnapshotUnreadable, StorageError
from favdesk.snapshot import Identities, collect_identities, iter_items, stored_items
from favdesk.storage import BUCKET, Storage, StoredFile, check_user_id
from favdesk.storage.local import write_atomic

log = logging.getLogger(__name__)

INDEX_VERSION = 1
#: Identities kept on disk for this many of the newest snapshots.
KEEP_IDS = 2
#: `on_progress(done, total, day)`: a snapshot is being read to index it.
OnProgress = Callable[[int, int, date], None]

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Snapshot:
    """One snapshot as the history shows it."""

    day: date
    key: str
    size: int
    #: Songs in it (items, null tracks and local files included); None if it is unreadable.
    count: int | None
    #: SHA-256 of its sorted identities ("" if unreadable).
    digest: str
    etag: str | None = None
    updated_at: datetime | None = None
    #: The snapshot the change is counted from; None for the first (or while unknown).
    previous: date | None = None
    #: That snapshot's digest when the change was counted (its file may be replaced later).
    previous_digest: str = ""
    added: int | None = None
    removed: int | None = None
    #: Why it could not be read, if it could not.
    problem: str | None = None

    @property
    def path(self) -> str:
        return f"{BUCKET}/{self.key}"

    @property
    def change(self) -> str:
        """`+12, -3`; `first` for the first snapshot; `?` while not known."""
        if self.previous is None and self.added is None:
            return "first" if self.problem is None else "?"
        if self.added is None or self.removed is None:
            return "?"
        return f"+{self.added:,}, -{self.removed:,}"

    @property
    def summary(self) -> str:
        """`+12 songs, -3 songs since 2026-12-05 (1,243 songs)`: what an automatic backup says."""
        songs = f"{self.count:,} songs" if self.count is not None else "songs not counted"
        if self.previous is None or self.added is None or self.removed is None:
            return songs if self.previous is not None or self.problem else f"{songs}, the first"
        return f"{change_words(self.added, self.removed)} since {self.previous} ({songs})"


def change_words(added: int, removed: int) -> str:
    """`+12 songs, -3 songs`; `no change`."""
    if not added and not removed:
        return "no change"
    return f"+{added:,} {_songs(added)}, -{removed:,} {_songs(removed)}"


def _songs(count: int) -> str:
    return "song" if count == 1 else "songs"


@dataclass(frozen=True)
class History:
    """A user's snapshots, newest first, and how many files the listing had to read."""

    user_id: str
    snapshots: tuple[Snapshot, ...]
    read: int = 0

    @property
    def latest(self) -> Snapshot | None:
        return self.snapshots[0] if self.snapshots else None

    def find(self, day: date) -> Snapshot | None:
        return next((s for s in self.snapshots if s.day == day), None)


def day_files(files: Iterable[StoredFile]) -> list[StoredFile]:
    """The snapshots among a user's files (`YYYY-MM-DD.json`), oldest first."""
    found = [f for f in files if f.day is not None]
    return sorted(found, key=lambda f: f.name)


# --- the folder -----------------------------------------------------------------------------


class HistoryFolder:
    """`{data dir}/history/{userId}/`: the index, the kept identities and the written record."""

    def __init__(self, data_dir: Path, user_id: str) -> None:
        self.directory = Path(data_dir) / "history" / check_user_id(user_id)

    @property
    def index_path(self) -> Path:
        return self.directory / "index.json"

    @property
    def written_path(self) -> Path:
        return self.directory / "written.json"

    def load_index(self) -> dict[str, Snapshot]:
        """The indexed snapshots by key; a missing or damaged index is an empty one."""
        raw = _read_json(self.index_path)
        if not isinstance(raw, dict) or raw.get("version") != INDEX_VERSION:
            return {}
        found: dict[str, Snapshot] = {}
        for row in raw.get("snapshots") or []:
            snapshot = _snapshot_from_json(row)
            if snapshot is not None:
                found[snapshot.key] = snapshot
        return found

    def save_index(self, snapshots: Iterable[Snapshot]) -> None:
        rows = [_snapshot_to_json(s) for s in sorted(snapshots, key=lambda s: s.day)]
        data = {"version": INDEX_VERSION, "snapshots": rows}
        write_atomic(self.index_path, json.dumps(data, indent=1).encode())

    def written(self) -> dict[str, int]:
        """Key -> size of each snapshot favdesk wrote from this computer."""
        raw = _read_json(self.written_path)
        if not isinstance(raw, dict):
            return {}
        return {k: v["size"] for k, v in raw.items() if isinstance(v, dict) and "size" in v}

    def note_written(self, key: str, size: int) -> None:
        raw = _read_json(self.written_path)
        record = raw if isinstance(raw, dict) else {}
        record[key] = {"size": size, "written_at": datetime.now(UTC).isoformat()}
        write_atomic(self.written_path, json.dumps(record, indent=1, sort_keys=True).encode())

    def forget_written(self, keys: Iterable[str]) -> None:
        raw = _read_json(self.written_path)
        if not isinstance(raw, dict):
            return
        for key in keys:
            raw.pop(key, None)
        write_atomic(self.written_path, json.dumps(raw, indent=1, sort_keys=True).encode())

    # identities of the newest snapshots

    def _ids_path(self, day: date) -> Path:
        return self.directory / "ids" / f"{day.isoformat()}.txt.gz"

    def cached_ids(self, snapshot: Snapshot) -> Identities | None:
        """The kept identities of `snapshot`, if they are of this very file."""
        path = self._ids_path(snapshot.day)
        try:
            with gzip.open(path, "rt", encoding="utf-8", errors="surrogatepass") as lines:
                if lines.readline().rstrip("\n") != _ids_header(snapshot):
                    return None
                members = frozenset(line.rstrip("\n") for line in lines)
        except (OSError, EOFError, UnicodeError):
            return None
        ids = Identities(members)
        return ids if ids.digest == snapshot.digest else None

    def keep_ids(self, snapshot: Snapshot, ids: Identities) -> None:
        path = self._ids_path(snapshot.day)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f"{identity}\n" for identity in sorted(ids.members))
        data = f"{_ids_header(snapshot)}\n{body}".encode("utf-8", "surrogatepass")
        write_atomic(path, gzip.compress(data, compresslevel=5))

    def prune_ids(self, keep: Iterable[date]) -> None:
        wanted = {self._ids_path(day).name for day in keep}
        folder = self.directory / "ids"
        if not folder.is_dir():
            return
        for path in folder.iterdir():
            if path.name not in wanted:
                path.unlink(missing_ok=True)


def _ids_header(snapshot: Snapshot) -> str:
    return f"# {snapshot.key} {snapshot.size} {snapshot.digest}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    row = asdict(snapshot)
    for name in ("day", "previous", "updated_at"):
        value = row[name]
        row[name] = value.isoformat() if value is not None else None
    return row


def _snapshot_from_json(row: Any) -> Snapshot | None:
    try:
        return Snapshot(
            day=date.fromisoformat(row["day"]),
            key=str(row["key"]),
            size=int(row["size"]),
            count=None if row["count"] is None else int(row["count"]),
            digest=str(row["digest"]),
            etag=row.get("etag"),
            updated_at=datetime.fromisoformat(row["updated_at"]) if row.get("updated_at") else None,
            previous=date.fromisoformat(row["previous"]) if row.get("previous") else None,
            previous_digest=str(row.get("previous_digest") or ""),
            added=row.get("added"),
            removed=row.get("removed"),
            problem=row.get("problem"),
        )
    except (KeyError, TypeError, ValueError):
        return None


@contextmanager
def _locked(folder: HistoryFolder) -> Iterator[None]:
    """One reader-writer of a user's history at a time in this process (the app's worker
    writes while the window lists). Another process may race it: the files are replaced
    atomically, so the worst case is a snapshot read once more."""
    with _locks_guard:
        lock = _locks.setdefault(folder.directory, threading.Lock())
    with lock:
        yield


# --- reading snapshots -------------------------------------------------------------------------


def read_snapshot(storage: Storage, key: str) -> Identities:
    """A stored snapshot's identities, streamed from Storage."""
    return collect_identities(stored_items(storage, key))


def identities(storage: Storage, folder: HistoryFolder, snapshot: Snapshot) -> Identities:
    """A snapshot's identities: the kept copy when it is of this file, else from Storage."""
    cached = folder.cached_ids(snapshot)
    return cached if cached is not None else read_snapshot(storage, snapshot.key)


def _indexed(stored: StoredFile, ids: Identities) -> Snapshot:
    assert stored.day is not None
    return Snapshot(
        day=stored.day,
        key=stored.key,
        size=stored.size,
        count=ids.count,
        digest=ids.digest,
        etag=stored.etag,
        updated_at=stored.updated_at,
    )


def _unreadable(stored: StoredFile, error: FavdeskError) -> Snapshot:
    assert stored.day is not None
    return Snapshot(
        stored.day, stored.key, stored.size, None, "", stored.etag, stored.updated_at,
        problem=str(error),
    )  # fmt: skip


def _fresh(known: Snapshot | None, stored: StoredFile) -> bool:
    """The index's entry still describes the stored file: same size, and the same etag and
    time wherever both sides know them (an entry written by the import knows neither)."""
    if known is None or known.size != stored.size:
        return False
    if known.etag and stored.etag and known.etag != stored.etag:
        return False
    return not (known.updated_at and stored.updated_at and known.updated_at != stored.updated_at)


# --- listing -----------------------------------------------------------------------------------


def refresh(
    storage: Storage, data_dir: Path, user_id: str, on_progress: OnProgress | None = None
) -> History:
    """Every snapshot of the user in Storage, newest first, reading only what the index does
    not know (see the module's doc); the index is saved for next time."""
    folder = HistoryFolder(data_dir, user_id)
    with _locked(folder):
        files = day_files(storage.list_files(user_id))
        known = folder.load_index()
        walk = _Walk(storage, folder, files, known, on_progress)
        snapshots = walk.run()
        folder.save_index(snapshots)
        walk.keep_newest_ids(snapshots)
    return History(user_id, tuple(reversed(snapshots)), walk.read)


class _Walk:
    """One pass over the files, oldest first, holding at most two snapshots' identities."""

    def __init__(
        self,
        storage: Storage,
        folder: HistoryFolder,
        files: list[StoredFile],
        known: dict[str, Snapshot],
        on_progress: OnProgress | None,
    ) -> None:
        self.storage = storage
        self.folder = folder
        self.files = files
        self.known = known
        self.on_progress = on_progress
        self.to_read = sum(1 for f in files if not _fresh(known.get(f.key), f))
        self.read = 0
        #: Identities loaded in this pass, by key: the current snapshot's and the one before.
        self.loaded: dict[str, Identities] = {}

    def run(self) -> list[Snapshot]:
        snapshots: list[Snapshot] = []
        previous: Snapshot | None = None
        for stored in self.files:
            snapshot = self._entry(stored)
            snapshot = self._with_change(snapshot, previous)
            keep = {k: v for k, v in self.loaded.items() if k == snapshot.key}
            if previous is not None and previous.key in self.loaded:
                keep[previous.key] = self.loaded[previous.key]
            self.loaded = keep
            snapshots.append(snapshot)
            previous = snapshot
        return snapshots

    def _entry(self, stored: StoredFile) -> Snapshot:
        known = self.known.get(stored.key)
        if known is not None and _fresh(known, stored):
            return replace(known, etag=stored.etag, updated_at=stored.updated_at)
        try:
            ids = self._read(stored.key, stored.day)
        except SnapshotUnreadable as error:
            log.warning("history: %s", error)
            return _unreadable(stored, error)
        self.loaded[stored.key] = ids
        return _indexed(stored, ids)

    def _read(self, key: str, day: date | None) -> Identities:
        self.read += 1
        if self.on_progress is not None and day is not None:
            self.on_progress(self.read, max(self.to_read, self.read), day)
        return read_snapshot(self.storage, key)

    def _ids(self, snapshot: Snapshot) -> Identities:
        ids = self.loaded.get(snapshot.key) or self.folder.cached_ids(snapshot)
        if ids is None:
            ids = self._read(snapshot.key, snapshot.day)
        self.loaded[snapshot.key] = ids
        return ids

    def _with_change(self, snapshot: Snapshot, previous: Snapshot | None) -> Snapshot:
        """The change from the snapshot before, counted again only if that one is another
        snapshot, or another file, than the one it was counted from."""
        if previous is None:
            return replace(snapshot, previous=None, previous_digest="", added=None, removed=None)
        counted = snapshot.previous == previous.day and snapshot.previous_digest == previous.digest
        if counted and snapshot.added is not None:
            return snapshot
        compared = replace(snapshot, previous=previous.day, previous_digest=previous.digest)
        if snapshot.problem or previous.problem:
            return replace(compared, added=None, removed=None)
        if snapshot.digest == previous.digest:
            return replace(compared, added=0, removed=0)
        try:
            added, removed = _change(self._ids(previous), self._ids(snapshot))
        except SnapshotUnreadable:
            return replace(compared, added=None, removed=None)
        return replace(compared, added=added, removed=removed)

    def keep_newest_ids(self, snapshots: list[Snapshot]) -> None:
        """Keep the identities of the newest snapshots on disk, as far as this pass read them."""
        newest = [s for s in snapshots if s.problem is None][-KEEP_IDS:]
        for snapshot in newest:
            ids = self.loaded.get(snapshot.key)
            if ids is not None and self.folder.cached_ids(snapshot) is None:
                self.folder.keep_ids(snapshot, ids)
        self.folder.prune_ids(s.day for s in newest)


def _change(old: Identities, new: Identities) -> tuple[int, int]:
    return len(new.members - old.members), len(old.members - new.members)


# --- as favdesk writes a snapshot --------------------------------------------------------------


def record_written(data_dir: Path, user_id: str, stored: StoredFile, source: Path) -> Snapshot:
    """Index a snapshot favdesk just uploaded, from its file on disk (no download), note that
    favdesk wrote it, and count its change from the snapshot before when that one's
    identities are kept here (else the next `refresh` counts it)."""
    if stored.day is None:
        raise StorageError(f"{stored.path} is not a day's snapshot")
    folder = HistoryFolder(data_dir, user_id)
    with source.open("rb") as stream:
        ids = collect_identities(iter_items(stream))
    with _locked(folder):
        known = folder.load_index()
        snapshot = replace(_indexed(stored, ids), etag=None, updated_at=None)
        earlier = [s for s in known.values() if s.day < snapshot.day]
        previous = max(earlier, key=lambda s: s.day, default=None)
        if previous is not None and previous.problem is None:
            snapshot = _counted(folder, snapshot, ids, previous)
        known[snapshot.key] = snapshot
        folder.save_index(known.values())
        folder.keep_ids(snapshot, ids)
        newest = sorted((s for s in known.values() if s.problem is None), key=lambda s: s.day)
        folder.prune_ids(s.day for s in newest[-KEEP_IDS:])
        folder.note_written(stored.key, stored.size)
    return snapshot


def _counted(
    folder: HistoryFolder, snapshot: Snapshot, ids: Identities, previous: Snapshot
) -> Snapshot:
    compared = replace(snapshot, previous=previous.day, previous_digest=previous.digest)
    if previous.digest == snapshot.digest:
        return replace(compared, added=0, removed=0)
    kept = folder.cached_ids(previous)
    if kept is None:
        return snapshot
    added, removed = _change(kept, ids)
    return replace(compared, added=added, removed=removed)


def forget(data_dir: Path, user_id: str, keys: Iterable[str]) -> None:
    """Drop deleted snapshots from the index and from the written record."""
    folder = HistoryFolder(data_dir, user_id)
    gone = set(keys)
    with _locked(folder):
        known = folder.load_index()
        folder.save_index(s for k, s in known.items() if k not in gone)
        folder.forget_written(gone)
