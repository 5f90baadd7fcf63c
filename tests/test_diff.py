"""What changed between two snapshots: exact lists, streamed, through the real import too."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from favdesk.diff import compare, pick
from favdesk.errors import FavdeskError
from favdesk.history import History, HistoryFolder, identities, refresh
from favdesk.snapshot import TrackKind
from favdesk.storage import raw_key
from favdesk.storage.local import LocalStorage
from tests.support.snapshots import USER, library, put
from tests.test_history_commands import run
from tests.test_ingest import Recorder, browser, configured_sandbox, open_runtime  # noqa: F401

DAY1, DAY2, DAY3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


class CountingStorage(LocalStorage):
    """The local folder, counting the snapshots opened."""

    opened = 0

    def open(self, key):  # type: ignore[no-untyped-def]
        self.opened += 1
        return super().open(key)


@pytest.fixture
def storage(tmp_path):
    return CountingStorage(tmp_path / "bucket")


def history_of(storage, tmp_path) -> History:
    return refresh(storage, tmp_path / "data", USER)


def compared(storage, tmp_path, first=None, second=None):
    found = history_of(storage, tmp_path)
    old, new = pick(found, first, second)
    folder = HistoryFolder(tmp_path / "data", USER)
    return compare(storage, USER, old, new, lambda s: identities(storage, folder, s))


def test_added_and_removed_songs_are_listed_exactly_in_file_order(storage, tmp_path):
    before = library(range(60))
    after = library([*range(0, 20), *range(23, 60), *range(60, 64)])
    put(storage, DAY1, before)
    put(storage, DAY2, after)
    changes = compared(storage, tmp_path)
    assert [t.added_at for t in changes.added] == [i["added_at"] for i in after[:4]]
    assert [t.added_at for t in changes.removed] == [i["added_at"] for i in before[37:40]]
    assert [t.uri for t in changes.added] == [(i["track"] or {}).get("uri") for i in after[:4]]
    assert changes.summary == "+4 songs, -3 songs"
    assert changes.new.count == changes.old.count + 4 - 3


def test_null_tracks_local_files_and_duplicates_are_compared_by_identity(storage, tmp_path):
    song = {"added_at": "2026-01-01T00:00:00Z", "track": {"uri": "spotify:track:a", "name": "A"}}
    track = {"uri": "spotify:local:X:Y:Z:100", "id": None, "is_local": True, "name": "Z"}
    track |= {"artists": [{"name": "X"}], "album": {"name": "Y"}}
    local = {"added_at": "2026-01-02T00:00:00Z", "track": track}
    gone = {"added_at": "2026-01-03T00:00:00Z", "track": None}
    put(storage, DAY1, [gone, local, song, song])
    put(storage, DAY2, [song, {"added_at": "2026-01-05T00:00:00Z", "track": None}])
    changes = compared(storage, tmp_path)
    assert [(t.kind, t.added_at) for t in changes.added] == [
        (TrackKind.UNAVAILABLE, "2026-01-05T00:00:00Z")
    ]
    assert [(t.kind, t.name, t.identity) for t in changes.removed] == [
        (TrackKind.UNAVAILABLE, "", "null:2026-01-03T00:00:00Z"),
        (TrackKind.LOCAL, "Z", "spotify:local:X:Y:Z:100"),
        (TrackKind.TRACK, "A", "spotify:track:a#2"),
    ]


def test_equal_snapshots_are_not_read_at_all(storage, tmp_path):
    put(storage, DAY1, library(range(30)))
    put(storage, DAY2, library(range(30)))
    history_of(storage, tmp_path)
    storage.opened = 0
    changes = compared(storage, tmp_path)
    assert (changes.added, changes.removed, storage.opened) == ((), (), 0)


def test_the_newer_snapshot_is_read_once_and_the_older_one_only_for_removed_songs(
    storage, tmp_path
):
    put(storage, DAY1, library(range(30)))
    put(storage, DAY2, library(range(32)))  # only additions
    history_of(storage, tmp_path)  # keeps both snapshots' identities
    storage.opened = 0
    assert len(compared(storage, tmp_path).added) == 2
    assert storage.opened == 1


def test_which_two_snapshots_are_compared(storage, tmp_path):
    for day in (DAY1, DAY2, DAY3):
        put(storage, day, library(range(day.day * 3)))
    found = history_of(storage, tmp_path)
    days = lambda pair: (pair[0].day, pair[1].day)  # noqa: E731
    assert days(pick(found, None, None)) == (DAY2, DAY3)
    assert days(pick(found, DAY1, None)) == (DAY1, DAY3)
    assert days(pick(found, DAY3, DAY1)) == (DAY1, DAY3)
    with pytest.raises(
        FavdeskError, match="No snapshot of 2026-10-01 .* the newest are 2026-11-03"
    ):
        pick(found, date(2026, 10, 1), None)
    with pytest.raises(FavdeskError, match="is the newest snapshot: give an older date"):
        pick(found, DAY3, None)


def test_one_snapshot_is_not_enough(storage, tmp_path):
    put(storage, DAY1, library(range(3)))
    with pytest.raises(FavdeskError, match="only one snapshot of user zoe yet: a diff needs two"):
        pick(history_of(storage, tmp_path), None, None)


# --- through the real import: the Spotify stand-in, the worker, a real Redis -------------------


@pytest.fixture
def spotify(redis_url, monkeypatch):
    with configured_sandbox(120, redis_url, monkeypatch) as server:
        yield server


def move_to_yesterday(runtime) -> None:
    """Make today's snapshot yesterday's, through the Storage protocol, as a day passing would."""
    today = datetime.now(UTC).date()
    key, earlier = raw_key(USER, today), raw_key(USER, today - timedelta(days=1))
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder, "copy.json")
        with runtime.storage.open(key) as source, copy.open("wb") as target:
            shutil.copyfileobj(source, target)
        runtime.storage.upload_file(earlier, copy)
    runtime.storage.delete(key)


def first_index(items: list, kind: str) -> int:
    for position, item in enumerate(items):
        track = item["track"]
        if (kind == "null" and track is None) or (kind == "local" and track and track["is_local"]):
            return position
    raise AssertionError(f"no {kind} item in the stand-in's library")


def test_a_library_changed_between_two_imports_gives_the_exact_diff(
    spotify,
    open_runtime,  # noqa: F811 - the fixture imported from test_ingest
    capsys,
):
    runtime, recorder = open_runtime()
    runtime.link(open_browser=browser, run_import_here=True)
    assert recorder.wait_finished(1)[1]
    before = spotify.items()
    move_to_yesterday(runtime)
    # unlike a null track, a local file and a song (highest position first), then like 12
    gone = sorted([first_index(before, "null"), first_index(before, "local"), 7], reverse=True)
    for position in gone:
        spotify.remove_tracks(1, at=position)
    spotify.add_tracks(12)
    after = spotify.items()
    runtime.sync(USER)
    assert recorder.wait_finished(2)[1]

    changes = runtime.diff()
    assert [t.added_at for t in changes.added] == [i["added_at"] for i in after[:12]]
    removed = [before[p] for p in sorted(gone)]
    assert [t.added_at for t in changes.removed] == [i["added_at"] for i in removed]
    assert [t.kind for t in changes.removed] == [
        TrackKind.TRACK if p == 7 else (TrackKind.UNAVAILABLE if before[p]["track"] is None
                                        else TrackKind.LOCAL)
        for p in sorted(gone)
    ]  # fmt: skip
    assert (changes.old.count, changes.new.count) == (len(before), len(after))
    assert runtime.history().latest.change == "+12, -3"

    code, out, _err = run(capsys, "diff", "--json")
    printed = json.loads(out)
    assert code == 0
    assert len(printed["added"]) == 12 and len(printed["removed"]) == 3
