"""The Supabase backend: the real `supabase` client, signed uploads, errors a user can act on.

Storage answers errors as HTTP 400 with the real status as a *string* in the body
(`StorageApiError.status == "404"`), and storage3 lets transport errors through as raw httpx
exceptions; both become `StorageError`s here. The service-role key, signed upload URLs and
their tokens never reach a message or a log line: httpx logs request URLs, so a filter on its
logger masks `token=` values, and errors are raised `from None` so no chained httpx exception
(whose text holds the signed URL) is printed with them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions
from storage3.utils import StorageException
from supabase import ClientOptions, SupabaseException, create_client

from favdesk.errors import StorageError
from favdesk.secret import Secret
from favdesk.storage import (
    BUCKET,
    MAX_UPLOAD_BYTES,
    StoredFile,
    check_key,
    check_size,
    megabytes,
    user_prefix,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 100
KEY_REJECTED = (
    "Supabase rejected the service-role key: check SUPABASE_SERVICE_ROLE_KEY (the service_role "
    "or sb_secret_ key under Project Settings > API keys, not the anon or publishable one)"
)
_TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"']+")


class _MaskTokens(logging.Filter):
    """Masks `token=...` in httpx's "HTTP Request: PUT <url>" lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask_tokens(str(a)) if isinstance(a, httpx.URL | str) else a for a in record.args
            )
        return True


def mask_tokens(text: str) -> str:
    return _TOKEN_IN_URL.sub(r"\1<hidden>", text)


def _install_log_mask() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _MaskTokens) for f in logger.filters):
        logger.addFilter(_MaskTokens())


