"""The import API in-process: `POST /api/v2/favorites/import/spotify {code}` and its answers."""

from __future__ import annotations

import time

import pytest
from rq.job import Job, JobStatus

from favdesk import keys, queue
from favdesk.errors import (
    KeyringUnavailable,
    NetworkError,
    NotAllowListed,
    RedisUnavailable,
    SpotifyAuthError,
    SpotifyError,
)
from favdesk.import_route import error_response
from favdesk.importer import start_import
from favdesk.runtime import Runtime
from favdesk.sandbox import SpotifySandbox
from favdesk.settings import load_settings
from tests.support.net import closed_port
from tests.test_ingest import Recorder, login_request, spotify_env

USER = "zoe"
JOB_ID = queue.import_job_id(USER)


@pytest.fixture
def sandbox(monkeypatch):
    with SpotifySandbox(tracks=60, user_id=USER, display_name="Zoë Listener") as server:
        for name, value in spotify_env(server).items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def open_runtime(monkeypatch):
    """A Runtime for the environment as it is when called (plus `env`)."""
    opened: list[Runtime] = []

    def open_(**env: str) -> Runtime:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        opened.append(Runtime(load_settings(), listener=Recorder()))
        return opened[-1]

    yield open_
    for runtime in opened:
        runtime.close()


@pytest.fixture
def runtime(sandbox, redis_url, open_runtime):
    return open_runtime(REDIS_URL=redis_url)


def queued_ids(runtime: Runtime) -> list[str]:
    return [raw.decode() for raw in runtime.app_redis.lrange(keys.QUEUE_KEY, 0, -1)]


def assert_nothing_linked_or_queued(runtime: Runtime) -> None:
    assert runtime.accounts.list() == []
    assert queued_ids(runtime) == []


def test_a_good_code_answers_202_with_the_job_and_links_the_account(sandbox, runtime):
    request = login_request(sandbox)
    response = runtime.import_spotify(request)

    assert (response.status, response.body) == (202, {"jobId": JOB_ID, "userId": USER})
    assert response.ok
    account = runtime.accounts.by_user_id(USER)
    assert (account.display_name, account.needs_relink) == ("Zoë Listener", False)
    assert runtime.accounts.load_tokens(account.spotify_id).refresh_token
    assert queued_ids(runtime) == [JOB_ID]  # queued for a worker; the route runs nothing
    job = Job.fetch(JOB_ID, connection=runtime.app_redis)
    assert (job.get_status(), job.args, job.timeout) == (JobStatus.QUEUED, (USER,), 3600)
    assert request["code"] not in repr(response)


def test_asking_again_while_the_import_is_queued_answers_the_same_job(sandbox, runtime):
    first = runtime.import_spotify(login_request(sandbox))
    again = runtime.import_spotify(login_request(sandbox))
    assert first.status == again.status == 202
    assert again.body["jobId"] == first.body["jobId"] == JOB_ID
    assert queued_ids(runtime) == [JOB_ID]
    assert len(runtime.accounts.list()) == 1


@pytest.mark.slow
def test_asking_while_the_import_runs_answers_the_same_job_and_queues_nothing(
    sandbox, redis_url, open_runtime
):
    sandbox.add_tracks(1000 - 60)  # 20 pages, one at a time: about a second of fetching
    runtime = open_runtime(REDIS_URL=redis_url, FAVDESK_FETCH_CONCURRENCY="1")
    sandbox.faults.latency = 0.05
    runtime.import_spotify(login_request(sandbox))
    runtime.worker.start()
    recorder = runtime.worker.listener
    recorder.wait_for(lambda: bool(recorder.progress))

    again = runtime.import_spotify(login_request(sandbox))

    assert (again.status, again.body["jobId"]) == (202, JOB_ID)
    assert Job.fetch(JOB_ID, connection=runtime.app_redis).get_status() is JobStatus.STARTED
    assert recorder.wait_finished() == (JOB_ID, True, None)
    assert runtime.worker.join(10)
    assert queued_ids(runtime) == [] and len(recorder.finished) == 1


@pytest.mark.parametrize(
    "request_body",
    [{}, {"code": ""}, {"code": None}, {"code": 42}, {"error": "access_denied"}],
    ids=["no-code", "empty", "null", "number", "error-instead"],
)
def test_a_request_without_a_code_answers_400_and_calls_nobody(sandbox, runtime, request_body):
    response = runtime.import_spotify(request_body)
    assert response.status == 400
    assert response.body == {"error": "missing code: send the code from Spotify's redirect"}
    assert sandbox.stats.token_requests == {}
    assert_nothing_linked_or_queued(runtime)


@pytest.mark.parametrize(
    "verifier",
    [{}, {"code_verifier": ""}, {"code_verifier": None}, {"code_verifier": 42}],
    ids=["no-verifier", "empty", "null", "number"],
)
def test_a_request_without_a_verifier_answers_400_and_leaves_the_code_unspent(
    sandbox, runtime, verifier
):
    request = login_request(sandbox)
    without = {name: value for name, value in request.items() if name != "code_verifier"}

    response = runtime.import_spotify({**without, **verifier})

    assert response.status == 400
    assert response.body == {
        "error": "missing code_verifier: send the PKCE verifier the login started with"
    }
    assert sandbox.stats.token_requests == {}
    assert_nothing_linked_or_queued(runtime)
    assert runtime.import_spotify(request).ok  # the same login completes once the verifier comes


