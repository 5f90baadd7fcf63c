"""Retention: the newest N plus each month's newest; only favdesk's own snapshots deleted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from favdesk.history import HistoryFolder, record_written, refresh
from favdesk.retention import apply, make_plan, plan
from favdesk.storage import StoredFile, raw_key
from favdesk.storage.local import LocalStorage
from tests.support.snapshots import USER, encoded, library, open_backend, put


def stored(day: date, size: int = 10, user: str = USER) -> StoredFile:
    key = raw_key(user, day)
    return StoredFile(key, key.rsplit("/", 1)[1], size, datetime(2026, 1, 1, tzinfo=UTC))


def days(files) -> list[str]:
    return [f.name.removesuffix(".json") for f in files]


def test_the_newest_n_and_each_months_newest_are_kept():
    files = [stored(date(2026, 1, 1) + timedelta(days=n)) for n in range(70)]  # Jan 1 - Mar 11
    written = {f.key: f.size for f in files}
    made = plan(USER, files, 5, written)
    assert days(made.keep) == [
        "2026-03-11", "2026-03-10", "2026-03-09", "2026-03-08", "2026-03-07",
        "2026-02-28", "2026-01-31",
    ]  # fmt: skip
    assert len(made.delete) == 63 and made.foreign == ()
    assert days(made.delete)[:2] == ["2026-03-06", "2026-03-05"]


def test_only_snapshots_favdesk_wrote_with_that_size_are_deleted():
    mine, theirs, replaced = (stored(date(2026, 1, d)) for d in (1, 2, 3))
    newest = stored(date(2026, 1, 31))
    written = {mine.key: mine.size, replaced.key: replaced.size + 1, newest.key: newest.size}
    notes = StoredFile(f"spotify/{USER}/notes.json", "notes.json", 5, mine.updated_at)
    made = plan(USER, [mine, theirs, replaced, newest, notes], 1, written)
    assert days(made.delete) == ["2026-01-01"]
    assert days(made.foreign) == ["2026-01-03", "2026-01-02"]
    assert days(made.keep) == ["2026-01-31"]


def test_keep_must_be_at_least_one():
    with pytest.raises(ValueError):
        plan(USER, [], 0, {})


@pytest.fixture(params=["local", "supabase"])
def backend(request, tmp_path):
    with open_backend(request.param, tmp_path) as (storage, _server):
        yield storage


def write_as_favdesk(storage, data_dir, tmp_path, day: date, songs: int) -> StoredFile:
    source = tmp_path / f"{day}.json"
    source.write_bytes(encoded(library(range(songs))))
    written = storage.upload_file(raw_key(USER, day), source)
    record_written(data_dir, USER, written, source)
    return written


def test_retention_never_touches_a_file_it_did_not_write(backend, tmp_path):
    storage, data = backend, tmp_path / "data"
    for n in range(1, 6):
        write_as_favdesk(storage, data, tmp_path, date(2026, 3, n), n)
    put(storage, date(2026, 2, 10), library(range(3)))  # the web app's, not favdesk's
    put(storage, date(2026, 2, 11), library(range(3)), user="someone-else")
    other = tmp_path / "notes.json"
    other.write_bytes(b"[]")
    storage.upload_file(f"spotify/{USER}/notes.json", other)
    storage.upload_file(f"spotify/{USER}/2026-03-01.json.bak", other)
    replaced = put(storage, date(2026, 3, 2), library(range(40)))  # favdesk's, then replaced
    before = {f.key: f.size for f in storage.list_files(USER)}
    others_before = storage.list_files("someone-else")

    made = make_plan(storage, data, USER, 1)
    assert days(made.keep) == ["2026-03-05", "2026-02-10"]  # newest, and February's newest
    assert days(made.delete) == ["2026-03-04", "2026-03-03", "2026-03-01"]
    assert days(made.foreign) == ["2026-03-02"]

    deleted = apply(storage, data, made)
    after = {f.key: f.size for f in storage.list_files(USER)}
    assert days(deleted) == days(made.delete)
    assert after == {k: v for k, v in before.items() if k not in {f.key for f in deleted}}
    assert after[replaced.key] == replaced.size
    assert storage.list_files("someone-else") == others_before
    still_written = {raw_key(USER, date(2026, 3, d)) for d in (5, 2)}
    assert set(HistoryFolder(data, USER).written()) == still_written
    assert [s.day.day for s in refresh(storage, data, USER).snapshots] == [5, 2, 10]


def test_a_dry_run_plan_deletes_nothing_and_a_stale_plan_deletes_only_what_still_holds(tmp_path):
    storage, data = LocalStorage(tmp_path / "bucket"), tmp_path / "data"
    for n in range(1, 4):
        write_as_favdesk(storage, data, tmp_path, date(2026, 3, n), n)
    made = make_plan(storage, data, USER, 1)
    assert len(storage.list_files(USER)) == 3  # a plan alone deletes nothing
    put(storage, date(2026, 3, 1), library(range(9)))  # replaced after the plan was shown
    deleted = apply(storage, data, made)
    assert days(deleted) == ["2026-03-02"]
    assert days(storage.list_files(USER)) == ["2026-03-03", "2026-03-01"]
