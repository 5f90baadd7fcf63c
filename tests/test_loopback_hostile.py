"""The loopback callback under hostile input: raw sockets and Hypothesis-generated requests.

Whatever arrives (another path or method, missing, repeated or oversized parameters, a wrong or
replayed `state`, huge headers, slow and many connections, a `Host` that is not loopback), the
server keeps serving, answers with a plain error, and only the one well-formed redirect with
the right `state` reaches the app.
"""

from __future__ import annotations

import contextlib
import html
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from favdesk.errors import LinkError, LinkTimeout, SpotifyAuthError
from favdesk.link import link_spotify
from favdesk.loopback import MAX_ERROR_NAME, MAX_FIELDS, CallbackServer
from favdesk.sandbox import SpotifySandbox, follow_login
from favdesk.sandbox.server import json_reply
from favdesk.settings import load_settings
from favdesk.spotify.auth import SpotifyApp
from tests.test_ingest import spotify_env
from tests.test_loopback import start_on_ipv6

STATE = "the-right-state-0123456789"
#: Bounded runs: the suite stays fast, and no example database is written.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class Guard:
    """The app's side for a whole test: waits for `STATE` again and again, keeps what it got."""

    def __init__(self, server: CallbackServer) -> None:
        self.server = server
        self.accepted: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="guard")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                callback = self.server.wait_for_code(STATE, timeout=0.5, cancel=self._stop)
            except LinkTimeout:
                continue
            except LinkError as error:
                self.errors.append(str(error))
                continue
            self.accepted.append(callback.code.reveal())
            callback.finish(True, "linked")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def guarded():
    with CallbackServer("http://127.0.0.1/callback") as server:
        guard = Guard(server)
        try:
            yield server, guard
        finally:
            guard.close()


