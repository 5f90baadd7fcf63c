"""Fetch every Liked Song, exactly as Spotify sends it, fast and politely.

Page 0 gives `total`; the other offset windows go out in parallel through one shared HTTP client,
up to `max_concurrency` at a time. A 429 pauses every request until `Retry-After` has passed:
the pause is set the moment the 429's status line is read (before its body, before its
connection goes back to the pool) and every request checks it on its connection right before
it is written (`RateLimitGate`). The governor learns Spotify's rolling window from the 429s and
keeps the rest of the fetch just under it. Waits longer than `max_rate_limit_wait` (or a quota
429) stop the fetch with `RateLimited` instead of sleeping for hours.

Consistency: the library's state is identified by `total` and the songs of page 0 (`added_at`
and track URI: details such as popularity may be revised at any time and are not the state).
Likes land on top with a new `added_at`, so any like that survives changes page 0, and any
unlike without a like changes `total`. A result is returned only when page 0 read after the
other pages shows the same state as page 0 read before them and every page carries the same
`total`; otherwise the changed pages are fetched again (a bounded number of passes). Items are
returned raw, each page as it was last read.
"""

from __future__ import annotations

import heapq
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from favdesk.errors import FavdeskError, FetchCancelled, RateLimited, SpotifyError
from favdesk.secret import Secret
from favdesk.settings import DEFAULT_FETCH_CONCURRENCY, DEFAULT_MAX_RATE_LIMIT_WAIT
from favdesk.spotify.api import (
    HTTP_TIMEOUT,
    error_body,
    network_error,
    retry_after_seconds,
    retry_after_value,
    spotify_error,
)
from favdesk.spotify.governor import Governor

log = logging.getLogger(__name__)

PAGE_SIZE = 50
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
#: Passes over the library before giving up on a library that keeps changing.
MAX_PASSES = 4
#: 429 replays of one page before the fetch stops and reports when it may resume.
MAX_RATE_LIMIT_REPLAYS = 10
#: How often the dispatcher looks at `cancel` while it waits.
CANCEL_POLL = 0.05


class TokenSource(Protocol):
    """What the fetcher needs from a token provider (auth.TokenProvider fits)."""

    def access_token(self) -> Secret: ...

    def refresh_after_401(self, rejected: Secret) -> Secret: ...


@dataclass(frozen=True)
class Page:
    """One `limit=50` window of Liked Songs, items as Spotify sent them.

    A page whose items its holder keeps elsewhere (on disk) comes `released()`: no items, and
    `count` says how many it has.
    """

    offset: int
    items: list[dict]
    total: int
    count: int = -1

    def __post_init__(self) -> None:
        if self.count < 0:
            object.__setattr__(self, "count", len(self.items))

    def released(self) -> Page:
        """The page without its items: many pages held in little memory."""
        return Page(self.offset, [], self.total, self.count)

    def fits(self, total: int) -> bool:
        """True if this page belongs to a library of `total` items (same total, full window)."""
        return (
            self.total == total
            and self.offset % PAGE_SIZE == 0
            and 0 <= self.offset < max(total, 1)
            and self.count == min(PAGE_SIZE, total - self.offset)
        )

    def same_as(self, other: Page) -> bool:
        """True if both pages show the same library state: same total, same songs in order.

        Songs are told apart by `added_at` and track URI only: popularity, playability or album
        images that Spotify revised in between do not make the library another one.
        """
        return self.total == other.total and _identities(self.items) == _identities(other.items)


@dataclass
class FetchStats:
    """What the last fetch cost on the wire."""

    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_pauses: int = 0
    #: Requests stopped at the gate, unsent, because a 429 arrived after they were dispatched.
    held_back: int = 0
    max_in_flight: int = 0
    refreshes: int = 0
    restarts: int = 0
    elapsed: float = 0.0


@dataclass
class _Outcome:
    """One finished request, as a worker thread saw it."""

    offset: int
    ticket: int
    token: Secret | None
    sent_at: float
    latency: float
    response: httpx.Response | None = None
    body: Any = None
    error: Exception | None = None


@dataclass
class _Attempts:
    """Per-page bookkeeping within one pass."""

    retries: int = 0
    rate_limited: int = 0
    refreshed: bool = False


class HeldBack(Exception):
    """A request stopped at the gate before any of it was written: a 429 came meanwhile."""


