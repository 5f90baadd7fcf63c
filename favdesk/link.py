"""Link Spotify: the one flow the CLI and the GUI both call.

Checks the keyring, binds the loopback callback, opens the login page with PKCE and a fresh
`state`, waits for the redirect, completes the link and tells the browser how it went.
"""

from __future__ import annotations

import logging
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from favdesk.accounts import Account, AccountStore, check_keyring
from favdesk.errors import FavdeskError
from favdesk.loopback import Callback, CallbackServer
from favdesk.secret import Secret
from favdesk.settings import Settings
from favdesk.spotify.api import get_me
from favdesk.spotify.auth import (
    AccountsClient,
    SpotifyApp,
    code_challenge,
    http_client,
    new_state,
    new_verifier,
)

log = logging.getLogger(__name__)

LINKED = "Spotify is linked. You can close this tab."
LINKED_SYNCING = "Spotify is linked, sync started. You can close this tab."
UNEXPECTED = "favdesk hit an unexpected problem while linking: see favdesk for details."
#: How long to wait for a browser command to exit (webbrowser waits for it) once it has its page.
BROWSER_EXIT_WAIT = 5.0


@dataclass(frozen=True)
class LinkResult:
    """The linked account and, when the first import was queued, its job id."""

    account: Account
    job_id: str | None = None


#: Completes a link from (code, code_verifier, redirect_uri); replaces the default completion.
CodeHandler = Callable[[Secret, str, str], LinkResult]


def complete_link(
    settings: Settings,
    app: SpotifyApp,
    code: str | Secret,
    *,
    code_verifier: str,
    redirect_uri: str,
    store: AccountStore | None = None,
    http: httpx.Client | None = None,
) -> Account:
    """Exchange the code, read the account (`GET /me`) and store the link."""
    store = store or AccountStore(settings.database_path)
    with http_client(http) as client:
        tokens = AccountsClient(app, client).exchange_code(
            code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
        user = get_me(client, app.api_url, tokens.access_token)
    return store.save_link(user, tokens, settings.user_id or user.stable_id)


def link_spotify(
    settings: Settings,
    app: SpotifyApp,
    *,
    open_browser: Callable[[str], bool] = webbrowser.open,
    on_url: Callable[[str], None] | None = None,
    timeout: float = 300.0,
    cancel: threading.Event | None = None,
    on_code: CodeHandler | None = None,
) -> LinkResult:
    """Run the browser login end to end and return the linked account."""
    check_keyring()
    verifier = new_verifier()
    state = new_state()

    def default_completion(code: Secret, code_verifier: str, redirect_uri: str) -> LinkResult:
        account = complete_link(
            settings, app, code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
        return LinkResult(account)

    with CallbackServer(app.redirect_uri) as server:
        with AccountsClient(app) as accounts:
            url = accounts.authorize_url(
                redirect_uri=server.redirect_uri,
                state=state,
                code_challenge=code_challenge(verifier),
            )
        if on_url is not None:
            on_url(url)
        opener = _open_in_background(open_browser, url)
        try:
            callback = server.wait_for_code(state, timeout, cancel)
            return _finish(callback, on_code or default_completion, verifier, server.redirect_uri)
        finally:
            server.stop()  # every waiting browser gets its page, then its command can exit
            opener.join(BROWSER_EXIT_WAIT)


def _finish(
    callback: Callback, complete: CodeHandler, verifier: str, redirect_uri: str
) -> LinkResult:
    """Complete the link and show the browser the outcome in plain words."""
    try:
        result = complete(callback.code, verifier, redirect_uri)
    except FavdeskError as error:
        callback.finish(False, str(error))
        raise
    except BaseException:
        callback.finish(False, UNEXPECTED)
        raise
    callback.finish(True, LINKED_SYNCING if result.job_id else LINKED)
    return result


def _open_in_background(open_browser: Callable[[str], bool], url: str) -> threading.Thread:
    """Open the login page without blocking: `webbrowser` waits for a `BROWSER` command to exit."""

    def run() -> None:
        try:
            opened = open_browser(url)
        except (webbrowser.Error, OSError) as error:
            log.warning("Could not open a browser (%s): open the printed URL", type(error).__name__)
            return
        if opened is False:
            log.debug("No browser opened: the printed URL is the way in")

    thread = threading.Thread(target=run, name="favdesk-open-browser", daemon=True)
    thread.start()
    return thread
