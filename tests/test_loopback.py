"""The loopback callback server, driven by real HTTP requests like a browser's."""

from __future__ import annotations

import html
import logging
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from favdesk import loopback
from favdesk.errors import (
    LinkCancelled,
    LinkDeclined,
    LinkError,
    LinkTimeout,
    PortBusy,
    StateMismatch,
)
from favdesk.loopback import DECLINED, NOT_WAITING, WRONG_STATE, CallbackServer

#: favdesk answering a redirect and exiting at once, as the CLI does after a link.
EXIT_RIGHT_AFTER = """
import os
from favdesk.loopback import CallbackServer
server = CallbackServer("http://127.0.0.1/callback").start()
print(server.redirect_uri, flush=True)
server.wait_for_code("s", timeout=20).finish(True, "linked " + "x" * 8_000_000)
server.stop()
os._exit(0)
"""


class Browser:
    """Sends one GET in a thread (the server holds it open) and keeps the answer."""

    def __init__(self, url: str) -> None:
        self.response: httpx.Response | None = None
        self.answered = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,))
        self._thread.start()

    def _run(self, url: str) -> None:
        self.response = httpx.get(url, timeout=40)
        self.answered.set()

    def result(self) -> httpx.Response:
        assert self.answered.wait(10), "the browser got no answer"
        self._thread.join()
        return self.response


@pytest.fixture
def server():
    with CallbackServer("http://127.0.0.1/callback") as running:
        yield running


def visit(server: CallbackServer, path: str = "/callback", **query: str) -> Browser:
    base = server.redirect_uri.rsplit("/", 1)[0]
    return Browser(f"{base}{path}?{urlencode(query)}")


def test_port_less_redirect_binds_a_free_loopback_port(server):
    parts = urlsplit(server.redirect_uri)
    assert parts.hostname == "127.0.0.1" and parts.path == "/callback"
    assert parts.port == server.port and server.port > 0


def test_fixed_port_is_used_as_given():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with CallbackServer(f"http://127.0.0.1:{port}/callback") as fixed:
        assert fixed.redirect_uri == f"http://127.0.0.1:{port}/callback"


def test_busy_port_names_the_port_and_the_fix():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortBusy) as caught:
            CallbackServer(f"http://127.0.0.1:{port}/callback").start()
    assert str(caught.value) == (
        f"Port {port} on 127.0.0.1 is in use by another program: change REDIRECT_URI to another "
        "port, or leave the port out (http://127.0.0.1/callback) to pick a free one"
    )


