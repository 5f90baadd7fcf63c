"""CLI handlers: each takes (args, settings), calls the same core functions as the GUI,
prints plain lines, and returns an exit code. Errors are printed by `favdesk.cli`.
"""

from __future__ import annotations

import argparse
import webbrowser

from favdesk.settings import Settings

DEMO_NOTICE = (
    "Demo mode: no SPOTIFY_CLIENT_ID set, linking against favdesk's built-in Spotify stand-in"
)


def link(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk link`: log in to Spotify in the browser and store the link."""
    from favdesk.link import link_spotify
    from favdesk.spotify.auth import open_spotify_app

    if settings.demo_mode:
        print(DEMO_NOTICE, flush=True)
    with open_spotify_app(settings) as app:
        result = link_spotify(
            settings,
            app,
            open_browser=_no_browser if args.no_browser else webbrowser.open,
            on_url=lambda url: print(f"Open this URL to log in to Spotify: {url}", flush=True),
            timeout=args.timeout,
        )
    account = result.account
    print(f"Linked {account.display_name} ({account.spotify_id})")
    return 0


def _no_browser(url: str) -> bool:
    return False
