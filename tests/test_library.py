"""The library fetcher against the Spotify stand-in, over real loopback HTTP, fault by fault."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from favdesk.errors import (
    FetchCancelled,
    NetworkError,
    NotAllowListed,
    RateLimited,
    ReauthRequired,
    SpotifyError,
)
from favdesk.sandbox.spotify import SpotifySandbox
from favdesk.secret import Secret
from favdesk.spotify.library import PAGE_SIZE, HeldBack, LibraryFetcher, Page, RateLimitGate
from tests.support.net import closed_port
from tests.support.spotify_tokens import SandboxTokens, link_account


@pytest.fixture
def spotify():
    """Start a stand-in with a library of the given size; stopped after the test."""
    started: list[SpotifySandbox] = []

    def start(tracks: int, **faults) -> SpotifySandbox:
        sandbox = SpotifySandbox(tracks=tracks).start()
        started.append(sandbox)
        for name, value in faults.items():
            setattr(sandbox.faults, name, value)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


def make_fetcher(sandbox: SpotifySandbox, tokens=None, **options) -> LibraryFetcher:
    """A fetcher with small backoffs so retries do not slow the tests down."""
    options.setdefault("backoff_base", 0.01)
    options.setdefault("backoff_max", 0.05)
    return LibraryFetcher(sandbox.api_url, tokens or SandboxTokens(sandbox), **options)


def page_count(tracks: int) -> int:
    return max(1, math.ceil(tracks / PAGE_SIZE))


def assert_pages_exact(pages: dict[int, Page], items: list[dict]) -> None:
    """Every page handed out is exactly that window of the library."""
    for offset, page in pages.items():
        assert page.items == items[offset : offset + PAGE_SIZE], f"page at {offset} differs"


# -- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tracks", [0, 1, 50, 51, 120])
def test_fetch_returns_exact_library_for_small_sizes(spotify, tracks):
    sandbox = spotify(tracks)
    fetcher = make_fetcher(sandbox)

    items = fetcher.fetch()

    assert items == sandbox.items()
    assert len(items) == tracks
    verification = 1 if tracks > PAGE_SIZE else 0
    assert sandbox.stats.tracks_requests == page_count(tracks) + verification
    assert fetcher.stats.requests == sandbox.stats.tracks_requests


@pytest.mark.slow
def test_large_library_fetched_exactly_in_parallel_within_the_cap(spotify):
    sandbox = spotify(10_050, latency=0.05)
    expected = sandbox.items()  # also has the stand-in encode every item before the clock runs
    fetcher = make_fetcher(sandbox, max_concurrency=8)
    progress: list[tuple[int, int]] = []

    items = fetcher.fetch(on_progress=lambda done, total: progress.append((done, total)))

    assert items == expected
    assert any(item["track"] is None for item in items)
    assert any(item["track"] and item["track"]["is_local"] for item in items)
    assert sandbox.stats.tracks_requests == page_count(10_050) + 1
    assert sandbox.stats.market_requests == 0
    assert 1 < sandbox.stats.max_in_flight <= 8
    assert fetcher.stats.max_in_flight == 8
    sequential = page_count(10_050) * 0.05
    assert fetcher.stats.elapsed < sequential / 2
    assert progress[-1] == (10_050, 10_050)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


@pytest.mark.slow
def test_concurrency_cap_respected(spotify):
    sandbox = spotify(1_500, latency=0.02)
    fetcher = make_fetcher(sandbox, max_concurrency=3)

    assert fetcher.fetch() == sandbox.items()

    assert sandbox.stats.max_in_flight <= 3
    assert fetcher.stats.max_in_flight == 3


def test_never_sends_market_and_asks_for_full_pages(spotify):
    sandbox = spotify(120)
    seen: list[httpx.URL] = []
    http = httpx.Client(event_hooks={"request": [lambda request: seen.append(request.url)]})
    with http:
        make_fetcher(sandbox, http=http).fetch()

    assert sandbox.stats.market_requests == 0
    assert seen and all(url.params.get("limit") == "50" for url in seen)
    assert sorted({url.params["offset"] for url in seen}) == ["0", "100", "50"]


# -- rate limits -------------------------------------------------------------------------------


@pytest.mark.slow
def test_rolling_rate_limit_costs_few_extra_requests_and_none_inside_retry_after(spotify):
    sandbox = spotify(4_000, latency=0.01, rate_limit=(20, 1.0))
    fetcher = make_fetcher(sandbox, max_concurrency=8)

    items = fetcher.fetch()

    assert items == sandbox.items()
    assert sandbox.stats.rate_limited >= 1
    assert sandbox.stats.requests_inside_retry_after == 0
    pages = page_count(4_000)
    assert sandbox.stats.tracks_requests / pages <= 1.2
    assert fetcher.stats.rate_limit_pauses >= 1


@pytest.mark.slow
def test_rate_limit_window_used_up_before_the_fetch_costs_one_pause_not_a_slow_pace(spotify):
    sandbox = spotify(1_000, latency=0.05)
    tokens = SandboxTokens(sandbox)
    unthrottled = make_fetcher(sandbox, tokens)
    assert unthrottled.fetch() == sandbox.items()
    sandbox.faults.rate_limit = (30, 1.0)
    sandbox.faults.latency = 0.0
    bearer = {"Authorization": f"Bearer {tokens.access_token().reveal()}"}
    with httpx.Client(headers=bearer) as other_client:  # it just used the whole window
        for _ in range(30):
            other_client.get(f"{sandbox.api_url}/me").raise_for_status()
    sandbox.faults.latency = 0.05
    sandbox.stats.reset()
    fetcher = make_fetcher(sandbox, tokens)

    items = fetcher.fetch()

    assert items == sandbox.items()
    assert sandbox.stats.rate_limited >= 1
    assert sandbox.stats.requests_inside_retry_after == 0
    assert sandbox.stats.tracks_requests / page_count(1_000) <= 1.2
    assert fetcher.stats.max_in_flight > 1  # after the pause one went first, then the rest
    retry_after = 1.0
    assert fetcher.stats.elapsed < retry_after + 2 * unthrottled.stats.elapsed + 1.0


def test_long_retry_after_stops_quickly_with_resume_time(spotify):
    sandbox = spotify(2_000, rate_limit=(5, 30.0), retry_after=3600)
    fetcher = make_fetcher(sandbox, max_rate_limit_wait=60.0)
    pages: dict[int, Page] = {}
    began = datetime.now(UTC)

    with pytest.raises(RateLimited) as raised:
        fetcher.fetch(on_page=lambda page: pages.setdefault(page.offset, page))

    assert fetcher.stats.elapsed < 5
    resume_at = raised.value.resume_at
    assert began + timedelta(seconds=3590) <= resume_at <= datetime.now(UTC) + timedelta(hours=1)
    assert not raised.value.quota
    assert "try again after" in str(raised.value)
    assert 0 in pages
    assert_pages_exact(pages, sandbox.items())
    assert sandbox.stats.requests_inside_retry_after == 0


def test_quota_exceeded_stops_even_when_retry_after_is_short(spotify):
    sandbox = spotify(500, quota_exceeded=True, retry_after=2)
    fetcher = make_fetcher(sandbox)

    with pytest.raises(RateLimited) as raised:
        fetcher.fetch()

    assert raised.value.quota
    assert "quota" in str(raised.value)
    assert sandbox.stats.tracks_requests == 1


def test_cancel_during_rate_limit_pause_returns_promptly(spotify):
    sandbox = spotify(2_000, rate_limit=(5, 30.0), retry_after=30)
    fetcher = make_fetcher(sandbox)
    cancel = threading.Event()

    def cancel_once_paused() -> None:
        deadline = time.monotonic() + 10
        while sandbox.stats.rate_limited == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        cancel.set()

    watcher = threading.Thread(target=cancel_once_paused)
    watcher.start()
    began = time.monotonic()
    with pytest.raises(FetchCancelled):
        fetcher.fetch(cancel=cancel)
    watcher.join()

    assert time.monotonic() - began < 5
    assert sandbox.stats.requests_inside_retry_after == 0


@pytest.mark.slow
@pytest.mark.parametrize("in_flight", [2, 3, 4])
def test_no_request_leaves_on_a_429s_connection_before_its_retry_after(
    spotify, in_flight, tmp_path
):
    sandbox = spotify(2_345, latency=0.02, rate_limit=(40, 2.0))
    fetcher = make_fetcher(sandbox, max_concurrency=in_flight)

    def write_page(page: Page) -> None:  # as an import keeps its pages: the dispatcher is busy
        (tmp_path / f"{page.offset}.json").write_text(json.dumps(page.items))

    assert fetcher.fetch(on_page=write_page) == sandbox.items()

    after = sandbox.stats.after_rate_limit
    assert after, "no 429 was followed by another request on its connection"
    assert [record for record in after if record.early] == []
    assert sandbox.stats.requests_inside_retry_after == 0


def test_gate_is_held_once_a_429s_headers_are_read_before_its_body(spotify):
    sandbox = spotify(10, rate_limit=(0, 30.0))
    bearer = {"Authorization": f"Bearer {SandboxTokens(sandbox).access_token().reveal()}"}
    gate = RateLimitGate()
    with (
        httpx.Client(headers=bearer) as http,
        http.stream("GET", f"{sandbox.api_url}/me", extensions={"trace": gate.trace}) as response,
    ):
        assert response.status_code == 429
        assert not response.is_stream_consumed
        assert gate.until >= time.monotonic() + 29


def test_gate_holds_back_a_request_before_any_of_it_is_written(spotify):
    sandbox = spotify(10)
    gate = RateLimitGate()
    gate.hold(time.monotonic() + 60)
    with httpx.Client() as http, pytest.raises(HeldBack):
        http.get(f"{sandbox.api_url}/me", extensions={"trace": gate.trace})
    assert sandbox.stats.requests == 0


class SlowTokens:
    """Hands out the token of call number `slow_call` after `delay` seconds: the worker thread
    that asked writes its request well after the dispatcher let it go."""

    def __init__(self, tokens: SandboxTokens, slow_call: int, delay: float) -> None:
        self.tokens = tokens
        self.calls = 0
        self.slow_call = slow_call
        self.delay = delay

    def access_token(self) -> Secret:
        self.calls += 1
        if self.calls == self.slow_call:
            time.sleep(self.delay)  # the behaviour under test is a late send
        return self.tokens.access_token()

    def refresh_after_401(self, rejected: Secret) -> Secret:
        return self.tokens.refresh_after_401(rejected)


@pytest.mark.slow
def test_a_request_let_go_before_a_429_arrived_does_not_leave_on_its_connection_early(spotify):
    """The race of issue 10: offset 100 is let go with offset 50, its worker gets its token
    late, and by then offset 50's connection is back in the pool with a 429 on it."""
    sandbox = spotify(150, rate_limit=(1, 1.0))  # page 0 fills the window
    tokens = SlowTokens(SandboxTokens(sandbox), slow_call=3, delay=0.3)
    fetcher = make_fetcher(sandbox, tokens, max_concurrency=2)

    assert fetcher.fetch() == sandbox.items()

    assert sandbox.stats.early_on_connection == []
    assert sandbox.stats.requests_inside_retry_after == 0
    assert fetcher.stats.held_back >= 1
    assert sandbox.stats.tracks_requests == fetcher.stats.requests - fetcher.stats.held_back


