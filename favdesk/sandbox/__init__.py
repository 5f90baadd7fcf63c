"""Local stand-ins for Spotify and Supabase Storage: real HTTP servers on 127.0.0.1.

Both are `favdesk.sandbox.server.LoopbackServer`s (the shared HTTP plumbing); the Storage one
is `favdesk.sandbox.storage.StorageSandbox`.

`SpotifySandbox` and `DEMO_CLIENT_ID` come from `favdesk.sandbox.spotify` (the server, which
composes `spotify_library`, `spotify_accounts` and `spotify_api`), `Faults` and `Stats` from
`favdesk.sandbox.spotify_faults`, `follow_login` from `favdesk.sandbox.browser`. They load on
first use, so `python -m favdesk.sandbox.spotify` does not import its own module twice.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the lazy exports below, re-exported (`as`) so type checkers see their types
    from favdesk.sandbox.browser import follow_login as follow_login
    from favdesk.sandbox.spotify import DEMO_CLIENT_ID as DEMO_CLIENT_ID
    from favdesk.sandbox.spotify import SpotifySandbox as SpotifySandbox
    from favdesk.sandbox.spotify_faults import Faults as Faults
    from favdesk.sandbox.spotify_faults import Stats as Stats

_EXPORTS = {
    "DEMO_CLIENT_ID": "spotify",
    "Faults": "spotify_faults",
    "SpotifySandbox": "spotify",
    "Stats": "spotify_faults",
    "follow_login": "browser",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Load an export from its module when first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
