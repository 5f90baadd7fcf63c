"""A stand-in web browser: load the authorize URL and follow its redirect to the callback.

Set `BROWSER="<python> -m favdesk.sandbox.browser %s"` and Python's `webbrowser` runs it with the
URL. Keep the `%s`: without it Python 3.11's `webbrowser` takes the whole value as one executable
name and `open()` returns False. `webbrowser` waits for the command to exit, so every step has a
timeout and the command exits 0 once it tried, like a browser that opened the page.
"""

from __future__ import annotations

import argparse
import sys

import httpx


def follow_login(url: str, timeout: float = 10.0) -> httpx.Response:
    """GET `url`, follow redirects (the 302 to the loopback callback) and return the last answer."""
    with httpx.Client(follow_redirects=True, timeout=timeout, trust_env=False) as client:
        return client.get(url)


def main(argv: list[str] | None = None) -> int:
    """Open one URL; report the outcome on stderr without the URL (it carries a code)."""
    parser = argparse.ArgumentParser(prog="python -m favdesk.sandbox.browser")
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    try:
        response = follow_login(args.url, args.timeout)
    except httpx.HTTPError as error:
        print(f"sandbox browser: {type(error).__name__}", file=sys.stderr)
        return 0
    print(f"sandbox browser: HTTP {response.status_code}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
