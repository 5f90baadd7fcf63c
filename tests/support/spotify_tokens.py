"""Tokens and linked accounts from the Spotify stand-in, without a browser.

The real exchange and refresh (`AccountsClient`) run against the stand-in; the browser's part is
one GET of the authorize URL, whose 302 carries the code. `login` and `SandboxTokens` need no
keyring; `link_account` links for real (exchange, GET /me, the test keyring).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from favdesk.accounts import Account, AccountStore
from favdesk.link import complete_link
from favdesk.sandbox.spotify import SpotifySandbox
from favdesk.secret import Secret
from favdesk.settings import settings_from_values
from favdesk.spotify.auth import (
    AccountsClient,
    SpotifyApp,
    code_challenge,
    new_state,
    new_verifier,
)
from favdesk.spotify.tokens import TokenProvider, Tokens

#: Nobody listens there: the code is read from the 302, the browser never follows it.
REDIRECT_URI = "http://127.0.0.1:9/callback"


def sandbox_app(sandbox: SpotifySandbox, **changes: object) -> SpotifyApp:
    """The stand-in as a PKCE Spotify app; `changes` override fields (a wrong client id...)."""
    values: dict = {
        "client_id": sandbox.client_id,
        "client_secret": None,
        "accounts_url": sandbox.accounts_url,
        "api_url": sandbox.api_url,
        "redirect_uri": REDIRECT_URI,
    }
    return SpotifyApp(**{**values, **changes})


def authorize_code(app: SpotifyApp, verifier: str) -> str:
    """Play the browser up to the redirect and return the code it carries (state checked)."""
    state = new_state()
    with AccountsClient(app) as accounts:
        url = accounts.authorize_url(
            redirect_uri=REDIRECT_URI, state=state, code_challenge=code_challenge(verifier)
        )
    query = parse_qs(urlsplit(httpx.get(url).headers["Location"]).query)
    assert query["state"] == [state], "the redirect lost the state"
    return query["code"][0]


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


@dataclass
class LinkedAccount:
    """A stand-in user linked through favdesk's own flow: its account store, id and app."""

    store: AccountStore
    spotify_id: str
    app: SpotifyApp

    def account(self) -> Account:
        """The account row as saved now."""
        account = self.store.get(self.spotify_id)
        assert account is not None, "the linked account is gone"
        return account

    def tokens(self) -> Tokens:
        """The tokens in the keyring now."""
        return self.store.load_tokens(self.spotify_id)

    def provider(
        self, accounts: AccountsClient | None = None, *, save_grace: float = 60.0
    ) -> TokenProvider:
        """A new token provider for the account, as each favdesk process builds its own."""
        accounts = accounts or AccountsClient(self.app)
        return TokenProvider(accounts, self.store, self.spotify_id, save_grace=save_grace)


def link_account(sandbox: SpotifySandbox, folder: Path) -> LinkedAccount:
    """Link the stand-in's user for real (exchange, GET /me, keyring), data under `folder`."""
    app = sandbox_app(sandbox)
    settings = settings_from_values({"FAVDESK_DATA_DIR": str(folder / "data")})
    store = AccountStore(settings.database_path)
    verifier = new_verifier()
    account = complete_link(
        settings,
        app,
        authorize_code(app, verifier),
        code_verifier=verifier,
        redirect_uri=REDIRECT_URI,
        store=store,
    )
    return LinkedAccount(store, account.spotify_id, app)
