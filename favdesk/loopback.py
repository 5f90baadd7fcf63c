"""The loopback redirect listener for the browser login.

Binds 127.0.0.1 (or ::1) on the redirect URI's port, or a free one when the URI has none, and
waits for exactly one redirect to the callback path carrying the expected `state`. The
browser's request is held open until the app has finished the link, so the tab can say whether
it worked. Anything else (another path or method, a `Host` that is not this address: DNS
rebinding, a malformed or oversized request, repeated parameters) gets a short plain-text
refusal and never reaches the wait.
"""

from __future__ import annotations

import errno
import hmac
import html
import logging
import queue
import socket
import socketserver
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from favdesk.errors import (
    LinkCancelled,
    LinkDeclined,
    LinkError,
    LinkTimeout,
    PortBusy,
    StateMismatch,
)
from favdesk.secret import Secret

log = logging.getLogger(__name__)

#: How long the browser's request is held while the app finishes the link.
HOLD_SECONDS = 30.0
#: How long a connection may stay silent before it is dropped (browser preconnects).
IDLE_SECONDS = 5.0
#: How long a client may take to send its whole request, however it trickles in.
REQUEST_SECONDS = 10.0
#: How often a wait checks its cancel event.
POLL_SECONDS = 0.1
#: The only addresses the callback listens on (Spotify accepts no other redirect host).
LOOPBACK_HOSTS = ("127.0.0.1", "::1")
#: The redirect's own parameters: each may come at most once.
REDIRECT_PARAMETERS = ("code", "state", "error")
#: More query fields than any redirect carries: such a request is refused unread.
MAX_FIELDS = 20
#: The longest `error` name shown back (Spotify's are short words such as access_denied).
MAX_ERROR_NAME = 100
DECLINED = "You declined access on Spotify's page: nothing was linked. Run the link again to retry."
WRONG_STATE = (
    "This login does not belong to the link favdesk is waiting for (an old or foreign tab?): "
    "nothing was linked from it. Use the newest login page favdesk opened."
)
NOT_WAITING = "favdesk is no longer waiting for this login: start the link again from favdesk."
NO_ANSWER = "favdesk did not finish the link in time: check favdesk for the result."
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>favdesk</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}}
h1{{font-size:1.4em;color:{color}}}</style></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


class Callback:
    """One redirect that reached the callback path; `finish()` answers the waiting browser."""

    def __init__(self, query: dict[str, list[str]]) -> None:
        self.code = Secret(_first(query, "code"))
        self.state = _first(query, "state")
        self.error = _first(query, "error")
        self._answered = threading.Event()
        self.ok = False
        self.message = NO_ANSWER

    def finish(self, ok: bool, message: str) -> None:
        """Show the browser success or the error in plain words (only the first call counts)."""
        if self._answered.is_set():
            return
        self.ok = ok
        self.message = message
        self._answered.set()

    def wait_finished(self, timeout: float) -> bool:
        return self._answered.wait(timeout)

    def __repr__(self) -> str:
        return f"Callback(error={self.error!r}, answered={self._answered.is_set()})"


