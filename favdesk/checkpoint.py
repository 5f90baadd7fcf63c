"""Pages of an import, kept on disk as they arrive: the next attempt resumes where one stopped,
and the day's file is assembled from them without holding the library in memory.

One JSON file per page offset under `{data dir}/imports/{userId}/`, each written atomically, so
a crash, a quit or a long 429 never loses what was fetched and never leaves a half-written page.
A page file is the compact JSON `{"offset":O,"total":T,"items":[...]}`: its items' bytes are
exactly their part of the day's file, which is therefore copied together page by page.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from favdesk.errors import FavdeskError
from favdesk.spotify.library import PAGE_SIZE, Page

#: The day's file, assembled beside the pages (not a page: the loader skips it).
LIBRARY_FILE = "library.json"
_TAIL = b"]}"


class PageCheckpoint:
    """The pages fetched so far for one user."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_user(cls, data_dir: Path, user_id: str) -> PageCheckpoint:
        return cls(data_dir / "imports" / user_id)

    def load(self) -> dict[int, Page]:
        """Every readable page: page 0 whole, the others `released()` (their items stay on
        disk), so resuming costs little memory at any size. A damaged file, or one in another
        format, is skipped (it is simply fetched again)."""
        pages: dict[int, Page] = {}
        if not self.directory.is_dir():
            return pages
        for path in sorted(self.directory.glob("page-*.json")):
            page = _read_page(path)
            if page is not None:
                pages[page.offset] = page if page.offset == 0 else page.released()
        return pages

    def save(self, page: Page) -> None:
        """Write one page atomically, in the compact form the day's file is assembled from."""
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = {"offset": page.offset, "total": page.total, "items": page.items}
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        # A lone surrogate (half an emoji: valid JSON, not Unicode) has no UTF-8: it is written
        # as the JSON escape Spotify sent, which reads back as the same string.
        data = text.encode("utf-8", "backslashreplace")
        handle, temp = tempfile.mkstemp(dir=self.directory, prefix=".page-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temp, self._page_path(page.offset))
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def assemble(self, total: int) -> Path:
        """The day's file of a library of `total` items, copied together from its pages: one
        compact JSON array, the bytes `json.dumps(items, ensure_ascii=False,
        separators=(",", ":"))` of the whole library gives, never all in memory."""
        target = self.directory / LIBRARY_FILE
        self.directory.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            out.write(b"[")
            for offset in range(0, total, PAGE_SIZE):
                if offset:
                    out.write(b",")
                out.write(self._items_json(offset, total))
            out.write(b"]")
        return target

    def discard_library(self) -> None:
        """Remove an assembled day's file (the pages stay for the next attempt)."""
        (self.directory / LIBRARY_FILE).unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _page_path(self, offset: int) -> Path:
        return self.directory / f"page-{offset:08d}.json"

    def _items_json(self, offset: int, total: int) -> bytes:
        """The JSON of one page's items, without the brackets, as its file holds them."""
        path = self._page_path(offset)
        head = _head(offset, total)
        try:
            raw = path.read_bytes()
        except OSError:
            raw = b""
        if not (raw.startswith(head) and raw.endswith(_TAIL)):
            path.unlink(missing_ok=True)
            raise FavdeskError(
                f"The page of Liked Songs at offset {offset} kept for this import is missing or "
                "damaged: press Sync now to fetch it again"
            )
        return raw[len(head) : -len(_TAIL)]


def _head(offset: int, total: int) -> bytes:
    """What a page file of `offset` in a library of `total` items starts with."""
    return f'{{"offset":{offset},"total":{total},"items":['.encode()


def _read_page(path: Path) -> Page | None:
    """A page file's page, or None when it is unreadable, not shaped like a page, or not in
    the compact form `save` writes."""
    try:
        data = path.read_bytes()
        raw = json.loads(data)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    offset, total, items = raw.get("offset"), raw.get("total"), raw.get("items")
    if not (isinstance(offset, int) and isinstance(total, int) and isinstance(items, list)):
        return None
    if not (data.startswith(_head(offset, total)) and data.endswith(_TAIL)):
        return None
    return Page(offset=offset, items=items, total=total)
