"""A Spotify stand-in: the accounts service and the Web API's Liked Songs on a loopback HTTP server.

Real HTTP with Spotify's wire shapes (FACTS.md), a deterministic generated library of any size,
and switchable faults (`SpotifySandbox.faults`) so the demo and the tests exercise the same
failures users meet: 429s with `Retry-After`, quota exhaustion, 5xx bursts, expiring tokens,
refresh rotation and revocation, the plain-text 403 and a library that changes mid-fetch.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import os
import random
import secrets
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit

from favdesk.sandbox.server import LoopbackServer, Reply

DEMO_CLIENT_ID = "favdesk-demo"
DEFAULT_REDIRECT_URIS = ("http://127.0.0.1/callback",)
LIBRARY_SCOPE = "user-library-read"
REFRESH_TOKEN_LIFETIME = 182 * 86400.0
QUOTA_RETRY_AFTER = 86400
NOT_REGISTERED = "User not registered in the Developer Dashboard"
#: A request arriving this soon after a 429 was already on its way: not counted as ignoring it.
RETRY_AFTER_GRACE = 0.1
STATE_FILE = "spotify-sandbox.json"
_LOOPBACK_HOSTS = {"127.0.0.1", "::1"}
_TRANSIENT_STATUSES = (500, 502, 503, 504)
_STATUS_MESSAGES = {
    500: "Server error.",
    502: "Bad gateway.",
    503: "Service unavailable",
    504: "Gateway timeout",
}


@dataclass
class Faults:
    """Switchable misbehaviour; change any field while the server runs."""

    #: Seconds added to every Web API request (slept in the handler thread).
    latency: float = 0.0
    #: (max requests, rolling window in seconds); beyond it a 429 with `Retry-After`.
    rate_limit: tuple[int, float] | None = None
    #: Force this `Retry-After` on every 429 (3600 for the "hours" case).
    retry_after: int | None = None
    #: Every Web API request gets the 2026 quota 429 (`"reason": "QUOTA_EXCEEDED"`).
    quota_exceeded: bool = False
    #: /me/tracks offset -> how many more times to answer `error_status` there.
    fail_offsets: dict[int, int] = field(default_factory=dict)
    error_status: int = 502
    #: Share (0..1) of Web API requests answered with a random 500/502/503/504 (seeded).
    error_rate: float = 0.0
    #: `expires_in` of access tokens issued from now on.
    access_token_ttl: int = 3600
    #: Seconds an authorization code stays exchangeable.
    code_ttl: float = 600.0
    #: True: a refresh replies with a new refresh token and revokes the old one (pre-2026).
    rotate_refresh_tokens: bool = False
    #: The user is not on the development-mode allow-list: plain-text 403s.
    not_allowlisted: bool = False
    #: The user clicks "Cancel" on the consent page: `error=access_denied`.
    decline: bool = False
    #: Once more than this many /me/tracks requests arrived (see `Stats.tracks_requests`),
    #: unlike `mutate_remove` tracks from position `mutate_remove_at`, then like `mutate_add`
    #: new ones (at the front), once; the field then returns to None.
    mutate_after: int | None = None
    mutate_add: int = 0
    mutate_remove: int = 0
    mutate_remove_at: int = 0


@dataclass
class Stats:
    """What clients did on the wire, for tests to assert on."""

    requests: int = 0
    api_requests: int = 0
    tracks_requests: int = 0
    authorize_requests: int = 0
    token_requests: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    server_errors: int = 0
    requests_inside_retry_after: int = 0
    max_in_flight: int = 0
    market_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bump(self, name: str, by: int = 1) -> None:
        """Add to a counter from any handler thread."""
        with self._lock:
            setattr(self, name, getattr(self, name) + by)

    def bump_grant(self, grant_type: str) -> None:
        """Count one token request by its grant type."""
        with self._lock:
            self.token_requests[grant_type] = self.token_requests.get(grant_type, 0) + 1

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            for spec in fields(self):
                if spec.name != "_lock":
                    setattr(self, spec.name, {} if spec.name == "token_requests" else 0)


# ---------------------------------------------------------------------------------------------
# The generated library
# ---------------------------------------------------------------------------------------------

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

    @classmethod
    def generate(cls, seed: int, size: int) -> Library:
        """A fresh library of `size` tracks."""
        return cls(LibraryGenerator(seed), list(range(size - 1, -1, -1)), size)

    def __len__(self) -> int:
        return len(self.serials)

    def item(self, serial: int) -> dict:
        """The item for `serial` as served now, after any detail updates."""
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

    def encoded(self, serial: int) -> bytes:
        """The JSON bytes of one item, cached: pages are served by joining these."""
        data = self._encoded.get(serial)
        if data is None:
            item = self.item(serial)
            data = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
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


# ---------------------------------------------------------------------------------------------
# Grants and tokens
# ---------------------------------------------------------------------------------------------


@dataclass
class _Code:
    redirect_uri: str
    scope: str
    challenge: str | None
    issued_at: float


@dataclass
class _RefreshGrant:
    """One refresh token; `state` is active, revoked (also: rotated away) or expired."""

    scope: str
    authorized_at: float
    state: str = "active"


@dataclass
class _AccessToken:
    scope: str
    expires_at: float


class _OAuthError(Exception):
    """An RFC 6749 token-endpoint error."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class _ApiError(Exception):
    """A Web API error in Spotify's `{"error": {"status", "message"}}` shape."""

    def __init__(
        self, status: int, message: str, *, reason: str | None = None, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.retry_after = retry_after

    def reply(self) -> Reply:
        error: dict[str, object] = {"status": self.status, "message": self.message}
        if self.reason:
            error["reason"] = self.reason
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
        return _json(self.status, {"error": error}, headers)


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> Reply:
    data = json.dumps(body, ensure_ascii=False).encode()
    return Reply(status, data, headers=headers or {})


def _html(status: int, text: str) -> Reply:
    page = f"<!doctype html><title>Spotify</title><h1>{text}</h1>"
    return Reply(status, page.encode(), "text/html; charset=utf-8")


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _redirect_allowed(requested: str, registered: tuple[str, ...]) -> bool:
    """Exact match, except that a loopback IP registered without a port accepts any port."""
    if requested in registered:
        return True
    asked = urlsplit(requested)
    for uri in registered:
        allowed = urlsplit(uri)
        if allowed.hostname not in _LOOPBACK_HOSTS:
            continue
        if allowed.port is not None or asked.port is None:
            continue
        same = (asked.scheme, asked.hostname, asked.path, asked.query) == (
            allowed.scheme,
            allowed.hostname,
            allowed.path,
            allowed.query,
        )
        if same:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class SpotifySandbox(LoopbackServer):
    """The stand-in server; `start()` it (or use `with`), point a client at its URLs."""

    thread_name = "spotify-sandbox"

    def __init__(
        self,
        *,
        tracks: int = 120,
        seed: int = 1,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str | None = None,
        user_id: str = "demo-listener",
        display_name: str = "Demo Listener",
        account_id: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        port: int = 0,
        redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS,
    ) -> None:
        super().__init__(port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.user_id = user_id
        self.display_name = display_name
        self.account_id = account_id
        self.redirect_uris = tuple(redirect_uris)
        self.faults = Faults()
        self.stats = Stats()
        self.last_authorize: dict[str, str] | None = None
        self._state_path = Path(state_dir) / STATE_FILE if state_dir else None
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshGrant] = {}
        self._window: deque[float] = deque()
        self._blocked_from = 0.0
        self._blocked_until = 0.0
        self._in_flight = 0
        self.library = self._load_state(seed, tracks)
        with self._lock:
            self._save_state()

    @property
    def accounts_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- helpers for tests and the demo ----------------------------------------------------

    def items(self) -> list[dict]:
        """The current library, newest first: fresh dicts equal to the items the API serves."""
        with self._lock:
            serials = list(self.library.serials)
        return [self.library.item(serial) for serial in serials]

    def add_tracks(self, count: int) -> None:
        """Like `count` new tracks (they appear at offset 0)."""
        with self._lock:
            self.library.add(count)
            self._save_state()

    def remove_tracks(self, count: int, at: int = 0) -> None:
        """Unlike `count` tracks from position `at` (0: the newest)."""
        with self._lock:
            self.library.remove(count, at)
            self._save_state()

    def update_track_details(self, count: int, at: int = 0) -> None:
        """Change the popularity of `count` tracks from position `at` (not kept in state_dir).

        Null and local tracks stay as they are: they have no details Spotify revises.
        """
        with self._lock:
            self.library.update_details(count, at)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now."""
        now = time.time()
        with self._lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, now)

    def revoke_refresh_tokens(self) -> None:
        """The user revoked access: every refresh token answers "Refresh token revoked"."""
        self._set_refresh_state("revoked")

    def expire_refresh_tokens(self) -> None:
        """Six months passed: every refresh token answers "Refresh token expired"."""
        self._set_refresh_state("expired")

    def _set_refresh_state(self, state: str) -> None:
        with self._lock:
            for grant in self._refresh.values():
                if grant.state == "active":
                    grant.state = state
            self._save_state()

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Message, body: bytes) -> Reply:
        """Answer one HTTP request."""
        self.stats.bump("requests")
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path.startswith("/v1/"):
            return self._api(method, parts.path, query, headers)
        if parts.path == "/authorize" and method == "GET":
            return self._authorize(query)
        if parts.path == "/api/token" and method == "POST":
            return self._token(headers, body)
        return _html(404, "Not found")

    # -- accounts service --------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> Reply:
        self.stats.bump("authorize_requests")
        self.last_authorize = dict(query)
        if query.get("client_id") != self.client_id:
            return _html(400, "INVALID_CLIENT: Invalid client")
        redirect_uri = query.get("redirect_uri", "")
        if urlsplit(redirect_uri).hostname == "localhost":
            return _html(400, "INVALID_CLIENT: Invalid redirect URI")
        if not _redirect_allowed(redirect_uri, self.redirect_uris):
            return _html(400, "INVALID_CLIENT: Invalid redirect URI")
        state = query.get("state")
        error = self._authorize_error(query)
        if error:
            return self._redirect(redirect_uri, {"error": error}, state)
        challenge = query.get("code_challenge") or None
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(
                redirect_uri=redirect_uri,
                scope=query.get("scope", ""),
                challenge=challenge,
                issued_at=time.time(),
            )
        return self._redirect(redirect_uri, {"code": code}, state)

    def _authorize_error(self, query: dict[str, str]) -> str | None:
        """The OAuth error to redirect back with, if any."""
        if query.get("response_type") != "code":
            return "unsupported_response_type"
        pkce = query.get("code_challenge_method") == "S256" and query.get("code_challenge")
        if not pkce and (self.client_secret is None or "code_challenge" in query):
            return "invalid_request"
        if self.faults.decline:
            return "access_denied"
        return None

    @staticmethod
    def _redirect(redirect_uri: str, params: dict[str, str], state: str | None) -> Reply:
        if state is not None:
            params["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode(params)}"
        return Reply(302, b"", "text/plain", {"Location": location})

    def _token(self, headers: Message, body: bytes) -> Reply:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        grant_type = form.get("grant_type", "")
        self.stats.bump_grant(grant_type or "missing")
        try:
            basic = self._basic_client(headers.get("Authorization"))
            client_id = basic or form.get("client_id")
            if client_id != self.client_id:
                raise _OAuthError("invalid_client", "Invalid client")
            if grant_type == "authorization_code":
                return _json(200, self._exchange_code(form, authenticated=basic is not None))
            if grant_type == "refresh_token":
                return _json(200, self._refresh_grant(form))
            if not grant_type:
                raise _OAuthError("invalid_request", "grant_type must be provided")
            raise _OAuthError(
                "unsupported_grant_type",
                "grant_type parameter is missing or unsupported",
            )
        except _OAuthError as error:
            return _json(400, {"error": error.error, "error_description": error.description})

    def _basic_client(self, header: str | None) -> str | None:
        """The client id from an `Authorization: Basic` header, after checking the secret."""
        if not header:
            return None
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise _OAuthError("invalid_client", "Invalid client")
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            raise _OAuthError("invalid_client", "Invalid client") from None
        if self.client_secret is None or secret != self.client_secret:
            raise _OAuthError("invalid_client", "Invalid client secret")
        return client_id

    def _exchange_code(self, form: dict[str, str], *, authenticated: bool) -> dict:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)
        if code is None:
            raise _OAuthError("invalid_grant", "Invalid authorization code")
        if time.time() - code.issued_at > self.faults.code_ttl:
            raise _OAuthError("invalid_grant", "Authorization code expired")
        if form.get("redirect_uri") != code.redirect_uri:
            raise _OAuthError("invalid_grant", "Invalid redirect URI")
        verifier = form.get("code_verifier")
        pkce_required = code.challenge is not None or not authenticated
        if pkce_required and (not verifier or _s256(verifier) != code.challenge):
            raise _OAuthError("invalid_grant", "code_verifier was incorrect")
        refresh_token = "AQ" + secrets.token_urlsafe(48)
        with self._lock:
            self._refresh[refresh_token] = _RefreshGrant(code.scope, time.time())
            self._save_state()
        return {**self._issue_access(code.scope), "refresh_token": refresh_token}

    def _refresh_grant(self, form: dict[str, str]) -> dict:
        token = form.get("refresh_token")
        if not token:
            raise _OAuthError("invalid_request", "refresh_token must be supplied")
        with self._lock:
            grant = self._refresh.get(token)
            if grant is None:
                raise _OAuthError("invalid_grant", "Invalid refresh token")
            if grant.state == "active" and time.time() - grant.authorized_at > (
                REFRESH_TOKEN_LIFETIME
            ):
                grant.state = "expired"
            if grant.state != "active":
                raise _OAuthError("invalid_grant", f"Refresh token {grant.state}")
            reply = self._issue_access(grant.scope)
            if self.faults.rotate_refresh_tokens:
                rotated = "AQ" + secrets.token_urlsafe(48)
                self._refresh[rotated] = _RefreshGrant(grant.scope, grant.authorized_at)
                grant.state = "revoked"
                reply["refresh_token"] = rotated
                self._save_state()
        return reply

    def _issue_access(self, scope: str) -> dict:
        ttl = self.faults.access_token_ttl
        token = "BQ" + secrets.token_urlsafe(64)
        with self._lock:
            self._access[token] = _AccessToken(scope, time.time() + ttl)
        return {"access_token": token, "token_type": "Bearer", "scope": scope, "expires_in": ttl}

    # -- Web API -----------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict[str, str], headers: Message) -> Reply:
        self._arrive(path, query)
        try:
            if self.faults.latency > 0:
                time.sleep(self.faults.latency)
            reply = self._api_reply(method, path, query, headers)
        except _ApiError as error:
            reply = error.reply()
        finally:
            with self._lock:
                self._in_flight -= 1
        self._count_reply(reply)
        return reply

    def _arrive(self, path: str, query: dict[str, str]) -> None:
        """Count one Web API request as it arrives; change the library if a fault says so."""
        now = time.monotonic()
        self.stats.bump("api_requests")
        if "market" in query:
            self.stats.bump("market_requests")
        with self._lock:
            if self._blocked_from <= now < self._blocked_until:
                self.stats.bump("requests_inside_retry_after")
            self._in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
            if path == "/v1/me/tracks":
                self.stats.bump("tracks_requests")
                self._maybe_mutate()

    def _maybe_mutate(self) -> None:
        """Once more than `mutate_after` tracks requests came in, like and unlike tracks."""
        faults = self.faults
        if faults.mutate_after is None or self.stats.tracks_requests <= faults.mutate_after:
            return
        faults.mutate_after = None
        self.library.remove(faults.mutate_remove, faults.mutate_remove_at)
        self.library.add(faults.mutate_add)
        self._save_state()

    def _count_reply(self, reply: Reply) -> None:
        """Record 429s (and the wait they announce) and 5xx answers."""
        if reply.status >= 500:
            self.stats.bump("server_errors")
        if reply.status != 429:
            return
        self.stats.bump("rate_limited")
        now = time.monotonic()
        until = now + int(reply.headers["Retry-After"])
        with self._lock:
            if now >= self._blocked_until:
                self._blocked_from = now + RETRY_AFTER_GRACE
            self._blocked_until = max(self._blocked_until, until)

    def _api_reply(self, method: str, path: str, query: dict[str, str], headers: Message) -> Reply:
        self._check_rate()
        scope = self._authenticate(headers.get("Authorization"))
        if self.faults.not_allowlisted:
            return Reply(403, NOT_REGISTERED.encode(), "text/plain; charset=utf-8")
        self._maybe_fail()
        if path == "/v1/me" and method == "GET":
            return _json(200, self._me())
        if path == "/v1/me/tracks" and method == "GET":
            if LIBRARY_SCOPE not in scope.split():
                raise _ApiError(403, "Insufficient client scope")
            return self._tracks(query)
        raise _ApiError(404, "Service not found")

    def _check_rate(self) -> None:
        """429 when the quota is used up or the rolling window is full."""
        faults = self.faults
        if faults.quota_exceeded:
            wait = faults.retry_after or QUOTA_RETRY_AFTER
            raise _ApiError(429, "Too many requests", reason="QUOTA_EXCEEDED", retry_after=wait)
        if faults.rate_limit is None:
            return
        limit, window = faults.rate_limit
        now = time.monotonic()
        with self._lock:
            while self._window and self._window[0] <= now - window:
                self._window.popleft()
            if len(self._window) < limit:
                self._window.append(now)
                return
            free_in = self._window[0] + window - now if self._window else window
        wait = faults.retry_after or max(1, math.ceil(free_in))
        raise _ApiError(429, "API rate limit exceeded", retry_after=wait)

    def _maybe_fail(self) -> None:
        """A transient 5xx at the configured random rate."""
        if self.faults.error_rate <= 0:
            return
        with self._lock:
            failing = self._rng.random() < self.faults.error_rate
            status = self._rng.choice(_TRANSIENT_STATUSES)
        if failing:
            raise _ApiError(status, _STATUS_MESSAGES[status])

    def _fail_offset(self, offset: int) -> None:
        """The scripted 5xx burst for this offset, if any answers are left in it."""
        with self._lock:
            left = self.faults.fail_offsets.get(offset, 0)
            if left <= 0:
                return
            self.faults.fail_offsets[offset] = left - 1
        status = self.faults.error_status
        raise _ApiError(status, _STATUS_MESSAGES.get(status, "Server error."))

    def _authenticate(self, header: str | None) -> str:
        """The scope of the request's bearer token, or a 401."""
        scheme, _, token = (header or "").partition(" ")
        with self._lock:
            access = self._access.get(token) if scheme == "Bearer" else None
        if access is None:
            raise _ApiError(401, "Invalid access token")
        if time.time() >= access.expires_at:
            raise _ApiError(401, "The access token expired")
        return access.scope

    def _me(self) -> dict:
        me = {
            "display_name": self.display_name,
            "external_urls": {"spotify": f"https://open.spotify.com/user/{self.user_id}"},
            "href": f"https://api.spotify.com/v1/users/{self.user_id}",
            "id": self.user_id,
            "images": [],
            "type": "user",
            "uri": f"spotify:user:{self.user_id}",
        }
        if self.account_id:
            me["account_id"] = self.account_id
        return me

    def _tracks(self, query: dict[str, str]) -> Reply:
        limit = _int_param(query, "limit", 20, "Invalid limit")
        offset = _int_param(query, "offset", 0, "Invalid offset")
        if not 1 <= limit <= 50:
            raise _ApiError(400, "Invalid limit")
        if offset < 0:
            raise _ApiError(400, "Invalid offset")
        self._fail_offset(offset)
        with self._lock:
            total = len(self.library)
            items = self.library.window(offset, limit)
        return Reply(200, self._page_body(items, offset, limit, total))

    def _page_body(self, items: list[bytes], offset: int, limit: int, total: int) -> bytes:
        """A `PagingSavedTrackObject`, assembled from cached item bytes."""
        base = f"{self.api_url}/me/tracks"
        after = offset + limit
        paging = {
            "href": f"{base}?offset={offset}&limit={limit}",
            "limit": limit,
            "next": f"{base}?offset={after}&limit={limit}" if after < total else None,
            "offset": offset,
            "previous": (
                f"{base}?offset={max(0, offset - limit)}&limit={limit}" if offset > 0 else None
            ),
            "total": total,
        }
        head = json.dumps(paging, separators=(",", ":")).encode()
        return head[:-1] + b',"items":[' + b",".join(items) + b"]}"

    # -- persistence -------------------------------------------------------------------------

    def _load_state(self, seed: int, tracks: int) -> Library:
        """The saved library and refresh tokens, if a state file exists; else a fresh library."""
        if self._state_path is None or not self._state_path.exists():
            return Library.generate(seed, tracks)
        state = json.loads(self._state_path.read_text(encoding="utf-8"))
        for token, grant in state["refresh_tokens"].items():
            self._refresh[token] = _RefreshGrant(**grant)
        return Library.from_state(state["library"])

    def _save_state(self) -> None:
        """Write the library and refresh tokens atomically (call with the lock held)."""
        if self._state_path is None:
            return
        state = {
            "library": self.library.to_state(),
            "refresh_tokens": {
                token: {"scope": g.scope, "authorized_at": g.authorized_at, "state": g.state}
                for token, g in self._refresh.items()
            },
        }
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, self._state_path)


def _int_param(query: dict[str, str], name: str, default: int, message: str) -> int:
    value = query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise _ApiError(400, message) from None


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m favdesk.sandbox.spotify", description="A local Spotify stand-in."
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--tracks", type=int, default=120, help="liked songs to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per API call")
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--state-dir", default=None, help="keep library and tokens here")
    args = parser.parse_args(argv)
    sandbox = SpotifySandbox(
        tracks=args.tracks,
        seed=args.seed,
        client_id=args.client_id,
        state_dir=args.state_dir,
        port=args.port,
    )
    sandbox.faults.latency = args.latency
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with sandbox:
        print(f"SPOTIFY_ACCOUNTS_URL={sandbox.accounts_url}", flush=True)
        print(f"SPOTIFY_API_URL={sandbox.api_url}", flush=True)
        print(f"SPOTIFY_CLIENT_ID={sandbox.client_id}", flush=True)
        print(f"Redirect URIs: {', '.join(sandbox.redirect_uris)} (any port)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
