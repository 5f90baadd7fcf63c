"""What a test switches on the Spotify stand-in (`Faults`) and reads back off it (`Stats`)."""

from __future__ import annotations

import threading
from dataclasses import MISSING, dataclass, field, fields


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
    #: /me/tracks offset -> how many more times to break the answer there, as networks and
    #: proxies do: "reset" drops the connection without a reply, "truncate" closes it halfway
    #: through the body, "html" answers 200 with a proxy's HTML page instead of JSON.
    break_offsets: dict[int, list[str]] = field(default_factory=dict)
    #: Once more than this many /me/tracks requests arrived (see `Stats.tracks_requests`),
    #: unlike `mutate_remove` tracks from position `mutate_remove_at`, then like `mutate_add`
    #: new ones (at the front), once; the field then returns to None.
    mutate_after: int | None = None
    mutate_add: int = 0
    mutate_remove: int = 0
    mutate_remove_at: int = 0


@dataclass(frozen=True)
class AfterRateLimit:
    """A 429 and the next request that arrived on the same connection (monotonic seconds).

    On one HTTP/1.1 connection the next request leaves only after the client has read the
    429, so a request here before `sent_at + retry_after` is one the client sent knowing it
    had to wait: no in-flight race excuses it.
    """

    connection: int
    sent_at: float
    retry_after: float
    next_at: float

    @property
    def early(self) -> bool:
        return self.next_at < self.sent_at + self.retry_after


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
    #: Per connection, each 429 that was followed by another request on that connection.
    after_rate_limit: list[AfterRateLimit] = field(default_factory=list)
    _open_429s: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bump(self, name: str, by: int = 1) -> None:
        """Add to a counter from any handler thread."""
        with self._lock:
            setattr(self, name, getattr(self, name) + by)

    def bump_grant(self, grant_type: str) -> None:
        """Count one token request by its grant type."""
        with self._lock:
            self.token_requests[grant_type] = self.token_requests.get(grant_type, 0) + 1

    def exchanged(
        self, connection: int, arrived: float, replied: float, retry_after: float | None
    ) -> None:
        """One request that arrived on numbered `connection` and was answered at `replied`;
        `retry_after` is set when the answer was a 429."""
        with self._lock:
            opened = self._open_429s.pop(connection, None)
            if opened is not None:
                sent_at, wait = opened
                self.after_rate_limit.append(AfterRateLimit(connection, sent_at, wait, arrived))
            if retry_after is not None:
                self._open_429s[connection] = (replied, retry_after)

    @property
    def early_on_connection(self) -> list[AfterRateLimit]:
        """Requests that came on a 429's connection before its `Retry-After` had passed."""
        with self._lock:
            return [record for record in self.after_rate_limit if record.early]

    def reset(self) -> None:
        """Zero every counter and forget the connections seen."""
        with self._lock:
            for spec in fields(self):
                if spec.name == "_lock":
                    continue
                fresh = spec.default_factory() if spec.default_factory is not MISSING else 0
                setattr(self, spec.name, fresh)
