"""A Supabase Storage stand-in: a real HTTP server on 127.0.0.1 the real `supabase` client talks to.

It speaks the routes favdesk uses under `/storage/v1/` with the wire shapes of the open-source
Storage server: errors as HTTP 400 whose body carries the real status as a string
(`{"statusCode": "404", "error": "Bucket not found", ...}`), upsert fixed when an upload URL is
signed (an existing key without it: 409 `Duplicate` at sign time), HS256 upload tokens that
expire, 413 over the size limit, `list` returning direct children with folders as `id: null`
rows and `[]` for a missing bucket. Objects live on disk under `root`, written atomically.
Resumable uploads (TUS: create, PATCH chunks, HEAD for the offset, OPTIONS for `Tus-Max-Size`)
answer as the real server does, plain-text errors with real statuses included; a test can cut
the next PATCH after some bytes (`cut_next_patch`), whose arrived bytes are kept. Uploads in
progress live in memory and in `root/uploads`; a finished one becomes an object like any other.
Run alone with `python -m favdesk.sandbox.storage --port N --root DIR`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

from favdesk.sandbox.server import LoopbackServer, Reply, ReplyHandler
from favdesk.storage.local import write_atomic

DEMO_SERVICE_ROLE_KEY = "favdesk-demo-service-role"
API_PREFIX = "/storage/v1"
STATE_FILE = "state.json"
DEFAULT_MAX_OBJECT_SIZE = 50 * 1024 * 1024
#: The object-key characters the real server accepts (`src/storage/limits.ts`).
_VALID_KEY = re.compile(r"[A-Za-z0-9_/!.*'() &$=@;:+,?-]+")
_VALID_BUCKET = re.compile(r"[A-Za-z0-9_.!*'() &$@=;:+,?-]{1,100}")
_SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")
_JSON_TYPE = "application/json; charset=utf-8"
TUS_VERSION = "1.0.0"
_TUS_PATH = "/upload/resumable"
_CHUNK_TYPE = "application/offset+octet-stream"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _StorageFailure(Exception):
    """A renderable Storage error: HTTP 400 (500 stays 500), the real status in the body."""

    def __init__(self, status: str, error: str, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.code = status, error, message, code

    def reply(self) -> Reply:
        body = {
            "statusCode": self.status,
            "error": self.error,
            "message": self.message,
            "code": self.code,
        }
        return _json(500 if self.status == "500" else 400, body)


class _SchemaFailure(Exception):
    """A request-validation error, which keeps its real HTTP status (as Fastify answers)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def reply(self) -> Reply:
        body = {"statusCode": 400, "code": "FST_ERR_VALIDATION", "error": "Bad Request"}
        return _json(400, {**body, "message": self.message})


