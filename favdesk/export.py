"""A snapshot as CSV, in Exportify's columns, streamed row by row from the stored file.

Exportify (https://github.com/watsonbox/exportify) is what people already open in spreadsheets
and feed to other tools, so the header is its own. Several artists are joined with ",", as
there. Every item gets a row: a null track keeps its `Added At` and empty fields, a local file
its `spotify:local:` uri and the names it has; missing fields are empty cells. A name that
would start a spreadsheet formula is prefixed with `'` (the one change to what Spotify sent).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from favdesk.errors import FavdeskError
from favdesk.snapshot import stored_items
from favdesk.storage import Storage

#: What spreadsheets read as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = (
    "Track URI",
    "Track Name",
    "Artist URI(s)",
    "Artist Name(s)",
    "Album URI",
    "Album Name",
    "Album Artist URI(s)",
    "Album Artist Name(s)",
    "Album Release Date",
    "Album Image URL",
    "Disc Number",
    "Track Number",
    "Track Duration (ms)",
    "Track Preview URL",
    "Explicit",
    "Popularity",
    "ISRC",
    "Added By",
    "Added At",
)


def row(item: Any) -> list[str]:
    """One item's cells, in `COLUMNS` order."""
    item = item if isinstance(item, dict) else {}
    track = _dict(item.get("track"))
    album = _dict(track.get("album"))
    images = album.get("images")
    image = _dict(images[0]) if isinstance(images, list) and images else {}
    added_by = _dict(item.get("added_by"))
    return [
        _cell(track.get("uri")),
        _text(track.get("name")),
        _joined(track.get("artists"), "uri"),
        _text(_joined(track.get("artists"), "name")),
        _cell(album.get("uri")),
        _text(album.get("name")),
        _joined(album.get("artists"), "uri"),
        _text(_joined(album.get("artists"), "name")),
        _cell(album.get("release_date")),
        _cell(image.get("url")),
        _cell(track.get("disc_number")),
        _cell(track.get("track_number")),
        _cell(track.get("duration_ms")),
        _cell(track.get("preview_url")),
        _cell(track.get("explicit")),
        _cell(track.get("popularity")),
        _cell(_dict(track.get("external_ids")).get("isrc")),
        _cell(added_by.get("uri")),
        _cell(item.get("added_at")),
    ]


def rows(items: Iterator[Any]) -> Iterator[list[str]]:
    yield list(COLUMNS)
    for item in items:
        yield row(item)


def write_csv(storage: Storage, key: str, out: TextIO) -> int:
    """Write the snapshot under `key` to `out` (opened with `newline=""`); the songs written."""
    writer = csv.writer(out)
    count = -1
    for cells in rows(stored_items(storage, key)):
        writer.writerow(cells)
        count += 1
    return count


def export_to_file(storage: Storage, key: str, target: Path) -> int:
    """Write the CSV beside `target`, then rename it into place (never half a file)."""
    temporary = target.with_name(f".{target.name}.part")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as out:
            count = write_csv(storage, key, out)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise FavdeskError(f"Could not write {target}: {error.strerror}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _cell(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _text(value: Any) -> str:
    """A name as a spreadsheet shows it, never as a formula: a name that starts like one
    (`=HYPERLINK(...)`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`."""
    text = _cell(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _joined(objects: Any, field: str) -> str:
    if not isinstance(objects, list):
        return ""
    return ",".join(_cell(o.get(field)) for o in objects if isinstance(o, dict))