def exchange(port: int, data: bytes, timeout: float = 10.0, host: str = "127.0.0.1") -> bytes:
    """Send raw bytes, then read the whole answer (the server closes after it)."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        with contextlib.suppress(OSError):  # the server may answer before it read it all
            conn.sendall(data)
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.0 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def header(answer: bytes, name: str) -> str | None:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def request(
    server: CallbackServer,
    query: str,
    *,
    method: str = "GET",
    target: str | None = None,
    hosts: tuple[str, ...] | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    version: str = "HTTP/1.1",
) -> bytes:
    """One request as raw bytes; `hosts` None means the right `Host` header."""
    target = target if target is not None else f"{server.path}?{query}"
    lines = [f"{method} {target} {version}".rstrip()]
    for host in (server.netloc,) if hosts is None else hosts:
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def right(code: str = "the-code") -> str:
    return urlencode({"code": code, "state": STATE})


def assert_plain_refusal(answer: bytes, status: int) -> None:
    assert status_of(answer) == status
    assert header(answer, "Content-Type") == "text/plain; charset=utf-8"
    assert header(answer, "X-Content-Type-Options") == "nosniff"


def still_serving(server: CallbackServer) -> bool:
    return status_of(exchange(server.port, request(server, "", target="/probe"))) == 404


# -- the Host header (DNS rebinding) ---------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "localhost:{port}",
        "127.0.0.1",
        "127.0.0.1:1",
        "[::1]:{port}",
        "0.0.0.0:{port}",
        "127.0.0.2:{port}",
        "127.0.0.1:{port}.evil.example",
        "",
    ],
)
def test_a_host_that_is_not_this_listener_is_refused_and_its_code_never_used(guarded, host):
    server, guard = guarded
    answer = exchange(server.port, request(server, right(), hosts=(host.format(port=server.port),)))
    assert_plain_refusal(answer, 421)
    assert guard.accepted == []


@pytest.mark.parametrize("hosts", [(), ("{netloc}", "{netloc}"), ("{netloc}", "evil.example")])
def test_a_missing_or_repeated_host_is_a_bad_request(guarded, hosts):
    server, guard = guarded
    named = tuple(h.format(netloc=server.netloc) for h in hosts)
    answer = exchange(server.port, request(server, right(), hosts=named))
    assert_plain_refusal(answer, 400)
    assert guard.accepted == []


def test_an_http_0_9_request_is_refused_even_with_the_right_host(guarded):
    server, guard = guarded
    head = f"GET {server.path}?{right()}\r\nHost: {server.netloc}\r\n\r\n"
    answer = exchange(server.port, head.encode())
    assert_plain_refusal(answer, 400)
    assert answer.endswith(b"\r\n\r\n400 Bad Request: Use HTTP/1.0 or HTTP/1.1.\n")
    assert guard.accepted == []


def test_the_right_host_in_any_case_gets_through(guarded):
    server, guard = guarded
    answer = exchange(server.port, request(server, right("c1"), hosts=(server.netloc.upper(),)))
    assert status_of(answer) == 200
    assert guard.accepted == ["c1"]


def test_ipv6_listener_takes_only_its_own_host():
    server = start_on_ipv6()
    guard = Guard(server)
    try:
        v4 = request(server, right(), hosts=(f"127.0.0.1:{server.port}",))
        assert status_of(exchange(server.port, v4, host="::1")) == 421
        assert guard.accepted == []
        ok = exchange(server.port, request(server, right("v6")), host="::1")
        assert status_of(ok) == 200 and guard.accepted == ["v6"]
    finally:
        guard.close()
        server.stop()


# -- methods, targets and parameters ---------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405_and_never_reach_the_wait(guarded, method):
    server, guard = guarded
    answer = exchange(server.port, request(server, right(), method=method))
    assert_plain_refusal(answer, 405)
    assert header(answer, "Allow") == "GET"
    assert guard.accepted == []


def test_head_gets_405_without_a_body(guarded):
    server, guard = guarded
    answer = exchange(server.port, request(server, right(), method="HEAD"))
    assert status_of(answer) == 405
    assert answer.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW", "get"])
def test_unknown_methods_get_a_plain_501_that_echoes_nothing(guarded, method):
    server, guard = guarded
    answer = exchange(server.port, request(server, right(), method=method))
    assert_plain_refusal(answer, 501)
    assert method.encode() not in answer.split(b"\r\n", 1)[1]
    assert guard.accepted == []


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/callback?{q}",
        "http://127.0.0.1/callback?{q}",
        "*",
        "callback?{q}",
        "//evil.example/callback?{q}",
        "/callback/?{q}",
        "/Callback?{q}",
        "/%63allback?{q}",
        "/callback;x?{q}",
    ],
)
def test_a_target_other_than_the_callback_path_is_refused(guarded, target):
    server, guard = guarded
    answer = exchange(server.port, request(server, "", target=target.format(q=right())))
    assert status_of(answer) in (400, 404)
    assert header(answer, "Content-Type") == "text/plain; charset=utf-8"
    assert guard.accepted == []


@pytest.mark.parametrize(
    "query",
    [
        f"code=a&code=b&state={STATE}",
        f"code=a&state={STATE}&state={STATE}",
        f"code=a&state=forged&state={STATE}",
        f"code=a&state={STATE}&error=x&error=y",
    ],
)
def test_a_repeated_redirect_parameter_is_refused(guarded, query):
    server, guard = guarded
    assert_plain_refusal(exchange(server.port, request(server, query)), 400)
    assert guard.accepted == []


def test_more_fields_than_a_redirect_has_are_refused(guarded):
    server, guard = guarded
    padding = "&".join(f"x{i}=1" for i in range(MAX_FIELDS))
    assert_plain_refusal(exchange(server.port, request(server, f"{right()}&{padding}")), 400)
    assert guard.accepted == []


@pytest.mark.parametrize(
    "state", ["", "forged", STATE[:-1], STATE + "x", STATE.upper(), " " + STATE]
)
def test_a_wrong_or_missing_state_never_gives_the_code_away(guarded, state):
    server, guard = guarded
    query = urlencode({"code": "stolen", **({"state": state} if state else {})})
    answer = exchange(server.port, request(server, query))
    assert status_of(answer) == 400
    assert b"does not belong to the link" in answer
    assert guard.accepted == []


def test_a_request_line_too_long_gets_a_plain_414(guarded):
    server, guard = guarded
    answer = exchange(server.port, request(server, f"{right()}&pad={'x' * 70_000}"))
    assert_plain_refusal(answer, 414)
    assert guard.accepted == []
    assert still_serving(server)


def test_an_oversized_parameter_under_the_line_limit_is_just_a_wrong_state(guarded):
    server, guard = guarded
    query = urlencode({"code": "c" * 30_000, "state": "s" * 30_000})
    assert status_of(exchange(server.port, request(server, query))) == 400
    assert guard.accepted == []


def test_a_huge_header_gets_a_plain_431(guarded):
    server, guard = guarded
    answer = exchange(server.port, request(server, right(), extra=(("X-Big", "y" * 70_000),)))
    assert_plain_refusal(answer, 431)
    assert guard.accepted == []


def test_too_many_headers_get_a_plain_431(guarded):
    server, guard = guarded
    extra = tuple((f"X-{i}", "1") for i in range(150))
    assert_plain_refusal(exchange(server.port, request(server, right(), extra=extra)), 431)
    assert guard.accepted == []


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/1.1.1", "HTTPS/1.1", "HTTP/x.y"])
def test_a_bad_protocol_version_is_refused(guarded, version):
    server, guard = guarded
    answer = exchange(server.port, request(server, right(), version=version))
    assert status_of(answer) in (400, 505)
    assert guard.accepted == []


def test_an_error_name_is_cut_and_stripped_of_control_characters(guarded):
    server, guard = guarded
    hostile = "<script>alert(1)</script>\x1b[31m\nforged log line" + "x" * 5000
    query = urlencode({"error": hostile, "state": STATE})
    page = exchange(server.port, request(server, query))
    assert status_of(page) == 400
    assert b"<script>" not in page and b"&lt;script&gt;" in page
    deadline = time.monotonic() + 5
    while not guard.errors and time.monotonic() < deadline:
        time.sleep(0.01)
    (message,) = guard.errors
    assert "\x1b" not in message and "\n" not in message
    assert len(message) < MAX_ERROR_NAME + 200
    assert guard.accepted == []


# -- Hypothesis: any request at all --------------------------------------------------------

NAMES = st.sampled_from(["code", "state", "error", "error_description", "x", "", "c%6fde"])
TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
) | st.sampled_from([STATE, "", "forged"])
PARAMS = st.lists(st.tuples(NAMES, TEXT), max_size=6)
METHODS = st.sampled_from(["GET", "GET", "GET", "POST", "HEAD", "PUT", "FOO", "GE T", "\x00"])
TARGET_PATHS = st.sampled_from(["/callback", "/callback", "/", "/callbac", "/callback/x", "*"])
HOSTS = st.sampled_from(
    [None, None, None, (), ("evil.example",), ("localhost:{port}",), ("{netloc}", "{netloc}")]
)
HEADER_VALUES = st.text(
    st.characters(codec="latin-1", exclude_characters="\r\n", exclude_categories=("Cs",)),
    max_size=80,
)
EXTRA = st.lists(
    st.tuples(st.sampled_from(["X-A", "Cookie", "Origin", "Referer", "Forwarded"]), HEADER_VALUES),
    max_size=4,
)
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "", "HTTP/2.0"])


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    params: list[tuple[str, str]]
    hosts: tuple[str, ...] | None
    version: str

    def is_the_redirect(self) -> bool:
        """Whether this is the one request the app must accept (mirrors what a browser sends)."""
        values: dict[str, list[str]] = {}
        for name, value in self.params:
            if name and value:
                values.setdefault(name.replace("%6f", "o"), []).append(value)
        return (
            self.method == "GET"
            and self.path == "/callback"
            and self.hosts is None
            and self.version in ("HTTP/1.1", "HTTP/1.0")
            and values.get("state") == [STATE]
            and len(values.get("code", [])) == 1
            and "error" not in values
        )


@pytest.mark.slow
def test_any_request_is_answered_plainly_and_only_the_redirect_gets_in(guarded):
    server, guard = guarded

    @FUZZ
    @given(METHODS, TARGET_PATHS, PARAMS, HOSTS, EXTRA, VERSIONS)
    def check(method, path, params, hosts, extra, version):
        sent = Sent(method, path, params, hosts, version)
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params)
        named = (
            None
            if hosts is None
            else tuple(h.format(port=server.port, netloc=server.netloc) for h in hosts)
        )
        before = len(guard.accepted)
        answer = exchange(
            server.port,
            request(
                server,
                "",
                method=method,
                target=f"{path}?{query}",
                hosts=named,
                extra=tuple(extra),
                version=version,
            ),
        )
        accepted = guard.accepted[before:]
        if sent.is_the_redirect():
            assert status_of(answer) == 200
            assert len(accepted) == 1
            return
        assert accepted == []
        if not answer:
            return  # nothing answerable was sent (a request line of blanks)
        assert 400 <= status_of(answer) < 600
        assert b"<script" not in answer

    check()
    assert still_serving(server)


@pytest.mark.slow
def test_any_state_but_the_right_one_is_refused(guarded):
    server, guard = guarded

    @FUZZ
    @given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200))
    def check(state):
        if state == STATE:
            return
        query = urlencode({"code": "stolen", "state": state})
        assert status_of(exchange(server.port, request(server, query))) == 400
        assert guard.accepted == []

    check()
    assert exchange(server.port, request(server, right("the-real-one"))).startswith(b"HTTP/1.0 200")
    assert guard.accepted == ["the-real-one"]


# -- slow and many connections ---------------------------------------------------------------


@pytest.mark.slow
def test_many_idle_and_trickling_connections_do_not_keep_the_login_out(guarded):
    """A burst of 300 connections (preconnects, a local flood) neither crashes the listener
    nor delays the login: with socketserver's backlog of 5 this took over 30 s (SYN retries)."""
    server, guard = guarded
    started = time.monotonic()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    trickling = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
    try:
        for conn in trickling:
            conn.sendall(b"GET /callback?state=")
        answer = exchange(server.port, request(server, right("through")))
        assert status_of(answer) == 200 and guard.accepted == ["through"]
        assert time.monotonic() - started < 3.0
        stopping = time.monotonic()
        guard.close()
        server.stop()
        assert time.monotonic() - stopping < 2.0
        for conn in idle + trickling:
            conn.settimeout(2)
            with contextlib.suppress(ConnectionResetError):
                assert conn.recv(1) == b""
    finally:
        for conn in idle + trickling:
            conn.close()


