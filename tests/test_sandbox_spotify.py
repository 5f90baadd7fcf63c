"""The Spotify stand-in, checked on the wire: what a client would see from the real service."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from favdesk.sandbox import DEMO_CLIENT_ID, SpotifySandbox, follow_login

CALLBACK = "http://127.0.0.1:43123/callback"
SCOPE = "user-library-read"


def challenge_for(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(sandbox: SpotifySandbox, **overrides: str | None) -> str:
    """An authorize URL as a PKCE client builds it; `None` drops a parameter."""
    params: dict[str, str | None] = {
        "client_id": DEMO_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "state": "s-1",
        "scope": SCOPE,
        "code_challenge_method": "S256",
        "code_challenge": challenge_for("v" * 43),
    }
    params.update(overrides)
    query = urlencode({key: value for key, value in params.items() if value is not None})
    return f"{sandbox.accounts_url}/authorize?{query}"


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return {
        key: values[0]
        for key, values in parse_qs(urlsplit(response.headers["Location"]).query).items()
    }


def get_code(sandbox: SpotifySandbox, verifier: str = "v" * 43, **overrides: str | None) -> str:
    response = httpx.get(
        authorize_url(sandbox, code_challenge=challenge_for(verifier), **overrides)
    )
    return redirect_params(response)["code"]


def token_call(
    sandbox: SpotifySandbox, auth: tuple[str, str] | None = None, **form: str
) -> httpx.Response:
    return httpx.post(f"{sandbox.accounts_url}/api/token", data=form, auth=auth)


def exchange(
    sandbox: SpotifySandbox, code: str, verifier: str = "v" * 43, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": DEMO_CLIENT_ID,
        "code_verifier": verifier,
        **extra,
    }
    return token_call(sandbox, **form)


def login(sandbox: SpotifySandbox) -> dict:
    """The token reply of a complete PKCE login."""
    response = exchange(sandbox, get_code(sandbox))
    assert response.status_code == 200, response.text
    return response.json()


def refresh(sandbox: SpotifySandbox, refresh_token: str) -> httpx.Response:
    return token_call(
        sandbox, grant_type="refresh_token", refresh_token=refresh_token, client_id=DEMO_CLIENT_ID
    )


def oauth_error(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 400
    body = response.json()
    return body["error"], body["error_description"]


@pytest.fixture
def sandbox():
    with SpotifySandbox(tracks=120) as server:
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_client(sandbox: SpotifySandbox) -> httpx.Client:
    """An httpx client for the Web API, carrying a fresh access token."""
    return httpx.Client(base_url=sandbox.api_url, headers=bearer(login(sandbox)["access_token"]))


@pytest.fixture
def api(sandbox):
    """An httpx client carrying a valid access token for the sandbox."""
    with api_client(sandbox) as client:
        yield client


def fetch_all(api: httpx.Client, limit: int = 50) -> list[dict]:
    """Follow `next` from offset 0, as a serial client does."""
    items: list[dict] = []
    url: str | None = f"/me/tracks?limit={limit}"
    while url:
        page = api.get(url).raise_for_status().json()
        items += page["items"]
        url = page["next"]
    return items


# -- authorize ------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [43123, 51000])
def test_authorize_redirects_to_any_port_with_code_and_same_state(sandbox, port):
    state = "a b&c=d/é"
    redirect = f"http://127.0.0.1:{port}/callback"
    response = httpx.get(authorize_url(sandbox, redirect_uri=redirect, state=state))
    assert response.headers["Location"].startswith(f"{redirect}?code=")
    params = redirect_params(response)
    assert params["state"] == state
    assert len(params["code"]) > 20


def test_authorize_omits_state_when_client_sent_none(sandbox):
    params = redirect_params(httpx.get(authorize_url(sandbox, state=None)))
    assert set(params) == {"code"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_id": "someone-else"}, "INVALID_CLIENT: Invalid client"),
        (
            {"redirect_uri": "http://localhost:43123/callback"},
            "INVALID_CLIENT: Invalid redirect URI",
        ),
        (
            {"redirect_uri": "http://127.0.0.1:43123/callback/"},
            "INVALID_CLIENT: Invalid redirect URI",
        ),
        (
            {"redirect_uri": "http://127.0.0.1:43123/call-back"},
            "INVALID_CLIENT: Invalid redirect URI",
        ),
        (
            {"redirect_uri": "https://127.0.0.1:43123/callback"},
            "INVALID_CLIENT: Invalid redirect URI",
        ),
        (
            {"redirect_uri": "http://192.168.1.2:43123/callback"},
            "INVALID_CLIENT: Invalid redirect URI",
        ),
        ({"redirect_uri": None}, "INVALID_CLIENT: Invalid redirect URI"),
    ],
)
def test_authorize_shows_error_page_without_redirect(sandbox, overrides, message):
    response = httpx.get(authorize_url(sandbox, **overrides))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text


def test_uri_registered_with_port_accepts_only_that_port():
    with SpotifySandbox(redirect_uris=("http://127.0.0.1:8888/callback",)) as server:
        assert (
            httpx.get(
                authorize_url(server, redirect_uri="http://127.0.0.1:8888/callback")
            ).status_code
            == 302
        )
        assert (
            httpx.get(
                authorize_url(server, redirect_uri="http://127.0.0.1:8889/callback")
            ).status_code
            == 400
        )


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_authorize_redirects_back_with_oauth_error(sandbox, overrides, error):
    assert redirect_params(httpx.get(authorize_url(sandbox, **overrides))) == {
        "error": error,
        "state": "s-1",
    }


def test_declined_consent_redirects_with_access_denied_and_state(sandbox):
    sandbox.faults.decline = True
    assert redirect_params(httpx.get(authorize_url(sandbox))) == {
        "error": "access_denied",
        "state": "s-1",
    }


def test_authorize_records_what_the_client_asked_for(sandbox):
    httpx.get(authorize_url(sandbox, show_dialog="true"))
    assert sandbox.last_authorize["scope"] == SCOPE
    assert sandbox.last_authorize["show_dialog"] == "true"
    assert sandbox.stats.authorize_requests == 1


# -- token endpoint -------------------------------------------------------------------------


def test_code_exchange_returns_bearer_tokens_for_the_asked_scope(sandbox):
    tokens = login(sandbox)
    assert set(tokens) == {"access_token", "token_type", "scope", "expires_in", "refresh_token"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == SCOPE
    assert tokens["expires_in"] == 3600
    assert sandbox.stats.token_requests == {"authorization_code": 1}


def test_wrong_code_verifier_is_rejected(sandbox):
    code = get_code(sandbox, verifier="right" * 10)
    assert oauth_error(exchange(sandbox, code, verifier="wrong" * 10)) == (
        "invalid_grant",
        "code_verifier was incorrect",
    )


def test_missing_code_verifier_is_rejected(sandbox):
    response = exchange(sandbox, get_code(sandbox), code_verifier="")
    assert oauth_error(response) == ("invalid_grant", "code_verifier was incorrect")


def test_code_works_only_once(sandbox):
    code = get_code(sandbox)
    assert exchange(sandbox, code).status_code == 200
    assert oauth_error(exchange(sandbox, code)) == ("invalid_grant", "Invalid authorization code")


def test_code_exchange_needs_the_identical_redirect_uri(sandbox):
    code = get_code(sandbox)
    response = exchange(sandbox, code, redirect_uri=CALLBACK + "/")
    assert oauth_error(response) == ("invalid_grant", "Invalid redirect URI")


def test_code_expires(sandbox):
    sandbox.faults.code_ttl = 0.0
    code = get_code(sandbox)
    assert oauth_error(exchange(sandbox, code)) == ("invalid_grant", "Authorization code expired")


def test_token_endpoint_rejects_unknown_client_and_grant(sandbox):
    assert (
        oauth_error(exchange(sandbox, get_code(sandbox), client_id="nope"))[0] == "invalid_client"
    )
    response = token_call(sandbox, grant_type="password", client_id=DEMO_CLIENT_ID)
    assert oauth_error(response)[0] == "unsupported_grant_type"
    response = token_call(sandbox, grant_type="refresh_token", client_id=DEMO_CLIENT_ID)
    assert oauth_error(response)[0] == "invalid_request"


def test_client_secret_allows_plain_code_flow_with_basic_auth():
    with SpotifySandbox(client_secret="s3cret") as server:
        params = redirect_params(
            httpx.get(authorize_url(server, code_challenge=None, code_challenge_method=None))
        )
        form = {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": CALLBACK,
        }
        wrong = token_call(server, auth=(DEMO_CLIENT_ID, "guess"), **form)
        assert oauth_error(wrong)[0] == "invalid_client"
        params = redirect_params(
            httpx.get(authorize_url(server, code_challenge=None, code_challenge_method=None))
        )
        form["code"] = params["code"]
        response = token_call(server, auth=(DEMO_CLIENT_ID, "s3cret"), **form)
        assert response.status_code == 200
        assert response.json()["refresh_token"]


def test_refresh_without_rotation_omits_refresh_token_and_old_one_keeps_working(sandbox):
    first = login(sandbox)["refresh_token"]
    for _ in range(2):
        response = refresh(sandbox, first)
        assert response.status_code == 200
        assert "refresh_token" not in response.json()
        assert response.json()["access_token"]
    assert sandbox.stats.token_requests["refresh_token"] == 2


def test_refresh_with_rotation_returns_new_token_and_revokes_old_one(sandbox):
    sandbox.faults.rotate_refresh_tokens = True
    first = login(sandbox)["refresh_token"]
    second = refresh(sandbox, first).json()["refresh_token"]
    assert second != first
    assert oauth_error(refresh(sandbox, first)) == ("invalid_grant", "Refresh token revoked")
    assert refresh(sandbox, second).status_code == 200


def test_revoked_and_expired_refresh_tokens_are_final(sandbox):
    revoked = login(sandbox)["refresh_token"]
    sandbox.revoke_refresh_tokens()
    expired = login(sandbox)["refresh_token"]
    sandbox.expire_refresh_tokens()
    assert oauth_error(refresh(sandbox, revoked)) == ("invalid_grant", "Refresh token revoked")
    assert oauth_error(refresh(sandbox, expired)) == ("invalid_grant", "Refresh token expired")
    assert login(sandbox)["refresh_token"]  # linking again works


# -- Web API --------------------------------------------------------------------------------


def test_me_describes_the_account():
    with (
        SpotifySandbox(user_id="u1", display_name="Ünïcode 名前", account_id="acc-1") as server,
        api_client(server) as api,
    ):
        me = api.get("/me").json()
    assert me["id"] == "u1"
    assert me["display_name"] == "Ünïcode 名前"
    assert me["account_id"] == "acc-1"
    assert me["type"] == "user"
    assert me["uri"] == "spotify:user:u1"


def test_me_has_no_account_id_unless_set(api):
    assert "account_id" not in api.get("/me").json()


def test_pages_link_with_absolute_urls_and_cover_the_library_in_order(sandbox, api):
    first = api.get("/me/tracks?limit=50").json()
    assert first["total"] == 120
    assert first["offset"] == 0 and first["limit"] == 50
    assert first["previous"] is None
    assert first["href"] == f"{sandbox.api_url}/me/tracks?offset=0&limit=50"
    assert first["next"] == f"{sandbox.api_url}/me/tracks?offset=50&limit=50"
    last = api.get(f"{sandbox.api_url}/me/tracks?offset=100&limit=50").json()
    assert last["next"] is None
    assert last["previous"] == f"{sandbox.api_url}/me/tracks?offset=50&limit=50"
    assert len(last["items"]) == 20
    assert fetch_all(api) == sandbox.items()
    assert fetch_all(api, limit=7) == sandbox.items()


def test_default_page_is_20_and_past_the_end_is_empty(api):
    page = api.get("/me/tracks").json()
    assert (page["limit"], len(page["items"])) == (20, 20)
    beyond = api.get("/me/tracks?offset=500&limit=50").json()
    assert beyond["items"] == [] and beyond["total"] == 120 and beyond["next"] is None


@pytest.mark.parametrize("limit", ["51", "0", "ten"])
def test_limit_outside_1_to_50_is_rejected(api, limit):
    response = api.get(f"/me/tracks?limit={limit}")
    assert response.status_code == 400
    assert response.json() == {"error": {"status": 400, "message": "Invalid limit"}}


def test_library_is_messy_like_real_ones():
    items = SpotifySandbox(tracks=1500, seed=7).items()
    tracks = [item["track"] for item in items if item["track"]]
    local = [track for track in tracks if track["is_local"]]
    assert len(tracks) < len(items)  # some `track: null`
    assert local and all(t["id"] is None and t["uri"].startswith("spotify:local:") for t in local)
    assert any("popularity" not in track for track in tracks)
    assert any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", track["name"]) for track in tracks)
    assert any(re.search(r"[éèüöñç]", track["name"]) for track in tracks)
    assert any(re.search(r"[\U0001F300-\U0001FAFF]", track["name"]) for track in tracks)
    added = [item["added_at"] for item in items]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp) for stamp in added)
    assert all(newer > older for newer, older in zip(added, added[1:], strict=False))
    assert len({track["uri"] for track in tracks}) == len(tracks)


def test_library_is_deterministic_per_seed():
    assert SpotifySandbox(tracks=60, seed=3).items() == SpotifySandbox(tracks=60, seed=3).items()
    assert SpotifySandbox(tracks=60, seed=3).items() != SpotifySandbox(tracks=60, seed=4).items()


@pytest.mark.slow
def test_ten_thousand_tracks_generate_and_serve_quickly(sandbox):
    started = time.perf_counter()
    with SpotifySandbox(tracks=10_000) as big:
        with api_client(big) as client:
            items = fetch_all(client)
        assert len(items) == 10_000
        assert items == big.items()
    assert time.perf_counter() - started < 10


def test_web_api_needs_a_valid_bearer_token(sandbox, api):
    assert httpx.get(f"{sandbox.api_url}/me/tracks").json() == {
        "error": {"status": 401, "message": "Invalid access token"}
    }
    forged = httpx.get(f"{sandbox.api_url}/me", headers=bearer("forged"))
    assert forged.status_code == 401
    sandbox.expire_access_tokens()
    expired = api.get("/me/tracks")
    assert expired.status_code == 401
    assert expired.json() == {"error": {"status": 401, "message": "The access token expired"}}


def test_access_token_ttl_sets_expires_in_and_lifetime(sandbox):
    sandbox.faults.access_token_ttl = 0
    tokens = login(sandbox)
    assert tokens["expires_in"] == 0
    response = httpx.get(f"{sandbox.api_url}/me", headers=bearer(tokens["access_token"]))
    assert response.json()["error"]["message"] == "The access token expired"


def test_token_without_library_scope_is_forbidden(sandbox):
    response = exchange(sandbox, get_code(sandbox, scope="user-read-email"))
    token = response.json()["access_token"]
    page = httpx.get(f"{sandbox.api_url}/me/tracks", headers=bearer(token))
    assert page.status_code == 403


def test_market_is_counted_and_changes_nothing(sandbox, api):
    with_market = api.get("/me/tracks?limit=50&market=DE").json()["items"]
    assert with_market == sandbox.items()[:50]
    api.get("/me/tracks?limit=50")
    assert sandbox.stats.market_requests == 1


# -- faults ---------------------------------------------------------------------------------


def test_rate_limit_window_answers_429_with_retry_after(sandbox, api):
    sandbox.faults.rate_limit = (3, 0.5)
    statuses = [api.get("/me/tracks").status_code for _ in range(3)]
    limited = api.get("/me/tracks")
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    assert sandbox.stats.rate_limited == 1
    assert sandbox.stats.requests_inside_retry_after == 0
    deadline = time.monotonic() + 0.9
    while sandbox.stats.requests_inside_retry_after == 0 and time.monotonic() < deadline:
        assert api.get("/me/tracks").status_code == 429  # a client that ignores Retry-After
    assert sandbox.stats.requests_inside_retry_after > 0


@pytest.mark.slow
def test_waiting_retry_after_gets_through_and_is_not_counted(sandbox, api):
    sandbox.faults.rate_limit = (1, 0.5)
    api.get("/me")
    limited = api.get("/me")
    time.sleep(float(limited.headers["Retry-After"]))  # the behaviour under test is waiting
    assert api.get("/me").status_code == 200
    assert sandbox.stats.requests_inside_retry_after == 0
    [after] = sandbox.stats.after_rate_limit
    assert after.retry_after == 1.0 and not after.early


def test_a_request_on_a_429s_connection_before_its_retry_after_is_recorded_as_early(sandbox, api):
    sandbox.faults.rate_limit = (1, 30.0)
    api.get("/me")
    limited = api.get("/me")
    api.get("/me")  # the same kept-alive connection, at once
    assert limited.status_code == 429
    [after] = sandbox.stats.early_on_connection
    assert after.next_at - after.sent_at < after.retry_after == 30.0
    assert sandbox.stats.after_rate_limit == [after]


def test_each_connection_is_recorded_on_its_own(sandbox, api):
    sandbox.faults.rate_limit = (1, 30.0)
    api.get("/me")
    api.get("/me")  # a 429 on this connection
    with api_client(sandbox) as other:
        other.get("/me")  # another connection: nothing follows the 429 on its own
    assert sandbox.stats.after_rate_limit == []


def test_forced_retry_after_of_hours(sandbox, api):
    sandbox.faults.rate_limit = (0, 30.0)
    sandbox.faults.retry_after = 3600
    assert api.get("/me/tracks").headers["Retry-After"] == "3600"


def test_quota_exceeded_carries_reason_and_a_day_long_retry_after(sandbox, api):
    sandbox.faults.quota_exceeded = True
    response = api.get("/me/tracks")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "86400"
    assert response.json() == {
        "error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}
    }


def test_fail_offsets_answer_5xx_then_succeed(sandbox, api):
    sandbox.faults.fail_offsets = {50: 2}
    statuses = [api.get("/me/tracks?offset=50&limit=50").status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    assert api.get("/me/tracks?offset=0&limit=50").status_code == 200
    sandbox.faults.fail_offsets = {0: 1}
    sandbox.faults.error_status = 503
    assert api.get("/me/tracks?limit=50").json() == {
        "error": {"status": 503, "message": "Service unavailable"}
    }
    assert sandbox.stats.server_errors == 3


def test_error_rate_gives_transient_5xx(sandbox, api):
    sandbox.faults.error_rate = 0.5
    statuses = {api.get("/me/tracks").status_code for _ in range(40)}
    assert 200 in statuses
    assert statuses - {200} and statuses - {200} <= {500, 502, 503, 504}


def test_not_allowlisted_user_gets_plain_text_403_on_every_call(sandbox, api):
    sandbox.faults.not_allowlisted = True
    for path in ("/me", "/me/tracks"):
        response = api.get(path)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == "User not registered in the Developer Dashboard"


@pytest.mark.slow
def test_latency_applies_per_request_and_16_requests_run_at_once(sandbox, api):
    sandbox.faults.latency = 0.5
    limits = httpx.Limits(max_connections=16)
    with httpx.Client(headers=api.headers, limits=limits) as client:

        def one(_: int) -> int:
            return client.get(f"{sandbox.api_url}/me/tracks").status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(one, range(16)))
        elapsed = time.perf_counter() - started
    assert statuses == [200] * 16
    assert 0.5 <= elapsed < 4.0  # one after another, 16 x 0.5 s would take 8 s
    assert sandbox.stats.max_in_flight == 16


def test_library_changes_once_after_the_given_number_of_requests(sandbox, api):
    before = sandbox.items()
    sandbox.faults.mutate_after = 2
    sandbox.faults.mutate_add = 3
    sandbox.faults.mutate_remove = 2
    sandbox.faults.mutate_remove_at = 10
    totals = [api.get("/me/tracks?limit=1").json()["total"] for _ in range(4)]
    assert totals == [120, 120, 121, 121]
    after = sandbox.items()
    assert after[3:] == before[:10] + before[12:]
    assert after[0]["added_at"] > before[0]["added_at"]
    assert sandbox.faults.mutate_after is None


def test_added_tracks_shift_offsets_and_removed_ones_vanish(sandbox, api):
    page = api.get("/me/tracks?offset=50&limit=50").json()["items"]
    sandbox.add_tracks(5)
    assert api.get("/me/tracks?offset=55&limit=50").json()["items"] == page
    sandbox.remove_tracks(5)
    assert api.get("/me/tracks?offset=50&limit=50").json()["items"] == page


def test_updated_details_change_popularity_but_not_identity(sandbox, api):
    before = api.get("/me/tracks?limit=50").json()["items"]
    sandbox.update_track_details(50)
    after = api.get("/me/tracks?limit=50").json()["items"]

    assert after == sandbox.items()[:50]
    changed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
    assert changed
    for i in changed:
        assert after[i]["track"]["popularity"] != before[i]["track"].get("popularity")
        del after[i]["track"]["popularity"]
        before[i]["track"].pop("popularity", None)
    assert after == before
    assert all(
        before[i]["track"] is None or before[i]["track"]["is_local"]
        for i in set(range(50)) - set(changed)
    )


def test_stats_reset_to_zero(sandbox, api):
    api.get("/me")
    sandbox.stats.reset()
    assert sandbox.stats.requests == 0 and sandbox.stats.token_requests == {}


# -- persistence and running on its own -----------------------------------------------------


def test_state_dir_keeps_library_and_refresh_tokens_across_restart(tmp_path):
    with SpotifySandbox(tracks=80, seed=5, state_dir=tmp_path) as first:
        first.add_tracks(2)
        refresh_token = login(first)["refresh_token"]
        revoked = login(first)["refresh_token"]
        first.faults.rotate_refresh_tokens = True
        refresh(first, revoked)  # rotated away
        items = first.items()
    with SpotifySandbox(tracks=10, seed=9, state_dir=tmp_path) as second:
        assert second.items() == items
        assert refresh(second, refresh_token).status_code == 200
        assert oauth_error(refresh(second, revoked)) == ("invalid_grant", "Refresh token revoked")
    assert [path.name for path in tmp_path.iterdir()] == ["spotify-sandbox.json"]


def test_without_state_dir_nothing_is_written(tmp_path):
    with SpotifySandbox() as server:
        login(server)
    assert list(tmp_path.iterdir()) == []


def test_stop_closes_the_port_and_kept_alive_connections(sandbox, api):
    assert api.get("/me").status_code == 200
    sandbox.stop()
    with pytest.raises(httpx.TransportError):
        api.get("/me")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sandbox.api_url}/me")


def test_cli_serves_until_terminated(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "favdesk.sandbox.spotify", "--port", "0", "--tracks", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        urls = dict(line.strip().split("=", 1) for line in lines)
        response = httpx.get(f"{urls['SPOTIFY_API_URL']}/me/tracks", timeout=5)
        assert response.status_code == 401
        page = httpx.get(
            f"{urls['SPOTIFY_ACCOUNTS_URL']}/authorize?client_id=favdesk-demo", timeout=5
        )
        assert page.status_code == 400
    finally:
        process.terminate()
        stderr = process.communicate(timeout=10)[1]
    assert process.returncode == 0, stderr
    assert "RuntimeWarning" not in stderr


# -- the stand-in browser -------------------------------------------------------------------


class _CallbackHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.server.hits.append(self.path)
        body = b"You can close this window."
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def callback_server():
    """A loopback callback that records the paths it was asked for."""
    server = HTTPServer(("127.0.0.1", 0), _CallbackHandler)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def callback_uri(server: HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/callback"


def test_follow_login_lands_on_the_callback_with_code_and_state(sandbox, callback_server):
    response = follow_login(
        authorize_url(sandbox, redirect_uri=callback_uri(callback_server), state="xyz")
    )
    assert response.status_code == 200
    assert response.text == "You can close this window."
    (hit,) = callback_server.hits
    params = parse_qs(urlsplit(hit).query)
    assert params["state"] == ["xyz"] and params["code"]


def test_browser_command_works_through_python_webbrowser(sandbox, callback_server):
    url = authorize_url(sandbox, redirect_uri=callback_uri(callback_server))
    env = {**os.environ, "BROWSER": f"{sys.executable} -m favdesk.sandbox.browser %s"}
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.argv[1]) else 1)",
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert opened.returncode == 0, opened.stderr
    assert len(callback_server.hits) == 1
    assert "code=" not in opened.stderr  # the browser does not print the URL


@pytest.mark.slow
def test_browser_command_gives_up_on_a_callback_that_never_answers(sandbox):
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        redirect = f"http://127.0.0.1:{silent.getsockname()[1]}/callback"
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "favdesk.sandbox.browser",
                "--timeout",
                "0.5",
                authorize_url(sandbox, redirect_uri=redirect),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        silent.close()
    assert done.returncode == 0
    assert "Timeout" in done.stderr
    assert time.monotonic() - started < 10