def reused_code(sandbox: SpotifySandbox, runtime: Runtime) -> dict:
    request = login_request(sandbox)
    assert runtime.import_spotify(request).ok
    runtime.accounts.remove(USER)
    runtime.app_redis.flushdb()
    return request


def wrong_verifier(sandbox: SpotifySandbox, runtime: Runtime) -> dict:
    return {**login_request(sandbox), "code_verifier": "x" * 64}


def made_up_code(sandbox: SpotifySandbox, runtime: Runtime) -> dict:
    return {**login_request(sandbox), "code": "AQD-made-up"}


@pytest.mark.parametrize("make_request", [reused_code, wrong_verifier, made_up_code])
def test_a_code_spotify_rejects_answers_400_in_plain_words(sandbox, runtime, make_request):
    request = make_request(sandbox, runtime)
    response = runtime.import_spotify(request)
    assert response.status == 400
    error = response.body["error"]
    assert error.startswith("Spotify rejected the login (") and "start the link again" in error
    assert request["code"] not in error and request["code_verifier"] not in error
    assert_nothing_linked_or_queued(runtime)


def test_a_user_not_on_the_apps_allow_list_answers_403_with_the_remedy(sandbox, runtime):
    sandbox.faults.not_allowlisted = True
    response = runtime.import_spotify(login_request(sandbox))
    assert response.status == 403
    assert "not on its allow-list" in response.body["error"]
    assert "User Management in the Spotify Developer Dashboard" in response.body["error"]
    assert_nothing_linked_or_queued(runtime)


def test_spotify_unreachable_answers_502(sandbox, redis_url, open_runtime):
    request = login_request(sandbox)
    down = f"http://127.0.0.1:{closed_port()}"
    runtime = open_runtime(REDIS_URL=redis_url, SPOTIFY_ACCOUNTS_URL=down)
    response = runtime.import_spotify(request)
    assert response.status == 502
    assert response.body["error"].startswith("Could not reach Spotify's accounts service")
    assert request["code"] not in response.body["error"]
    assert_nothing_linked_or_queued(runtime)


def test_redis_down_answers_503_and_the_link_is_kept_for_later(
    sandbox, private_redis, open_runtime
):
    runtime = open_runtime(REDIS_URL=private_redis.url)
    private_redis.stop()

    response = runtime.import_spotify(login_request(sandbox))

    assert response.status == 503
    error = response.body["error"]
    assert error.startswith("Spotify is linked, but no import was queued: Redis at unix socket")
    assert "REDIS_URL" in error
    account = runtime.accounts.by_user_id(USER)  # nothing lost: the link and its tokens
    assert runtime.accounts.load_tokens(account.spotify_id).refresh_token
    private_redis.start()
    assert runtime.sync(USER, run_here=False) == queue.EnqueueResult(JOB_ID, created=True)


def test_redis_url_pointing_nowhere_answers_503_quickly(sandbox, tmp_path, open_runtime):
    runtime = open_runtime(REDIS_URL=f"unix://{tmp_path / 'nobody-home.sock'}")
    request = login_request(sandbox)
    started = time.monotonic()
    response = runtime.import_spotify(request)
    assert time.monotonic() - started < 3  # the app's client fails fast, it does not hang
    assert response.status == 503 and "Spotify is linked" in response.body["error"]
    assert runtime.accounts.by_user_id(USER) is not None


def test_link_through_the_runtime_raises_the_import_apis_typed_error(sandbox, runtime):
    from favdesk.errors import NotAllowListed
    from favdesk.sandbox import follow_login

    sandbox.faults.not_allowlisted = True
    with pytest.raises(NotAllowListed, match="allow-list"):
        runtime.link(open_browser=lambda url: bool(follow_login(url)), timeout=30)
    assert_nothing_linked_or_queued(runtime)


# --- the typed core under the route ------------------------------------------------------------


def test_start_import_returns_the_linked_account_and_its_job(sandbox, runtime):
    request = login_request(sandbox)
    started = start_import(
        runtime.services,
        runtime.app_redis,
        request["code"],
        code_verifier=request["code_verifier"],
        redirect_uri=request["redirect_uri"],
    )
    assert started.job_id == JOB_ID
    assert started.account == runtime.accounts.by_user_id(USER)
    assert queued_ids(runtime) == [JOB_ID]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotAllowListed("User not registered in the Developer Dashboard", 403), 403),
        (SpotifyAuthError("Spotify refused the code", "invalid_grant", 400), 400),
        (SpotifyError("Spotify is down", 503), 502),
        (NetworkError("Spotify's accounts service is unreachable"), 502),
        (RedisUnavailable("Spotify is linked, but no import was queued"), 503),
        (KeyringUnavailable("No usable keyring"), 500),
    ],
)
def test_the_route_answers_each_kind_of_failure_with_the_web_apps_status(error, status):
    response = error_response(error)
    assert (response.status, response.body) == (status, {"error": str(error)})
    assert response.error is error and not response.ok
