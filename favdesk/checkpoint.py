"""Pages of an interrupted import, kept on disk so the next attempt resumes where it stopped.

One JSON file per page offset under `{data dir}/imports/{userId}/`, each written atomically, so
a crash, a quit or a long 429 never loses what was fetched and never leaves a half-written page.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from favdesk.spotify.library import Page


class PageCheckpoint:
    """The pages fetched so far for one user."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_user(cls, data_dir: Path, user_id: str) -> PageCheckpoint:
        return cls(data_dir / "imports" / user_id)

    def load(self) -> dict[int, Page]:
        """Every readable page; a damaged file is skipped (it is simply fetched again)."""
        pages: dict[int, Page] = {}
        if not self.directory.is_dir():
            return pages
        for path in self.directory.glob("page-*.json"):
            page = _read_page(path)
            if page is not None:
                pages[page.offset] = page
        return pages

    def save(self, page: Page) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = {"offset": page.offset, "total": page.total, "items": page.items}
        target = self.directory / f"page-{page.offset:08d}.json"
        handle, temp = tempfile.mkstemp(dir=self.directory, prefix=".page-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(payload, out, ensure_ascii=False)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _read_page(path: Path) -> Page | None:
    """A page file's page, or None when it is unreadable or not shaped like a page."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    offset, total, items = raw.get("offset"), raw.get("total"), raw.get("items")
    if not (isinstance(offset, int) and isinstance(total, int) and isinstance(items, list)):
        return None
    return Page(offset=offset, items=items, total=total)