class _TusFailure(Exception):
    """A TUS route's error: plain text with its real HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def reply(self) -> Reply:
        headers = {"Tus-Resumable": TUS_VERSION}
        return Reply(self.status, self.message.encode(), "text/plain; charset=utf-8", headers)


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), _JSON_TYPE, headers or {})


def _bucket_not_found() -> _StorageFailure:
    return _StorageFailure("404", "Bucket not found", "Bucket not found", "NoSuchBucket")


def _duplicate(code: str) -> _StorageFailure:
    return _StorageFailure("409", "Duplicate", "The resource already exists", code)


def _invalid_jwt(message: str) -> _StorageFailure:
    return _StorageFailure("400", "InvalidJWT", message, "InvalidJWT")


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[bytes, str | None]]:
    """Form fields as name -> (value, part content type), for httpx's multipart bodies."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise _SchemaFailure("body must be multipart/form-data with a boundary")
    fields: dict[str, tuple[bytes, str | None]] = {}
    for chunk in body.split(b"--" + match.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, value = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (value.removesuffix(b"\r\n"), headers.get("content-type"))
    return fields


class _Handler(ReplyHandler):
    """Storage also takes signed uploads (PUT), deletes (DELETE) and resumable uploads
    (PATCH, HEAD, OPTIONS); a PATCH may be cut short on purpose."""

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        self.answer("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self.answer("DELETE")

    def do_HEAD(self) -> None:  # noqa: N802
        self.answer("HEAD")

    def do_OPTIONS(self) -> None:  # noqa: N802
        self.answer("OPTIONS")

    def do_PATCH(self) -> None:  # noqa: N802
        """A PATCH, or, when a cut is due, its first bytes only and then a dropped connection
        (no answer), as when a network fails half way: the bytes that arrived are kept."""
        sandbox = cast(StorageSandbox, self.server.app)
        cut = sandbox.take_patch_cut()
        if cut is None:
            self.answer("PATCH")
            return
        length = int(self.headers.get("Content-Length") or 0)
        arrived = self.rfile.read(min(cut, length))
        sandbox.handle("PATCH", self.path, self.headers, arrived)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


@dataclass
class _Request:
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    params: dict[str, str]

    def header(self, name: str) -> str:
        return str(self.headers.get(name) or "")

    def json(self) -> dict:
        try:
            parsed = json.loads(self.body or b"{}")
        except ValueError:
            raise _SchemaFailure("body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise _SchemaFailure("body must be object")
        return parsed


class StorageSandbox(LoopbackServer):
    """The stand-in server; `start()` it (or use `with`), then `create_client(sandbox.url, key)`."""

    handler_class = _Handler
    thread_name = "storage-sandbox"

    def __init__(
        self,
        root: Path,
        *,
        service_role_key: str | None = None,
        signed_upload_ttl: float = 60.0,
        max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.root = Path(root)
        self.service_role_key = service_role_key or DEMO_SERVICE_ROLE_KEY
        self.signed_upload_ttl = signed_upload_ttl
        self.max_object_size = max_object_size
        #: (method, path without the query) of every request, for tests.
        self.request_log: list[tuple[str, str]] = []
        #: Every upload token handed out, so tests can check none of them leaks.
        self.issued_tokens: list[str] = []
        #: Called as (method, path, HTTP status) after each answer is ready, before it is sent.
        self.on_request: Callable[[str, str, int], None] | None = None
        self._jwt_secret = secrets.token_bytes(32)
        self._expire_next = 0
        self._patch_cuts: list[int] = []
        self._lock = threading.RLock()
        self._buckets: dict[str, dict] = {}
        self._objects: dict[str, dict[str, dict]] = {}
        self._uploads: dict[str, dict] = {}
        self._load_state()
        bucket, key = r"(?P<bucket>[^/]+)", r"(?P<key>.+)"
        routes = (
            ("GET", "/bucket/?", self._list_buckets, True),
            ("GET", f"/bucket/{bucket}", self._get_bucket, True),
            ("POST", "/bucket/?", self._create_bucket, True),
            ("POST", f"/object/upload/sign/{bucket}/{key}", self._sign, True),
            ("PUT", f"/object/upload/sign/{bucket}/{key}", self._put_signed, False),
            ("POST", f"/object/list/{bucket}", self._list, True),
            ("GET", f"/object/(?:authenticated/)?{bucket}/{key}", self._download, True),
            ("DELETE", f"/object/{bucket}", self._delete, True),
            ("OPTIONS", f"{_TUS_PATH}/?", self._tus_options, False),
            ("POST", f"{_TUS_PATH}/?", self._tus_create, True),
            ("HEAD", f"{_TUS_PATH}/(?P<upload>[^/]+)", self._tus_head, True),
            ("PATCH", f"{_TUS_PATH}/(?P<upload>[^/]+)", self._tus_patch, True),
        )
        self._routes = [(m, re.compile(p), action, auth) for m, p, action, auth in routes]

    @property
    def url(self) -> str:
        """The project URL to give `create_client` (it appends `/storage/v1/`)."""
        return f"http://127.0.0.1:{self.port}"

    # -- helpers for tests and the demo ----------------------------------------------------

    def expire_next_signed_urls(self, count: int = 1) -> None:
        """Hand out the next `count` upload tokens already expired (as after a long wait)."""
        with self._lock:
            self._expire_next = count

    def cut_next_patch(self, after: int) -> None:
        """Drop the connection of the next resumable-upload PATCH after `after` bytes of it."""
        with self._lock:
            self._patch_cuts.append(after)

    def take_patch_cut(self) -> int | None:
        """The bytes after which to cut this PATCH, if a cut is due (handler threads)."""
        with self._lock:
            return self._patch_cuts.pop(0) if self._patch_cuts else None

    def object_path(self, bucket: str, key: str) -> Path:
        """Where an object's bytes live on disk."""
        return self.root / "objects" / bucket / key

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Message, body: bytes) -> Reply:
        """Answer one request, then tell `on_request` (before the reply goes out)."""
        path = urlsplit(raw_path).path
        with self._lock:
            self.request_log.append((method, path))
        reply = self._dispatch(method, raw_path, headers, body)
        if self.on_request is not None:
            self.on_request(method, path, reply.status)
        return reply

    def _dispatch(self, method: str, raw_path: str, headers: Message, body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        path = parts.path.removeprefix(API_PREFIX)
        for route_method, pattern, action, needs_auth in self._routes:
            match = pattern.fullmatch(path)
            if route_method != method or match is None or not parts.path.startswith(API_PREFIX):
                continue
            params = {name: unquote(value) for name, value in match.groupdict().items()}
            request = _Request(parse_qs(parts.query), headers, body, params)
            try:
                if needs_auth:
                    self._authorize(request)
                return action(request)
            except (_StorageFailure, _SchemaFailure, _TusFailure) as failure:
                return failure.reply()
        message = f"Route {method}:{parts.path} not found"
        return _json(404, {"statusCode": 404, "error": "Not Found", "message": message})

    def _authorize(self, request: _Request) -> None:
        """The service-role key, as `Authorization: Bearer` (or `apikey` when no bearer)."""
        bearer = request.header("authorization")
        given = bearer[7:] if bearer.lower().startswith("bearer ") else request.header("apikey")
        if not hmac.compare_digest(given.encode(), self.service_role_key.encode()):
            raise _StorageFailure("403", "Unauthorized", "Invalid Compact JWS", "AccessDenied")

    # -- buckets ---------------------------------------------------------------------------

    def _list_buckets(self, request: _Request) -> Reply:
        with self._lock:
            return _json(200, list(self._buckets.values()))

    def _get_bucket(self, request: _Request) -> Reply:
        with self._lock:
            bucket = self._buckets.get(request.params["bucket"])
        if bucket is None:
            raise _bucket_not_found()
        return _json(200, bucket)

    def _create_bucket(self, request: _Request) -> Reply:
        body = request.json()
        bucket_id = str(body.get("id") or body.get("name") or "")
        if not _VALID_BUCKET.fullmatch(bucket_id):
            message = f"Bucket name invalid: {bucket_id!r}"
            raise _StorageFailure("400", "Invalid Input", message, "InvalidBucketName")
        stamp = _now_iso()
        bucket = {
            "id": bucket_id,
            "name": str(body.get("name") or bucket_id),
            "owner": "",
            "public": bool(body.get("public", False)),
            "file_size_limit": body.get("file_size_limit"),
            "allowed_mime_types": body.get("allowed_mime_types"),
            "created_at": stamp,
            "updated_at": stamp,
            "type": "STANDARD",
        }
        with self._lock:
            if bucket_id in self._buckets:
                raise _duplicate("BucketAlreadyExists")
            self._buckets[bucket_id] = bucket
            self._objects.setdefault(bucket_id, {})
            self._save_state()
        return _json(200, {"name": bucket_id})

    # -- signed uploads --------------------------------------------------------------------

    def _sign(self, request: _Request) -> Reply:
        """Sign an upload URL; the insert is checked now, so an existing key without upsert: 409."""
        bucket, key = request.params["bucket"], self._valid_key(request.params["key"])
        upsert = request.header("x-upsert").lower() == "true"
        with self._lock:
            if bucket not in self._buckets:
                message = "The related resource does not exist"
                raise _StorageFailure("404", "InvalidRequest", message, "InvalidRequest")
            if key in self._objects[bucket] and not upsert:
                raise _duplicate("KeyAlreadyExists")
            now = time.time()
            expires = now - 1 if self._expire_next > 0 else now + self.signed_upload_ttl
            self._expire_next = max(0, self._expire_next - 1)
            claims = {"url": f"{bucket}/{key}", "upsert": upsert, "scope": "upload"}
            token = self._jwt({**claims, "iat": int(now), "exp": expires})
            self.issued_tokens.append(token)
        url = f"/object/upload/sign/{bucket}/{quote(key)}?token={token}"
        return _json(200, {"url": url, "token": token})

    def _put_signed(self, request: _Request) -> Reply:
        """Store an upload made with a signed token (no key needed; upsert comes from the token)."""
        bucket, key = request.params["bucket"], self._valid_key(request.params["key"])
        claims = self._verify_jwt((request.query.get("token") or [""])[0])
        if claims.get("url") != f"{bucket}/{key}":
            raise _StorageFailure(
                "400", "InvalidSignature", "Invalid signature", "InvalidSignature"
            )
        data, content_type, cache_control = self._upload_body(request)
        with self._lock:
            meta = self._buckets.get(bucket)
            if meta is None:
                raise _bucket_not_found()
            if len(data) > self._size_limit(meta):
                message = "The object exceeded the maximum allowed size"
                raise _StorageFailure("413", "Payload too large", message, "EntityTooLarge")
            if key in self._objects[bucket] and not claims.get("upsert"):
                raise _duplicate("KeyAlreadyExists")
            self._store(bucket, key, data, content_type, cache_control)
        return _json(200, {"Key": f"{bucket}/{key}"})

    def _upload_body(self, request: _Request) -> tuple[bytes, str, str]:
        """(bytes, content type, cache control) from a multipart form or a raw body."""
        content_type = request.header("content-type") or "application/octet-stream"
        if not content_type.startswith("multipart/form-data"):
            return request.body, content_type, "no-cache"
        fields = _parse_multipart(content_type, request.body)
        if "file" not in fields:
            raise _SchemaFailure("body must have required property 'file'")
        data, part_type = fields["file"]
        cache = fields.get("cacheControl", (b"3600", None))[0].decode()
        return data, part_type or "text/plain;charset=UTF-8", f"max-age={cache}"

    def _size_limit(self, bucket: dict) -> int:
        """The bucket's `file_size_limit` if it has one, within the server's global limit."""
        return min(filter(None, (self.max_object_size, bucket["file_size_limit"])))

    def _store(self, bucket: str, key: str, data: bytes, content_type: str, cache: str) -> None:
        write_atomic(self.object_path(bucket, key), data)
        etag = hashlib.md5(data).hexdigest()
        self._record(bucket, key, len(data), etag, content_type, cache)

    def _record(
        self, bucket: str, key: str, size: int, etag: str, content_type: str, cache: str
    ) -> None:
        """The metadata of an object just stored; the state file is saved."""
        stamp = _now_iso()
        old = self._objects[bucket].get(key, {})
        self._objects[bucket][key] = {
            "id": str(uuid.uuid4()),
            "created_at": old.get("created_at", stamp),
            "updated_at": stamp,
            "last_accessed_at": stamp,
            "metadata": {
                "eTag": f'"{etag}"',
                "size": size,
                "mimetype": content_type,
                "cacheControl": cache,
                "lastModified": stamp,
                "contentLength": size,
                "httpStatusCode": 200,
            },
        }
        self._save_state()

    # -- resumable uploads (TUS) -----------------------------------------------------------

    def _tus_options(self, request: _Request) -> Reply:
        """What the server supports, and its global file size limit."""
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,creation-with-upload,creation-defer-length,termination,"
            "expiration",
            "Tus-Max-Size": str(self.max_object_size),
        }
        return Reply(204, b"", "text/plain", headers)

    def _tus_create(self, request: _Request) -> Reply:
        """Create an upload; the checks the real server makes at creation come first."""
        length = request.header("upload-length")
        if not length.isdigit():
            raise _TusFailure(400, "Upload-Length or Upload-Defer-Length header required")
        metadata = _tus_metadata(request.header("upload-metadata"))
        bucket, key = metadata.get("bucketName", ""), metadata.get("objectName", "")
        key = self._valid_key(key)
        upsert = request.header("x-upsert").lower() == "true"
        with self._lock:
            meta = self._buckets.get(bucket)
            if meta is None:
                raise _TusFailure(404, "Bucket not found")
            if int(length) > self._size_limit(meta):
                raise _TusFailure(413, "Maximum size exceeded")
            if key in self._objects[bucket] and not upsert:
                raise _TusFailure(409, "The resource already exists")
            upload_id = _b64(f"{bucket}/{key}/{uuid.uuid4()}".encode())
            self._upload_path(upload_id).parent.mkdir(parents=True, exist_ok=True)
            self._upload_path(upload_id).write_bytes(b"")
            self._uploads[upload_id] = {
                "bucket": bucket,
                "key": key,
                "length": int(length),
                "offset": 0,
                "content_type": metadata.get("contentType") or "application/octet-stream",
                "cache": metadata.get("cacheControl") or "3600",
            }
        # The server's own idea of where it is: no `/storage/v1`, as behind Supabase's gateway.
        location = f"http://{request.header('host')}{_TUS_PATH}/{upload_id}"
        return Reply(201, b"", "text/plain", {"Location": location, "Tus-Resumable": TUS_VERSION})

    def _tus_head(self, request: _Request) -> Reply:
        """Where an upload stands: the offset to resume from."""
        with self._lock:
            upload = self._upload(request)
            headers = {
                "Upload-Offset": str(upload["offset"]),
                "Upload-Length": str(upload["length"]),
                "Cache-Control": "no-store",
                "Tus-Resumable": TUS_VERSION,
            }
        return Reply(200, b"", "text/plain", headers)

    def _tus_patch(self, request: _Request) -> Reply:
        """Append a chunk at the upload's offset; the last one makes the object."""
        if request.header("content-type") != _CHUNK_TYPE:
            raise _TusFailure(415, "Unsupported Media Type")
        with self._lock:
            upload = self._upload(request)
            if request.header("upload-offset") != str(upload["offset"]):
                raise _TusFailure(409, "Upload-Offset conflict")
            if upload["offset"] + len(request.body) > upload["length"]:
                raise _TusFailure(413, "Maximum size exceeded")
            upload_id = request.params["upload"]
            with self._upload_path(upload_id).open("ab") as file:
                file.write(request.body)
            upload["offset"] += len(request.body)
            if upload["offset"] == upload["length"]:
                self._finish_upload(upload_id, upload)
            offset = upload["offset"]
        headers = {"Upload-Offset": str(offset), "Tus-Resumable": TUS_VERSION}
        return Reply(204, b"", "text/plain", headers)

    def _upload(self, request: _Request) -> dict:
        upload = self._uploads.get(request.params["upload"])
        if upload is None:
            raise _TusFailure(404, "Not Found")
        return upload

    def _upload_path(self, upload_id: str) -> Path:
        return self.root / "uploads" / upload_id

    def _finish_upload(self, upload_id: str, upload: dict) -> None:
        """The upload's bytes become the object (replacing an older one), like any upload's."""
        source = self._upload_path(upload_id)
        digest = hashlib.md5()
        with source.open("rb") as file:
            while chunk := file.read(1024 * 1024):
                digest.update(chunk)
        target = self.object_path(upload["bucket"], upload["key"])
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        cache = f"max-age={upload['cache']}"
        bucket, key, size = upload["bucket"], upload["key"], upload["length"]
        self._record(bucket, key, size, digest.hexdigest(), upload["content_type"], cache)
        del self._uploads[upload_id]

    # -- reading and deleting --------------------------------------------------------------

    def _list(self, request: _Request) -> Reply:
        """Direct children of `prefix`: files, and folders as rows with `id: null`."""
        body = request.json()
        if not isinstance(body.get("prefix"), str):
            raise _SchemaFailure("body must have required property 'prefix'")
        limit, offset = body.get("limit", 100), body.get("offset", 0)
        if not isinstance(limit, int) or limit < 1:
            raise _SchemaFailure("body/limit must be >= 1")
        sort = body.get("sortBy") or {}
        column = sort.get("column", "name")
        if column not in _SORT_COLUMNS or sort.get("order", "asc") not in ("asc", "desc"):
            raise _SchemaFailure("body/sortBy must match a valid column and order")
        with self._lock:
            objects = dict(self._objects.get(request.params["bucket"], {}))
        rows = _children(objects, body["prefix"].strip("/"), str(body.get("search") or ""))
        rows.sort(key=lambda row: row["name"])
        rows.sort(key=lambda row: row[column] or "", reverse=sort.get("order") == "desc")
        return _json(200, rows[int(offset) : int(offset) + limit])

    def _download(self, request: _Request) -> Reply:
        bucket, key = request.params["bucket"], self._valid_key(request.params["key"])
        with self._lock:
            if bucket not in self._buckets:
                raise _bucket_not_found()
            meta = self._objects[bucket].get(key)
            if meta is None:
                raise _StorageFailure("404", "not_found", "Object not found", "NoSuchKey")
            data = self.object_path(bucket, key).read_bytes()
        info = meta["metadata"]
        headers = {"Cache-Control": info["cacheControl"], "ETag": info["eTag"]}
        return Reply(200, data, content_type=info["mimetype"], headers=headers)

    def _delete(self, request: _Request) -> Reply:
        """Delete the keys in `prefixes`; only the rows actually deleted come back."""
        bucket = request.params["bucket"]
        prefixes = request.json().get("prefixes")
        if not isinstance(prefixes, list):
            raise _SchemaFailure("body must have required property 'prefixes'")
        deleted = []
        with self._lock:
            objects = self._objects.get(bucket, {})
            for key in prefixes:
                meta = objects.pop(str(key), None)
                if meta is not None:
                    self.object_path(bucket, str(key)).unlink(missing_ok=True)
                    deleted.append({"name": key, "bucket_id": bucket, **meta})
            self._save_state()
        return _json(200, deleted)

    # -- tokens, keys, state ---------------------------------------------------------------

    def _jwt(self, claims: dict) -> str:
        """An HS256 JWT, as the real server hands out for signed uploads."""
        signing_input = (
            _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(claims).encode())
        )
        signature = hmac.new(self._jwt_secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    def _verify_jwt(self, token: str) -> dict:
        """The claims of a token this server signed, or the real server's JWT errors."""
        parts = token.split(".")
        if len(parts) != 3:
            raise _invalid_jwt("Invalid Compact JWS")
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        expected = hmac.new(self._jwt_secret, signing_input, hashlib.sha256).digest()
        try:
            valid = hmac.compare_digest(_unb64(parts[2]), expected)
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            raise _invalid_jwt("Invalid Compact JWS") from None
        if not valid:
            raise _invalid_jwt("signature verification failed")
        if float(claims.get("exp", 0)) <= time.time():
            raise _invalid_jwt('"exp" claim timestamp check failed')
        return claims

    @staticmethod
    def _valid_key(key: str) -> str:
        segments = key.split("/")
        if not _VALID_KEY.fullmatch(key) or any(s in ("", ".", "..") for s in segments):
            raise _StorageFailure("400", "InvalidKey", f"Invalid key: {key}", "InvalidKey")
        return key

    def _load_state(self) -> None:
        path = self.root / STATE_FILE
        if not path.is_file():
            return
        state = json.loads(path.read_text())
        self._buckets, self._objects = state["buckets"], state["objects"]

    def _save_state(self) -> None:
        state = {"buckets": self._buckets, "objects": self._objects}
        write_atomic(self.root / STATE_FILE, json.dumps(state, indent=1).encode())


def _tus_metadata(header: str) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `name base64(value)` pairs."""
    pairs: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in header.split(","))):
        name, _, value = pair.partition(" ")
        try:
            pairs[name] = base64.b64decode(value).decode()
        except ValueError:
            raise _TusFailure(400, "Upload-Metadata is invalid") from None
    return pairs


def _children(objects: dict[str, dict], prefix: str, search: str) -> list[dict]:
    """The list rows directly under `prefix` whose names start with `search`."""
    files: list[dict] = []
    folders: set[str] = set()
    lead = f"{prefix}/" if prefix else ""
    for key, meta in objects.items():
        if not key.startswith(lead):
            continue
        name, slash, _ = key[len(lead) :].partition("/")
        if not name.startswith(search):
            continue
        if slash:
            folders.add(name)
        else:
            files.append({"name": name, **meta})
    empty = {"id": None, "updated_at": None, "created_at": None, "last_accessed_at": None}
    return files + [{"name": name, **empty, "metadata": None} for name in sorted(folders)]


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m favdesk.sandbox.storage", description=__doc__)
    parser.add_argument("--port", type=int, default=54321, help="0 picks a free port")
    parser.add_argument("--root", type=Path, default=Path("storage-sandbox"), help="data folder")
    parser.add_argument(
        "--key", help=f"service-role key to accept (default {DEMO_SERVICE_ROLE_KEY})"
    )
    parser.add_argument("--signed-upload-ttl", type=float, default=60.0, help="seconds")
    parser.add_argument("--max-object-size", type=int, default=DEFAULT_MAX_OBJECT_SIZE)
    args = parser.parse_args(argv)
    sandbox = StorageSandbox(
        args.root,
        service_role_key=args.key,
        signed_upload_ttl=args.signed_upload_ttl,
        max_object_size=args.max_object_size,
        port=args.port,
    )
    with sandbox:
        key_note = "the key you gave" if args.key else DEMO_SERVICE_ROLE_KEY
        print(f"Storage stand-in at {sandbox.url} (SUPABASE_URL), root {sandbox.root}", flush=True)
        print(f"SUPABASE_SERVICE_ROLE_KEY: {key_note}. Ctrl-C stops it.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
