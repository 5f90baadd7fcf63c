"""The one settings object: read once from the environment, `.env` files and the keyring.

Names are the web app's, so a developer can point favdesk at the same `.env.local`.
Precedence, highest first: the process environment, `./.env.local`, `./.env`,
`{config dir}/.env.local`, `{config dir}/.env`, then secrets saved from the Settings dialog
in the keyring. Every bad value fails early with a message naming the variable and the fix.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import platformdirs
from dotenv import dotenv_values

from favdesk import APP_NAME
from favdesk.errors import SettingsError
from favdesk.meter import DEFAULT_QUOTA
from favdesk.schedule import DEFAULT_TIME, WEEKDAYS, BackupSchedule, Frequency
from favdesk.secret import Secret

DEFAULT_REDIRECT_URI = "http://127.0.0.1/callback"
DEFAULT_ACCOUNTS_URL = "https://accounts.spotify.com"
DEFAULT_API_URL = "https://api.spotify.com/v1"
DEFAULT_FETCH_CONCURRENCY = 8
MIN_FETCH_CONCURRENCY, MAX_FETCH_CONCURRENCY = 1, 32
DEFAULT_MAX_RATE_LIMIT_WAIT = 60
#: `FAVDESK_KEEP_DAILY`'s default: retention off, every snapshot kept.
KEEP_ALL = "all"
MAX_KEEP_DAILY = 3650
#: Each setting with a default, as a `.env` file would hold it (a file need not repeat it).
DEFAULT_VALUES = {
    "REDIRECT_URI": DEFAULT_REDIRECT_URI,
    "SPOTIFY_ACCOUNTS_URL": DEFAULT_ACCOUNTS_URL,
    "SPOTIFY_API_URL": DEFAULT_API_URL,
    "FAVDESK_FETCH_CONCURRENCY": str(DEFAULT_FETCH_CONCURRENCY),
    "FAVDESK_MAX_RATE_LIMIT_WAIT": str(DEFAULT_MAX_RATE_LIMIT_WAIT),
    "FAVDESK_WAIT_FOR_OTHER_JOBS": "0",
    "FAVDESK_COMMAND_QUOTA": str(DEFAULT_QUOTA),
    "FAVDESK_BACKUP_SCHEDULE": Frequency.DAILY.value,
    "FAVDESK_BACKUP_TIME": DEFAULT_TIME.strftime("%H:%M"),
    "FAVDESK_BACKUP_DAY": WEEKDAYS[0],
    "FAVDESK_KEEP_DAILY": KEEP_ALL,
}
KEYRING_SERVICE = "favdesk"
#: Settings that are secrets: the Settings dialog keeps them in the keyring, never in a file.
SECRET_NAMES = ("SPOTIFY_CLIENT_SECRET", "SUPABASE_SERVICE_ROLE_KEY", "UPSTASH_REDIS_URL")
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: What a user id may hold: it is one segment of a storage key and part of Redis keys.
USER_ID_RULE = "letters, digits, '_', '-' and '.'"
_USER_ID = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Settings:
    """Validated settings. `None` for a service means: use favdesk's embedded default."""

    data_dir: Path
    config_dir: Path
    spotify_client_id: str | None = None
    spotify_client_secret: Secret | None = None
    redirect_uri: str = DEFAULT_REDIRECT_URI
    spotify_accounts_url: str = DEFAULT_ACCOUNTS_URL
    spotify_api_url: str = DEFAULT_API_URL
    redis_url: Secret | None = None
    supabase_url: str | None = None
    supabase_service_role_key: Secret | None = None
    user_id: str | None = None
    fetch_concurrency: int = DEFAULT_FETCH_CONCURRENCY
    max_rate_limit_wait: float = float(DEFAULT_MAX_RATE_LIMIT_WAIT)
    wait_for_other_jobs: bool = False
    #: Redis commands a month the person's plan includes (Upstash's free tier: 500,000).
    command_quota: int = DEFAULT_QUOTA
    backup_schedule: BackupSchedule = field(default_factory=BackupSchedule)
    #: Retention: keep this many newest snapshots plus each month's newest; None keeps all.
    keep_daily: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def demo_mode(self) -> bool:
        """No Spotify app configured: favdesk runs against its built-in Spotify stand-in."""
        return self.spotify_client_id is None

    @property
    def storage_dir(self) -> Path:
        """Root of the local backend, laid out like the bucket."""
        return self.data_dir / "storage"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "favdesk.sqlite3"


