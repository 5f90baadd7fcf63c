"""One favdesk per data dir: a second launch asks the running one to show its window, then exits.

The lock file in the data dir is what keeps two copies apart (Qt sees a crashed holder's lock
as stale); the local socket only carries the "show" message.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_TIMEOUT_MS = 1000
SHOW = b"show\n"
LOCK_FILE = "favdesk-app.lock"


def server_name(data_dir: Path) -> str:
    """A per-user, per-data-dir socket name (two data dirs are two separate favdesks)."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return f"favdesk-{_login_name()}-{digest}"


def _login_name() -> str:
    """The user's login name; Windows has no `pwd` to fall back on when the environment has none."""
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "user"


def lock_data_dir(data_dir: Path) -> QLockFile | None:
    """Hold the data dir's app lock, or None while a live favdesk holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = QLockFile(str(data_dir / LOCK_FILE))
    lock.setStaleLockTime(0)  # stale only when its process is gone, however long it runs
    return lock if lock.tryLock(0) else None


def ask_running_instance(name: str) -> bool:
    """Tell an already running favdesk to show itself; False when none answers."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    socket.write(SHOW)
    socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
    socket.disconnectFromServer()
    return True


class InstanceServer(QObject):
    """Listens for later launches; each one that says "show" emits `show_requested`."""

    show_requested = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        #: why the last listen failed, for the user
        self.failure = ""

    def listen(self) -> bool:
        """Take the name unless a live favdesk answers on it (Qt would silently take it over);
        a socket left by a crashed favdesk (connections refused) is removed first."""
        probe = QLocalSocket()
        probe.connectToServer(self.name)
        live = probe.waitForConnected(CONNECT_TIMEOUT_MS)
        refused = probe.error() == QLocalSocket.LocalSocketError.ConnectionRefusedError
        probe.abort()
        if live:
            self.failure = "another favdesk answers on its name"
            return False
        if refused:
            QLocalServer.removeServer(self.name)
        if self.server.listen(self.name):
            return True
        self.failure = self.server.errorString()
        return False

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            socket.disconnected.connect(socket.deleteLater)
            socket.readyRead.connect(self._read)
            if socket.bytesAvailable():
                self._answer(socket)

    def _read(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket):
            self._answer(socket)

    def _answer(self, socket: QLocalSocket) -> None:
        """One message per connection: read it, act on it, drop the connection."""
        message = bytes(socket.readAll().data()).strip()
        socket.readyRead.disconnect(self._read)
        socket.abort()
        socket.deleteLater()
        if message == SHOW.strip():
            self.show_requested.emit()

    def close(self) -> None:
        self.server.close()
