"""The services favdesk works with, assembled from the settings: the real ones or demo mode's.

The app, the CLI and a job under a stock `rq worker` all get theirs here. This is the one
production module that imports `favdesk.sandbox`: demo mode wires the Spotify stand-in here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from favdesk.accounts import AccountStore, check_keyring
from favdesk.errors import KeyringUnavailable
from favdesk.secret import Secret
from favdesk.settings import Settings, load_settings
from favdesk.spotify.auth import SpotifyApp
from favdesk.storage import BUCKET, Storage, open_storage


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


@dataclass(frozen=True)
class Demo:
    """`favdesk demo`'s world: settings for the stand-ins, a simulated browser, the bucket."""

    settings: Settings
    open_browser: Callable[[str], bool]
    #: Where the Storage stand-in keeps an object, to show it on disk.
    object_path: Callable[[str], Path]
    #: True when there was no OS keyring, so the stand-in tokens are kept in memory.
    memory_keyring: bool


@contextmanager
def open_demo(settings: Settings) -> Iterator[Demo]:
    """Start a Supabase Storage stand-in and point a copy of `settings` at every stand-in:
    the Spotify one (no client id), an embedded Redis (no URL) and that Storage."""
    from favdesk.sandbox import follow_login
    from favdesk.sandbox.storage import StorageSandbox

    demo_dir = settings.data_dir / "demo"
    memory_keyring = use_memory_keyring_if_none()
    with StorageSandbox(demo_dir / "storage-server") as storage:
        yield Demo(
            settings=dataclasses.replace(
                settings,
                data_dir=demo_dir,
                spotify_client_id=None,
                spotify_client_secret=None,
                redis_url=None,
                supabase_url=storage.url,
                supabase_service_role_key=Secret(storage.service_role_key),
                user_id=None,
            ),
            open_browser=lambda url: bool(follow_login(url)),
            object_path=lambda key: storage.object_path(BUCKET, key),
            memory_keyring=memory_keyring,
        )


def use_memory_keyring_if_none() -> bool:
    """The demo's tokens are stand-in tokens: with no OS keyring, keep them in memory."""
    import keyring

    from favdesk.sandbox.memkeyring import MemoryKeyring

    try:
        check_keyring()
    except KeyringUnavailable:
        keyring.set_keyring(MemoryKeyring())
        return True
    return False
