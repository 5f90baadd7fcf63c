"""Pages of an interrupted import on disk: atomic page files, damage skipped, cleared when done."""

from __future__ import annotations

import json
import threading

import pytest

from favdesk.checkpoint import LIBRARY_FILE, PageCheckpoint
from favdesk.errors import FavdeskError
from favdesk.sandbox.spotify import SpotifySandbox
from favdesk.spotify.library import PAGE_SIZE, Page


def page(offset: int, total: int = 120, mark: str = "a") -> Page:
    count = min(50, total - offset)
    items = [{"added_at": f"{mark}{offset + i}", "track": None} for i in range(count)]
    return Page(offset=offset, items=items, total=total)


@pytest.fixture
def checkpoint(tmp_path):
    return PageCheckpoint.for_user(tmp_path / "data", "u1")


def leftovers(checkpoint: PageCheckpoint) -> list[str]:
    return sorted(p.name for p in checkpoint.directory.iterdir() if p.name.startswith("."))


def on_disk(checkpoint: PageCheckpoint, offset: int) -> list:
    """The items a page file holds."""
    return json.loads((checkpoint.directory / f"page-{offset:08d}.json").read_bytes())["items"]


def loaded(*pages: Page) -> dict[int, Page]:
    """What `load` gives for these pages: page 0 whole, the others without their items."""
    return {p.offset: p if p.offset == 0 else p.released() for p in pages}


def test_pages_are_kept_per_user_under_the_data_dir_and_load_back_by_offset(checkpoint, tmp_path):
    pages = [page(0), page(50), page(100)]
    for each in pages:
        checkpoint.save(each)
    assert checkpoint.directory == tmp_path / "data" / "imports" / "u1"
    assert checkpoint.load() == loaded(*pages)
    assert [p.count for p in checkpoint.load().values()] == [50, 50, 20]
    assert [on_disk(checkpoint, p.offset) for p in pages] == [p.items for p in pages]
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
    assert checkpoint.load() == loaded(page(50, mark="old"))
    assert on_disk(checkpoint, 50) == page(50, mark="old").items
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


# --- the day's file, assembled from the pages ---------------------------------------------------


def todays_encoder(items: list) -> bytes:
    """How the day's file was encoded before it was streamed: the whole library in memory."""
    parts = [json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in items]
    return ("[" + ",".join(parts) + "]").encode("utf-8")


def save_library(checkpoint: PageCheckpoint, items: list) -> None:
    for offset in range(0, max(len(items), 1), PAGE_SIZE):
        checkpoint.save(Page(offset, items[offset : offset + PAGE_SIZE], len(items)))


@pytest.mark.parametrize("tracks", [0, 1, 50, 51, 777])
def test_the_assembled_file_is_byte_for_byte_todays_encoding(checkpoint, tracks):
    """Null tracks, local files, other scripts and emoji included, in Spotify's order."""
    items = SpotifySandbox(tracks=tracks, seed=3).items()
    save_library(checkpoint, items)
    assembled = checkpoint.assemble(len(items)).read_bytes()
    assert assembled == todays_encoder(items)
    assert json.loads(assembled) == items


def test_the_sample_library_has_the_messy_items_the_encoding_must_keep():
    items = SpotifySandbox(tracks=777, seed=3).items()
    assert [item for item in items if item["track"] is None]
    assert [item for item in items if item["track"] and item["track"]["is_local"]]
    assert not todays_encoder(items).isascii()


def test_a_missing_or_stale_page_stops_the_assembly_and_is_fetched_again(checkpoint):
    items = [{"added_at": f"2026-01-0{n}", "track": {"name": "Ñandú 🌙"}} for n in range(1, 4)]
    save_library(checkpoint, items)
    checkpoint.save(page(0, total=5000, mark="stale"))  # page 0 of another library state
    with pytest.raises(FavdeskError, match="offset 0 kept for this import is missing or damaged"):
        checkpoint.assemble(len(items))
    assert checkpoint.load() == {}
    with pytest.raises(FavdeskError, match="offset 0"):
        checkpoint.assemble(len(items))


def test_discarding_the_days_file_keeps_the_pages(checkpoint):
    save_library(checkpoint, [page(0).items[0]])
    assert checkpoint.assemble(1).name == LIBRARY_FILE
    checkpoint.discard_library()
    assert not (checkpoint.directory / LIBRARY_FILE).exists()
    assert checkpoint.load() == {0: Page(0, [page(0).items[0]], 1)}


def test_page_files_of_another_format_are_fetched_again(checkpoint):
    checkpoint.save(page(0))
    spaced = {"offset": 50, "total": 120, "items": page(50).items}
    (checkpoint.directory / "page-00000050.json").write_text(json.dumps(spaced))
    assert checkpoint.load() == loaded(page(0))