# -- server errors -----------------------------------------------------------------------------


@pytest.mark.slow
def test_5xx_bursts_at_deep_offsets_are_retried(spotify):
    sandbox = spotify(10_050, latency=0.005, fail_offsets={10_000: 3, 9_950: 2, 5_000: 4})

    fetcher = make_fetcher(sandbox)
    assert fetcher.fetch() == sandbox.items()

    assert fetcher.stats.retries == 9
    assert sandbox.stats.server_errors == 9


@pytest.mark.parametrize("status", [500, 503, 504])
def test_each_transient_status_is_retried(spotify, status):
    sandbox = spotify(120, fail_offsets={50: 2}, error_status=status)

    assert make_fetcher(sandbox).fetch() == sandbox.items()


@pytest.mark.slow
@pytest.mark.parametrize("breakage", ["reset", "truncate", "html"])
def test_broken_answers_at_deep_offsets_are_retried_to_an_exact_library(spotify, breakage):
    """Connection resets, bodies cut short and a proxy's HTML page instead of JSON."""
    sandbox = spotify(2_000, break_offsets={1_950: [breakage] * 2, 1_000: [breakage]})
    fetcher = make_fetcher(sandbox)
    assert fetcher.fetch() == sandbox.items()
    assert sandbox.faults.break_offsets == {1_950: [], 1_000: []}  # each breakage was met


