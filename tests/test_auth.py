"""PKCE, the token endpoint and the token provider, over real HTTP to the Spotify stand-in."""

from __future__ import annotations

import logging
import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import keyring
import pytest

from favdesk.errors import KeyringUnavailable, NetworkError, ReauthRequired, SpotifyAuthError
from favdesk.sandbox import SpotifySandbox
from favdesk.secret import Secret
from favdesk.spotify.auth import (
    AccountsClient,
    SpotifyApp,
    code_challenge,
    new_state,
    new_verifier,
)
from favdesk.spotify.tokens import TokenProvider, Tokens
from tests.support.memkeyring import FlakyKeyring
from tests.support.net import closed_port
from tests.support.spotify_tokens import (
    REDIRECT_URI,
    authorize_code,
    link_account,
    login,
    sandbox_app,
)


@pytest.fixture
def sandbox():
    with SpotifySandbox(tracks=3) as server:
        yield server


def refreshes(sandbox: SpotifySandbox) -> int:
    return sandbox.stats.token_requests.get("refresh_token", 0)


# -- PKCE and the authorize URL ------------------------------------------------------------


def test_verifier_uses_43_to_128_unreserved_characters():
    for length in (43, 64, 128):
        assert re.fullmatch(rf"[A-Za-z0-9\-._~]{{{length}}}", new_verifier(length))
    assert len({new_verifier() for _ in range(50)}) == 50
    with pytest.raises(ValueError):
        new_verifier(42)


def test_code_challenge_matches_rfc7636_example():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_state_is_fresh_and_high_entropy():
    states = {new_state() for _ in range(100)}
    assert len(states) == 100
    assert all(len(state) >= 43 for state in states)


def test_authorize_url_asks_for_pkce_s256_state_and_library_scope_only(sandbox):
    app = sandbox_app(sandbox)
    url = AccountsClient(app).authorize_url(
        redirect_uri=REDIRECT_URI, state="st", code_challenge="ch"
    )
    assert url.startswith(f"{sandbox.accounts_url}/authorize?")
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "client_id": [sandbox.client_id],
        "response_type": ["code"],
        "redirect_uri": [REDIRECT_URI],
        "state": ["st"],
        "scope": ["user-library-read"],
        "code_challenge_method": ["S256"],
        "code_challenge": ["ch"],
    }
    switch = AccountsClient(app).authorize_url(
        redirect_uri=REDIRECT_URI, state="st", code_challenge="ch", show_dialog=True
    )
    assert parse_qs(urlsplit(switch).query)["show_dialog"] == ["true"]


# -- exchange ------------------------------------------------------------------------------


def test_exchange_returns_tokens_valid_for_an_hour(sandbox):
    app = sandbox_app(sandbox)
    verifier = new_verifier()
    with AccountsClient(app) as accounts:
        tokens = accounts.exchange_code(
            authorize_code(app, verifier), code_verifier=verifier, redirect_uri=REDIRECT_URI
        )
    assert tokens.access_token and tokens.refresh_token
    assert tokens.scope == "user-library-read"
    assert 3590 < tokens.expires_at - time.time() <= 3600
    assert "Secret('********')" in repr(tokens)


def test_tokens_round_trip_through_json():
    tokens = Tokens(Secret("a"), Secret("r"), 1234.5, "user-library-read")
    assert Tokens.from_json(tokens.to_json()) == tokens
    soon = Tokens(Secret("a"), Secret("r"), time.time() + 30)
    assert soon.expires_within(60) and not soon.expires_within(10)


@pytest.mark.parametrize(
    ("spoil", "description"),
    [
        ("verifier", "code_verifier was incorrect"),
        ("redirect", "Invalid redirect URI"),
        ("code", "Invalid authorization code"),
    ],
)
def test_bad_code_verifier_or_redirect_is_invalid_grant(sandbox, spoil, description):
    app = sandbox_app(sandbox)
    verifier = new_verifier()
    code = authorize_code(app, verifier)
    with AccountsClient(app) as accounts, pytest.raises(SpotifyAuthError) as caught:
        accounts.exchange_code(
            "not-a-code" if spoil == "code" else code,
            code_verifier=new_verifier() if spoil == "verifier" else verifier,
            redirect_uri="http://127.0.0.1:10/callback" if spoil == "redirect" else REDIRECT_URI,
        )
    assert caught.value.error == "invalid_grant"
    assert description in str(caught.value)
    assert "start the link again" in str(caught.value)


def test_a_code_works_only_once(sandbox):
    app = sandbox_app(sandbox)
    verifier = new_verifier()
    code = authorize_code(app, verifier)
    with AccountsClient(app) as accounts:
        accounts.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT_URI)
        with pytest.raises(SpotifyAuthError, match="Invalid authorization code"):
            accounts.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT_URI)


def test_unknown_client_id_is_invalid_client(sandbox):
    verifier = new_verifier()
    code = authorize_code(sandbox_app(sandbox), verifier)
    stranger = sandbox_app(sandbox, client_id="someone-else")
    with AccountsClient(stranger) as accounts, pytest.raises(SpotifyAuthError) as caught:
        accounts.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT_URI)
    assert caught.value.error == "invalid_client"
    assert "check SPOTIFY_CLIENT_ID" in str(caught.value)


