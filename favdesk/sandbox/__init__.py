"""Local stand-ins for Spotify and Supabase Storage: real HTTP servers on 127.0.0.1.

Both are `favdesk.sandbox.server.LoopbackServer`s (the shared HTTP plumbing); the Storage one
is `favdesk.sandbox.storage.StorageSandbox`.

`SpotifySandbox`, `Faults`, `Stats` and `DEMO_CLIENT_ID` come from `favdesk.sandbox.spotify`,
`follow_login` from `favdesk.sandbox.browser`. They load on first use, so
`python -m favdesk.sandbox.spotify` does not import its own module twice.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "DEMO_CLIENT_ID": "spotify",
    "Faults": "spotify",
    "SpotifySandbox": "spotify",
    "Stats": "spotify",
    "follow_login": "browser",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Load an export from its module when first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
