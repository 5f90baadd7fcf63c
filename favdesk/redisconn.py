"""Redis clients for favdesk: one place that builds them, describes them and maps their errors.

Hosted Redis (Upstash) bills every command, so the clients send nothing on their own: no
health-check PINGs (TCP keepalive is on instead), and each counts the commands it writes
(`meter.py`). The app's client fails fast so a dashboard can say "unreachable" within
seconds; the worker's client keeps redis-py's longer retry.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.retry import Retry

from favdesk import meter
from favdesk.errors import RedisUnavailable
from favdesk.secret import Secret

CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 5.0
#: The app's client gives up after two quick retries: a dashboard must not hang on a dead host.
APP_RETRIES = 2
URL_HINT = "check that the server is running and that UPSTASH_REDIS_URL / REDIS_URL points at it"

P = ParamSpec("P")
R = TypeVar("R")


class _Counting(AbstractConnection):
    """Counts each command it writes into a meter: one per `send_command`, one per command of
    a pipeline (`pack_commands`, MULTI and EXEC included). Commands a Lua script runs are not
    seen here (the script is one command); the server's INFO counts them too."""

    def __init__(self, *args: Any, meter: meter.CommandMeter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meter = meter

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        self.meter.add()
        super().send_command(*args, **kwargs)

    def pack_commands(self, commands: Any) -> Any:
        commands = list(commands)
        self.meter.add(len(commands))
        return super().pack_commands(commands)


class CountingConnection(_Counting, Connection):
    pass


class CountingSSLConnection(_Counting, SSLConnection):
    pass


class CountingUnixConnection(_Counting, UnixDomainSocketConnection):
    pass


#: No CLIENT SETINFO pair on each new connection: two billed requests that only tell Redis the
#: library's name and version (Redis before 7.2 rejects them anyway). redis-py 8.1 replaced
#: `lib_name`/`lib_version` with `driver_info` (None turns it off).
NO_CLIENT_SETINFO: dict[str, None] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters
    else {"lib_name": None, "lib_version": None}
)

COUNTING_CLASSES = {
    "redis": CountingConnection,
    "rediss": CountingSSLConnection,
    "unix": CountingUnixConnection,
}


def connect(
    url: str | Secret, *, for_worker: bool = False, counter: meter.CommandMeter | None = None
) -> redis.Redis:
    """A new client (own connection pool) for a redis://, rediss:// (TLS, verified) or unix:// URL.

    `for_worker` keeps redis-py's default retry policy (10 retries) for the long-lived worker;
    RQ raises that client's socket timeout to fit its blocking pop, which is why the worker
    always gets a client of its own. Its commands count into `counter` (the process's meter).
    """
    raw = url.reveal() if isinstance(url, Secret) else url
    scheme = urlsplit(raw).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise RedisUnavailable(
            f"Unsupported Redis URL scheme {scheme!r}: use redis://, rediss:// or unix://"
        )
    options: dict[str, object] = {
        "connection_class": COUNTING_CLASSES[scheme],
        "meter": counter or meter.PROCESS,
        "decode_responses": False,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "health_check_interval": 0,
        **NO_CLIENT_SETINFO,
    }
    if not for_worker:
        options["retry"] = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), APP_RETRIES)
    return redis.Redis.from_url(raw, **options)


def describe(url: str | Secret) -> str:
    """Where a URL points, for people: "TLS host:6379 db 0"; never the password or token."""
    raw = url.reveal() if isinstance(url, Secret) else url
    parts = urlsplit(raw)
    db = database_number(parts.path, parts.query, unix=parts.scheme == "unix")
    if parts.scheme == "unix":
        return f"unix socket {unquote(parts.path)} db {db}"
    host = parts.hostname or "localhost"
    where = f"{_host_port(host, parts.port or 6379)} db {db}"
    return f"TLS {where}" if parts.scheme == "rediss" else where


def describe_client(conn: redis.Redis) -> str:
    """Like `describe`, for a client that is already built."""
    kwargs = conn.connection_pool.connection_kwargs
    db = kwargs.get("db", 0) or 0
    connection_class = conn.connection_pool.connection_class
    if issubclass(connection_class, UnixDomainSocketConnection):
        return f"unix socket {kwargs.get('path')} db {db}"
    where = f"{_host_port(kwargs.get('host', 'localhost'), kwargs.get('port', 6379))} db {db}"
    return f"TLS {where}" if issubclass(connection_class, SSLConnection) else where


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def database_number(path: str, query: str, *, unix: bool) -> int:
    """The db of a Redis URL (`/N` or `?db=N`); ValueError when it is not a whole number."""
    values = parse_qs(query).get("db")
    if values:
        return int(values[0])
    if not unix and path.strip("/"):
        return int(path.strip("/"))
    return 0


def unavailable(conn: redis.Redis, error: redis.RedisError) -> RedisUnavailable:
    """A user-facing error for a failed Redis call: where, what happened, what to do."""
    where = describe_client(conn)
    detail = _scrub(str(error) or type(error).__name__, conn)
    if isinstance(error, redis.AuthenticationError):
        return RedisUnavailable(
            f"Redis at {where} refused the credentials ({detail}): check the password or token "
            "in UPSTASH_REDIS_URL / REDIS_URL"
        )
    if isinstance(error, redis.TimeoutError):
        return RedisUnavailable(f"Redis at {where} did not answer in time ({detail}): {URL_HINT}")
    if "certificate verify failed" in detail:
        return RedisUnavailable(
            f"Redis at {where} sent a TLS certificate favdesk cannot verify ({detail}): for a "
            "server with its own CA, add ?ssl_ca_certs=/path/to/ca.pem to UPSTASH_REDIS_URL / "
            "REDIS_URL"
        )
    return RedisUnavailable(f"Redis at {where} is unreachable ({detail}): {URL_HINT}")


def _scrub(text: str, conn: redis.Redis) -> str:
    """Mask the password should a server or library ever echo it back."""
    password = conn.connection_pool.connection_kwargs.get("password")
    return text.replace(password, "********") if password else text


#: Failures that mean "Redis is not usable right now", not "favdesk sent a bad command".
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)


@contextmanager
def translated(conn: redis.Redis) -> Iterator[None]:
    """Turn connection failures inside the block into `RedisUnavailable`."""
    try:
        yield
    except UNAVAILABLE as error:
        raise unavailable(conn, error) from error


def redis_call(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator for functions whose first argument is a client: see `translated`."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        conn = args[0]
        assert isinstance(conn, redis.Redis)
        with translated(conn):
            return func(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class ServerInfo:
    """What the dashboard shows about the server."""

    version: str


@redis_call
def server_info(conn: redis.Redis) -> ServerInfo:
    """The version, from one `INFO server`."""
    info = conn.info("server")
    return ServerInfo(version=str(info.get("redis_version", "unknown")))


@redis_call
def server_commands(conn: redis.Redis) -> int:
    """Commands the server processed since it started, from all its clients (one `INFO stats`)."""
    return int(conn.info("stats").get("total_commands_processed", 0))
