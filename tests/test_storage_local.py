"""The local backend keeps the bucket's layout and never leaves a half-written file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime

import pytest

from favdesk.errors import StorageError
from favdesk.settings import load_settings
from favdesk.storage import StoredFile, open_storage, raw_key
from favdesk.storage.local import COPY_CHUNK, LocalStorage
from tests.support.uploads import upload_bytes

DAY = date(2026, 11, 29)


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "storage")


def temp_files(root):
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_raw_key_is_spotify_user_and_iso_date():
    assert raw_key("demo-listener", DAY) == "spotify/demo-listener/2026-11-29.json"
    assert raw_key("A.b_c-9", date(2027, 1, 5)) == "spotify/A.b_c-9/2027-01-05.json"


@pytest.mark.parametrize("user_id", ["", ".", "..", "a/b", "../etc", "café", "a b", "x\n"])
def test_unsafe_user_ids_are_refused_with_a_clear_message(user_id):
    with pytest.raises(StorageError, match="may hold only letters, digits"):
        raw_key(user_id, DAY)


def test_upload_uses_the_bucket_layout_with_exact_bytes(storage, tmp_path):
    data = '[{"track": {"name": "Hoppípolla"}}, {"track": null}]'.encode()
    stored = upload_bytes(storage, raw_key("u1", DAY), data)
    on_disk = tmp_path / "storage" / "favorites_raw" / "spotify" / "u1" / "2026-11-29.json"
    assert on_disk.read_bytes() == data
    assert stored.path == "favorites_raw/spotify/u1/2026-11-29.json"
    assert (stored.name, stored.size, stored.day) == ("2026-11-29.json", len(data), DAY)
    assert storage.download(stored.key) == data
    assert storage.description == f"local folder {tmp_path / 'storage'}"


def test_same_day_upload_replaces_the_file_and_leaves_no_temp_files(storage):
    key = raw_key("u1", DAY)
    upload_bytes(storage, key, b"[1]")
    upload_bytes(storage, key, b"[2, 3]")
    assert storage.download(key) == b"[2, 3]"
    assert [f.size for f in storage.list_files("u1")] == [6]
    assert temp_files(storage.root) == []


def test_a_write_failing_midway_keeps_the_old_file_whole(storage):
    """A real partial write: the file-size limit (RLIMIT_FSIZE) cuts the write off at 64 KiB."""
    key = raw_key("u1", DAY)
    old = b'["yesterday\'s complete export"]'
    upload_bytes(storage, key, old)
    source = storage.root.parent / "new.json"
    source.write_bytes(b"x" * 1_000_000)
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        from favdesk.errors import StorageError
        from favdesk.storage.local import LocalStorage

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        try:
            LocalStorage(Path({str(storage.root)!r})).upload_file({key!r}, Path({str(source)!r}))
        except StorageError as error:
            print(error)
            sys.exit(3)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert "could not write" in result.stdout and "File too large" in result.stdout
    assert storage.download(key) == old
    assert temp_files(storage.root) == []


def test_a_write_into_an_unwritable_place_is_a_storage_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the bucket folder should be")
    storage = LocalStorage(blocker)
    with pytest.raises(StorageError, match="could not write"):
        upload_bytes(storage, raw_key("u1", DAY), b"[]")
    with pytest.raises(StorageError, match="could not create"):
        storage.ensure_bucket()


def test_list_is_newest_first_with_sizes_and_mtimes_skipping_temp_files_and_folders(storage):
    for day, data in (("2026-11-28", b"[1]"), ("2026-11-30", b"[1, 2]"), ("2026-11-29", b"[]")):
        upload_bytes(storage, f"spotify/u1/{day}.json", data)
    folder = storage.bucket_dir / "spotify" / "u1"
    (folder / ".2026-12-01.json.abc123.tmp").write_bytes(b"[half")  # left by a crash
    (folder / "nested").mkdir()
    stamp = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    os.utime(folder / "2026-11-30.json", (stamp.timestamp(), stamp.timestamp()))
    files = storage.list_files("u1")
    assert [(f.name, f.size) for f in files] == [
        ("2026-11-30.json", 6),
        ("2026-11-29.json", 2),
        ("2026-11-28.json", 3),
    ]
    assert files[0].updated_at == stamp
    assert files[0].key == "spotify/u1/2026-11-30.json"


def test_list_of_a_user_with_no_files_is_empty(storage):
    assert storage.list_files("nobody") == []


def test_download_of_a_missing_file_says_it_disappeared(storage):
    with pytest.raises(StorageError, match="file disappeared: favorites_raw/spotify/u1/"):
        storage.download(raw_key("u1", DAY))


@pytest.mark.parametrize("key", ["../outside.json", "spotify/../../x.json", "/abs.json", "a//b"])
def test_keys_that_could_leave_the_bucket_are_refused(storage, key):
    with pytest.raises(StorageError, match="not a valid storage key"):
        upload_bytes(storage, key, b"[]")
    assert not (storage.root.parent / "outside.json").exists()


def test_the_folder_takes_files_over_supabases_50_mb_copied_piece_by_piece(storage, tmp_path):
    source = tmp_path / "library.json"
    with source.open("wb") as file:
        file.truncate(60 * 1024 * 1024)  # sparse: 60 MB of zeros without writing them here
    progress: list[tuple[int, int]] = []
    stored = storage.upload_file(raw_key("u1", DAY), source, lambda *p: progress.append(p))
    assert stored.size == 60 * 1024 * 1024
    assert (storage.bucket_dir / stored.key).stat().st_size == stored.size
    assert progress[0] == (COPY_CHUNK, stored.size) and progress[-1] == (stored.size, stored.size)
    assert len(progress) == stored.size // COPY_CHUNK
    assert temp_files(storage.root) == []


def test_ensure_bucket_creates_the_bucket_folder(storage):
    storage.ensure_bucket()
    assert storage.bucket_dir.is_dir()


def test_without_supabase_settings_storage_is_the_data_dir_folder(tmp_path):
    storage = open_storage(load_settings(use_keyring=False))
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "data" / "storage"


def test_day_is_none_for_names_that_are_not_dates():
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    assert StoredFile("k", "notes.json", 1, stamp).day is None
    assert StoredFile("k", "2026-13-40.json", 1, stamp).day is None
