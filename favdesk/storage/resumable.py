"""Resumable uploads to Supabase Storage (TUS 1.0.0): big files in 6 MB chunks from disk.

`POST {url}/storage/v1/upload/resumable` creates the upload; each `PATCH` sends the next chunk
from the server's offset; when a connection drops, `HEAD` says how many bytes arrived (those of
a cut chunk included) and the upload goes on from there instead of starting over. Later
requests go to the endpoint plus the upload's id, never to the `Location` the server names:
behind a proxy that is not the address favdesk talks to. Refusals come back as `TusRefused`
with the real status (plain-text errors, or a REST error's body status).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx

from favdesk.secret import Secret

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
#: Supabase's chunk size: the hosted (S3) backend needs exactly 6 MB for every chunk but the last.
CHUNK_SIZE = 6 * 1024 * 1024
#: A chunk goes out in pieces this big, read from the file as they are sent.
PIECE_SIZE = 256 * 1024
#: Waits before the resumes after dropped connections; none of them gets further: give up.
RESUME_DELAYS = (0.5, 2.0, 5.0, 10.0)


class TusRefused(Exception):
    """The server answered a TUS request with an error: its status (a string, as in REST
    errors), its code (a plain-text error's text) and message."""

    def __init__(self, status: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ResumableUpload:
    """One file to one object key, with upsert, through an existing httpx client."""

    def __init__(
        self,
        http: httpx.Client,
        storage_url: str,
        key: Secret,
        bucket: str,
        object_name: str,
        *,
        content_type: str = "application/json",
        cache_control: str = "3600",
    ) -> None:
        self.http = http
        self.endpoint = f"{storage_url.rstrip('/')}/upload/resumable"
        self.key = key
        self.metadata = {
            "bucketName": bucket,
            "objectName": object_name,
            "contentType": content_type,
            "cacheControl": cache_control,
        }

    def send(self, source: Path, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Upload the file; `on_progress(sent, size)` after every chunk the server took."""
        size = source.stat().st_size
        url = f"{self.endpoint}/{self.create(size)}"
        offset = 0
        with source.open("rb") as file:
            while offset < size:
                offset = self.send_chunk(url, file, offset, size)
                if on_progress is not None:
                    on_progress(offset, size)

    def create(self, size: int) -> str:
        """Create the upload; its id, from the `Location` the server answered."""
        metadata = ",".join(
            f"{name} {base64.b64encode(value.encode()).decode()}"
            for name, value in self.metadata.items()
        )
        headers = {"Upload-Length": str(size), "Upload-Metadata": metadata, "x-upsert": "true"}
        response = self.http.post(self.endpoint, headers=self.headers(headers))
        location = response.headers.get("location", "")
        if response.status_code != 201 or "/upload/resumable/" not in location:
            raise refusal(response)
        return location.rpartition("/upload/resumable/")[2]

    def send_chunk(self, url: str, file: BinaryIO, offset: int, size: int) -> int:
        """Send the chunk at `offset`; the server's new offset. After a dropped connection the
        server says where to go on from (the bytes of a cut chunk that arrived are kept)."""
        delays = iter(RESUME_DELAYS)
        resuming = False
        while True:
            try:
                if resuming:
                    offset = self.offset(url)
                length = min(CHUNK_SIZE, size - offset)
                headers = {
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(length),
                }
                body = read_pieces(file, offset, length)
                response = self.http.patch(url, content=body, headers=self.headers(headers))
            except httpx.TransportError as error:
                delay = next(delays, None)
                if delay is None:
                    raise
                log.info("upload connection lost after %d bytes (%s); resuming", offset, error)
                time.sleep(delay)
                resuming = True
                continue
            if response.status_code != 204:
                raise refusal(response)
            return int(response.headers["upload-offset"])

    def offset(self, url: str) -> int:
        """How many bytes of the upload the server has."""
        response = self.http.head(url, headers=self.headers({}))
        if response.status_code != 200:
            raise refusal(response)
        return int(response.headers["upload-offset"])

    def headers(self, extra: dict[str, str]) -> dict[str, str]:
        """What every TUS request carries: the protocol version and the service-role key."""
        secret = self.key.reveal()
        return {
            "Tus-Resumable": TUS_VERSION,
            "Authorization": f"Bearer {secret}",
            "apikey": secret,
            **extra,
        }


def read_pieces(file: BinaryIO, offset: int, length: int) -> Iterator[bytes]:
    """`length` bytes of the file from `offset`, read piece by piece as the request sends
    them: no chunk is ever whole in memory (httpx keeps a sent body until a garbage
    collection, and 6 MB chunks would pile up meanwhile)."""
    file.seek(offset)
    while length > 0:
        piece = file.read(min(PIECE_SIZE, length))
        if not piece:
            return
        length -= len(piece)
        yield piece


def max_size(http: httpx.Client, storage_url: str) -> int | None:
    """The server's global file size limit (`Tus-Max-Size`), or None if it does not say."""
    try:
        response = http.options(
            f"{storage_url.rstrip('/')}/upload/resumable", headers={"Tus-Resumable": TUS_VERSION}
        )
    except httpx.HTTPError:
        return None
    value = response.headers.get("tus-max-size", "")
    return int(value) if value.isdigit() else None


def refusal(response: httpx.Response) -> TusRefused:
    """A TUS error: plain text with its real status, or a REST error body (a bad key)."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and "statusCode" in body:
        message = str(body.get("message", ""))
        return TusRefused(str(body["statusCode"]), str(body.get("error", "")), message)
    return TusRefused(str(response.status_code), text[:200], text[:200])