def start_on_ipv6() -> CallbackServer:
    """A listener on ::1, or the test skipped where this machine has no IPv6 loopback."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        return CallbackServer("http://[::1]/callback").start()
    except PortBusy as error:
        pytest.skip(f"::1 is not available here: {error}")


def test_ipv6_loopback_redirect():
    server = start_on_ipv6()
    try:
        assert server.redirect_uri == f"http://[::1]:{server.port}/callback"
        browser = Browser(f"{server.redirect_uri}?code=c6&state=s6")
        callback = server.wait_for_code("s6", timeout=5)
        callback.finish(True, "linked")
        assert browser.result().status_code == 200
    finally:
        server.stop()


def test_valid_redirect_is_held_until_the_app_finishes(server):
    browser = visit(server, code="the-code", state="s1")
    callback = server.wait_for_code("s1", timeout=5)
    assert callback.code.reveal() == "the-code"
    assert "the-code" not in repr(callback)
    assert not browser.answered.is_set()
    callback.finish(True, "Spotify is linked, sync started. You can close this tab.")
    page = browser.result()
    assert page.status_code == 200
    assert "Spotify is linked, sync started. You can close this tab." in page.text


def test_error_page_is_escaped(server):
    browser = visit(server, code="c", state="s1")
    server.wait_for_code("s1", timeout=5).finish(False, "<script>alert(1)</script> & more")
    page = browser.result()
    assert page.status_code == 400
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page.text
    assert "<script>" not in page.text


def test_other_paths_get_404_and_are_ignored(server):
    favicon = visit(server, path="/favicon.ico")
    assert favicon.result().status_code == 404
    browser = visit(server, code="c2", state="s2")
    callback = server.wait_for_code("s2", timeout=5)
    assert callback.code.reveal() == "c2"
    callback.finish(True, "ok")
    assert browser.result().status_code == 200


def test_wrong_or_missing_state_gets_an_error_page_and_the_wait_goes_on(server):
    forged = visit(server, code="evil", state="forged")
    missing = visit(server, code="evil")
    # The wrong ones are answered while the wait goes on; the right one ends it.
    results: list = []
    waiter = threading.Thread(target=lambda: results.append(server.wait_for_code("s3", 10)))
    waiter.start()
    for wrong in (forged, missing):
        page = wrong.result()
        assert page.status_code == 400
        assert html.escape(WRONG_STATE, quote=True) in page.text
    assert waiter.is_alive()
    right = visit(server, code="good", state="s3")
    waiter.join(10)
    assert results[0].code.reveal() == "good"
    results[0].finish(True, "ok")
    assert right.result().status_code == 200


def test_access_denied_is_declined_and_the_browser_is_told(server):
    browser = visit(server, error="access_denied", state="s4")
    with pytest.raises(LinkDeclined) as caught:
        server.wait_for_code("s4", timeout=5)
    assert str(caught.value) == DECLINED
    assert "You declined access on Spotify" in browser.result().text


def test_other_oauth_error_ends_the_wait_with_its_name(server):
    browser = visit(server, error="invalid_scope", state="s5")
    with pytest.raises(LinkError, match="invalid_scope"):
        server.wait_for_code("s5", timeout=5)
    assert browser.result().status_code == 400


def test_no_redirect_in_time_is_a_timeout(server):
    with pytest.raises(LinkTimeout, match="within 0.2 s:"):
        server.wait_for_code("s", timeout=0.2)


@pytest.mark.slow
def test_only_wrong_states_before_the_timeout_is_a_state_mismatch(server):
    forged = visit(server, code="evil", state="forged")
    with pytest.raises(StateMismatch, match="wrong state"):
        server.wait_for_code("s", timeout=1.0)
    assert forged.result().status_code == 400


def test_cancel_ends_the_wait(server):
    cancel = threading.Event()
    canceller = threading.Timer(0.1, cancel.set)
    canceller.start()
    with pytest.raises(LinkCancelled, match="nothing was linked"):
        server.wait_for_code("s", timeout=30, cancel=cancel)
    canceller.join()


def test_stop_answers_a_browser_the_app_never_answered():
    server = CallbackServer("http://127.0.0.1/callback").start()
    browser = visit(server, code="c", state="s7")
    server.wait_for_code("s7", timeout=5)
    server.stop()
    page = browser.result()
    assert page.status_code == 400
    assert html.escape(NOT_WAITING) in page.text


def test_the_page_arrives_whole_when_favdesk_exits_right_after():
    with subprocess.Popen(
        [sys.executable, "-c", EXIT_RIGHT_AFTER], stdout=subprocess.PIPE, text=True
    ) as favdesk:
        redirect_uri = favdesk.stdout.readline().strip()
        page = httpx.get(f"{redirect_uri}?code=c&state=s", timeout=20)
        assert favdesk.wait(timeout=20) == 0
    assert page.status_code == 200
    assert "linked " + "x" * 8_000_000 in page.text


def open_connections(server: CallbackServer, count: int) -> list[socket.socket]:
    """`count` connections that send nothing, accepted by the server (a later request got in)."""
    connections = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(count)]
    assert visit(server, "/elsewhere").result().status_code == 404
    return connections


def closed_by_server(connection: socket.socket, within: float) -> bool:
    """Whether the server closes `connection` within `within` seconds."""
    connection.settimeout(within)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_idle_connection_timing_out_prints_no_traceback(monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="favdesk.loopback")
    monkeypatch.setattr(loopback, "IDLE_SECONDS", 0.2)
    with CallbackServer("http://127.0.0.1/callback") as server:
        (preconnect,) = open_connections(server, 1)
        assert closed_by_server(preconnect, within=5)
        preconnect.close()
    assert "callback connection closed without a request" in caplog.text
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr and "Error" not in stderr


def test_stop_cuts_idle_preconnects_at_once():
    server = CallbackServer("http://127.0.0.1/callback").start()
    preconnects = open_connections(server, 3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    assert all(closed_by_server(connection, within=1) for connection in preconnects)


def test_stop_is_not_held_by_a_client_trickling_its_request():
    server = CallbackServer("http://127.0.0.1/callback").start()
    (slow,) = open_connections(server, 1)
    done = threading.Event()

    def trickle() -> None:
        try:
            slow.sendall(b"GET /callback?state=")
            while not done.wait(0.2):
                slow.sendall(b"x")
        except OSError:
            return

    trickler = threading.Thread(target=trickle)
    trickler.start()
    started = time.monotonic()
    server.stop()
    elapsed = time.monotonic() - started
    done.set()
    trickler.join()
    slow.close()
    assert elapsed < 1.0


@pytest.mark.slow
def test_a_request_not_sent_whole_in_time_is_cut(monkeypatch):
    monkeypatch.setattr(loopback, "REQUEST_SECONDS", 0.5)
    with CallbackServer("http://127.0.0.1/callback") as server:
        (slow,) = open_connections(server, 1)
        started = time.monotonic()
        cut = False
        try:
            slow.sendall(b"GET /callback?state=")
            while not cut and time.monotonic() - started < 5:
                slow.sendall(b"x")  # each byte well inside the idle timeout
                cut = closed_by_server(slow, within=0.1)
        except OSError:
            cut = True
        slow.close()
    assert cut and 0.4 < time.monotonic() - started < 3
