"""The Spotify stand-in's Liked Songs: a deterministic generated library of any size.

Items carry Spotify's `SavedTrackObject` shape with the variety real libraries have: non-ASCII
titles and artists, null tracks, local files, unplayable and restricted tracks, fields that
development-mode apps often do not get. The same seed and serial always give the same item, so
a library is kept as its list of serials and items are built when served.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from datetime import UTC, datetime
from urllib.parse import quote_plus

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_EPOCH = datetime(2016, 1, 4, tzinfo=UTC).timestamp()
_ADD_STEP = 1200  # seconds between consecutive likes, before jitter (jitter < step)
_WORDS = (
    "Midnight", "Ocean", "Golden", "Paper", "Neon", "Silent", "Electric", "Summer", "Broken",
    "Velvet", "River", "Wild", "Northern", "Echo", "Glass", "Fire", "Satellite", "Honey",
    "Winter", "Dream", "City", "Lights", "Heart", "Shadow", "Runaway", "Stars", "Blue", "Song",
)  # fmt: skip
_ACCENTED = (
    "Café del Mar", "Déjà Vu", "Señorita", "Über Alles", "Naïve", "Crème Brûlée", "Ça Plane",
    "Fjällräven", "Ñandú", "São Paulo", "Pièce Montée", "Zoë's Garden",
)  # fmt: skip
_JAPANESE = ("夜に駆ける", "紅蓮華", "東京フラッシュ", "群青", "アイドル", "さくら", "残響散歌")
_OTHER_SCRIPTS = ("Дорога домой", "봄날", "Καλημέρα", "שלום", "Mañana 🌅", "🔥 Fuego 🔥", "Moon 🌙")
_ARTISTS = (
    "Björk", "Sigur Rós", "Beyoncé", "宇多田ヒカル", "YOASOBI", "Motörhead", "Mötley Crüe",
    "Ólafur Arnalds", "방탄소년단", "Zé Ramalho", "Céline Dion", "Sébastien Tellier", "Røyksopp",
)  # fmt: skip
_LOCAL_NAMES = ("Demo Tape", "Garage Session", "Voice Memo", "Bootleg Live", "Grabación casera")


def _base62_id(*parts: object) -> str:
    """A Spotify-style 22-character id derived from `parts`."""
    number = int.from_bytes(hashlib.sha1(repr(parts).encode()).digest(), "big")
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "".join(chars)


def _iso(epoch: float) -> str:
    """ISO-8601 UTC with a `Z`, as Spotify writes `added_at`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _title(rng: random.Random) -> str:
    """A track or album title; some are non-ASCII, as real libraries are."""
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(_ACCENTED)
    if roll < 0.2:
        return rng.choice(_JAPANESE)
    if roll < 0.27:
        return rng.choice(_OTHER_SCRIPTS)
    return f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}"


def _artist_object(artist_id: str, name: str) -> dict:
    """A simplified artist object."""
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
        "href": f"https://api.spotify.com/v1/artists/{artist_id}",
        "id": artist_id,
        "name": name,
        "type": "artist",
        "uri": f"spotify:artist:{artist_id}",
    }