class SupabaseStorage:
    """The private bucket `favorites_raw` of one Supabase project, via its service-role key."""

    def __init__(
        self,
        url: str,
        service_role_key: Secret,
        *,
        timeout: float = 20.0,
        max_size: int = MAX_UPLOAD_BYTES,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.netloc.rpartition("@")[2]
        self.description = f"Supabase Storage at {parts.scheme}://{self.host}"
        self.timeout = timeout
        self.max_size = max_size
        self._key = Secret(service_role_key)
        _install_log_mask()
        # Our own httpx client: an explicit timeout, no storage3 DeprecationWarnings, HTTP/1.1.
        self._http = httpx.Client(timeout=timeout, follow_redirects=True)
        options = ClientOptions(httpx_client=self._http)
        try:
            client = create_client(url.rstrip("/"), self._key.reveal(), options)
        except SupabaseException as exc:
            self._http.close()
            raise StorageError(
                f"cannot use {self.description} ({exc.message}): set SUPABASE_URL to your "
                "project's URL, such as https://xyz.supabase.co"
            ) from None
        self._bucket = client.storage.from_(BUCKET)
        self._buckets = client.storage
        self._bucket_ready = False

    def __repr__(self) -> str:
        return f"SupabaseStorage({self.description!r})"

    def ensure_bucket(self) -> None:
        """Create the private bucket if missing; refuse a public one."""
        with self._mapped("checking the bucket"):
            public = self._get_or_create_bucket()
        if public:
            raise StorageError(
                f"The bucket {BUCKET} in {self.description} is public: anyone could read the "
                "exports. Make it private (Supabase dashboard > Storage > the bucket > Edit "
                "bucket > turn off Public bucket); favdesk does not upload into a public bucket",
                status="403",
            )
        self._bucket_ready = True

    def upload_json(self, key: str, data: bytes) -> StoredFile:
        """Sign an upsert upload URL right before uploading, re-signing once if it expired.

        The returned `updated_at` is this computer's clock; `list_files` gives Storage's.
        """
        check_key(key)
        check_size(data, self.max_size)
        if not self._bucket_ready:
            self.ensure_bucket()
        with self._mapped("uploading", size=len(data)):
            self._upload_signed(key, data)
        name = key.rsplit("/", 1)[-1]
        return StoredFile(key=key, name=name, size=len(data), updated_at=datetime.now(UTC))

    def list_files(self, user_id: str) -> list[StoredFile]:
        """The user's files, newest date first, read page by page (a missing bucket: none)."""
        prefix = user_prefix(user_id)
        rows: list[dict] = []
        with self._mapped("listing files"):
            while True:
                page = self._bucket.list(
                    prefix,
                    {
                        "limit": PAGE_SIZE,
                        "offset": len(rows),
                        "sortBy": {"column": "name", "order": "desc"},
                    },
                )
                rows.extend(page)
                if len(page) < PAGE_SIZE:
                    break
        files = [_stored_file(prefix, row) for row in rows if _is_file(row)]
        return sorted(files, key=lambda f: f.name, reverse=True)

    def download(self, key: str) -> bytes:
        """The object's exact bytes."""
        check_key(key)
        with self._mapped("downloading", key=key):
            return self._bucket.download(key)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    @contextmanager
    def _mapped(self, action: str, *, size: int = 0, key: str = "") -> Iterator[None]:
        """Turn storage3's errors into `StorageError`s, without chaining the originals."""
        try:
            yield
        except StorageApiError as exc:
            if _bucket_missing(exc):
                self._bucket_ready = False
            raise self._error(exc, action, size=size, key=key) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        except StorageException as exc:
            raise StorageError(f"Supabase Storage failed while {action}: {exc}") from None

    def _get_or_create_bucket(self) -> bool:
        """Whether the bucket is public; creates it private if missing (409: made meanwhile)."""
        try:
            return self._buckets.get_bucket(BUCKET).public
        except StorageApiError as exc:
            if not _bucket_missing(exc):
                raise
        try:
            self._buckets.create_bucket(BUCKET, options={"public": False})
        except StorageApiError as exc:
            if str(exc.status) != "409":
                raise
            log.info("bucket %s was created by another process meanwhile", BUCKET)
            return self._buckets.get_bucket(BUCKET).public
        log.info("created the private bucket %s in %s", BUCKET, self.description)
        return False

    def _upload_signed(self, key: str, data: bytes) -> None:
        for attempt in (1, 2):
            signed = self._bucket.create_signed_upload_url(
                key, CreateSignedUploadUrlOptions(upsert="true")
            )
            try:
                self._bucket.upload_to_signed_url(
                    key, signed["token"], data, {"content-type": "application/json"}
                )
                return
            except StorageApiError as exc:
                if attempt == 2 or not _token_expired(exc):
                    raise
                log.info("the signed upload URL expired before use; signing a new one")

    def _error(self, exc: StorageApiError, action: str, *, size: int, key: str) -> StorageError:
        """A message a user can act on, from Storage's (string) status and legacy error name."""
        status, code = str(exc.status), str(exc.code)
        if status == "404" and key and not _bucket_missing(exc):
            message = f"file disappeared: {BUCKET}/{key} is no longer in {self.description}"
        elif _bucket_missing(exc):
            message = (
                f"Bucket not found: {BUCKET} does not exist in {self.description} "
                "(favdesk creates it before uploading; try again)"
            )
        elif status == "413":
            message = (
                f"Payload too large: the file is {megabytes(size)}, over the project's limit "
                "(raise the upload size limit in Supabase under Storage > Settings, or the "
                f"bucket's file size limit)"
            )
        elif status in ("401", "403"):
            message = KEY_REJECTED
        elif _token_expired(exc):
            message = (
                "Supabase refused the signed upload URL as expired, twice in a row: check this "
                "computer's clock (upload URLs last 2 hours on hosted projects, 60 s by default "
                "on self-hosted ones)"
            )
        elif status == "409":
            message = f"Storage already holds that file and refused to replace it ({code})"
        elif status.startswith("5"):
            message = f"Supabase Storage had a server error while {action}: try again later"
        else:
            detail = mask_tokens(str(exc.message)).replace(self._key.reveal(), "<hidden>")
            message = f"Supabase Storage failed while {action}: {code} ({status}): {detail[:200]}"
        return StorageError(message, status=status)

    def _unreachable(self, exc: httpx.HTTPError) -> StorageError:
        """Transport errors and timeouts, which storage3 lets through unwrapped."""
        if isinstance(exc, httpx.TimeoutException):
            why = f"no answer within {self.timeout:g} s"
        elif isinstance(exc, httpx.ConnectError):
            why = "the connection failed"
        else:
            why = type(exc).__name__
        return StorageError(
            f"could not reach Supabase at {self.host} ({why}): check SUPABASE_URL and the "
            "network connection"
        )


def _bucket_missing(exc: StorageApiError) -> bool:
    """`Bucket not found`, or the foreign-key error a sign gives in a missing bucket."""
    return str(exc.status) == "404" and exc.code in ("Bucket not found", "InvalidRequest")


def _token_expired(exc: StorageApiError) -> bool:
    return exc.code == "InvalidJWT" and "exp" in str(exc.message)


def _is_file(row: dict) -> bool:
    """Folders come back as rows with `id: null`; the dashboard's placeholders start with `.`."""
    return row.get("id") is not None and not str(row.get("name", "")).startswith(".")


def _stored_file(prefix: str, row: dict) -> StoredFile:
    metadata = row.get("metadata") or {}
    stamp = row.get("updated_at") or row.get("created_at") or metadata.get("lastModified")
    return StoredFile(
        key=f"{prefix}/{row['name']}",
        name=row["name"],
        size=int(metadata.get("size") or metadata.get("contentLength") or 0),
        updated_at=_parse_time(stamp),
    )


def _parse_time(stamp: str | None) -> datetime:
    """Storage's ISO-8601 `Z` timestamps; the epoch when missing or malformed."""
    try:
        parsed = datetime.fromisoformat(str(stamp))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
