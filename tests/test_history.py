"""The history of snapshots: listed from the local index, filled as snapshots are written,
rebuilt from Storage (the local folder, and Supabase through the stand-in over real HTTP)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from favdesk.history import HistoryFolder, record_written, refresh
from favdesk.storage import BUCKET
from tests.support.snapshots import USER, encoded, library, open_backend, put

DAY1, DAY2, DAY3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
#: 100 songs; then 12 liked and 5 unliked; then nothing changed.
FIRST = library(range(100))
SECOND = library([*range(5, 100), *range(100, 112)])


@pytest.fixture(params=["local", "supabase"])
def backend(request, tmp_path):
    with open_backend(request.param, tmp_path) as (storage, server):
        yield storage, server


def downloads(server) -> int:
    """Objects read from the stand-in so far (the local folder counts none)."""
    if server is None:
        return 0
    return sum(1 for method, path in server.request_log if method == "GET" and "/object/" in path)


def test_each_snapshot_is_listed_with_its_songs_size_and_change(backend, tmp_path):
    storage, _server = backend
    sizes = [put(storage, day, items).size for day, items in
             ((DAY1, FIRST), (DAY2, SECOND), (DAY3, SECOND))]  # fmt: skip
    found = refresh(storage, tmp_path / "data", USER)
    rows = [(s.day, s.count, s.size, s.added, s.removed, s.change) for s in found.snapshots]
    assert rows == [
        (DAY3, 107, sizes[2], 0, 0, "+0, -0"),
        (DAY2, 107, sizes[1], 12, 5, "+12, -5"),
        (DAY1, 100, sizes[0], None, None, "first"),
    ]
    assert found.snapshots[1].summary == "+12 songs, -5 songs since 2026-11-01 (107 songs)"
    assert found.read == 3


def test_listing_again_reads_no_snapshot(backend, tmp_path):
    storage, server = backend
    for day, items in ((DAY1, FIRST), (DAY2, SECOND)):
        put(storage, day, items)
    first = refresh(storage, tmp_path / "data", USER)
    before = downloads(server)
    again = refresh(storage, tmp_path / "data", USER)
    assert again.read == 0 and downloads(server) == before
    assert again.snapshots == first.snapshots


def test_the_history_rebuilds_after_the_index_is_deleted(backend, tmp_path):
    storage, _server = backend
    for day, items in ((DAY1, FIRST), (DAY2, SECOND), (DAY3, FIRST)):
        put(storage, day, items)
    data = tmp_path / "data"
    first = refresh(storage, data, USER)
    folder = HistoryFolder(data, USER)
    folder.index_path.unlink()
    shutil.rmtree(folder.directory / "ids")
    rebuilt = refresh(storage, data, USER)
    assert rebuilt.read == 3
    assert rebuilt.snapshots == first.snapshots
    assert [s.change for s in rebuilt.snapshots] == ["+5, -12", "+12, -5", "first"]


def test_a_damaged_index_is_rebuilt_too(backend, tmp_path):
    storage, _server = backend
    put(storage, DAY1, FIRST)
    data = tmp_path / "data"
    refresh(storage, data, USER)
    HistoryFolder(data, USER).index_path.write_text("{not json")
    assert [s.count for s in refresh(storage, data, USER).snapshots] == [100]


def test_a_file_it_does_not_know_or_whose_size_changed_is_read_and_the_next_change_recounted(
    backend, tmp_path
):
    storage, _server = backend
    for day, items in ((DAY1, FIRST), (DAY2, FIRST), (DAY3, SECOND)):
        put(storage, day, items)
    data = tmp_path / "data"
    refresh(storage, data, USER)
    put(storage, DAY2, SECOND)  # the middle one replaced: its size changes
    put(storage, date(2026, 11, 4), SECOND)  # and a new one
    found = refresh(storage, data, USER)
    assert [(s.day.day, s.change) for s in found.snapshots] == [
        (4, "+0, -0"),
        (3, "+0, -0"),
        (2, "+12, -5"),
        (1, "first"),
    ]
    assert found.read == 3  # the replaced file, the one before it (not kept), the new one


def test_a_snapshot_deleted_from_storage_leaves_the_history(backend, tmp_path):
    storage, _server = backend
    for day, items in ((DAY1, FIRST), (DAY2, SECOND), (DAY3, SECOND)):
        put(storage, day, items)
    data = tmp_path / "data"
    refresh(storage, data, USER)
    storage.delete(f"spotify/{USER}/{DAY2}.json")
    found = refresh(storage, data, USER)
    assert [(s.day, s.change) for s in found.snapshots] == [(DAY3, "+12, -5"), (DAY1, "first")]


def test_other_files_are_not_snapshots_and_a_damaged_one_says_so(backend, tmp_path):
    storage, _server = backend
    put(storage, DAY1, FIRST)
    put(storage, DAY2, b'{"not": "an array"}')
    put(storage, DAY3, FIRST)
    storage.upload_file(f"spotify/{USER}/notes.json", _file(tmp_path, b"[]"))
    put(storage, DAY1, SECOND, user="someone-else")
    found = refresh(storage, tmp_path / "data", USER)
    assert [s.day for s in found.snapshots] == [DAY3, DAY2, DAY1]
    damaged = found.snapshots[1]
    assert damaged.count is None and damaged.change == "?"
    assert damaged.problem.startswith(f"{BUCKET}/spotify/{USER}/{DAY2}.json is not a JSON array")
    assert found.snapshots[0].change == "?"


def test_a_snapshot_favdesk_writes_is_indexed_from_its_file_without_a_download(backend, tmp_path):
    storage, server = backend
    data = tmp_path / "data"
    put(storage, DAY1, FIRST)
    refresh(storage, data, USER)  # reads DAY1 once, and keeps its identities
    before = downloads(server)
    source = _file(tmp_path, encoded(SECOND))
    stored = storage.upload_file(f"spotify/{USER}/{DAY2}.json", source)
    written = record_written(data, USER, stored, source)
    assert (written.count, written.added, written.removed) == (107, 12, 5)
    found = refresh(storage, data, USER)
    assert found.read == 0 and downloads(server) == before
    assert found.latest.change == "+12, -5"
    assert (found.latest.etag is not None) == (server is not None)  # adopted from the listing
    assert HistoryFolder(data, USER).written() == {stored.key: stored.size}


def test_without_the_kept_identities_the_change_is_counted_at_the_next_listing(backend, tmp_path):
    storage, _server = backend
    data = tmp_path / "data"
    put(storage, DAY1, FIRST)
    source = _file(tmp_path, encoded(SECOND))
    stored = storage.upload_file(f"spotify/{USER}/{DAY2}.json", source)
    written = record_written(data, USER, stored, source)  # nothing indexed before it
    assert written.added is None
    found = refresh(storage, data, USER)
    assert found.latest.change == "+12, -5" and found.read == 1


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"upload-{len(data)}.json"
    path.write_bytes(data)
    return path