class CallbackServer:
    """A small HTTP server on the loopback address of `redirect_uri`."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        self.host = parts.hostname or "127.0.0.1"
        if self.host not in LOOPBACK_HOSTS:
            raise LinkError(
                f"favdesk listens for the login only on 127.0.0.1 or ::1, not {self.host}: "
                "set REDIRECT_URI to http://127.0.0.1/callback"
            )
        self.requested_port = parts.port or 0
        self.path = parts.path or "/"
        self._arrivals: queue.Queue[Callback] = queue.Queue()
        self._held: list[Callback] = []
        self._lock = threading.Lock()
        self._closing = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self.requested_port
        return self._server.server_address[1]

    @property
    def redirect_uri(self) -> str:
        """The redirect URI with the port actually bound."""
        return f"http://{self.netloc}{self.path}"

    @property
    def netloc(self) -> str:
        """`host:port` as a browser sends it in the `Host` header."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def host_allowed(self, host: str) -> bool:
        """Whether a `Host` header names this listener (anything else is DNS rebinding)."""
        host = host.strip().lower()
        if host == self.netloc:
            return True
        return self.port == 80 and host == self.netloc.removesuffix(":80")

    def start(self) -> CallbackServer:
        """Bind and serve in a background thread; `PortBusy` if the port is taken."""
        server_class = _IPv6Server if ":" in self.host else _Server
        try:
            self._server = server_class((self.host, self.requested_port), _handler_for(self))
        except OSError as error:
            raise self._bind_error(error) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="favdesk-callback",
            daemon=True,
        )
        self._thread.start()
        log.debug("Waiting for the Spotify redirect on %s", self.redirect_uri)
        return self

    def stop(self) -> None:
        """Stop serving; browsers still waiting get a "no longer waiting" page.

        Connections that have not sent a whole request (idle preconnects, slow clients) are cut;
        the held callback requests are answered and joined, so their tabs get the whole page
        even when the process exits right after.
        """
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            self._closing = True
            for callback in self._held:
                callback.finish(False, NOT_WAITING)
        self._server.drop_unread()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_code(
        self, state: str, timeout: float, cancel: threading.Event | None = None
    ) -> Callback:
        """The first redirect with the right `state` and a code; answer it with `finish()`."""
        deadline = time.monotonic() + timeout
        mismatches = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise LinkCancelled("Linking was cancelled: nothing was linked.")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error(timeout, mismatches)
            try:
                callback = self._arrivals.get(timeout=min(remaining, POLL_SECONDS))
            except queue.Empty:
                continue
            if not hmac.compare_digest(callback.state.encode(), state.encode()):
                log.warning("Ignored a Spotify redirect with a wrong or missing state")
                mismatches += 1
                callback.finish(False, WRONG_STATE)
                continue
            if callback.error or not callback.code:
                raise self._refusal(callback)
            return callback

    def _deliver(self, callback: Callback) -> bool:
        """Queue a redirect for `wait_for_code`; False once the server is closing."""
        with self._lock:
            if self._closing:
                return False
            self._held.append(callback)
            self._arrivals.put(callback)
            return True

    def _bind_error(self, error: OSError) -> LinkError:
        port = self.requested_port
        fix = (
            "change REDIRECT_URI to another port, or leave the port out "
            f"(http://{self.host}{self.path}) to pick a free one"
        )
        if error.errno == errno.EADDRINUSE:
            return PortBusy(f"Port {port} on {self.host} is in use by another program: {fix}")
        reason = error.strerror or type(error).__name__
        return PortBusy(f"Cannot listen on port {port} of {self.host} ({reason}): {fix}")

    @staticmethod
    def _timeout_error(timeout: float, mismatches: int) -> LinkError:
        if mismatches:
            return StateMismatch(
                "Spotify's redirect did not match this login (wrong state), so nothing was "
                "linked: run the link again and use only the newest login page"
            )
        return LinkTimeout(
            f"No answer from the browser login within {timeout:g} s: nothing was linked. "
            "Run the link again (open the printed URL if no browser appeared)."
        )

    @staticmethod
    def _refusal(callback: Callback) -> LinkError:
        """Answer the browser and build the error for a redirect that carries no code."""
        if callback.error == "access_denied":
            callback.finish(False, DECLINED)
            return LinkDeclined(DECLINED)
        what = _printable(callback.error, MAX_ERROR_NAME) or "no authorization code"
        message = (
            f"Spotify did not complete the login ({what}): nothing was linked. Run the link again."
        )
        callback.finish(False, message)
        return LinkError(message)