class RateLimitGate:
    """The pause every request of one fetch shares, kept where requests meet the wire.

    Its `trace` is each request's httpx `trace` extension, which httpcore calls at each step on
    the connection the request got: when a 429's status line and headers have been read (before
    its body is, before its connection goes back to the pool) the pause is set, and when a
    request's headers are about to be written it is checked. So no request leaves on any
    connection once a 429 has arrived until that 429's `Retry-After` has passed, whichever
    worker thread took which pooled connection.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.until = 0.0

    def hold(self, until: float) -> None:
        with self._lock:
            self.until = max(self.until, until)

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's callback: `http11.` (or `http2.`) + step + `.started`/`.complete`."""
        if event.endswith(".send_request_headers.started"):
            if time.monotonic() < self.until:
                raise HeldBack
        elif event.endswith(".receive_response_headers.complete"):
            status, headers = _status_and_headers(info["return_value"])
            if status == 429:
                wait = retry_after_value(httpx.Headers(headers).get("Retry-After"))
                self.hold(time.monotonic() + wait)


class LibraryFetcher:
    """Reads a user's Liked Songs (`GET /me/tracks`) in parallel, just under Spotify's limit.

    `fetch()` is synchronous and may be called from any thread; its callbacks run in that
    thread. `stats` describes the fetch started last.
    """

    def __init__(
        self,
        api_url: str,
        tokens: TokenSource,
        *,
        max_concurrency: int = DEFAULT_FETCH_CONCURRENCY,
        max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        timeout: httpx.Timeout = HTTP_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.api_url = api_url.rstrip("/")
        self.tokens = tokens
        self.max_concurrency = max_concurrency
        self.max_rate_limit_wait = max_rate_limit_wait
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.http = http
        self.stats = FetchStats()

    def fetch(
        self,
        *,
        known_pages: Mapping[int, Page] | None = None,
        on_page: Callable[[Page], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[dict]:
        """Every saved-track item, newest first; pages go to `on_page` as they arrive.

        `known_pages` (offset -> Page, from an interrupted fetch) are reused when page 0 and
        `total` still match; otherwise they are discarded. `on_page` may see an offset again
        after the library shifted; the returned list is authoritative.
        """
        pages = self._fetch(known_pages, on_page, on_progress, cancel, release=False)
        return [item for offset in sorted(pages) for item in pages[offset].items]

    def fetch_to(
        self,
        on_page: Callable[[Page], None],
        *,
        known_pages: Mapping[int, Page] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        """`fetch` for libraries of any size: each page is let go once `on_page` kept it (on
        disk), so memory stays flat; known pages may come `released()`, page 0 with its items.

        Returns the library's item count: for each offset below it, the page `on_page` got
        last (or the known one, if none) is the library's.
        """
        pages = self._fetch(known_pages, on_page, on_progress, cancel, release=True)
        return sum(page.count for page in pages.values())

    def _fetch(
        self,
        known_pages: Mapping[int, Page] | None,
        on_page: Callable[[Page], None] | None,
        on_progress: Callable[[int, int], None] | None,
        cancel: threading.Event | None,
        release: bool,
    ) -> dict[int, Page]:
        stats = self.stats = FetchStats()
        started = time.monotonic()
        try:
            with _Fetch(self, stats, on_page, on_progress, cancel, release) as run:
                return run.library(known_pages or {})
        finally:
            stats.elapsed = time.monotonic() - started

    def backoff(self, retry: int) -> float:
        """Exponential backoff with jitter before retry number `retry` (1-based)."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))
        return delay * random.uniform(0.5, 1.0)


class _Fetch:
    """One fetch: its HTTP client, worker threads, governor and the pages held so far."""

    def __init__(
        self,
        fetcher: LibraryFetcher,
        stats: FetchStats,
        on_page: Callable[[Page], None] | None,
        on_progress: Callable[[int, int], None] | None,
        cancel: threading.Event | None,
        release: bool,
    ) -> None:
        self.fetcher = fetcher
        self.stats = stats
        self.on_page = on_page
        self.on_progress = on_progress
        self.cancel = cancel
        self.release = release
        self.governor = Governor(fetcher.max_concurrency, time.monotonic())
        self.gate = RateLimitGate()
        self.outcomes: queue.Queue[_Outcome] = queue.Queue()
        self.in_flight = 0
        self.closed = threading.Event()
        self.refreshed_from: set[Secret] = set()
        self.http = fetcher.http or httpx.Client(timeout=fetcher.timeout)
        self.pool = _DaemonPool(fetcher.max_concurrency, "favdesk-fetch")

    def __enter__(self) -> _Fetch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """Drop the workers without waiting when the fetch failed or was cancelled.

        After a success none is in flight. Otherwise a request still in flight ends at its own
        timeout in the background; its outcome is never read, so no callback fires after
        `fetch()` has raised.
        """
        self.closed.set()
        self.pool.shutdown(wait=exc_type is None)
        if self.fetcher.http is None:
            self.http.close()

    # -- the library, pass by pass ---------------------------------------------------------

    def library(self, known: Mapping[int, Page]) -> dict[int, Page]:
        """Fetch until a pass is consistent with page 0 read before and after it."""
        baseline = self.first_page()
        pages, caller_clean = self.reusable(known, baseline)
        page0_delivered = False
        for _ in range(MAX_PASSES):
            if caller_clean and not page0_delivered:
                self.deliver(baseline, pages)
                page0_delivered = True
            if not _missing(baseline, pages):
                return self.finish(baseline, pages, page0_delivered)
            self.fetch_pages(_missing(baseline, pages), baseline, pages)
            check = self.first_page()
            if not check.same_as(baseline):
                log.info("Liked Songs changed during the fetch: reading them again")
                baseline, pages = check, {0: check}
                caller_clean = page0_delivered = False
                self.stats.restarts += 1
                continue
            if check.items != baseline.items:  # revised details: keep the latest raw page 0
                baseline = pages[0] = check
                page0_delivered = False
            if not _missing(baseline, pages):
                return self.finish(baseline, pages, page0_delivered)
        raise SpotifyError(
            "Your Liked Songs kept changing while favdesk was reading them: "
            "try the import again when you are not adding or removing songs"
        )

    def first_page(self) -> Page:
        """Page 0, which carries `total` and identifies the library's state."""
        found: list[Page] = []

        def keep(page: Page) -> bool:
            found.append(page)
            return True

        self.run([0], keep)
        return found[0]

    def reusable(self, known: Mapping[int, Page], baseline: Page) -> tuple[dict[int, Page], bool]:
        """Known pages still valid for `baseline`, and whether the caller holds no stale ones.

        When the caller's page 0 differs, its other pages may be stale: page 0 is then handed
        out only after every other page, so an interrupted re-fetch is never taken as current.
        """
        if not known:
            return {0: baseline}, True
        previous = known.get(0)
        if previous is None or not previous.same_as(baseline):
            return {0: baseline}, False
        pages = {o: p for o, p in known.items() if o > 0 and p.fits(baseline.total)}
        pages[0] = baseline
        return pages, True

    def fetch_pages(self, offsets: list[int], baseline: Page, pages: dict[int, Page]) -> None:
        """Fetch `offsets`, keeping pages that fit `baseline`; stop early at the first misfit."""

        def keep(page: Page) -> bool:
            if not page.fits(baseline.total):
                log.info("Page at offset %d shows another library state", page.offset)
                return False
            pages[page.offset] = page
            self.deliver(page, pages)
            return True

        self.run(offsets, keep)

    def finish(
        self, baseline: Page, pages: dict[int, Page], page0_delivered: bool
    ) -> dict[int, Page]:
        """The pages of a consistent pass."""
        if not page0_delivered:
            self.deliver(baseline, pages)
        return pages

    def deliver(self, page: Page, pages: dict[int, Page]) -> None:
        self.stats.pages += 1
        if self.on_page is not None:
            self.on_page(page)
        if self.release and page.offset:  # page 0 identifies the library: kept whole
            pages[page.offset] = page.released()
        self.report(pages, page.total)

    def report(self, pages: dict[int, Page], total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(sum(p.count for p in pages.values()), total)

    # -- the dispatcher ----------------------------------------------------------------------

    def run(self, offsets: list[int], keep: Callable[[Page], bool]) -> None:
        """Fetch `offsets` under the governor; `keep(page)` returning False ends the pass.

        Runs in the caller's thread: workers only send requests, every decision is made here.
        """
        waiting = [(0.0, offset) for offset in offsets]
        heapq.heapify(waiting)
        attempts = {offset: _Attempts() for offset in offsets}
        stopped = False
        while waiting or self.in_flight:
            self.check_cancel()
            if not stopped:
                self.dispatch(waiting)
            outcome = self.next_outcome(waiting)
            if outcome is None:
                continue
            self.in_flight -= 1
            page = self.handle(outcome, attempts[outcome.offset], waiting)
            if not stopped:
                self.dispatch(waiting)  # refill first: on_page (a disk write) may take a while
            if page is not None and not stopped:
                stopped = not keep(page)
            if stopped:
                waiting.clear()

    def dispatch(self, waiting: list[tuple[float, int]]) -> None:
        """Send as many waiting pages as the bound, the pause and the learned window allow."""
        while waiting and self.in_flight < self.governor.limit:
            now = time.monotonic()
            if self.ready_at(waiting) > now:
                return
            _, offset = heapq.heappop(waiting)
            self.in_flight += 1
            self.stats.requests += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.in_flight)
            self.pool.submit(self.send, offset, self.governor.sent(now))

    def ready_at(self, waiting: list[tuple[float, int]]) -> float:
        """When the next waiting page may go, bound aside."""
        return max(self.gate.until, self.governor.ready_at(), waiting[0][0])

    def next_outcome(self, waiting: list[tuple[float, int]]) -> _Outcome | None:
        """The next finished request, or None when it is time to dispatch or check `cancel`."""
        timeout = CANCEL_POLL
        if waiting and self.in_flight < self.governor.limit:
            timeout = min(timeout, max(0.0, self.ready_at(waiting) - time.monotonic()))
        try:
            return self.outcomes.get(timeout=timeout) if timeout > 0 else self.outcomes.get_nowait()
        except queue.Empty:
            return None

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise FetchCancelled(
                "Import stopped: the pages fetched so far are kept and a new import resumes there"
            )

    def send(self, offset: int, ticket: int) -> None:
        """Worker thread: one `GET /me/tracks` window; the outcome goes back to the dispatcher."""
        if self.closed.is_set():
            return
        sent_at = time.monotonic()
        outcome = _Outcome(offset, ticket, None, sent_at, 0.0)
        try:
            token = outcome.token = self.fetcher.tokens.access_token()
            outcome.response = self.http.get(
                f"{self.fetcher.api_url}/me/tracks",
                params={"limit": PAGE_SIZE, "offset": offset},
                headers={"Authorization": f"Bearer {token.reveal()}"},
                timeout=self.fetcher.timeout,
                extensions={"trace": self.gate.trace},
            )
            if outcome.response.status_code == 200:
                outcome.body = _json(outcome.response)
        except Exception as error:  # noqa: BLE001 (handed to the dispatcher, which decides)
            outcome.error = error
        outcome.latency = time.monotonic() - sent_at
        self.outcomes.put(outcome)

    # -- one reply ---------------------------------------------------------------------------

    def handle(
        self, outcome: _Outcome, attempts: _Attempts, waiting: list[tuple[float, int]]
    ) -> Page | None:
        """A page, or None after scheduling a replay; raises when the fetch cannot go on."""
        response = outcome.response
        if isinstance(outcome.error, HeldBack):  # never sent: again once the pause is over
            self.governor.withdrawn(outcome.ticket)
            self.stats.held_back += 1
            heapq.heappush(waiting, (0.0, outcome.offset))
            return None
        page = _page(outcome) if response is not None and response.status_code == 200 else None
        if response is None or response.status_code != 429:
            read_at = outcome.sent_at + outcome.latency
            self.governor.answered(outcome.ticket, read_at, got_through=page is not None)
        if outcome.error is not None:
            self.failed(outcome, attempts, waiting)
            return None
        assert response is not None
        status = response.status_code
        if status == 200:
            if page is not None:
                return page
            self.retry(outcome.offset, attempts, waiting, lambda: _unreadable(outcome))
            return None
        if status == 429:
            self.rate_limited(outcome, response, attempts, waiting)
        elif status == 401:
            self.unauthorized(outcome, response, attempts, waiting)
        elif status in TRANSIENT_STATUSES:
            self.retry(outcome.offset, attempts, waiting, lambda: spotify_error(response))
        else:
            raise spotify_error(response)
        return None

    def failed(
        self, outcome: _Outcome, attempts: _Attempts, waiting: list[tuple[float, int]]
    ) -> None:
        """Retry transport failures and timeouts; anything else (a token error) ends the fetch."""
        error = outcome.error
        if isinstance(error, httpx.TransportError):
            self.retry(outcome.offset, attempts, waiting, lambda: network_error(error))
            return
        if isinstance(error, httpx.HTTPError):
            raise network_error(error)
        assert error is not None
        raise error

    def retry(
        self,
        offset: int,
        attempts: _Attempts,
        waiting: list[tuple[float, int]],
        error: Callable[[], FavdeskError],
    ) -> None:
        """Replay a page after a transient failure, with backoff; raise once retries run out."""
        if attempts.retries >= self.fetcher.max_retries:
            raise error()
        attempts.retries += 1
        self.stats.retries += 1
        delay = self.fetcher.backoff(attempts.retries)
        log.info("Page at offset %d failed; retry %d in %.2f s", offset, attempts.retries, delay)
        heapq.heappush(waiting, (time.monotonic() + delay, offset))

    def rate_limited(
        self,
        outcome: _Outcome,
        response: httpx.Response,
        attempts: _Attempts,
        waiting: list[tuple[float, int]],
    ) -> None:
        """One shared pause; stop instead when the wait is too long or the quota is gone."""
        self.stats.rate_limited += 1
        wait = retry_after_seconds(response)
        reason, _, _ = error_body(response)
        if reason == "QUOTA_EXCEEDED" or wait > self.fetcher.max_rate_limit_wait:
            raise spotify_error(response)
        attempts.rate_limited += 1
        if attempts.rate_limited > MAX_RATE_LIMIT_REPLAYS:
            resume_at = datetime.now(UTC) + timedelta(seconds=max(wait, 60.0))
            raise RateLimited(
                f"Spotify keeps rate limiting this app: try again after {resume_at:%H:%M} UTC",
                resume_at=resume_at,
            )
        wait = max(wait, self.fetcher.backoff_base)
        read_at = outcome.sent_at + outcome.latency
        self.gate.hold(read_at + wait)  # the gate saw it first, unless a transport hides traces
        if self.governor.rate_limited(outcome.ticket, read_at, wait):
            self.stats.rate_limit_pauses += 1
            log.info("Spotify rate limit: pausing %.1f s; window %s", wait, self.governor.window)
        heapq.heappush(waiting, (0.0, outcome.offset))

    def unauthorized(
        self,
        outcome: _Outcome,
        response: httpx.Response,
        attempts: _Attempts,
        waiting: list[tuple[float, int]],
    ) -> None:
        """Refresh once per rejected token and replay; a page rejected twice is an error."""
        if attempts.refreshed or outcome.token is None:
            raise spotify_error(response)
        attempts.refreshed = True
        if outcome.token not in self.refreshed_from:
            self.refreshed_from.add(outcome.token)
            self.fetcher.tokens.refresh_after_401(outcome.token)
            self.stats.refreshes += 1
        heapq.heappush(waiting, (0.0, outcome.offset))


def _missing(baseline: Page, pages: dict[int, Page]) -> list[int]:
    """Offsets of the library described by `baseline` that are not held yet."""
    return [o for o in range(PAGE_SIZE, baseline.total, PAGE_SIZE) if o not in pages]


def _identities(items: list[Any]) -> list[tuple[Any, Any]]:
    """(added_at, track URI) per item; None for a null track (local files have a URI too)."""
    return [_identity(item) for item in items]


def _identity(item: Any) -> tuple[Any, Any]:
    if not isinstance(item, dict):
        return item, None
    track = item.get("track")
    return item.get("added_at"), track.get("uri") if isinstance(track, dict) else None


class _DaemonPool:
    """Up to `size` daemon threads running submitted calls in order.

    ThreadPoolExecutor's threads are joined when the process exits, so quitting the app
    while a Spotify request hung waited out that request's read timeout (20 s). These are
    daemon threads: a request abandoned by a cancelled fetch never holds up an exit.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size, self.name = size, name
        self.calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self.threads: list[threading.Thread] = []

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        self.calls.put((call, args))
        if len(self.threads) < self.size:
            thread = threading.Thread(
                target=self._run, name=f"{self.name}_{len(self.threads)}", daemon=True
            )
            self.threads.append(thread)
            thread.start()

    def shutdown(self, wait: bool) -> None:
        """Drop the calls not started yet; with `wait`, join the threads."""
        while True:
            try:
                self.calls.get_nowait()
            except queue.Empty:
                break
        for _ in self.threads:
            self.calls.put(None)
        if wait:
            for thread in self.threads:
                thread.join()

    def _run(self) -> None:
        while (item := self.calls.get()) is not None:
            call, args = item
            try:
                call(*args)
            except Exception:
                log.exception("a Spotify request failed unexpectedly")


def _json(response: httpx.Response) -> Any:
    """The reply's JSON, or None when it is not JSON (a truncated or foreign body)."""
    try:
        return response.json()
    except ValueError:
        return None


def _page(outcome: _Outcome) -> Page | None:
    """The page in a 200 reply, or None if the body is not a saved-tracks page."""
    body = outcome.body
    if not isinstance(body, dict):
        return None
    items, total = body.get("items"), body.get("total")
    if not isinstance(items, list) or not isinstance(total, int):
        return None
    return Page(outcome.offset, items, total)


def _status_and_headers(value: Sequence[Any]) -> tuple[int, Any]:
    """Status and header list from httpcore's reply trace: HTTP/1.1 gives (version, status,
    reason, headers), HTTP/2 (status, headers)."""
    return (value[1] if len(value) == 4 else value[0]), value[-1]


def _unreadable(outcome: _Outcome) -> SpotifyError:
    return SpotifyError(
        f"Spotify sent an unreadable page of Liked Songs (offset {outcome.offset}): try again later"
    )