def test_answers_that_stay_broken_end_in_a_clear_error_keeping_the_pages(spotify):
    sandbox = spotify(500, break_offsets={250: ["html"] * 50})
    fetcher = make_fetcher(sandbox, max_retries=3)
    kept: list[Page] = []
    with pytest.raises(SpotifyError, match="unreadable page of Liked Songs"):
        fetcher.fetch(on_page=kept.append)
    assert sorted(page.offset for page in kept) == [o for o in range(0, 500, 50) if o != 250]


@pytest.mark.slow
def test_random_5xx_are_retried_to_an_exact_library(spotify):
    sandbox = spotify(3_000, error_rate=0.2)
    fetcher = make_fetcher(sandbox, max_retries=10)

    assert fetcher.fetch() == sandbox.items()

    assert fetcher.stats.retries == sandbox.stats.server_errors > 0


def test_persistent_5xx_fails_after_max_retries_keeping_delivered_pages(spotify):
    sandbox = spotify(500, fail_offsets={250: 100})
    fetcher = make_fetcher(sandbox, max_retries=3, max_concurrency=2)
    pages: dict[int, Page] = {}

    with pytest.raises(SpotifyError) as raised:
        fetcher.fetch(on_page=lambda page: pages.setdefault(page.offset, page))

    assert raised.value.status == 502
    assert "try again later" in str(raised.value)
    assert sandbox.stats.server_errors == 4
    assert 0 in pages
    assert_pages_exact(pages, sandbox.items())