class _Refused(Exception):
    """A request that does not reach the wait, with the status and words to answer it."""

    def __init__(self, status: HTTPStatus, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class _Server(ThreadingHTTPServer):
    #: Non-daemon handler threads are joined by `server_close()`, so `stop()` returns only after
    #: every browser got its page, even when the process exits right after. Connections still
    #: sending their request are cut first (`drop_unread`): only answered requests are waited for.
    daemon_threads = False
    #: socketserver's default backlog of 5 makes a burst of connections (a browser's
    #: preconnects, a local flood) wait for the kernel's SYN retries, a second or more each.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unread: dict[socket.socket, float] = {}  # connection -> deadline for its request
        self._unread_lock = threading.Lock()
        self._dropping = False

    def reading(self, connection: socket.socket) -> None:
        """A new connection: it has `REQUEST_SECONDS` to send its request."""
        with self._unread_lock:
            if not self._dropping:
                self._unread[connection] = time.monotonic() + REQUEST_SECONDS
                return
        _cut(connection)

    def request_read(self, connection: socket.socket) -> None:
        """The connection's request arrived (or the connection ended): no deadline any more."""
        with self._unread_lock:
            self._unread.pop(connection, None)

    def service_actions(self) -> None:
        """Cut connections whose request is overdue (called by `serve_forever` every poll)."""
        now = time.monotonic()
        with self._unread_lock:
            overdue = [connection for connection, due in self._unread.items() if due <= now]
            for connection in overdue:
                del self._unread[connection]
        for connection in overdue:
            _cut(connection)

    def drop_unread(self) -> None:
        """Cut every connection still sending its request, now and from now on."""
        with self._unread_lock:
            self._dropping = True
            unread = list(self._unread)
            self._unread.clear()
        for connection in unread:
            _cut(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (reset, closed tab): a debug line, not a traceback on stderr."""
        log.debug("callback connection ended: %s", type(sys.exc_info()[1]).__name__)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.socket.getsockname()[:2]


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


def _handler_for(owner: CallbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        #: Idle or half-open connections (browser preconnects) are dropped after this.
        timeout = IDLE_SECONDS
        server: _Server

        def setup(self) -> None:
            super().setup()
            self.server.reading(self.connection)

        def finish(self) -> None:
            self.server.request_read(self.connection)
            super().finish()

        def do_GET(self) -> None:
            self.server.request_read(self.connection)
            try:
                callback = Callback(self._redirect_query())
            except _Refused as refused:
                self._plain(refused.status, refused.text)
                return
            if not owner._deliver(callback):
                self._reply(HTTPStatus.GONE, False, NOT_WAITING)
                return
            callback.wait_finished(HOLD_SECONDS)
            status = HTTPStatus.OK if callback.ok else HTTPStatus.BAD_REQUEST
            self._reply(status, callback.ok, callback.message)

        def do_other(self) -> None:
            """Every other standard method: the callback only answers GET."""
            self.server.request_read(self.connection)
            self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "Only GET is answered here.", "GET")

        do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_other

        def _redirect_query(self) -> dict[str, list[str]]:
            """The redirect's parameters; `_Refused` for a wrong `Host`, target or parameters."""
            if self.request_version == "HTTP/0.9":  # no browser sends it
                raise _Refused(HTTPStatus.BAD_REQUEST, "Use HTTP/1.0 or HTTP/1.1.")
            hosts = self.headers.get_all("Host", [])
            if len(hosts) != 1:
                raise _Refused(HTTPStatus.BAD_REQUEST, "A request needs exactly one Host header.")
            if not owner.host_allowed(hosts[0]):
                raise _Refused(HTTPStatus.MISDIRECTED_REQUEST, f"This is only {owner.netloc}.")
            if not self.path.startswith("/"):
                raise _Refused(HTTPStatus.BAD_REQUEST, "Only a path is accepted as the target.")
            parts = urlsplit(self.path)
            if parts.path != owner.path:
                raise _Refused(HTTPStatus.NOT_FOUND, "Nothing here.")
            try:
                query = parse_qs(parts.query, max_num_fields=MAX_FIELDS)
            except ValueError:
                raise _Refused(HTTPStatus.BAD_REQUEST, "Too many parameters.") from None
            if any(len(query.get(name, ())) > 1 for name in REDIRECT_PARAMETERS):
                raise _Refused(HTTPStatus.BAD_REQUEST, "Each parameter may come only once.")
            return query

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """http.server's own refusals (bad request line, too long, too many headers, an
            unknown method) in the same plain form, without echoing the request."""
            status = HTTPStatus(code)
            self._plain(status, f"{status.phrase}.")

        def _plain(self, status: HTTPStatus, text: str, allow: str | None = None) -> None:
            """A refusal: plain text, never a page, and the connection is closed after it."""
            body = f"{status.value} {status.phrase}: {text}\n".encode()
            self.close_connection = True
            # http.server answers HTTP/0.9 (and a request line too bad to tell) with a bare body
            self.request_version = "HTTP/1.0"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            if allow is not None:
                self.send_header("Allow", allow)
            self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _reply(self, status: HTTPStatus, ok: bool, message: str) -> None:
            body = render_page(ok, message).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header(
                "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"
            )
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Log without the query string (it carries the authorization code), and without
            failing for a connection that never sent a whole request line (a timed-out
            preconnect, a request line too long)."""
            command = getattr(self, "command", None)
            if not command:
                log.debug("callback connection closed without a request")
                return
            log.debug("callback %s %s", _printable(command, 20), _printable(_path_of(self), 100))

    return Handler


def render_page(ok: bool, message: str) -> str:
    """The small, self-contained page the browser shows; `message` is escaped."""
    title = "Spotify is linked" if ok else "Spotify was not linked"
    return PAGE.format(
        color="#1a7f37" if ok else "#b42318",
        title=html.escape(title),
        message=html.escape(message),
    )


def _cut(connection: socket.socket) -> None:
    """Shut a connection down so that a handler blocked reading it returns at once."""
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        log.debug("callback connection was already closed")


def _path_of(handler: BaseHTTPRequestHandler) -> str:
    """The request's target without its query (which may carry the code)."""
    return str(getattr(handler, "path", "")).partition("?")[0]


def _printable(text: str, limit: int) -> str:
    """Outside text cut to `limit` characters, control characters replaced: safe in a log line
    or a message (no forged lines, no terminal escapes)."""
    return "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in text[:limit])


def _first(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""
