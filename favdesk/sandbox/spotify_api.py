"""The Spotify stand-in's Web API: `GET /v1/me` and `GET /v1/me/tracks`, with its faults.

Bearer tokens are checked with the accounts service that issued them. `Faults` switches on what
users meet: latency, 429s from a rolling window or a used-up quota, 5xx bursts, the plain-text
403 of an app's allow-list and a library that changes mid-fetch; `Stats` records how clients
behaved, such as requests sent while a `Retry-After` still ran.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from favdesk.sandbox.server import Reply, json_reply
from favdesk.sandbox.spotify_accounts import AccountsService
from favdesk.sandbox.spotify_faults import Faults, Stats
from favdesk.sandbox.spotify_library import Library

LIBRARY_SCOPE = "user-library-read"
QUOTA_RETRY_AFTER = 86400
NOT_REGISTERED = "User not registered in the Developer Dashboard"
#: A request arriving this soon after a 429 was already on its way: not counted as ignoring it.
RETRY_AFTER_GRACE = 0.1
_TRANSIENT_STATUSES = (500, 502, 503, 504)
_STATUS_MESSAGES = {
    500: "Server error.",
    502: "Bad gateway.",
    503: "Service unavailable",
    504: "Gateway timeout",
}


@dataclass(frozen=True)
class Listener:
    """The signed-in user, as `/me` shows them."""

    user_id: str
    display_name: str
    account_id: str | None = None

    def profile(self) -> dict:
        """The `/me` object."""
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
        return json_reply(self.status, {"error": error}, headers)


class WebApi:
    """Serves one listener's profile and Liked Songs, misbehaving as `faults` says.

    `lock` guards the library and the rate-limit bookkeeping (the server shares it with the
    accounts service); `save_state` is called with it held after a fault changed the library.
    `base_url` gives the API's URL once the server is bound, for the paging links.
    """

    def __init__(
        self,
        *,
        listener: Listener,
        library: Library,
        accounts: AccountsService,
        faults: Faults,
        stats: Stats,
        lock: threading.RLock,
        rng: random.Random,
        base_url: Callable[[], str],
        save_state: Callable[[], None],
    ) -> None:
        self.listener = listener
        self.library = library
        self.accounts = accounts
        self.faults = faults
        self.stats = stats
        self._lock = lock
        self._rng = rng
        self._base_url = base_url
        self._save_state = save_state
        self._window: deque[float] = deque()
        self._blocked_from = 0.0
        self._blocked_until = 0.0
        self._in_flight = 0

    def handle(self, method: str, path: str, query: dict[str, str], headers: Message) -> Reply:
        """Answer one request under `/v1/`."""
        self._arrive(path, query)
        try:
            if self.faults.latency > 0:
                time.sleep(self.faults.latency)
            reply = self._reply(method, path, query, headers)
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

    def _reply(self, method: str, path: str, query: dict[str, str], headers: Message) -> Reply:
        self._check_rate()
        scope = self._authenticate(headers.get("Authorization"))
        if self.faults.not_allowlisted:
            return Reply(403, NOT_REGISTERED.encode(), "text/plain; charset=utf-8")
        self._maybe_fail()
        if path == "/v1/me" and method == "GET":
            return json_reply(200, self.listener.profile())
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

    def _breakage(self, offset: int) -> str | None:
        """The next scripted breakage of the answer at this offset (under the lock)."""
        pending = self.faults.break_offsets.get(offset)
        return pending.pop(0) if pending else None

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
        access = self.accounts.access_token(token) if scheme == "Bearer" else None
        if access is None:
            raise _ApiError(401, "Invalid access token")
        if time.time() >= access.expires_at:
            raise _ApiError(401, "The access token expired")
        return access.scope

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
            breakage = self._breakage(offset)
        body = self._page_body(items, offset, limit, total)
        if breakage == "html":
            return Reply(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        return Reply(200, body, reset=breakage == "reset", cut_after=_half(body, breakage))

    def _page_body(self, items: list[bytes], offset: int, limit: int, total: int) -> bytes:
        """A `PagingSavedTrackObject`, assembled from cached item bytes."""
        base = f"{self._base_url()}/me/tracks"
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


def _int_param(query: dict[str, str], name: str, default: int, message: str) -> int:
    value = query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise _ApiError(400, message) from None


def _half(body: bytes, breakage: str | None) -> int | None:
    return len(body) // 2 if breakage == "truncate" else None