def test_read_timeout_is_retried(spotify):
    sandbox = spotify(120, latency=0.5)

    def answer_quickly_once_asked() -> None:
        deadline = time.monotonic() + 10
        while sandbox.stats.tracks_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        sandbox.faults.latency = 0.0

    watcher = threading.Thread(target=answer_quickly_once_asked)
    watcher.start()
    fetcher = make_fetcher(sandbox, timeout=httpx.Timeout(5.0, read=0.2))
    items = fetcher.fetch()
    watcher.join()

    assert items == sandbox.items()
    assert fetcher.stats.retries == 1


def test_read_timeouts_that_persist_are_a_network_error(spotify):
    sandbox = spotify(120, latency=0.3)
    fetcher = make_fetcher(sandbox, max_retries=2, timeout=httpx.Timeout(5.0, read=0.1))

    with pytest.raises(NetworkError) as raised:
        fetcher.fetch()

    assert "ReadTimeout" in str(raised.value)
    assert sandbox.stats.tracks_requests == 3


def test_unreachable_spotify_is_a_network_error():
    class FixedTokens:
        def access_token(self) -> Secret:
            return Secret("unused")

        def refresh_after_401(self, rejected: Secret) -> Secret:
            raise AssertionError("no 401 expected")

    fetcher = LibraryFetcher(
        f"http://127.0.0.1:{closed_port()}/v1", FixedTokens(), max_retries=2, backoff_base=0.01
    )

    with pytest.raises(NetworkError) as raised:
        fetcher.fetch()

    assert fetcher.stats.requests == 3
    assert "Could not reach Spotify" in str(raised.value)


# -- tokens and other errors -------------------------------------------------------------------


@pytest.mark.slow
def test_token_expiring_mid_fetch_is_refreshed_once(spotify):
    sandbox = spotify(3_000, latency=0.005)
    tokens = SandboxTokens(sandbox)
    fetcher = make_fetcher(sandbox, tokens)
    delivered: list[int] = []

    def expire_after_five_pages(page: Page) -> None:
        delivered.append(page.offset)
        if len(delivered) == 5:
            sandbox.expire_access_tokens()

    assert fetcher.fetch(on_page=expire_after_five_pages) == sandbox.items()

    assert tokens.refreshes == 1
    assert fetcher.stats.refreshes == 1
    assert sandbox.stats.token_requests.get("refresh_token") == 1