# -- loopback only, and closed after the one redirect or the timeout --------------------------


def test_it_listens_on_loopback_only():
    with CallbackServer("http://127.0.0.1/callback") as server:
        assert server._server is not None
        assert server._server.socket.getsockname()[0] == "127.0.0.1"
        others = _non_loopback_addresses()
        for address in others:
            with pytest.raises(OSError):
                socket.create_connection((address, server.port), timeout=1).close()


@pytest.mark.parametrize("uri", ["http://0.0.0.0/callback", "http://192.0.2.1/callback"])
def test_a_non_loopback_redirect_host_is_never_bound(uri):
    with pytest.raises(LinkError, match="only on 127.0.0.1 or ::1"):
        CallbackServer(uri)


def _non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses other than 127.x (none on a bare container)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return sorted({info[4][0] for info in infos if not info[4][0].startswith("127.")})


def point_at(sandbox: SpotifySandbox, monkeypatch) -> None:
    for name, value in spotify_env(sandbox).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def spotify(monkeypatch):
    with SpotifySandbox(tracks=3) as sandbox:
        point_at(sandbox, monkeypatch)
        yield sandbox


def test_the_listener_closes_after_the_redirect_and_a_replay_finds_nothing(spotify):
    settings = load_settings()
    redirects: list[str] = []

    def browser(url: str) -> bool:
        page = follow_login(url)
        redirects.append(str(page.url))
        return True

    link_spotify(settings, SpotifyApp.from_settings(settings), open_browser=browser)
    (redirect,) = redirects
    with pytest.raises(httpx.ConnectError):
        httpx.get(redirect, timeout=5)
    assert spotify.stats.token_requests == {"authorization_code": 1}


