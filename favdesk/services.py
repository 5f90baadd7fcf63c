"""The services favdesk works with, assembled from the settings: the real ones or demo mode's.

The app, the CLI and a job under a stock `rq worker` all get theirs here. This is the one
production module that imports `favdesk.sandbox`: demo mode wires the Spotify stand-in here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from favdesk.accounts import AccountStore
from favdesk.settings import Settings, load_settings
from favdesk.spotify.auth import SpotifyApp
from favdesk.storage import Storage, open_storage


@dataclass(frozen=True)
class Services:
    """What an import needs: settings, linked accounts, the Spotify app and the storage."""

    settings: Settings
    accounts: AccountStore
    spotify_app: SpotifyApp
    storage: Storage


@contextmanager
def open_spotify_app(settings: Settings) -> Iterator[SpotifyApp]:
    """The configured Spotify app, or in demo mode one pointing at a running stand-in."""
    if not settings.demo_mode:
        yield SpotifyApp.from_settings(settings)
        return
    from favdesk.sandbox import DEMO_CLIENT_ID
    from favdesk.sandbox.spotify import SpotifySandbox

    with SpotifySandbox(state_dir=settings.data_dir / "sandbox") as sandbox:
        yield SpotifyApp(
            client_id=DEMO_CLIENT_ID,
            client_secret=None,
            accounts_url=sandbox.accounts_url,
            api_url=sandbox.api_url,
            redirect_uri=settings.redirect_uri,
        )


@contextmanager
def open_services(settings: Settings | None = None) -> Iterator[Services]:
    """Open the services of `settings` (default: this process's); in demo mode the Spotify
    stand-in started here serves until they are closed."""
    settings = settings or load_settings()
    with ExitStack() as stack:
        spotify_app = stack.enter_context(open_spotify_app(settings))
        storage = open_storage(settings)
        stack.callback(storage.close)
        yield Services(settings, AccountStore(settings.database_path), spotify_app, storage)