def test_second_401_after_a_refresh_is_an_error(spotify):
    sandbox = spotify(200, access_token_ttl=0)
    fetcher = make_fetcher(sandbox)

    with pytest.raises(SpotifyError) as raised:
        fetcher.fetch()

    assert raised.value.status == 401
    assert fetcher.stats.refreshes == 1
    assert sandbox.stats.tracks_requests == 2


def test_plain_text_403_is_not_allow_listed(spotify):
    sandbox = spotify(120, not_allowlisted=True)

    with pytest.raises(NotAllowListed):
        make_fetcher(sandbox).fetch()


def test_tokens_never_reach_the_logs(spotify, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox = spotify(600, fail_offsets={100: 1})
    tokens = SandboxTokens(sandbox)
    fetcher = make_fetcher(sandbox, tokens)

    def expire_once(page: Page) -> None:
        if page.offset == 0:
            sandbox.expire_access_tokens()

    fetcher.fetch(on_page=expire_once)

    assert tokens.refreshes == 1
    assert caplog.records
    for token in tokens.handed_out:
        assert token not in caplog.text


# -- a library that changes --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("added", "removed", "removed_at"),
    [(3, 0, 0), (0, 2, 2_400), (1, 1, 4_000), (60, 0, 0), (0, 1, 0)],
    ids=["like", "unlike-deep", "like-and-unlike-same-total", "like-a-page", "unlike-top"],
)
def test_library_changed_mid_fetch_gives_the_exact_final_library(
    spotify, added, removed, removed_at
):
    sandbox = spotify(
        5_000,
        latency=0.005,
        mutate_after=20,
        mutate_add=added,
        mutate_remove=removed,
        mutate_remove_at=removed_at,
    )
    fetcher = make_fetcher(sandbox)
    pages: dict[int, Page] = {}

    items = fetcher.fetch(on_page=lambda page: pages.__setitem__(page.offset, page))

    expected = sandbox.items()
    assert len(expected) == 5_000 + added - removed
    assert items == expected
    assert fetcher.stats.restarts >= 1
    assert_pages_exact({o: p for o, p in pages.items() if o < len(expected)}, expected)


def test_library_changed_right_after_page_0(spotify):
    sandbox = spotify(1_000, mutate_after=1, mutate_add=2)
    fetcher = make_fetcher(sandbox)

    assert fetcher.fetch() == sandbox.items()
    assert fetcher.stats.restarts == 1


def test_library_that_never_settles_is_a_clear_error(spotify):
    sandbox = spotify(1_000)
    fetcher = make_fetcher(sandbox, max_concurrency=1)

    def like_one_more(page: Page) -> None:
        sandbox.add_tracks(1)

    with pytest.raises(SpotifyError) as raised:
        fetcher.fetch(on_page=like_one_more)

    assert "kept changing" in str(raised.value)


# -- resume and cancel -------------------------------------------------------------------------


def interrupted_fetch(sandbox: SpotifySandbox, after_pages: int) -> dict[int, Page]:
    """The pages an import kept before it was cancelled after `after_pages` pages."""
    pages: dict[int, Page] = {}
    cancel = threading.Event()

    def keep(page: Page) -> None:
        pages[page.offset] = page
        if len(pages) >= after_pages:
            cancel.set()

    with pytest.raises(FetchCancelled):
        make_fetcher(sandbox, max_concurrency=2).fetch(on_page=keep, cancel=cancel)
    return pages


def test_cancel_stops_between_requests_keeping_delivered_pages(spotify):
    sandbox = spotify(5_000, latency=0.005)

    pages = interrupted_fetch(sandbox, after_pages=10)

    assert 10 <= len(pages) <= 12
    assert sandbox.stats.tracks_requests <= 13
    assert_pages_exact(pages, sandbox.items())


def fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("favdesk-fetch")]


