"""The HTTP plumbing both stand-ins share: a 127.0.0.1 server run from a daemon thread.

A stand-in subclasses `LoopbackServer` and implements `handle()`, which turns one request into a
`Reply`; the handler threads read the request and write that reply. `stop()` also drops kept-alive
connections, so a stopped stand-in looks to clients like a service that went away.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self

#: SO_LINGER on with a zero timeout: closing sends a TCP reset instead of a clean end.
LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass
class Reply:
    """One HTTP answer, built by a stand-in and written by the handler."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    #: Drop the connection with a TCP reset instead of answering (a network that breaks).
    reset: bool = False
    #: Close the connection after this many bytes of the body (a reply cut short).
    cut_after: int | None = None


def json_reply(status: int, body: object, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer, non-ASCII text sent as UTF-8 rather than escaped."""
    data = json.dumps(body, ensure_ascii=False).encode()
    return Reply(status, data, headers=headers or {})


class ReplyHandler(BaseHTTPRequestHandler):
    """Hands GET and POST to the stand-in; a subclass adds `do_PUT` etc. for other methods."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out in two writes: no Nagle delay
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.number = next(self.server.numbers)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.answer("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.answer("POST")

    def answer(self, method: str) -> None:
        """Read the body, let the stand-in answer, write the reply."""
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.app.handle(method, self.path, self.headers, body)
        if reply.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.cut_after is not None:
            self.wfile.write(reply.body[: reply.cut_after])
            self.close_connection = True
            return
        self.wfile.write(reply.body)
        self.server.app.exchanged(self.number, arrived, reply, time.monotonic())

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: request lines carry authorization codes, states and upload tokens."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, handler: type[ReplyHandler], app: LoopbackServer) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.numbers = itertools.count(1)  # connections, in the order they were accepted
        super().__init__(("127.0.0.1", port), handler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """Clients hanging up (or `stop()` dropping them) is normal; report anything else."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        """Shut every open connection, so keep-alive clients see the server go away."""
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class LoopbackServer:
    """Serves `handle()` on 127.0.0.1 from a daemon thread; `start()` it or use `with`."""

    handler_class: ClassVar[type[ReplyHandler]] = ReplyHandler
    thread_name: ClassVar[str] = "loopback-server"

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handle(self, method: str, target: str, headers: Message, body: bytes) -> Reply:
        """Answer one HTTP request (called from handler threads)."""
        raise NotImplementedError

    def exchanged(self, connection: int, arrived: float, reply: Reply, replied: float) -> None:
        """After a reply went out on numbered `connection` (monotonic times); a stand-in that
        records its wire overrides this."""

    def start(self) -> Self:
        """Bind 127.0.0.1 (port 0: any free one) and serve in a daemon thread."""
        self._server = _HTTPServer(self._port, self.handler_class, self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for one poll: keep it short
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port once started (before that, the one asked for)."""
        return self._port
