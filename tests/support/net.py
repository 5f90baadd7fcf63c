"""Loopback helpers for tests that need a place where nothing answers."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on: bound for a moment, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
