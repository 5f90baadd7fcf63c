"""Pages of an interrupted import on disk: atomic page files, damage skipped, cleared when done."""

from __future__ import annotations

import json
import threading

import pytest

from favdesk.checkpoint import PageCheckpoint
from favdesk.spotify.library import Page


def page(offset: int, total: int = 120, mark: str = "a") -> Page:
    count = min(50, total - offset)
    items = [{"added_at": f"{mark}{offset + i}", "track": None} for i in range(count)]
    return Page(offset=offset, items=items, total=total)


@pytest.fixture
def checkpoint(tmp_path):
    return PageCheckpoint.for_user(tmp_path / "data", "u1")


def leftovers(checkpoint: PageCheckpoint) -> list[str]:
    return sorted(p.name for p in checkpoint.directory.iterdir() if p.name.startswith("."))


def test_pages_are_kept_per_user_under_the_data_dir_and_load_back_by_offset(checkpoint, tmp_path):
    pages = [page(0), page(50), page(100)]
    for each in pages:
        checkpoint.save(each)
    assert checkpoint.directory == tmp_path / "data" / "imports" / "u1"
    assert checkpoint.load() == {p.offset: p for p in pages}
    assert PageCheckpoint.for_user(tmp_path / "data", "u2").load() == {}


def test_items_are_kept_exactly_including_nulls_and_other_scripts(checkpoint):
    items = [
        {"added_at": "2026-01-01T00:00:00Z", "track": None},
        {"track": {"name": "夜に駆ける 🌙"}},
    ]
    checkpoint.save(Page(0, items, 2))
    assert checkpoint.load()[0].items == items


def test_saving_an_offset_again_replaces_that_page(checkpoint):
    checkpoint.save(page(0, mark="old"))
    checkpoint.save(page(0, mark="new"))
    assert checkpoint.load() == {0: page(0, mark="new")}
    assert leftovers(checkpoint) == []


def test_a_write_that_fails_midway_keeps_the_previous_page_and_no_temp_file(checkpoint):
    checkpoint.save(page(50, mark="old"))
    broken = Page(50, [{"track": {"name": "fine"}}, {"track": {1, 2}}], 120)  # a set: no JSON
    with pytest.raises(TypeError):
        checkpoint.save(broken)
    assert checkpoint.load() == {50: page(50, mark="old")}
    assert leftovers(checkpoint) == []


def test_a_reader_never_sees_a_half_written_page(checkpoint):
    """Another attempt loading while pages are rewritten finds each page whole, old or new."""
    big = [page(0, total=5000, mark="x"), page(0, total=5000, mark="y")]
    checkpoint.save(big[0])
    done = threading.Event()
    seen: list[Page | None] = []

    def rewrite() -> None:
        for i in range(200):
            checkpoint.save(big[i % 2])
        done.set()

    writer = threading.Thread(target=rewrite)
    writer.start()
    while not done.is_set():
        seen.append(checkpoint.load().get(0))
    writer.join()
    assert seen and all(found in big for found in seen)


@pytest.mark.parametrize(
    "content",
    [
        '{"offset": 50, "total": 120, "items": [{"added_at"',  # cut short by a crash
        "",
        "[1, 2, 3]",
        '{"offset": 50, "total": 120}',
        '{"offset": 50, "total": 120, "items": 7}',
        '{"offset": "50", "total": 120, "items": []}',
        '{"offset": 50, "total": null, "items": []}',
        "\udcff not utf-8",
    ],
    ids=["truncated", "empty", "list", "no-items", "items-not-a-list", "text-offset", "no-total",
         "binary"],
)  # fmt: skip
def test_a_damaged_page_file_is_skipped_and_the_rest_still_load(checkpoint, content):
    checkpoint.save(page(0))
    damaged = checkpoint.directory / "page-00000050.json"
    damaged.write_bytes(content.encode("utf-8", "surrogateescape"))
    assert checkpoint.load() == {0: page(0)}


def test_temp_files_of_an_interrupted_write_are_not_pages(checkpoint):
    checkpoint.save(page(0))
    stray = checkpoint.directory / ".page-crashed.tmp"
    stray.write_text(json.dumps({"offset": 50, "total": 120, "items": page(50).items}))
    assert checkpoint.load() == {0: page(0)}


def test_clear_removes_every_page_and_is_safe_to_repeat(checkpoint):
    checkpoint.save(page(0))
    checkpoint.save(page(50))
    checkpoint.clear()
    assert not checkpoint.directory.exists()
    assert checkpoint.load() == {}
    checkpoint.clear()