def test_the_listener_closes_when_the_wait_times_out(spotify):
    settings = load_settings()
    urls: list[str] = []
    with pytest.raises(LinkTimeout):
        link_spotify(
            settings,
            SpotifyApp.from_settings(settings),
            open_browser=lambda url: True,
            on_url=urls.append,
            timeout=0.2,
        )
    port = int(httpx.URL(httpx.URL(urls[0]).params["redirect_uri"]).port)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


# -- the browser page shows outside text as text ---------------------------------------------

DESCRIPTION = '<a href="http://evil.example">Log in here</a><script>alert(1)</script>&'


class RefusingAccounts(SpotifySandbox):
    """A Spotify stand-in whose token endpoint refuses every code with a markup description."""

    def handle(self, method, target, headers, body):
        if target.startswith("/api/token"):
            error = {"error": "invalid_grant", "error_description": DESCRIPTION}
            return json_reply(400, error)
        return super().handle(method, target, headers, body)


def test_spotify_s_error_description_is_text_on_the_browser_page(monkeypatch):
    with RefusingAccounts(tracks=1) as spotify:
        point_at(spotify, monkeypatch)
        settings = load_settings()
        pages: list[httpx.Response] = []

        def browser(url: str) -> bool:
            pages.append(follow_login(url))
            return True

        with pytest.raises(SpotifyAuthError) as refused:
            link_spotify(settings, SpotifyApp.from_settings(settings), open_browser=browser)
    assert DESCRIPTION in str(refused.value)  # the app shows it, as text (tests/gui)
    (page,) = pages
    assert page.status_code == 400
    assert html.escape(DESCRIPTION) in page.text
    assert "<script>" not in page.text and "<a href" not in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