def test_client_secret_is_sent_as_basic_auth():
    with SpotifySandbox(client_secret="right-secret") as server:
        verifier = new_verifier()
        code = authorize_code(sandbox_app(server), verifier)
        wrong = sandbox_app(server, client_secret=Secret("wrong-secret"))
        with AccountsClient(wrong) as accounts, pytest.raises(SpotifyAuthError) as caught:
            accounts.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT_URI)
        assert caught.value.error == "invalid_client"
        assert "wrong-secret" not in str(caught.value)

        right = sandbox_app(server, client_secret=Secret("right-secret"))
        code = authorize_code(right, verifier)
        with AccountsClient(right) as accounts:
            tokens = accounts.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT_URI)
            assert accounts.refresh(tokens.refresh_token).access_token


def test_unreachable_accounts_service_is_a_network_error():
    app = SpotifyApp("id", None, f"http://127.0.0.1:{closed_port()}", "http://x/v1", REDIRECT_URI)
    with AccountsClient(app) as accounts, pytest.raises(NetworkError) as caught:
        accounts.exchange_code("secret-code", code_verifier="v" * 43, redirect_uri=REDIRECT_URI)
    assert "Could not reach Spotify's accounts service" in str(caught.value)
    assert "secret-code" not in str(caught.value)
    assert caught.value.__cause__ is None


# -- refresh and rotation ------------------------------------------------------------------


def test_refresh_token_kept_when_reply_omits_it(sandbox):
    tokens = login(sandbox)
    with AccountsClient(sandbox_app(sandbox)) as accounts:
        fresh = accounts.refresh(tokens.refresh_token)
    assert fresh.refresh_token == tokens.refresh_token
    assert fresh.access_token != tokens.access_token


def test_rotated_refresh_token_is_saved_and_the_old_one_dies(sandbox, tmp_path):
    linked = link_account(sandbox, tmp_path)
    old = linked.tokens()
    sandbox.faults.rotate_refresh_tokens = True
    sandbox.expire_access_tokens()
    new_access = linked.provider().refresh_after_401(old.access_token)
    saved = linked.tokens()
    assert saved.access_token == new_access
    assert saved.refresh_token != old.refresh_token
    assert linked.account().token_expires_at == saved.expires_at
    with AccountsClient(linked.app) as accounts:
        with pytest.raises(ReauthRequired):
            accounts.refresh(old.refresh_token)
        assert accounts.refresh(saved.refresh_token).access_token


def test_access_token_refreshed_about_a_minute_before_expiry(sandbox, tmp_path):
    sandbox.faults.access_token_ttl = 90
    linked = link_account(sandbox, tmp_path)
    first = linked.tokens()
    assert linked.provider().access_token() == first.access_token
    assert refreshes(sandbox) == 0

    sandbox.faults.access_token_ttl = 3600
    expiring = Tokens(first.access_token, first.refresh_token, time.time() + 50)
    linked.store.save_tokens(linked.spotify_id, expiring)
    fresh = linked.provider().access_token()
    assert fresh != first.access_token
    assert refreshes(sandbox) == 1
    assert not linked.tokens().expires_within(3000)


def test_refresh_after_401_happens_once_for_eight_threads(sandbox, tmp_path):
    linked = link_account(sandbox, tmp_path)
    provider = linked.provider()
    sandbox.expire_access_tokens()
    all_rejected = threading.Barrier(8, timeout=10)
    statuses: list[int] = []

    def request() -> None:
        with httpx.Client(timeout=10) as http:
            token = provider.access_token()
            first = http.get(f"{sandbox.api_url}/me", headers=bearer(token))
            all_rejected.wait()
            if first.status_code == 401:
                token = provider.refresh_after_401(token)
            statuses.append(http.get(f"{sandbox.api_url}/me", headers=bearer(token)).status_code)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert statuses == [200] * 8
    assert refreshes(sandbox) == 1


def test_token_refreshed_by_another_process_is_adopted_without_refreshing(sandbox, tmp_path):
    linked = link_account(sandbox, tmp_path)
    sandbox.faults.rotate_refresh_tokens = True
    first, second = linked.provider(), linked.provider()
    stale = second.access_token()
    sandbox.expire_access_tokens()
    fresh = first.refresh_after_401(first.access_token())
    assert second.refresh_after_401(stale) == fresh
    assert refreshes(sandbox) == 1


def test_revoked_link_marks_account_and_asks_to_link_again(sandbox, tmp_path):
    linked = link_account(sandbox, tmp_path)
    provider = linked.provider()
    token = provider.access_token()
    sandbox.revoke_refresh_tokens()
    sandbox.expire_access_tokens()
    with pytest.raises(ReauthRequired) as caught:
        provider.refresh_after_401(token)
    assert "link Spotify again" in str(caught.value)
    assert linked.spotify_id in str(caught.value)
    assert linked.account().needs_relink
    before = refreshes(sandbox)
    with pytest.raises(ReauthRequired, match="link Spotify again"):
        linked.provider().access_token()
    assert refreshes(sandbox) == before


