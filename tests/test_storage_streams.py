"""Reading a stored file as a stream, deleting one, and the etag a listing carries: both
backends (the local folder; Supabase through the real client against the stand-in)."""

from __future__ import annotations

from datetime import date

import pytest

from favdesk.errors import StorageError
from favdesk.storage import raw_key
from tests.support.snapshots import USER, open_backend, put

KEY = raw_key(USER, date(2026, 11, 29))
DATA = b"[" + b",".join(b'{"n":%d}' % n for n in range(20_000)) + b"]"


@pytest.fixture(params=["local", "supabase"])
def backend(request, tmp_path):
    with open_backend(request.param, tmp_path) as (storage, server):
        yield storage, server


def test_a_file_is_read_piece_by_piece_exactly(backend):
    storage, _server = backend
    put(storage, date(2026, 11, 29), DATA)
    pieces = []
    with storage.open(KEY) as stream:
        while piece := stream.read(4096):
            pieces.append(piece)
    assert b"".join(pieces) == DATA and len(pieces) > 1


def test_opening_a_missing_file_says_it_disappeared(backend):
    storage, _server = backend
    with pytest.raises(StorageError, match="file disappeared") as caught, storage.open(KEY):
        pass
    assert caught.value.status == "404"


def test_delete_removes_only_that_file_and_twice_is_harmless(backend):
    storage, _server = backend
    put(storage, date(2026, 11, 29), b"[]")
    kept = put(storage, date(2026, 11, 30), b"[1]")
    storage.delete(KEY)
    storage.delete(KEY)
    assert [f.key for f in storage.list_files(USER)] == [kept.key]


def test_the_listing_carries_supabases_etag_and_a_new_upload_changes_it(backend):
    storage, server = backend
    put(storage, date(2026, 11, 29), b"[1]")
    (first,) = storage.list_files(USER)
    put(storage, date(2026, 11, 29), b"[2]")
    (second,) = storage.list_files(USER)
    if server is None:
        assert first.etag is None  # a folder has no such tag
        return
    assert first.etag and second.etag and first.etag != second.etag
    assert '"' not in first.etag
