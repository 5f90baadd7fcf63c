"""Reading a snapshot item by item: the array reader, identities, and the fields people know."""

from __future__ import annotations

import io
import json

import pytest

from favdesk.errors import SnapshotUnreadable
from favdesk.snapshot import (
    TrackKind,
    base_identity,
    collect_identities,
    iter_items,
    numbered,
    track_of,
)
from tests.support.snapshots import encoded, library


def items_of(data: bytes, chunk_size: int) -> list:
    return list(iter_items(io.BytesIO(data), chunk_size))


@pytest.mark.parametrize(
    "chunk_size, songs", [(1, 6), (2, 6), (3, 6), (7, 20), (64, 300), (4096, 300), (1 << 20, 300)]
)
def test_items_come_back_exactly_whatever_the_chunk_boundaries(chunk_size, songs):
    items = library(range(songs))
    assert items_of(encoded(items), chunk_size) == items


def test_multibyte_text_split_across_chunks_is_decoded():
    items = [{"added_at": "2026-01-01T00:00:00Z", "track": {"name": "Zoë — 東京 🎧", "uri": "u"}}]
    assert items_of(encoded(items), 1) == items


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[]", []),
        (" \n[ ]\n", []),
        ('\ufeff[{"a":1}]', [{"a": 1}]),
        ('[ {"a": 1} , null , 12345 , true ]', [{"a": 1}, None, 12345, True]),
        ("[1,\n 23456789]", [1, 23456789]),
    ],
)
def test_whitespace_literals_and_numbers_at_chunk_ends(text, expected):
    for chunk_size in (1, 2, 3, 100):
        assert items_of(text.encode(), chunk_size) == expected


@pytest.mark.parametrize(
    "text",
    ['{"items": []}', '[{"a": 1}', '[{"a": 1},]', '[{"a": 1}] [', '[{"a": 1} {"b": 2}]', ""],
)
def test_a_damaged_file_is_refused_with_where(text):
    with pytest.raises(SnapshotUnreadable, match="not a JSON array of saved tracks"):
        items_of(text.encode(), 3)


def test_not_utf8_is_refused():
    with pytest.raises(SnapshotUnreadable, match="not UTF-8"):
        items_of(b'[{"a": "\xff"}]', 4)


TRACK = {
    "added_at": "2026-01-02T03:04:05Z",
    "track": {
        "id": "abc",
        "uri": "spotify:track:abc",
        "name": "Song",
        "artists": [{"name": "A"}, {"name": "B"}],
        "album": {"name": "Album"},
        "duration_ms": 123000,
        "is_local": False,
    },
}
LOCAL = {
    "added_at": "2026-01-03T00:00:00Z",
    "track": {
        "id": None,
        "uri": "spotify:local:Artist:Album:Title:200",
        "name": "Title",
        "artists": [{"name": "Artist", "id": None}],
        "album": {"name": "Album", "id": None},
        "duration_ms": 200000,
        "is_local": True,
    },
}
NULL = {"added_at": "2026-01-04T00:00:00Z", "track": None}


def test_identities_follow_the_documented_rule():
    assert base_identity(TRACK) == "spotify:track:abc"
    assert base_identity(LOCAL) == "spotify:local:Artist:Album:Title:200"
    assert base_identity(NULL) == "null:2026-01-04T00:00:00Z"
    no_uri = {"added_at": "x", "track": {"id": "xyz"}}
    assert base_identity(no_uri) == "spotify:track:xyz"
    track = {"is_local": True, "name": "T t", "duration_ms": 61500}
    local_without_uri = {"track": track | {"artists": [{"name": "Ä"}], "album": {"name": "L/P"}}}
    assert base_identity(local_without_uri) == "spotify:local:%C3%84:L%2FP:T+t:61"
    assert base_identity("garbage") == "item:"
    assert base_identity({"track": {}}) == "spotify:local::::"


def test_repeated_identities_are_numbered_in_file_order():
    got = [identity for identity, _ in numbered([TRACK, NULL, TRACK, TRACK, NULL])]
    assert got == [
        "spotify:track:abc",
        "null:2026-01-04T00:00:00Z",
        "spotify:track:abc#2",
        "spotify:track:abc#3",
        "null:2026-01-04T00:00:00Z#2",
    ]
    assert collect_identities([TRACK, TRACK, NULL]).count == 3


def test_tracks_read_every_shape_without_failing():
    track = track_of("i", TRACK)
    assert (track.kind, track.name, track.artists, track.album) == (
        TrackKind.TRACK, "Song", ("A", "B"), "Album"
    )  # fmt: skip
    assert (track.added_at, track.duration_ms, track.uri) == (
        "2026-01-02T03:04:05Z", 123000, "spotify:track:abc"
    )  # fmt: skip
    assert track_of("l", LOCAL).kind is TrackKind.LOCAL
    unavailable = track_of("n", NULL)
    assert (unavailable.kind, unavailable.added_at, unavailable.name) == (
        TrackKind.UNAVAILABLE, "2026-01-04T00:00:00Z", ""
    )  # fmt: skip
    missing = track_of("m", {"track": {"artists": None, "album": None, "duration_ms": "x"}})
    assert (missing.name, missing.artists, missing.album, missing.duration_ms) == ("", (), "", None)
    assert track_of("g", 42).kind is TrackKind.UNAVAILABLE


def test_digest_does_not_depend_on_order():
    forward = collect_identities(library(range(50)))
    backward = collect_identities(list(reversed(library(range(50)))))
    assert forward.digest == backward.digest
    assert collect_identities(library(range(49))).digest != forward.digest


def test_the_stand_in_library_has_null_tracks_and_local_files_as_spotify_sends_them():
    kinds = {track_of(i, item).kind for i, item in numbered(library(range(300)))}
    assert kinds == set(TrackKind)
    assert json.loads(encoded(library(range(3)))) == library(range(3))
