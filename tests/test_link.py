"""Link Spotify end to end: in-process and through `favdesk link`, with a browser stand-in."""

from __future__ import annotations

import json
import shlex
import socket
import sys
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import keyring
import pytest
from keyring.backends import SecretService, fail

from favdesk.accounts import AccountStore
from favdesk.errors import (
    KeyringUnavailable,
    LinkCancelled,
    NetworkError,
    NotAllowListed,
    SpotifyAuthError,
)
from favdesk.link import LINKED, LINKED_SYNCING, LinkResult, complete_link, link_spotify
from favdesk.sandbox import SpotifySandbox, follow_login
from favdesk.settings import load_settings
from favdesk.spotify.api import NOT_ALLOWLISTED
from favdesk.spotify.auth import SpotifyApp
from tests.support.net import closed_port

BROWSER = f"{shlex.quote(sys.executable)} -m favdesk.sandbox.browser %s"
#: A browser that lands on the callback with a forged `state`, as a stale or foreign tab would.
FORGING_BROWSER = """
import sys, httpx
url = sys.argv[1].replace("state=", "state=forged")
httpx.get(url, follow_redirects=True, timeout=10)
"""


@pytest.fixture
def sandbox():
    with SpotifySandbox(tracks=3, display_name="Zoë Listener", user_id="zoe") as server:
        yield server


@pytest.fixture
def configured(sandbox, monkeypatch):
    """Point favdesk at the test's stand-in, and the system browser at the browser stand-in."""
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("SPOTIFY_ACCOUNTS_URL", sandbox.accounts_url)
    monkeypatch.setenv("SPOTIFY_API_URL", sandbox.api_url)
    monkeypatch.setenv("BROWSER", BROWSER)
    return sandbox


class BrowserStandIn:
    """An `open_browser` for in-process links: follows the login and keeps the final page."""

    def __init__(self, *, forge_first: bool = False) -> None:
        self.pages: list[httpx.Response] = []
        self.forge_first = forge_first

    def __call__(self, url: str) -> bool:
        if self.forge_first:
            self.pages.append(follow_login(url.replace("state=", "state=forged")))
        self.pages.append(follow_login(url))
        return True