@pytest.mark.slow
def test_cancel_with_requests_in_flight_returns_at_once_and_calls_back_nothing_after(spotify):
    sandbox = spotify(2_000)
    cancel = threading.Event()
    calls: list[float] = []

    def slow_down_after_page_0(page: Page) -> None:
        calls.append(time.monotonic())
        sandbox.faults.latency = 1.5

    def cancel_once_two_hang() -> None:
        deadline = time.monotonic() + 10
        while sandbox.stats.tracks_requests < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        cancelled_at.append(time.monotonic())
        cancel.set()

    cancelled_at: list[float] = []
    watcher = threading.Thread(target=cancel_once_two_hang)
    watcher.start()
    with pytest.raises(FetchCancelled):
        make_fetcher(sandbox).fetch(
            on_page=slow_down_after_page_0,
            on_progress=lambda done, total: calls.append(time.monotonic()),
            cancel=cancel,
        )
    returned = time.monotonic()
    watcher.join()

    assert returned - cancelled_at[0] < 0.5  # the hanging requests would take 1.5 s
    deadline = time.monotonic() + 10
    while fetch_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not fetch_threads(), "workers outlived the replies to their requests"
    assert sandbox.stats.tracks_requests >= 3
    assert max(calls) < returned


def test_cancel_before_start_sends_nothing(spotify):
    sandbox = spotify(100)
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(FetchCancelled):
        make_fetcher(sandbox).fetch(cancel=cancel)

    assert sandbox.stats.tracks_requests == 0


@pytest.mark.slow
def test_resume_fetches_only_missing_pages(spotify):
    sandbox = spotify(5_000, latency=0.005)
    known = interrupted_fetch(sandbox, after_pages=30)
    sandbox.stats.reset()
    fetcher = make_fetcher(sandbox)
    delivered: list[int] = []

    items = fetcher.fetch(known_pages=known, on_page=lambda page: delivered.append(page.offset))

    assert items == sandbox.items()
    missing = page_count(5_000) - len(known)
    assert sandbox.stats.tracks_requests == missing + 2  # page 0 before and after
    assert delivered[0] == 0
    assert sorted(delivered[1:]) == sorted(set(range(0, 5_000, PAGE_SIZE)) - known.keys())


@pytest.mark.slow
def test_resume_after_the_library_shifted_discards_known_pages(spotify):
    sandbox = spotify(2_000, latency=0.005)
    known = interrupted_fetch(sandbox, after_pages=10)
    sandbox.add_tracks(1)
    sandbox.stats.reset()
    delivered: list[int] = []

    items = make_fetcher(sandbox).fetch(
        known_pages=known, on_page=lambda page: delivered.append(page.offset)
    )

    assert items == sandbox.items()
    assert sandbox.stats.tracks_requests == page_count(2_001) + 1
    assert delivered[-1] == 0  # page 0 last: the caller's stale pages are never taken as current


# When Spotify revises details (popularity, playability, images) between reads, "exact" means:
# every page is the raw page as it was last read. A page kept from an interrupted fetch keeps the
# details it was read with; page 0, read again on every attempt, carries the newest ones.


@pytest.mark.slow
def test_resume_after_details_changed_fetches_only_missing_pages(spotify):
    sandbox = spotify(5_000, latency=0.005)
    known = interrupted_fetch(sandbox, after_pages=30)
    held = sorted(o for o in known if o > 0)
    sandbox.update_track_details(PAGE_SIZE)  # page 0
    sandbox.update_track_details(PAGE_SIZE, at=held[0])  # a page the import already holds
    sandbox.stats.reset()
    fetcher = make_fetcher(sandbox)
    delivered: dict[int, Page] = {}

    items = fetcher.fetch(known_pages=known, on_page=lambda p: delivered.__setitem__(p.offset, p))

    now = sandbox.items()
    assert sandbox.stats.tracks_requests == page_count(5_000) - len(known) + 2
    assert fetcher.stats.restarts == 0
    assert items[:PAGE_SIZE] == now[:PAGE_SIZE] != known[0].items
    assert delivered[0].items == now[:PAGE_SIZE]
    assert items[held[0] : held[0] + PAGE_SIZE] == known[held[0]].items
    assert known[held[0]].items != now[held[0] : held[0] + PAGE_SIZE]
    stale = range(held[0], held[0] + PAGE_SIZE)
    assert [x for i, x in enumerate(items) if i not in stale] == [
        x for i, x in enumerate(now) if i not in stale
    ]


