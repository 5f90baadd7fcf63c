"""Access tokens from the Spotify stand-in without a browser or a keyring, for fetch tests.

The real exchange and refresh (`AccountsClient`) run against the stand-in; the browser's part is
one GET of the authorize URL, whose 302 carries the code.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import httpx

from favdesk.sandbox.spotify import SpotifySandbox
from favdesk.secret import Secret
from favdesk.spotify.auth import (
    AccountsClient,
    SpotifyApp,
    Tokens,
    code_challenge,
    new_state,
    new_verifier,
)

#: Nobody listens there: the code is read from the 302, the browser never follows it.
REDIRECT_URI = "http://127.0.0.1:9/callback"


def sandbox_app(sandbox: SpotifySandbox) -> SpotifyApp:
    """The stand-in as a PKCE Spotify app."""
    return SpotifyApp(
        client_id=sandbox.client_id,
        client_secret=None,
        accounts_url=sandbox.accounts_url,
        api_url=sandbox.api_url,
        redirect_uri=REDIRECT_URI,
    )


def authorize_code(app: SpotifyApp, verifier: str) -> str:
    """Play the browser up to the redirect and return the code it carries."""
    with AccountsClient(app) as accounts:
        url = accounts.authorize_url(
            redirect_uri=REDIRECT_URI, state=new_state(), code_challenge=code_challenge(verifier)
        )
    location = httpx.get(url).headers["Location"]
    return parse_qs(urlsplit(location).query)["code"][0]


def login(sandbox: SpotifySandbox) -> Tokens:
    """Fresh tokens for the stand-in's user."""
    app = sandbox_app(sandbox)
    verifier = new_verifier()
    code = authorize_code(app, verifier)
    with AccountsClient(app) as accounts:
        return accounts.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT_URI)


class SandboxTokens:
    """A token source for the fetcher: one login, one refresh per rejected token."""

    def __init__(self, sandbox: SpotifySandbox) -> None:
        self.app = sandbox_app(sandbox)
        self.tokens = login(sandbox)
        self.refreshes = 0
        self.handed_out = [self.tokens.access_token.reveal()]
        self._lock = threading.Lock()

    def access_token(self) -> Secret:
        with self._lock:
            return self.tokens.access_token

    def refresh_after_401(self, rejected: Secret) -> Secret:
        with self._lock:
            if rejected == self.tokens.access_token:
                with AccountsClient(self.app) as accounts:
                    self.tokens = accounts.refresh(self.tokens.refresh_token)
                self.refreshes += 1
                self.handed_out.append(self.tokens.access_token.reveal())
            return self.tokens.access_token