class LibraryGenerator:
    """Deterministic track items: the same (seed, serial) always gives the same item."""

    def __init__(self, seed: int, artists: int = 300) -> None:
        self.seed = seed
        self._artists = [self._artist(index) for index in range(artists)]
        self._albums: dict[tuple[str, int], tuple] = {}

    def _artist(self, index: int) -> tuple[str, str]:
        """(id, name) of artist `index`; objects are built fresh per item so none is shared."""
        rng = random.Random(f"artist:{self.seed}:{index}")
        name = rng.choice(_ARTISTS) if index < len(_ARTISTS) else f"The {_title(rng)}"
        return _base62_id("artist", self.seed, index), name

    def added_at(self, serial: int) -> float:
        """When track `serial` was liked: strictly increasing with the serial."""
        jitter = (serial * 2_654_435_761 + self.seed * 40_503) % (_ADD_STEP - 1)
        return _EPOCH + serial * _ADD_STEP + jitter

    def item(self, serial: int) -> dict:
        """The saved-track item for `serial`: usually a track, sometimes null or a local file."""
        rng = random.Random(self.seed * 1_000_003 + serial)
        added_at = _iso(self.added_at(serial))
        roll = rng.random()
        if roll < 0.02:
            return {"added_at": added_at, "track": None}
        if roll < 0.05:
            return {"added_at": added_at, "track": self._local_track(rng)}
        return {"added_at": added_at, "track": self._track(rng)}

    def _album(self, rng: random.Random, artist: tuple[str, str]) -> dict:
        """One of the artist's four albums (its details drawn once)."""
        key = (artist[0], rng.randrange(4))
        details = self._albums.get(key)
        if details is None:
            details = self._albums[key] = self._album_details(*key)
        album_id, album_type, name, released, total = details
        image = f"https://i.scdn.co/image/ab67616d0000b273{album_id.lower()}"
        return {
            "album_type": album_type,
            "artists": [_artist_object(*artist)],
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
            "href": f"https://api.spotify.com/v1/albums/{album_id}",
            "id": album_id,
            "images": [
                {"height": size, "url": f"{image}?s={size}", "width": size}
                for size in (640, 300, 64)
            ],
            "is_playable": True,
            "name": name,
            "release_date": released,
            "release_date_precision": "day",
            "total_tracks": total,
            "type": "album",
            "uri": f"spotify:album:{album_id}",
        }

    @staticmethod
    def _album_details(artist_id: str, number: int) -> tuple[str, str, str, str, int]:
        rng = random.Random(f"album:{artist_id}:{number}")
        return (
            _base62_id("album", artist_id, number),
            rng.choice(("album", "album", "single", "compilation")),
            _title(rng),
            f"{rng.randrange(1965, 2026)}-{rng.randrange(1, 13):02d}-01",
            rng.randrange(1, 21),
        )

    def _track(self, rng: random.Random) -> dict:
        track_id = "".join(rng.choices(_BASE62, k=22))
        artists = rng.sample(self._artists, 2 if rng.random() < 0.2 else 1)
        name = _title(rng)
        if rng.random() < 0.08:
            name += f" (feat. {rng.choice(self._artists)[1]})"
        track = {
            "album": self._album(rng, artists[0]),
            "artists": [_artist_object(*artist) for artist in artists],
            "disc_number": 1,
            "duration_ms": rng.randrange(95_000, 420_000),
            "explicit": rng.random() < 0.15,
            "external_ids": {"isrc": f"US{rng.choice(_BASE62[10:36])}{rng.randrange(10**9):09d}"},
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
            "href": f"https://api.spotify.com/v1/tracks/{track_id}",
            "id": track_id,
            "is_local": False,
            "is_playable": True,
            "name": name,
            "track_number": rng.randrange(1, 15),
            "type": "track",
            "uri": f"spotify:track:{track_id}",
        }
        if rng.random() < 0.6:  # deprecated for development-mode apps: often absent
            track["popularity"] = rng.randrange(101)
            track["available_markets"] = ["DE", "FR", "GB", "JP", "US"]
            track["preview_url"] = None
        if rng.random() < 0.03:
            track["is_playable"] = False
            track["restrictions"] = {"reason": rng.choice(("market", "product", "explicit"))}
        return track

    def _local_track(self, rng: random.Random) -> dict:
        artist, album, title = rng.choice(_ARTISTS), rng.choice(_LOCAL_NAMES), _title(rng)
        seconds = rng.randrange(60, 600)
        uri = (
            f"spotify:local:{quote_plus(artist)}:{quote_plus(album)}:{quote_plus(title)}:{seconds}"
        )
        return {
            "album": {
                "album_type": None,
                "artists": [],
                "available_markets": [],
                "external_urls": {},
                "href": None,
                "id": None,
                "images": [],
                "name": album,
                "release_date": None,
                "release_date_precision": None,
                "type": "album",
                "uri": None,
            },
            "artists": [
                {
                    "external_urls": {},
                    "href": None,
                    "id": None,
                    "name": artist,
                    "type": "artist",
                    "uri": None,
                }
            ],
            "available_markets": [],
            "disc_number": 0,
            "duration_ms": seconds * 1000,
            "explicit": False,
            "external_ids": {},
            "external_urls": {},
            "href": None,
            "id": None,
            "is_local": True,
            "name": title,
            "popularity": 0,
            "preview_url": None,
            "track_number": 0,
            "type": "track",
            "uri": uri,
        }


