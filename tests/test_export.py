"""A snapshot as CSV in Exportify's columns, streamed from Storage."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from favdesk.errors import FavdeskError
from favdesk.export import COLUMNS, export_to_file, write_csv
from favdesk.storage import raw_key
from favdesk.storage.local import LocalStorage
from tests.support.snapshots import USER, library, put

DAY = date(2026, 11, 1)
KEY = raw_key(USER, DAY)
SONG = {
    "added_at": "2026-01-02T03:04:05Z",
    "track": {
        "uri": "spotify:track:abc",
        "name": 'Song, "quoted"',
        "artists": [{"name": "A", "uri": "spotify:artist:a"}, {"name": "Zoë", "uri": "x:b"}],
        "album": {
            "name": "Album",
            "uri": "spotify:album:al",
            "release_date": "2001-02-03",
            "artists": [{"name": "A", "uri": "spotify:artist:a"}],
            "images": [{"url": "https://i.scdn.co/image/big"}, {"url": "small"}],
        },
        "disc_number": 1,
        "track_number": 7,
        "duration_ms": 123000,
        "explicit": False,
        "popularity": 55,
        "external_ids": {"isrc": "USABC1234567"},
        "is_local": False,
    },
}
LOCAL = {
    "added_at": "2026-01-03T00:00:00Z",
    "track": {"uri": "spotify:local:X:Y:Z:100", "id": None, "is_local": True, "name": "Z",
              "artists": [{"name": "X", "uri": None}], "album": {"name": "Y", "images": []},
              "duration_ms": 100000, "external_ids": {}},
}  # fmt: skip
NULL = {"added_at": "2026-01-04T00:00:00Z", "track": None}


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "bucket")


def exported(storage) -> list[dict[str, str]]:
    out = io.StringIO(newline="")
    write_csv(storage, KEY, out)
    out.seek(0)
    reader = csv.reader(out)
    assert tuple(next(reader)) == COLUMNS
    return [dict(zip(COLUMNS, cells, strict=True)) for cells in reader]


def test_the_columns_are_exportifys_and_every_field_lands_in_its_own(storage):
    put(storage, DAY, [SONG])
    (row,) = exported(storage)
    assert row == {
        "Track URI": "spotify:track:abc",
        "Track Name": 'Song, "quoted"',
        "Artist URI(s)": "spotify:artist:a,x:b",
        "Artist Name(s)": "A,Zoë",
        "Album URI": "spotify:album:al",
        "Album Name": "Album",
        "Album Artist URI(s)": "spotify:artist:a",
        "Album Artist Name(s)": "A",
        "Album Release Date": "2001-02-03",
        "Album Image URL": "https://i.scdn.co/image/big",
        "Disc Number": "1",
        "Track Number": "7",
        "Track Duration (ms)": "123000",
        "Track Preview URL": "",
        "Explicit": "false",
        "Popularity": "55",
        "ISRC": "USABC1234567",
        "Added By": "",
        "Added At": "2026-01-02T03:04:05Z",
    }


def test_a_name_that_starts_like_a_formula_stays_text_in_a_spreadsheet(storage):
    hostile = {
        **SONG,
        "track": {
            **SONG["track"],
            "name": '=HYPERLINK("http://evil.example","click")',
            "artists": [{"uri": "spotify:artist:a", "name": "@SUM(1+1)"}],
            "album": {**SONG["track"]["album"], "name": "-2+3"},
        },
    }
    put(storage, DAY, [hostile])
    (row,) = exported(storage)
    assert row["Track Name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert (row["Artist Name(s)"], row["Album Name"]) == ("'@SUM(1+1)", "'-2+3")
    assert row["Track URI"] == "spotify:track:abc"  # identifiers are never touched


def test_local_files_and_null_tracks_keep_their_row(storage):
    put(storage, DAY, [NULL, LOCAL, "not even an object"])
    null, local, garbage = exported(storage)
    assert null["Added At"] == "2026-01-04T00:00:00Z" and null["Track URI"] == ""
    assert (local["Track URI"], local["Track Name"], local["Artist Name(s)"]) == (
        "spotify:local:X:Y:Z:100", "Z", "X"
    )  # fmt: skip
    assert local["Album Image URL"] == "" and local["ISRC"] == ""
    assert set(garbage.values()) == {""}


def test_a_whole_library_exports_one_row_per_song_to_a_file(storage, tmp_path):
    items = library(range(250))
    put(storage, DAY, items)
    target = tmp_path / "liked.csv"
    assert export_to_file(storage, KEY, target) == 250
    with target.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert len(rows) == 251
    assert [r[-1] for r in rows[1:]] == [i["added_at"] for i in items]
    assert not list(tmp_path.glob(".*.part"))


def test_a_folder_that_cannot_be_written_says_so_and_leaves_nothing(storage, tmp_path):
    put(storage, DAY, [SONG])
    with pytest.raises(FavdeskError, match="Could not write"):
        export_to_file(storage, KEY, tmp_path / "missing" / "liked.csv")