def error_line(result) -> str:
    """The one `favdesk:` line of a failed run (it is also the last line)."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("favdesk:")]
    assert errors == [lines[-1]], result.stderr
    return lines[-1]


# -- in-process ----------------------------------------------------------------------------


def test_link_spotify_links_the_account_and_tells_the_browser(configured):
    settings = load_settings()
    browser = BrowserStandIn()
    urls: list[str] = []
    result = link_spotify(
        settings, SpotifyApp.from_settings(settings), open_browser=browser, on_url=urls.append
    )
    assert result.job_id is None
    assert (result.account.spotify_id, result.account.display_name) == ("zoe", "Zoë Listener")
    assert result.account.user_id == "zoe"
    store = AccountStore(settings.database_path)
    assert store.default() == result.account
    assert store.load_tokens("zoe").refresh_token
    assert browser.pages[-1].status_code == 200
    assert LINKED in browser.pages[-1].text

    query = parse_qs(urlsplit(urls[0]).query)
    assert query["scope"] == ["user-library-read"]
    assert query["code_challenge_method"] == ["S256"]
    assert urlsplit(query["redirect_uri"][0]).port > 0


def test_user_id_setting_overrides_the_account_id(configured, monkeypatch):
    monkeypatch.setenv("FAVDESK_USER_ID", "user-42")
    settings = load_settings()
    result = link_spotify(
        settings, SpotifyApp.from_settings(settings), open_browser=BrowserStandIn()
    )
    assert result.account.user_id == "user-42"


def test_stable_account_id_is_preferred_over_id(monkeypatch):
    with SpotifySandbox(tracks=1, user_id="old-name", account_id="acct-123") as server:
        monkeypatch.setenv("SPOTIFY_CLIENT_ID", server.client_id)
        monkeypatch.setenv("SPOTIFY_ACCOUNTS_URL", server.accounts_url)
        monkeypatch.setenv("SPOTIFY_API_URL", server.api_url)
        settings = load_settings()
        result = link_spotify(
            settings, SpotifyApp.from_settings(settings), open_browser=BrowserStandIn()
        )
    assert (result.account.spotify_id, result.account.user_id) == ("old-name", "acct-123")
    assert keyring.get_password("favdesk", "spotify:acct-123")
    assert AccountStore(settings.database_path).load_tokens("old-name").refresh_token


def test_on_code_hook_replaces_completion_and_the_page_says_sync_started(configured):
    settings = load_settings()
    app = SpotifyApp.from_settings(settings)
    browser = BrowserStandIn()
    seen: list[tuple[str, str]] = []

    def enqueue_first_import(code, verifier, redirect_uri) -> LinkResult:
        seen.append((verifier, redirect_uri))
        account = complete_link(
            settings, app, code, code_verifier=verifier, redirect_uri=redirect_uri
        )
        return LinkResult(account, job_id="import-zoe-1")

    result = link_spotify(settings, app, open_browser=browser, on_code=enqueue_first_import)
    assert result.job_id == "import-zoe-1"
    assert LINKED_SYNCING in browser.pages[-1].text
    assert seen and seen[0][1].startswith("http://127.0.0.1:")


def test_wrong_state_first_then_the_right_one_links(configured, caplog):
    settings = load_settings()
    browser = BrowserStandIn(forge_first=True)
    result = link_spotify(settings, SpotifyApp.from_settings(settings), open_browser=browser)
    assert result.account.spotify_id == "zoe"
    forged, real = browser.pages
    assert forged.status_code == 400 and "waiting for" in forged.text
    assert real.status_code == 200
    assert "wrong or missing state" in caplog.text


def test_failed_completion_shows_the_error_in_the_browser(configured):
    configured.faults.not_allowlisted = True
    settings = load_settings()
    browser = BrowserStandIn()
    with pytest.raises(NotAllowListed):
        link_spotify(settings, SpotifyApp.from_settings(settings), open_browser=browser)
    assert browser.pages[-1].status_code == 400
    assert "allow-list" in browser.pages[-1].text
    assert AccountStore(settings.database_path).list() == []


def test_cancel_stops_waiting(configured):
    settings = load_settings()
    cancel = threading.Event()
    with pytest.raises(LinkCancelled):
        link_spotify(
            settings,
            SpotifyApp.from_settings(settings),
            open_browser=lambda url: cancel.set() or False,
            cancel=cancel,
        )


@pytest.mark.parametrize("backend", [fail.Keyring, SecretService.Keyring])
def test_no_usable_keyring_stops_before_the_browser_opens(configured, monkeypatch, backend):
    settings = load_settings()
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    keyring.set_keyring(backend())
    opened: list[str] = []
    with pytest.raises(KeyringUnavailable):
        link_spotify(settings, SpotifyApp.from_settings(settings), open_browser=opened.append)
    assert opened == [] and configured.stats.authorize_requests == 0


def test_unreachable_api_is_a_network_error(configured, monkeypatch):
    monkeypatch.setenv("SPOTIFY_API_URL", f"http://127.0.0.1:{closed_port()}/v1")
    settings = load_settings()
    with pytest.raises(NetworkError, match="Could not reach Spotify"):
        link_spotify(settings, SpotifyApp.from_settings(settings), open_browser=BrowserStandIn())


def test_complete_link_with_a_spent_code_saves_nothing(configured, tmp_path):
    settings = load_settings()
    with pytest.raises(SpotifyAuthError, match="Invalid authorization code"):
        complete_link(
            settings,
            SpotifyApp.from_settings(settings),
            "spent-code",
            code_verifier="v" * 43,
            redirect_uri="http://127.0.0.1:1/callback",
        )
    assert AccountStore(settings.database_path).list() == []


def test_without_a_browser_the_printed_url_completes_the_link(configured):
    """A user without a browser can finish the link by opening the printed URL themselves."""
    settings = load_settings()
    printed: list[str] = []
    finisher = threading.Thread()

    def print_url(url: str) -> None:
        printed.append(url)
        nonlocal finisher
        finisher = threading.Thread(target=follow_login, args=(url,))
        finisher.start()

    result = link_spotify(
        settings,
        SpotifyApp.from_settings(settings),
        open_browser=lambda url: False,
        on_url=print_url,
    )
    finisher.join()
    assert result.account.spotify_id == "zoe"
    assert urlencode({"scope": "user-library-read"}) in printed[0]


# -- the CLI -------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_links_end_to_end_through_the_browser(configured, favdesk_cli, tmp_path):
    result = favdesk_cli("link", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Open this URL to log in to Spotify: http://127.0.0.1:")
    assert lines[-2] == "Linked Zoë Listener (zoe)"
    assert lines[-1].startswith("jobId: ingest-zoe ")  # the first import is queued
    assert "sandbox browser: HTTP 200" in result.stderr  # the tab got the whole page
    assert "Demo mode" not in result.stdout
    account = AccountStore(tmp_path / "data" / "favdesk.sqlite3").default()
    assert account.spotify_id == "zoe"
    entries = json.loads((tmp_path / "keyring.json").read_text())
    assert [(service, user) for service, user, _ in entries] == [("favdesk", "spotify:zoe")]
    tokens = json.loads(entries[0][2])
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert token not in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_relink_replaces_the_tokens(configured, favdesk_cli, tmp_path):
    assert favdesk_cli("link").returncode == 0
    first = (tmp_path / "keyring.json").read_text()
    assert favdesk_cli("link").returncode == 0
    assert (tmp_path / "keyring.json").read_text() != first
    assert len(AccountStore(tmp_path / "data" / "favdesk.sqlite3").list()) == 1


@pytest.mark.slow
def test_cli_demo_mode_links_against_the_built_in_stand_in(favdesk_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER", BROWSER)
    result = favdesk_cli("link", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "Demo mode: no SPOTIFY_CLIENT_ID set, linking against favdesk's built-in Spotify stand-in\n"
    )
    assert result.stdout.splitlines()[-2] == "Linked Demo Listener (demo-listener)"
    assert (tmp_path / "data" / "sandbox").is_dir()


@pytest.mark.slow
def test_cli_no_browser_only_prints_the_url(configured, favdesk_cli):
    result = favdesk_cli("link", "--no-browser", "--timeout", "0.5")
    assert result.returncode == 1
    url = result.stdout.strip().removeprefix("Open this URL to log in to Spotify: ")
    assert url.startswith(f"{configured.accounts_url}/authorize?")
    assert configured.stats.authorize_requests == 0
    assert error_line(result).startswith(
        "favdesk: No answer from the browser login within 0.5 s: nothing was linked."
    )


def test_cli_port_busy(configured, favdesk_cli, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("REDIRECT_URI", f"http://127.0.0.1:{port}/callback")
        result = favdesk_cli("link")
    assert result.returncode == 1
    assert error_line(result) == (
        f"favdesk: Port {port} on 127.0.0.1 is in use by another program: change REDIRECT_URI "
        "to another port, or leave the port out (http://127.0.0.1/callback) to pick a free one"
    )


@pytest.mark.slow
def test_cli_declined(configured, favdesk_cli):
    configured.faults.decline = True
    result = favdesk_cli("link", "--timeout", "30")
    assert result.returncode == 1
    assert "sandbox browser: HTTP 400" in result.stderr  # the tab got the whole error page
    assert error_line(result) == (
        "favdesk: You declined access on Spotify's page: nothing was linked. "
        "Run the link again to retry."
    )


@pytest.mark.slow
def test_cli_state_mismatch(configured, favdesk_cli, monkeypatch, tmp_path):
    script = tmp_path / "forging_browser.py"
    script.write_text(FORGING_BROWSER)
    monkeypatch.setenv("BROWSER", f"{shlex.quote(sys.executable)} {script} %s")
    result = favdesk_cli("link", "--timeout", "2")
    assert result.returncode == 1
    assert "wrong state" in error_line(result)
    assert configured.stats.token_requests == {}


@pytest.mark.slow
def test_cli_invalid_grant(configured, favdesk_cli):
    configured.faults.code_ttl = -1.0
    result = favdesk_cli("link", "--timeout", "30")
    assert result.returncode == 1
    assert error_line(result).startswith(
        "favdesk: Spotify rejected the login (Authorization code expired): start the link again"
    )


@pytest.mark.slow
def test_cli_invalid_client(favdesk_cli, monkeypatch):
    with SpotifySandbox(tracks=1, client_secret="right") as server:
        monkeypatch.setenv("SPOTIFY_CLIENT_ID", server.client_id)
        monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "wrong-secret-6f3a")
        monkeypatch.setenv("SPOTIFY_ACCOUNTS_URL", server.accounts_url)
        monkeypatch.setenv("SPOTIFY_API_URL", server.api_url)
        monkeypatch.setenv("BROWSER", BROWSER)
        result = favdesk_cli("link", "--timeout", "30")
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("favdesk: Spotify does not know this app")
    assert "check SPOTIFY_CLIENT_ID (and SPOTIFY_CLIENT_SECRET" in line
    assert "wrong-secret-6f3a" not in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_not_allow_listed(configured, favdesk_cli):
    configured.faults.not_allowlisted = True
    result = favdesk_cli("link", "--timeout", "30")
    assert result.returncode == 1
    assert error_line(result) == f"favdesk: {NOT_ALLOWLISTED}"


@pytest.mark.slow
def test_cli_network_down(configured, favdesk_cli, monkeypatch):
    monkeypatch.setenv("SPOTIFY_API_URL", f"http://127.0.0.1:{closed_port()}/v1")
    result = favdesk_cli("link", "--timeout", "30")
    assert result.returncode == 1
    assert error_line(result) == (
        "favdesk: Could not reach Spotify (ConnectError): check your internet connection"
    )


def test_cli_without_a_keyring_says_how_to_fix_it(configured, favdesk_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    before = sorted(tmp_path.rglob("*"))
    result = favdesk_cli("link", "--timeout", "30")
    assert result.returncode == 1
    assert error_line(result) == (
        "favdesk: No OS keyring is available to store your Spotify tokens: install and unlock a "
        "Secret Service (e.g. gnome-keyring), or choose a backend with PYTHON_KEYRING_BACKEND"
    )
    assert sorted(tmp_path.rglob("*")) == before
    assert configured.stats.authorize_requests == 0