@pytest.mark.slow
def test_details_changing_during_a_fetch_do_not_restart_it(spotify):
    sandbox = spotify(3_000, latency=0.005)
    fetcher = make_fetcher(sandbox)
    page0_seen: list[list[dict]] = []

    def revise_page_0(page: Page) -> None:
        if page.offset == 0:
            page0_seen.append(page.items)
        sandbox.update_track_details(PAGE_SIZE)

    items = fetcher.fetch(on_page=revise_page_0)

    assert fetcher.stats.restarts == 0
    assert sandbox.stats.tracks_requests == page_count(3_000) + 1
    assert items[:PAGE_SIZE] == page0_seen[-1]  # page 0 as read last, delivered again
    assert len(page0_seen) == 2 and page0_seen[0] != page0_seen[1]
    assert len(items) == 3_000
    assert [i["added_at"] for i in items] == [i["added_at"] for i in sandbox.items()]


def test_resume_ignores_known_pages_of_another_total(spotify):
    sandbox = spotify(500)
    known = {0: Page(0, sandbox.items()[:50], 500)}
    known[100] = Page(100, sandbox.items()[100:150], 499)

    items = make_fetcher(sandbox).fetch(known_pages=known)

    assert items == sandbox.items()
    assert sandbox.stats.tracks_requests == page_count(500) + 1


# -- end to end with the real token provider ---------------------------------------------------


@pytest.mark.slow
def test_linked_account_fetches_through_an_expiry_with_the_real_token_provider(spotify, tmp_path):
    sandbox = spotify(2_000, latency=0.005)
    linked = link_account(sandbox, tmp_path)
    before = linked.tokens().access_token
    fetcher = make_fetcher(sandbox, linked.provider())

    def expire_at_page_3(page: Page) -> None:
        if page.offset == 3 * PAGE_SIZE:
            sandbox.expire_access_tokens()

    assert fetcher.fetch(on_page=expire_at_page_3) == sandbox.items()

    assert fetcher.stats.refreshes == 1
    assert sandbox.stats.token_requests.get("refresh_token") == 1
    assert linked.tokens().access_token != before


def test_revoked_link_mid_fetch_asks_to_link_again(spotify, tmp_path):
    sandbox = spotify(2_000, latency=0.005)
    linked = link_account(sandbox, tmp_path)

    def revoke_at_page_3(page: Page) -> None:
        if page.offset == 3 * PAGE_SIZE:
            sandbox.revoke_refresh_tokens()
            sandbox.expire_access_tokens()

    with pytest.raises(ReauthRequired) as raised:
        make_fetcher(sandbox, linked.provider()).fetch(on_page=revoke_at_page_3)

    assert "link Spotify again" in str(raised.value)
    assert linked.account().needs_relink


# -- to disk: pages let go once kept ----------------------------------------------------------


def test_fetch_to_hands_every_page_over_and_counts_the_library(spotify):
    sandbox = spotify(120)
    kept: dict[int, Page] = {}
    count = make_fetcher(sandbox).fetch_to(lambda page: kept.__setitem__(page.offset, page))
    assert count == 120
    assert [item for offset in sorted(kept) for item in kept[offset].items] == sandbox.items()


def test_fetch_to_resumes_from_pages_known_only_by_their_counts(spotify):
    sandbox = spotify(120)
    kept: dict[int, Page] = {}
    make_fetcher(sandbox).fetch_to(lambda page: kept.__setitem__(page.offset, page))
    known = {offset: page if offset == 0 else page.released() for offset, page in kept.items()}
    sandbox.stats.reset()
    delivered: list[int] = []

    count = make_fetcher(sandbox).fetch_to(lambda p: delivered.append(p.offset), known_pages=known)

    assert (count, delivered, sandbox.stats.tracks_requests) == (120, [0], 1)