class RacedAccounts(AccountsClient):
    """Another favdesk process refreshes (with rotation) just before this client's refresh."""

    def __init__(self, app: SpotifyApp, other: TokenProvider) -> None:
        super().__init__(app)
        self.other = other
        self.raced = False

    def refresh(self, refresh_token: Secret) -> Tokens:
        if not self.raced:
            self.raced = True
            self.other.refresh_after_401(self.other.access_token())
        return super().refresh(refresh_token)


@pytest.fixture
def flaky_keyring():
    backend = FlakyKeyring()
    keyring.set_keyring(backend)
    return backend


def test_rotated_tokens_survive_a_keyring_that_refuses_one_write(
    sandbox, tmp_path, flaky_keyring, caplog
):
    caplog.set_level(logging.DEBUG)
    sandbox.faults.rotate_refresh_tokens = True
    linked = link_account(sandbox, tmp_path)
    old = linked.tokens()
    provider = linked.provider()
    sandbox.expire_access_tokens()
    flaky_keyring.refuse_writes = True
    fresh = provider.refresh_after_401(provider.access_token())
    assert fresh != old.access_token
    assert linked.tokens() == old  # not saved yet, but the fresh tokens are not lost
    assert "keeping them in memory" in caplog.text

    flaky_keyring.refuse_writes = False
    assert provider.access_token() == fresh
    saved = linked.tokens()
    assert saved.access_token == fresh and saved.refresh_token != old.refresh_token
    assert not linked.account().needs_relink
    with AccountsClient(linked.app) as accounts:
        assert accounts.refresh(saved.refresh_token).access_token
    for secret in (old.refresh_token, saved.refresh_token, fresh):
        assert secret.reveal() not in caplog.text


def test_keyring_refusing_writes_past_the_grace_is_keyring_unavailable(
    sandbox, tmp_path, flaky_keyring
):
    sandbox.faults.rotate_refresh_tokens = True
    linked = link_account(sandbox, tmp_path)
    provider = linked.provider(save_grace=0)
    sandbox.expire_access_tokens()
    flaky_keyring.refuse_writes = True
    with pytest.raises(KeyringUnavailable, match="unlock your keyring"):
        provider.refresh_after_401(provider.access_token())
    with pytest.raises(KeyringUnavailable):
        provider.access_token()

    flaky_keyring.refuse_writes = False
    token = provider.access_token()
    assert linked.tokens().access_token == token
    assert refreshes(sandbox) == 1
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{sandbox.api_url}/me", headers=bearer(token)).status_code == 200


def test_invalid_grant_after_another_process_rotated_retries_with_its_token(sandbox, tmp_path):
    sandbox.faults.rotate_refresh_tokens = True
    linked = link_account(sandbox, tmp_path)
    other = linked.provider()
    provider = linked.provider(RacedAccounts(linked.app, other))
    token = provider.access_token()
    sandbox.expire_access_tokens()
    fresh = provider.refresh_after_401(token)
    assert refreshes(sandbox) == 3  # the other's, ours refused, ours with the other's token
    assert not linked.account().needs_relink
    assert linked.tokens().access_token == fresh
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{sandbox.api_url}/me", headers=bearer(fresh)).status_code == 200


def test_tokens_never_appear_in_logs_errors_or_reprs(sandbox, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.faults.rotate_refresh_tokens = True
    linked = link_account(sandbox, tmp_path)
    seen = [linked.tokens()]
    provider = linked.provider()
    sandbox.expire_access_tokens()
    provider.refresh_after_401(provider.access_token())
    seen.append(linked.tokens())
    sandbox.revoke_refresh_tokens()
    sandbox.expire_access_tokens()
    with pytest.raises(ReauthRequired) as caught:
        provider.refresh_after_401(seen[-1].access_token)
    shown = "\n".join(
        [caplog.text, str(caught.value), repr(caught.value), repr(seen), repr(linked.store.list())]
    )
    secrets_seen = {t.access_token.reveal() for t in seen} | {
        t.refresh_token.reveal() for t in seen
    }
    assert len(secrets_seen) == 4
    for secret in secrets_seen:
        assert secret not in shown


def bearer(token: Secret) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.reveal()}"}


def test_account_with_an_account_id_refreshes_through_its_spotify_id(tmp_path):
    with SpotifySandbox(tracks=1, user_id="old-name", account_id="acct-9") as server:
        server.faults.rotate_refresh_tokens = True
        linked = link_account(server, tmp_path)
        account = linked.account()
        assert (account.spotify_id, account.key) == ("old-name", "acct-9")
        provider = linked.provider()  # by Spotify id, as the import job builds it
        server.expire_access_tokens()
        fresh = provider.refresh_after_401(provider.access_token())
        assert keyring.get_password("favdesk", "spotify:old-name") is None
        stored = Tokens.from_json(keyring.get_password("favdesk", "spotify:acct-9"))
        assert stored.access_token == fresh
        assert linked.account().token_expires_at == stored.expires_at
