"""A snapshot file read item by item: each song's identity and the fields people know.

A snapshot is Spotify's saved-track items exactly as sent, one compact JSON array of 100-250 MB
for 50,000 songs, so it is never parsed whole: `iter_items` decodes one array element at a time
with `json.JSONDecoder.raw_decode` over chunks, holding at most a chunk and one item.

Identity (what the history and a diff compare):
- a track, or a local file, with a `uri`: the uri (`spotify:track:ID`, `spotify:local:...`);
- a track without a uri but with an id: `spotify:track:ID`;
- a local file without a uri: `spotify:local:ARTIST:ALBUM:NAME:SECONDS`, as Spotify builds one;
- a null track (pulled from Spotify; nothing about it is left): `null:ADDED_AT`;
- anything else (not an object): `item:ADDED_AT`.
The same identity a second time in one snapshot becomes `IDENTITY#2`, `#3`, ... in file order,
so a snapshot's identities are as many as its items and a diff counts duplicates too.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, BinaryIO
from urllib.parse import quote_plus

from favdesk.errors import SnapshotUnreadable
from favdesk.storage import BUCKET, Storage

#: Bytes read from the stream at a time.
CHUNK = 1024 * 1024
#: An item bigger than this means the file is damaged (real items are a few KB).
MAX_ITEM = 16 * 1024 * 1024
_SPACE = re.compile(r"[ \t\n\r]*")


class TrackKind(StrEnum):
    TRACK = "track"
    LOCAL = "local"
    #: `track: null`: Spotify no longer serves the song (or the item is not an object).
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Track:
    """One saved song as people read it; every field tolerates a missing or null value."""

    identity: str
    kind: TrackKind
    name: str
    artists: tuple[str, ...]
    album: str
    added_at: str
    duration_ms: int | None
    uri: str | None


def iter_items(stream: BinaryIO, chunk_size: int = CHUNK) -> Iterator[Any]:
    """Each element of the JSON array in `stream`, parsed one at a time (flat memory)."""
    reader = _ArrayReader(stream, chunk_size)
    yield from reader.items()


class _ArrayReader:
    """The array's elements from a byte stream: UTF-8 decoded incrementally, parsed with
    `raw_decode`, the buffer trimmed as it goes."""

    def __init__(self, stream: BinaryIO, chunk_size: int) -> None:
        self.stream = stream
        self.chunk_size = chunk_size
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.decode = json.JSONDecoder().raw_decode
        self.buffer = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0

    def items(self) -> Iterator[Any]:
        self._expect("[", "a JSON array")
        if self._peek() == "]":
            self.pos += 1
            self._expect_end()
            return
        while True:
            yield self._value()
            if self._peek() == ",":
                self.pos += 1
                continue
            self._expect("]", "',' or ']'")
            self._expect_end()
            return

    def _value(self) -> Any:
        """The next value; more is read while it may be cut off at the buffer's end."""
        self._peek()
        while True:
            try:
                value, end = self.decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if self.eof:
                    raise self._damaged(f"{error.msg}") from None
                self._more()
                continue
            if end < len(self.buffer) or self.eof or isinstance(value, dict | list):
                self.pos = end
                return value
            self._more()  # a number or literal may go on in the next chunk

    def _peek(self) -> str:
        """The next non-space character ('' at the end), reading more as needed."""
        while True:
            self.pos = _SPACE.match(self.buffer, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if self.eof:
                return ""
            self._more()

    def _expect(self, char: str, what: str) -> None:
        if self.pos == 0 and self._peek() == "\ufeff":
            self.pos += 1
        if self._peek() != char:
            raise self._damaged(f"expected {what}")
        self.pos += 1

    def _expect_end(self) -> None:
        if self._peek() != "":
            raise self._damaged("data after the array")

    def _more(self) -> None:
        if len(self.buffer) - self.pos > MAX_ITEM:
            raise self._damaged("an item is too large or never ends")
        data = self.stream.read(self.chunk_size)
        self.consumed += self.pos
        self.buffer = self.buffer[self.pos :]
        self.pos = 0
        if not data:
            self.eof = True
            self.buffer += self.decoder.decode(b"", final=True)
            return
        try:
            self.buffer += self.decoder.decode(data)
        except UnicodeDecodeError:
            raise self._damaged("the file is not UTF-8") from None

    def _damaged(self, why: str) -> SnapshotUnreadable:
        return SnapshotUnreadable(
            f"not a JSON array of saved tracks ({why}, near character {self.consumed + self.pos})"
        )


# --- identities and tracks ---------------------------------------------------------------------


def base_identity(item: Any) -> str:
    """An item's identity before duplicates are numbered (the rule is in the module's doc)."""
    if not isinstance(item, dict):
        return "item:"
    track = item.get("track")
    added_at = _text(item.get("added_at"))
    if not isinstance(track, dict):
        return f"null:{added_at}"
    uri = _text(track.get("uri"))
    if uri:
        return uri
    track_id = _text(track.get("id"))
    if track_id and not track.get("is_local"):
        return f"spotify:track:{track_id}"
    return _local_uri(track)


def _local_uri(track: dict) -> str:
    """Spotify's uri form for a local file: `spotify:local:ARTIST:ALBUM:NAME:SECONDS`."""
    artists = _artist_names(track.get("artists"))
    album = track.get("album")
    album_name = _text(album.get("name")) if isinstance(album, dict) else ""
    duration = track.get("duration_ms")
    seconds = str(duration // 1000) if isinstance(duration, int) else ""
    parts = (artists[0] if artists else "", album_name, _text(track.get("name")))
    return "spotify:local:" + ":".join(quote_plus(part) for part in parts) + f":{seconds}"


def numbered(items: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """(identity, item) for each item, a repeated identity numbered `#2`, `#3`, ... in order."""
    seen: dict[str, int] = {}
    for item in items:
        identity = base_identity(item)
        count = seen.get(identity, 0) + 1
        seen[identity] = count
        yield (identity if count == 1 else f"{identity}#{count}"), item


def track_of(identity: str, item: Any) -> Track:
    """The fields people know, from an item of any shape."""
    if not isinstance(item, dict):
        return Track(identity, TrackKind.UNAVAILABLE, "", (), "", "", None, None)
    added_at = _text(item.get("added_at"))
    track = item.get("track")
    if not isinstance(track, dict):
        return Track(identity, TrackKind.UNAVAILABLE, "", (), "", added_at, None, None)
    album = track.get("album")
    duration = track.get("duration_ms")
    return Track(
        identity=identity,
        kind=TrackKind.LOCAL if track.get("is_local") else TrackKind.TRACK,
        name=_text(track.get("name")),
        artists=_artist_names(track.get("artists")),
        album=_text(album.get("name")) if isinstance(album, dict) else "",
        added_at=added_at,
        duration_ms=duration if isinstance(duration, int) else None,
        uri=_text(track.get("uri")) or None,
    )


def _artist_names(artists: Any) -> tuple[str, ...]:
    if not isinstance(artists, list):
        return ()
    return tuple(_text(a.get("name")) for a in artists if isinstance(a, dict) and a.get("name"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- a whole snapshot, summed up ---------------------------------------------------------------


@dataclass(frozen=True)
class Identities:
    """A snapshot's identities (one per item) and their digest."""

    members: frozenset[str]

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def digest(self) -> str:
        return identities_digest(self.members)


def identities_digest(members: Iterable[str]) -> str:
    """SHA-256 of the sorted identities: equal digests, equal sets (so no diff to read)."""
    digest = hashlib.sha256()
    for identity in sorted(members):
        digest.update(identity.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()


def collect_identities(items: Iterable[Any]) -> Identities:
    """Every identity of a snapshot's items, numbered as `numbered` does."""
    return Identities(frozenset(identity for identity, _ in numbered(items)))


def stored_items(storage: Storage, key: str) -> Iterator[Any]:
    """A stored snapshot's items, streamed from Storage; a damaged file says which it is."""
    try:
        with storage.open(key) as stream:
            yield from iter_items(stream)
    except SnapshotUnreadable as error:
        raise SnapshotUnreadable(f"{BUCKET}/{key} is {error}") from None