def default_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir_of(values: Mapping[str, str]) -> Path:
    """`FAVDESK_CONFIG_DIR`, else the platform's config folder: where the `.env` files are read."""
    return Path(values.get("FAVDESK_CONFIG_DIR") or default_config_dir()).expanduser()


def saved_file(config_dir: Path) -> Path:
    """Where the Settings dialog saves: the lowest `.env` layer, so that every other one wins."""
    return config_dir / ".env"


def env_files(config_dir: Path, cwd: Path) -> tuple[Path, ...]:
    """The `.env` files, lowest precedence first; the process environment wins over them all."""
    return (saved_file(config_dir), config_dir / ".env.local", cwd / ".env", cwd / ".env.local")


def read_layers(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> dict[str, str]:
    """Merge the `.env` files and the environment (highest wins); empty values count as unset."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    merged: dict[str, str] = {}
    for path in env_files(config_dir_of(environ), cwd):
        if path.is_file():
            merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(environ)
    return {k: v.strip() for k, v in merged.items() if v is not None and v.strip()}


def overriding_names(
    config_dir: Path, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> set[str]:
    """Names set where they win over the saved file: the environment or another `.env` file."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    found = {name for name, value in environ.items() if value.strip()}
    for path in env_files(config_dir, cwd)[1:]:
        if path.is_file():
            found |= {name for name, value in dotenv_values(path).items() if value}
    return found


def keyring_username(name: str) -> str:
    """The keyring entry (under `KEYRING_SERVICE`) of a secret setting saved by the dialog."""
    return f"setting:{name}"


def read_keyring_secrets(names: tuple[str, ...] = SECRET_NAMES) -> dict[str, str]:
    """Secrets saved by the Settings dialog; an unusable keyring just means none are saved."""
    import keyring

    found: dict[str, str] = {}
    for name in names:
        try:
            value = keyring.get_password(KEYRING_SERVICE, keyring_username(name))
        except Exception:  # noqa: BLE001 - backends raise their own types (secretstorage, jeepney)
            return found
        if value:
            found[name] = value
    return found


def load_settings(
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    use_keyring: bool = True,
) -> Settings:
    """Read and validate every setting; raise `SettingsError` naming the first bad variable."""
    values = read_layers(environ, cwd)
    if use_keyring:
        values = {**read_keyring_secrets(), **values}
    return settings_from_values(values)


def settings_from_values(values: Mapping[str, str]) -> Settings:
    """Validate plain name -> value pairs (also used by the Settings dialog before saving)."""
    data_dir = Path(values.get("FAVDESK_DATA_DIR") or default_data_dir()).expanduser()
    secret = values.get("SPOTIFY_CLIENT_SECRET")
    supabase_url = values.get("NEXT_PUBLIC_SUPABASE_URL") or values.get("SUPABASE_URL")
    supabase_key = values.get("SUPABASE_SERVICE_ROLE_KEY")
    redis_url = values.get("UPSTASH_REDIS_URL") or values.get("REDIS_URL")
    return Settings(
        data_dir=data_dir,
        config_dir=config_dir_of(values),
        spotify_client_id=values.get("SPOTIFY_CLIENT_ID"),
        spotify_client_secret=Secret(secret) if secret else None,
        redirect_uri=validate_redirect_uri(values.get("REDIRECT_URI", DEFAULT_REDIRECT_URI)),
        spotify_accounts_url=validate_http_url(
            "SPOTIFY_ACCOUNTS_URL", values.get("SPOTIFY_ACCOUNTS_URL", DEFAULT_ACCOUNTS_URL)
        ),
        spotify_api_url=validate_http_url(
            "SPOTIFY_API_URL", values.get("SPOTIFY_API_URL", DEFAULT_API_URL)
        ),
        redis_url=Secret(validate_redis_url(redis_url, values)) if redis_url else None,
        supabase_url=validate_supabase(supabase_url, supabase_key, values),
        supabase_service_role_key=Secret(supabase_key) if supabase_url and supabase_key else None,
        user_id=validate_user_id(values.get("FAVDESK_USER_ID")),
        fetch_concurrency=parse_int(
            "FAVDESK_FETCH_CONCURRENCY",
            values,
            DEFAULT_FETCH_CONCURRENCY,
            low=MIN_FETCH_CONCURRENCY,
            high=MAX_FETCH_CONCURRENCY,
        ),
        max_rate_limit_wait=float(
            parse_int(
                "FAVDESK_MAX_RATE_LIMIT_WAIT", values, DEFAULT_MAX_RATE_LIMIT_WAIT, low=0, high=3600
            )
        ),
        wait_for_other_jobs=parse_bool("FAVDESK_WAIT_FOR_OTHER_JOBS", values),
        command_quota=parse_int("FAVDESK_COMMAND_QUOTA", values, DEFAULT_QUOTA, low=1, high=10**12),
        backup_schedule=parse_schedule(values),
        keep_daily=parse_keep_daily(values),
        sources=dict(values),
    )


def validate_redirect_uri(uri: str) -> str:
    """Spotify accepts only loopback IP literals over http, and rejects `localhost`."""
    name = "REDIRECT_URI"
    parts = _split(name, uri)
    host = (parts.hostname or "").lower()
    if host == "localhost":
        raise SettingsError(
            name, "Spotify rejects localhost since 2025-11: use http://127.0.0.1/callback"
        )
    if parts.scheme != "http" or host not in ("127.0.0.1", "::1"):
        raise SettingsError(
            name,
            f"{uri!r} is not a loopback address favdesk can listen on: "
            "use http://127.0.0.1/callback (or http://127.0.0.1:PORT/callback)",
        )
    if not parts.path or parts.path == "/":
        raise SettingsError(name, "needs a path, such as http://127.0.0.1/callback")
    return uri


def validate_http_url(name: str, url: str) -> str:
    parts = _split(name, url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(name, f"{url!r} is not an http(s) URL such as https://example.com")
    return url.rstrip("/")


def validate_redis_url(url: str, values: Mapping[str, str]) -> str:
    name = "UPSTASH_REDIS_URL" if values.get("UPSTASH_REDIS_URL") else "REDIS_URL"
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in REDIS_SCHEMES:
        raise SettingsError(
            name,
            "unknown scheme: use redis://host:6379/0, rediss://default:TOKEN@host:6379 "
            "(Upstash, TLS) or unix:///path/to/redis.sock",
        )
    if scheme == "unix" and not hasattr(socket, "AF_UNIX"):
        raise SettingsError(
            name,
            "unix sockets are not available on this system: use redis://host:6379/0 or "
            "rediss://default:TOKEN@host:6379 (Upstash, TLS)",
        )
    parts = _split(name, url, secret=True)
    if scheme != "unix" and not parts.hostname:
        raise SettingsError(name, "has no host: use redis://host:6379/0")
    from favdesk.redisconn import database_number

    try:
        database_number(parts.path, parts.query, unix=scheme == "unix")
    except ValueError:
        raise SettingsError(
            name, "the database number must be a whole number, as in redis://host:6379/0"
        ) from None
    return url


def validate_supabase(url: str | None, key: str | None, values: Mapping[str, str]) -> str | None:
    name = "NEXT_PUBLIC_SUPABASE_URL" if values.get("NEXT_PUBLIC_SUPABASE_URL") else "SUPABASE_URL"
    if url is None:
        return None
    url = validate_http_url(name, url)
    if not key:
        raise SettingsError(
            "SUPABASE_SERVICE_ROLE_KEY",
            f"{name} is set but the service-role key is missing: set SUPABASE_SERVICE_ROLE_KEY "
            "(Supabase dashboard, Project Settings > API), or unset the URL to use local storage",
        )
    return url


def is_user_id(text: str) -> bool:
    """`USER_ID_RULE`'s characters only, and not `.` or `..`: one safe storage key segment."""
    return text not in (".", "..") and _USER_ID.fullmatch(text) is not None


def validate_user_id(user_id: str | None) -> str | None:
    if user_id is None:
        return None
    if not is_user_id(user_id):
        raise SettingsError("FAVDESK_USER_ID", f"may hold only {USER_ID_RULE}")
    return user_id


def parse_int(name: str, values: Mapping[str, str], default: int, *, low: int, high: int) -> int:
    raw = values.get(name)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise SettingsError(name, f"{raw!r} is not a whole number") from None
    if not low <= number <= high:
        raise SettingsError(name, f"must be between {low} and {high}, not {number}")
    return number


def parse_bool(name: str, values: Mapping[str, str]) -> bool:
    raw = values.get(name, "0").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, f"{raw!r} is not a yes/no value: use 1 or 0")


def parse_schedule(values: Mapping[str, str]) -> BackupSchedule:
    """`FAVDESK_BACKUP_SCHEDULE` (off, daily, weekly), `FAVDESK_BACKUP_TIME` (HH:MM, local) and
    `FAVDESK_BACKUP_DAY` (mon...sun, for weekly)."""
    raw = values.get("FAVDESK_BACKUP_SCHEDULE", Frequency.DAILY.value).lower()
    try:
        frequency = Frequency(raw)
    except ValueError:
        raise SettingsError(
            "FAVDESK_BACKUP_SCHEDULE", f"{raw!r} is not a schedule: use off, daily or weekly"
        ) from None
    at = parse_clock("FAVDESK_BACKUP_TIME", values.get("FAVDESK_BACKUP_TIME"))
    day = values.get("FAVDESK_BACKUP_DAY", WEEKDAYS[0]).lower()[:3]
    if day not in WEEKDAYS:
        raise SettingsError("FAVDESK_BACKUP_DAY", f"use a day of the week: {', '.join(WEEKDAYS)}")
    return BackupSchedule(frequency, at, WEEKDAYS.index(day))


def parse_clock(name: str, raw: str | None) -> time:
    """A local time of day as HH:MM (24-hour)."""
    if raw is None:
        return DEFAULT_TIME
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw)
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise SettingsError(name, f"{raw!r} is not a time of day: use HH:MM, such as 12:00")
    return time(int(match.group(1)), int(match.group(2)))


def parse_keep_daily(values: Mapping[str, str]) -> int | None:
    """`all` (or unset): keep every snapshot; N: the newest N plus each month's newest."""
    raw = values.get("FAVDESK_KEEP_DAILY", KEEP_ALL).lower()
    if raw == KEEP_ALL:
        return None
    try:
        number = int(raw)
    except ValueError:
        raise SettingsError(
            "FAVDESK_KEEP_DAILY", f"{raw!r} is neither `all` nor a number of snapshots"
        ) from None
    if not 1 <= number <= MAX_KEEP_DAILY:
        raise SettingsError(
            "FAVDESK_KEEP_DAILY", f"keep between 1 and {MAX_KEEP_DAILY} snapshots, or `all`"
        )
    return number


def _split(name: str, url: str, *, secret: bool = False) -> SplitResult:
    """Parse a URL; a `secret` one (it may carry a password) is never echoed in the message."""
    problem = "is not a valid URL" if secret else f"{url!r} is not a valid URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise SettingsError(name, problem) from None
    if not parts.scheme:
        raise SettingsError(name, problem)
    return parts