class Library:
    """The user's Liked Songs: serials newest first, items generated and encoded on demand."""

    def __init__(self, generator: LibraryGenerator, serials: list[int], next_serial: int) -> None:
        self.generator = generator
        self.serials = serials
        self.next_serial = next_serial
        self._encoded: dict[int, bytes] = {}
        self._revisions: dict[int, int] = {}
        self._replaced: dict[int, dict] = {}

    @classmethod
    def generate(cls, seed: int, size: int) -> Library:
        """A fresh library of `size` tracks."""
        return cls(LibraryGenerator(seed), list(range(size - 1, -1, -1)), size)

    def __len__(self) -> int:
        return len(self.serials)

    def item(self, serial: int) -> dict:
        """The item for `serial` as served now, after any detail updates."""
        if serial in self._replaced:
            return copy.deepcopy(self._replaced[serial])
        item = self.generator.item(serial)
        track = item["track"]
        revision = self._revisions.get(serial, 0)
        if revision and track is not None and not track["is_local"]:
            track["popularity"] = (track.get("popularity", 0) + revision) % 101
        return item

    def update_details(self, count: int, at: int = 0) -> None:
        """Spotify revises `count` tracks from position `at`: new popularity, same identity."""
        for serial in self.serials[at : at + count]:
            self._revisions[serial] = self._revisions.get(serial, 0) + 1
            self._encoded.pop(serial, None)

    def replace_item(self, at: int, item: dict) -> None:
        """Serve `item` at position `at` from now on (odd or hostile data the generator never
        makes; not kept in state_dir)."""
        serial = self.serials[at]
        self._replaced[serial] = copy.deepcopy(item)
        self._encoded.pop(serial, None)

    def encoded(self, serial: int) -> bytes:
        """The JSON bytes of one item, cached: pages are served by joining these. A lone
        surrogate (not valid Unicode, so not UTF-8) goes out as a `\\udXXX` escape."""
        data = self._encoded.get(serial)
        if data is None:
            item = self.item(serial)
            text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            try:
                data = text.encode()
            except UnicodeEncodeError:
                data = json.dumps(item, separators=(",", ":")).encode()
            self._encoded[serial] = data
        return data

    def window(self, offset: int, limit: int) -> list[bytes]:
        """Encoded items for one page."""
        return [self.encoded(serial) for serial in self.serials[offset : offset + limit]]

    def add(self, count: int) -> None:
        """Like `count` new tracks: they become the newest, at the front."""
        new = range(self.next_serial + count - 1, self.next_serial - 1, -1)
        self.serials[0:0] = new
        self.next_serial += count

    def remove(self, count: int, at: int = 0) -> None:
        """Unlike `count` tracks starting at position `at` (0: the newest)."""
        del self.serials[at : at + count]

    def to_state(self) -> dict:
        """A compact JSON form: the serials as descending runs."""
        return {
            "seed": self.generator.seed,
            "next_serial": self.next_serial,
            "runs": _runs(self.serials),
        }

    @classmethod
    def from_state(cls, state: dict) -> Library:
        serials = [n for first, last in state["runs"] for n in range(first, last - 1, -1)]
        return cls(LibraryGenerator(state["seed"]), serials, state["next_serial"])


def _runs(serials: list[int]) -> list[list[int]]:
    """Descending consecutive runs as [first, last] pairs."""
    runs: list[list[int]] = []
    for serial in serials:
        if runs and runs[-1][1] - 1 == serial:
            runs[-1][1] = serial
        else:
            runs.append([serial, serial])
    return runs
