"""Time the library fetcher against the Spotify stand-in: figures for the issue note.

Prints seconds and requests for 10,000 liked tracks at 50 ms per request with 1, 2, 4 and 8 in
flight (median of 3 runs), then the same library under a rolling 10-requests-per-2-s limit, once
with the window free and once with it used up by another client just before the fetch: seconds,
requests per page and requests sent inside a `Retry-After` window.

    .venv/bin/python -m benchmarks.fetch_library [--tracks N] [--latency S] [--runs N]

(run from the repository root: the stand-in's tokens come from tests/support.)
"""

from __future__ import annotations

import argparse
import math
import statistics

import httpx

from favdesk.sandbox.spotify import SpotifySandbox
from favdesk.spotify.library import PAGE_SIZE, LibraryFetcher
from tests.support.spotify_tokens import SandboxTokens


def run_once(
    sandbox: SpotifySandbox, tokens: SandboxTokens, concurrency: int
) -> tuple[float, LibraryFetcher]:
    """One full fetch; checks the result is exact."""
    sandbox.stats.reset()
    fetcher = LibraryFetcher(sandbox.api_url, tokens, max_concurrency=concurrency)
    items = fetcher.fetch()
    if items != sandbox.items():
        raise SystemExit("the fetched library differs from the stand-in's")
    return fetcher.stats.elapsed, fetcher


def unthrottled(tracks: int, latency: float, runs: int) -> None:
    """Seconds and requests per concurrency cap."""
    pages = math.ceil(tracks / PAGE_SIZE)
    print(f"{tracks:,} tracks ({pages} pages), {latency * 1000:.0f} ms per request")
    print(f"{'in flight':>9}  {'seconds':>8}  {'requests':>8}  {'max in flight':>13}")
    with SpotifySandbox(tracks=tracks) as sandbox:
        sandbox.faults.latency = latency
        tokens = SandboxTokens(sandbox)
        for concurrency in (1, 2, 4, 8):
            timings = [run_once(sandbox, tokens, concurrency) for _ in range(runs)]
            seconds = statistics.median(elapsed for elapsed, _ in timings)
            requests = sandbox.stats.tracks_requests
            print(
                f"{concurrency:>9}  {seconds:>8.2f}  {requests:>8}  "
                f"{sandbox.stats.max_in_flight:>13}"
            )


def use_up_window(sandbox: SpotifySandbox, tokens: SandboxTokens, limit: int) -> None:
    """Another client spends the whole rolling window right before the fetch."""
    bearer = {"Authorization": f"Bearer {tokens.access_token().reveal()}"}
    with httpx.Client(headers=bearer) as client:
        for _ in range(limit):
            client.get(f"{sandbox.api_url}/me").raise_for_status()


def rate_limited(tracks: int, latency: float, limit: int, window: float, used_up: bool) -> None:
    """Cost of a tight rolling limit: requests per page, requests inside Retry-After."""
    pages = math.ceil(tracks / PAGE_SIZE)
    start = "used up by another client" if used_up else "free"
    print(f"\nRolling limit {limit} requests per {window:g} s (window {start} at the start)")
    with SpotifySandbox(tracks=tracks) as sandbox:
        tokens = SandboxTokens(sandbox)
        sandbox.items()  # encode every item before the clock runs
        sandbox.faults.rate_limit = (limit, window)
        if used_up:
            use_up_window(sandbox, tokens, limit)
        sandbox.faults.latency = latency
        seconds, fetcher = run_once(sandbox, tokens, 8)
        stats = sandbox.stats
        ideal = (pages + 1) * window / limit
        print(f"  seconds               {seconds:.1f} (the limit alone allows {ideal:.1f})")
        print(f"  requests              {stats.tracks_requests} for {pages} pages")
        print(f"  requests per page     {stats.tracks_requests / pages:.3f}")
        print(f"  429 answers           {stats.rate_limited}")
        print(f"  inside Retry-After    {stats.requests_inside_retry_after}")
        print(f"  shared pauses         {fetcher.stats.rate_limit_pauses}")
        print(f"  max in flight         {fetcher.stats.max_in_flight}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=10, help="requests per window")
    parser.add_argument("--window", type=float, default=2.0, help="rolling window, seconds")
    args = parser.parse_args()
    unthrottled(args.tracks, args.latency, args.runs)
    for used_up in (False, True):
        rate_limited(args.tracks, args.latency, args.limit, args.window, used_up)


if __name__ == "__main__":
    main()
