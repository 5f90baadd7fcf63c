"""The Supabase backend: the real `supabase` client, uploads streamed from disk, errors a user
can act on.

Files up to 6 MB go through a signed upload URL, as the web app uploads; bigger ones through
Storage's resumable protocol (`resumable.py`), which survives a dropped connection. A file
over the bucket's `file_size_limit` is refused before sending; the project's own limit is the
server's to tell (413). Storage answers REST errors as HTTP 400 with the real status as a
*string* in the body (`StorageApiError.status == "404"`), and storage3 lets transport errors
through as raw httpx exceptions; all become `StorageError`s here. The service-role key,
signed upload URLs and their tokens never reach a message or a log line: httpx logs request
URLs, so a filter on its logger masks `token=` values, and errors are raised `from None` so no
chained httpx exception (whose text holds the signed URL) is printed with them.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlsplit

import httpx
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions
from storage3.utils import StorageException
from supabase import ClientOptions, SupabaseException, create_client

from favdesk.errors import FileTooLarge, StorageError
from favdesk.secret import Secret
from favdesk.storage import BUCKET, StoredFile, check_key, megabytes, user_prefix
from favdesk.storage.resumable import ResumableUpload, TusRefused, max_size

log = logging.getLogger(__name__)

PAGE_SIZE = 100
#: Bigger files go through the resumable protocol, as Supabase recommends above 6 MB.
RESUMABLE_ABOVE = 6 * 1024 * 1024
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
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.netloc.rpartition("@")[2]
        self.description = f"Supabase Storage at {parts.scheme}://{self.host}"
        self.storage_url = f"{url.rstrip('/')}/storage/v1"
        self.timeout = timeout
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
        #: The bucket's own `file_size_limit` in bytes, as last read (None: no limit of its own).
        self.bucket_limit: int | None = None

    def __repr__(self) -> str:
        return f"SupabaseStorage({self.description!r})"

    def ensure_bucket(self) -> None:
        """Create the private bucket if missing; refuse a public one; note its size limit."""
        with self._mapped("checking the bucket"):
            public, self.bucket_limit = self._get_or_create_bucket()
        if public:
            raise StorageError(
                f"The bucket {BUCKET} in {self.description} is public: anyone could read the "
                "exports. Make it private (Supabase dashboard > Storage > the bucket > Edit "
                "bucket > turn off Public bucket); favdesk does not upload into a public bucket",
                status="403",
            )
        self._bucket_ready = True

    def upload_file(
        self, key: str, source: Path, on_progress: Callable[[int, int], None] | None = None
    ) -> StoredFile:
        """Upload with upsert, streamed from disk: resumably above 6 MB, else through a signed
        upload URL. A file over the bucket's limit is refused before anything is sent.

        The returned `updated_at` is this computer's clock; `list_files` gives Storage's.
        """
        check_key(key)
        size = source.stat().st_size
        if not self._bucket_ready:
            self.ensure_bucket()
        if self.bucket_limit is not None and size > self.bucket_limit:
            raise self._too_large(size)
        with self._mapped("uploading", size=size):
            if size > RESUMABLE_ABOVE:
                upload = ResumableUpload(self._http, self.storage_url, self._key, BUCKET, key)
                upload.send(source, on_progress)
            else:
                self._upload_signed(key, source)
                if on_progress is not None:
                    on_progress(size, size)
        name = key.rsplit("/", 1)[-1]
        return StoredFile(key=key, name=name, size=size, updated_at=datetime.now(UTC))

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

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """The object streamed as it arrives (a 250 MB snapshot never sits in memory)."""
        check_key(key)
        url = f"{self.storage_url}/object/authenticated/{BUCKET}/{quote(key)}"
        secret = self._key.reveal()
        headers = {"authorization": f"Bearer {secret}", "apikey": secret}
        stream = self._http.stream("GET", url, headers=headers)
        with self._mapped("downloading", key=key), stream as response:
            if response.status_code != 200:
                response.read()
                raise _api_error(response)
            yield io.BufferedReader(_ResponseStream(response))

    def delete(self, key: str) -> None:
        """Remove the object (Storage answers alike whether it was there or not)."""
        check_key(key)
        with self._mapped("deleting", key=key):
            self._bucket.remove([key])

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    @contextmanager
    def _mapped(self, action: str, *, size: int = 0, key: str = "") -> Iterator[None]:
        """Turn storage3's errors into `StorageError`s, without chaining the originals."""
        try:
            yield
        except (StorageApiError, TusRefused) as exc:
            status, code = str(exc.status), str(exc.code)
            if _bucket_missing(status, code):
                self._bucket_ready = False
            raise self._error(status, code, str(exc.message), action, size, key) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        except StorageException as exc:
            raise StorageError(f"Supabase Storage failed while {action}: {exc}") from None

    def _get_or_create_bucket(self) -> tuple[bool, int | None]:
        """(public?, file size limit) of the bucket; creates it private with no limit of its
        own if missing (409: made meanwhile)."""
        try:
            bucket = self._buckets.get_bucket(BUCKET)
            return bucket.public, bucket.file_size_limit
        except StorageApiError as exc:
            if not _bucket_missing(str(exc.status), str(exc.code)):
                raise
        try:
            self._buckets.create_bucket(BUCKET, options={"public": False})
        except StorageApiError as exc:
            if str(exc.status) != "409":
                raise
            log.info("bucket %s was created by another process meanwhile", BUCKET)
            bucket = self._buckets.get_bucket(BUCKET)
            return bucket.public, bucket.file_size_limit
        log.info("created the private bucket %s in %s", BUCKET, self.description)
        return False, None

    def _upload_signed(self, key: str, source: Path) -> None:
        """The web app's upload: an upsert URL signed right before use (once more if it
        expired), the file streamed from disk as the form's file field."""
        for attempt in (1, 2):
            signed = self._bucket.create_signed_upload_url(
                key, CreateSignedUploadUrlOptions(upsert="true")
            )
            try:
                with source.open("rb") as file:
                    self._bucket.upload_to_signed_url(
                        key, signed["token"], file, {"content-type": "application/json"}
                    )
                return
            except StorageApiError as exc:
                if attempt == 2 or not _token_expired(str(exc.code), str(exc.message)):
                    raise
                log.info("the signed upload URL expired before use; signing a new one")

    def _error(
        self, status: str, code: str, detail: str, action: str, size: int, key: str
    ) -> StorageError:
        """A message a user can act on, from Storage's (string) status and legacy error name
        (a TUS error's plain text)."""
        if status == "404" and key and not _bucket_missing(status, code):
            message = f"file disappeared: {BUCKET}/{key} is no longer in {self.description}"
        elif _bucket_missing(status, code):
            message = (
                f"Bucket not found: {BUCKET} does not exist in {self.description} "
                "(favdesk creates it before uploading; try again)"
            )
        elif status == "413":
            return self._too_large(size)
        elif status in ("401", "403"):
            message = KEY_REJECTED
        elif _token_expired(code, detail):
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
            detail = mask_tokens(detail).replace(self._key.reveal(), "<hidden>")
            message = f"Supabase Storage failed while {action}: {code} ({status}): {detail[:200]}"
        return StorageError(message, status=status)

    def _too_large(self, size: int) -> FileTooLarge:
        """The limit a file of `size` bytes is over: the bucket's, else the project's (which
        only the server knows: `Tus-Max-Size`), with the ways out."""
        if self.bucket_limit is not None and size > self.bucket_limit:
            over = f"the {megabytes(self.bucket_limit)} file size limit of the bucket {BUCKET}"
            raise_it = (
                "raise or remove the bucket's limit (Supabase dashboard > Storage > "
                f"{BUCKET} > Edit bucket)"
            )
            return too_large(size, self.bucket_limit, over, raise_it, self.description)
        limit = max_size(self._http, self.storage_url)
        limit = limit if limit is not None and size > limit else None
        over = f"the project's upload limit of {megabytes(limit)}" if limit else "a size limit"
        raise_it = (
            "raise the project's upload size limit (Supabase dashboard > Storage > Settings; "
            "the free plan allows at most 50 MB, paid plans much more)"
        )
        return too_large(size, limit, over, raise_it, self.description)

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


def too_large(size: int, limit: int | None, over: str, raise_it: str, where: str) -> FileTooLarge:
    """`error:toolarge`: the file's size, the limit, and the ways out."""
    return FileTooLarge(
        f"The day's file is {megabytes(size)}, over {over} in {where}. Ways out: {raise_it}; "
        "or back up to the local folder instead (clear the Supabase URL in Settings). The "
        "fetched songs are kept: Sync now then uploads without fetching them all again",
        size,
        limit,
    )


def _bucket_missing(status: str, code: str) -> bool:
    """`Bucket not found` (REST and TUS), or the foreign-key error a sign gives in a missing
    bucket."""
    return status == "404" and code in ("Bucket not found", "InvalidRequest")


def _token_expired(code: str, message: str) -> bool:
    return code == "InvalidJWT" and "exp" in message


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
        etag=str(metadata["eTag"]).strip('"') if metadata.get("eTag") else None,
    )


class _ResponseStream(io.RawIOBase):
    """A streamed httpx response as a readable raw file (`BufferedReader` goes on top)."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.iter_bytes()
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._left:
            self._left = memoryview(next(self._chunks, b""))
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count


def _api_error(response: httpx.Response) -> StorageApiError:
    """Storage's JSON error body (`statusCode` as a string) as storage3 raises it."""
    try:
        body = response.json()
        return StorageApiError(body["message"], body["error"], body["statusCode"])
    except (KeyError, TypeError, ValueError):
        return StorageApiError(response.text[:200], "Unknown", response.status_code)


def _parse_time(stamp: str | None) -> datetime:
    """Storage's ISO-8601 `Z` timestamps; the epoch when missing or malformed."""
    try:
        parsed = datetime.fromisoformat(str(stamp))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
