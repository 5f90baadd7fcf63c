"""The Supabase backend, through the real `supabase` client against the Storage stand-in."""

from __future__ import annotations

import logging
import socket
import traceback
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from supabase import ClientOptions, create_client

from favdesk.errors import FileTooLarge, StorageError
from favdesk.sandbox.storage import StorageSandbox
from favdesk.secret import Secret
from favdesk.settings import load_settings
from favdesk.storage import BUCKET, open_storage, raw_key
from favdesk.storage.resumable import CHUNK_SIZE
from favdesk.storage.supabase import KEY_REJECTED, RESUMABLE_ABOVE, SupabaseStorage
from tests.support.uploads import upload_bytes

KEY = raw_key("u1", date(2026, 11, 29))
SIGN = ("POST", f"/storage/v1/object/upload/sign/{BUCKET}/{KEY}")
PUT = ("PUT", f"/storage/v1/object/upload/sign/{BUCKET}/{KEY}")
CREATE = ("POST", "/storage/v1/upload/resumable")
MB = 1024 * 1024


@pytest.fixture
def sandbox(tmp_path):
    with StorageSandbox(tmp_path / "sandbox") as server:
        yield server


def connect(sandbox: StorageSandbox, key: str | None = None, **options) -> SupabaseStorage:
    return SupabaseStorage(sandbox.url, Secret(key or sandbox.service_role_key), **options)


@pytest.fixture
def storage(sandbox):
    backend = connect(sandbox)
    yield backend
    backend.close()


@pytest.fixture
def raw(sandbox):
    """The real client's storage, for setting the stage and checking behind favdesk's back."""
    with httpx.Client(timeout=10) as http:
        options = ClientOptions(httpx_client=http)
        yield create_client(sandbox.url, sandbox.service_role_key, options).storage


def storage_error(call) -> StorageError:
    with pytest.raises(StorageError) as caught:
        call()
    return caught.value


def test_building_the_backend_sends_nothing(sandbox, storage):
    assert sandbox.request_log == []
    assert storage.description == f"Supabase Storage at {sandbox.url}"
    assert sandbox.service_role_key not in repr(storage)


def test_ensure_bucket_creates_it_private_once(sandbox, storage, raw):
    storage.ensure_bucket()
    assert raw.get_bucket(BUCKET).public is False
    storage.ensure_bucket()
    assert sandbox.request_log.count(("POST", "/storage/v1/bucket")) == 1


def test_bucket_made_by_another_process_meanwhile_is_accepted(sandbox, storage, raw):
    def create_right_after_the_404(method, path, status):
        if (method, path) == ("GET", f"/storage/v1/bucket/{BUCKET}") and status == 400:
            sandbox.on_request = None
            raw.create_bucket(BUCKET, options={"public": False})

    sandbox.on_request = create_right_after_the_404
    storage.ensure_bucket()
    assert sandbox.request_log.count(("POST", "/storage/v1/bucket")) == 2  # ours got the 409
    upload_bytes(storage, KEY, b"[]")
    assert raw.from_(BUCKET).download(KEY) == b"[]"


def test_a_public_bucket_is_refused_and_nothing_is_uploaded(sandbox, storage, raw):
    raw.create_bucket(BUCKET, options={"public": True})
    error = storage_error(lambda: upload_bytes(storage, KEY, b"[]"))
    assert "is public" in str(error) and "Make it private" in str(error)
    assert SIGN not in sandbox.request_log
    assert raw.from_(BUCKET).list("spotify/u1") == []


def test_upload_stores_exact_bytes_as_application_json(sandbox, storage):
    data = '[{"track": {"name": "Hoppípolla", "artists": [{"name": "Sigur Rós"}]}}]'.encode()
    stored = upload_bytes(storage, KEY, data)
    assert (stored.path, stored.size) == (f"{BUCKET}/{KEY}", len(data))
    assert storage.download(KEY) == data
    headers = {"Authorization": f"Bearer {sandbox.service_role_key}"}
    served = httpx.get(f"{sandbox.url}/storage/v1/object/{BUCKET}/{KEY}", headers=headers)
    assert served.headers["content-type"] == "application/json"


def test_same_day_upload_replaces_the_file(sandbox, storage):
    upload_bytes(storage, KEY, b"[1]")
    upload_bytes(storage, KEY, b"[1, 2]")
    assert storage.download(KEY) == b"[1, 2]"
    assert [(f.name, f.size) for f in storage.list_files("u1")] == [("2026-11-29.json", 6)]
    assert sandbox.request_log.count(SIGN) == 2


def test_an_expired_signed_url_is_signed_again_once(sandbox, storage):
    storage.ensure_bucket()
    sandbox.expire_next_signed_urls(1)
    upload_bytes(storage, KEY, b"[7]")
    assert storage.download(KEY) == b"[7]"
    assert (sandbox.request_log.count(SIGN), sandbox.request_log.count(PUT)) == (2, 2)


def test_a_second_expired_signed_url_is_an_error(sandbox, storage):
    storage.ensure_bucket()
    sandbox.expire_next_signed_urls(2)
    error = storage_error(lambda: upload_bytes(storage, KEY, b"[7]"))
    assert "expired, twice in a row: check this computer's clock" in str(error)
    assert sandbox.request_log.count(SIGN) == 2


def too_large(call) -> FileTooLarge:
    with pytest.raises(FileTooLarge) as caught:
        call()
    assert caught.value.reason == "toolarge" and caught.value.status == "413"
    assert "Ways out:" in str(caught.value) and "local folder" in str(caught.value)
    return caught.value


def test_the_projects_limit_is_the_servers_413_with_size_limit_and_ways_out(tmp_path):
    with StorageSandbox(tmp_path / "s", max_object_size=1 * MB) as sandbox:
        storage = connect(sandbox)
        error = too_large(lambda: upload_bytes(storage, KEY, b"x" * (2 * MB)))
        storage.close()
    assert (error.size, error.limit) == (2 * MB, 1 * MB)  # the limit: OPTIONS' Tus-Max-Size
    assert str(error).startswith(
        "The day's file is 2.0 MB, over the project's upload limit of 1.0 MB in Supabase Storage"
    )
    assert "Storage > Settings" in str(error)
    assert PUT in sandbox.request_log  # the server said so; favdesk has no cap of its own


def test_the_buckets_limit_is_read_with_the_bucket_and_checked_before_sending(sandbox, raw):
    raw.create_bucket(BUCKET, options={"public": False, "file_size_limit": 1 * MB})
    storage = connect(sandbox)
    error = too_large(lambda: upload_bytes(storage, KEY, b"x" * (MB + MB // 2)))
    storage.close()
    assert (error.size, error.limit) == (MB + MB // 2, 1 * MB)
    assert f"1.5 MB, over the 1.0 MB file size limit of the bucket {BUCKET}" in str(error)
    assert f"Storage > {BUCKET} > Edit bucket" in str(error)
    assert sandbox.request_log[-1] == ("GET", f"/storage/v1/bucket/{BUCKET}")  # nothing sent


def test_a_wrong_key_is_reported_as_rejected(sandbox, raw):
    raw.create_bucket(BUCKET)
    wrong = connect(sandbox, key="sb_secret_wrong")
    for call in (wrong.ensure_bucket, lambda: wrong.list_files("u1"), lambda: wrong.download(KEY)):
        assert str(storage_error(call)) == KEY_REJECTED
    wrong.close()


def test_a_stopped_server_is_reported_as_unreachable(sandbox, storage):
    sandbox.stop()
    for call in (storage.ensure_bucket, lambda: upload_bytes(storage, KEY, b"[]")):
        message = str(storage_error(call))
        assert message.startswith(f"could not reach Supabase at 127.0.0.1:{sandbox.port}")
        assert "SUPABASE_URL" in message


def test_a_server_that_never_answers_times_out_as_unreachable():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        storage = SupabaseStorage(f"http://127.0.0.1:{port}", Secret("k"), timeout=0.2)
        message = str(storage_error(lambda: storage.list_files("u1")))
        storage.close()
    assert message.startswith(
        f"could not reach Supabase at 127.0.0.1:{port} (no answer within 0.2 s)"
    )


def test_list_is_newest_first_with_sizes_and_skips_folders_and_placeholders(storage):
    for day, data in (("2026-11-28", b"[1]"), ("2026-11-30", b"[1, 2]"), ("2026-11-29", b"[]")):
        upload_bytes(storage, f"spotify/u1/{day}.json", data)
    upload_bytes(storage, "spotify/u1/older/2025-01-01.json", b"[]")
    upload_bytes(storage, "spotify/u1/.emptyFolderPlaceholder", b"")
    files = storage.list_files("u1")
    assert [(f.name, f.size) for f in files] == [
        ("2026-11-30.json", 6),
        ("2026-11-29.json", 2),
        ("2026-11-28.json", 3),
    ]
    assert files[0].key == "spotify/u1/2026-11-30.json"
    assert files[0].day == date(2026, 11, 30)
    assert abs(files[0].updated_at - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.slow
def test_list_reads_every_page(sandbox, storage):
    for n in range(105):
        upload_bytes(storage, f"spotify/u1/{2000 + n}-01-01.json", b"[]")
    files = storage.list_files("u1")
    assert len(files) == 105
    assert (files[0].name, files[-1].name) == ("2104-01-01.json", "2000-01-01.json")
    assert sandbox.request_log.count(("POST", f"/storage/v1/object/list/{BUCKET}")) == 2


def test_list_of_a_missing_bucket_is_empty_and_creates_nothing(sandbox, storage):
    assert storage.list_files("u1") == []
    assert ("POST", "/storage/v1/bucket") not in sandbox.request_log


def test_download_of_a_missing_file_says_it_disappeared(storage):
    storage.ensure_bucket()
    error = storage_error(lambda: storage.download(KEY))
    assert str(error).startswith(f"file disappeared: {BUCKET}/{KEY} is no longer in Supabase")


def test_a_url_the_client_refuses_is_a_storage_error():
    with pytest.raises(StorageError, match="set SUPABASE_URL"):
        SupabaseStorage("127.0.0.1:54321", Secret("k"))


def test_supabase_settings_open_the_supabase_backend(sandbox, monkeypatch):
    monkeypatch.setenv("SUPABASE_URL", sandbox.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", sandbox.service_role_key)
    storage = open_storage(load_settings(use_keyring=False))
    assert isinstance(storage, SupabaseStorage)
    upload_bytes(storage, KEY, b"[]")
    assert [f.name for f in storage.list_files("u1")] == ["2026-11-29.json"]
    storage.close()


def test_no_key_or_token_reaches_messages_tracebacks_or_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    with StorageSandbox(tmp_path / "s", max_object_size=64) as sandbox:
        storage, wrong = connect(sandbox), connect(sandbox, key="sb_secret_wrong")
        upload_bytes(storage, KEY, b"[]")
        sandbox.expire_next_signed_urls(2)
        errors.append(storage_error(lambda: upload_bytes(storage, KEY, b"[1]")))
        errors.append(storage_error(lambda: upload_bytes(storage, KEY, b"x" * 65)))
        errors.append(storage_error(lambda: wrong.list_files("u1")))
    errors.append(storage_error(storage.ensure_bucket))  # the server is gone
    storage.close()
    wrong.close()
    secrets = [sandbox.service_role_key, "sb_secret_wrong", *sandbox.issued_tokens]
    assert len(sandbox.issued_tokens) == 4
    texts = [caplog.text] + [
        "".join(traceback.format_exception(error)) + repr(error) for error in errors
    ]
    assert "HTTP Request: PUT" in caplog.text  # httpx did log the signed-URL requests
    for text in texts:
        for secret in secrets:
            assert secret not in text


# --- big files: the resumable (TUS) protocol --------------------------------------------------


def big_file(size: int) -> bytes:
    """Bytes that differ in every chunk, so a chunk sent twice or skipped shows."""
    return bytes(range(256)) * (size // 256) + b"x" * (size % 256)


def tus_requests(sandbox: StorageSandbox) -> list[str]:
    return [method for method, path in sandbox.request_log if "/upload/resumable" in path]


def test_files_up_to_6_mb_keep_the_signed_upload(sandbox, storage):
    data = big_file(RESUMABLE_ABOVE)
    progress: list[tuple[int, int]] = []
    upload_bytes(storage, KEY, data, lambda *p: progress.append(p))
    assert storage.download(KEY) == data
    assert PUT in sandbox.request_log and tus_requests(sandbox) == []
    assert progress == [(len(data), len(data))]


def test_bigger_files_go_resumably_in_6_mb_chunks_reported_per_chunk(sandbox, storage):
    data = big_file(2 * CHUNK_SIZE + 1234)
    progress: list[tuple[int, int]] = []
    stored = upload_bytes(storage, KEY, data, lambda *p: progress.append(p))
    assert sandbox.object_path(BUCKET, KEY).read_bytes() == data
    assert tus_requests(sandbox) == ["POST", "PATCH", "PATCH", "PATCH"]
    assert progress == [(CHUNK_SIZE, len(data)), (2 * CHUNK_SIZE, len(data)), (len(data),) * 2]
    assert PUT not in sandbox.request_log
    assert [(f.name, f.size) for f in storage.list_files("u1")] == [(stored.name, len(data))]
    headers = {"Authorization": f"Bearer {sandbox.service_role_key}"}
    served = httpx.get(f"{sandbox.url}/storage/v1/object/{BUCKET}/{KEY}", headers=headers)
    assert served.headers["content-type"] == "application/json"


def test_a_resumable_upload_replaces_the_days_file(sandbox, storage):
    upload_bytes(storage, KEY, b"[1]")
    data = big_file(RESUMABLE_ABOVE + 1)
    upload_bytes(storage, KEY, data)
    assert storage.download(KEY) == data


def test_a_connection_dropped_mid_chunk_resumes_from_the_servers_offset(sandbox, storage):
    """The stand-in keeps the 3 MB of the cut chunk that arrived, as the real server does:
    the upload goes on from there, not from the chunk's start nor from zero."""
    data = big_file(2 * CHUNK_SIZE + 1234)
    sandbox.cut_next_patch(after=3 * MB)
    progress: list[tuple[int, int]] = []
    upload_bytes(storage, KEY, data, lambda *p: progress.append(p))
    assert sandbox.object_path(BUCKET, KEY).read_bytes() == data
    assert tus_requests(sandbox) == ["POST", "PATCH", "HEAD", "PATCH", "PATCH"]
    assert [sent for sent, _ in progress] == [3 * MB + CHUNK_SIZE, len(data)]


def test_a_connection_that_keeps_dropping_ends_as_unreachable(sandbox, storage, monkeypatch):
    monkeypatch.setattr("favdesk.storage.resumable.RESUME_DELAYS", (0.01, 0.01))
    for _ in range(3):
        sandbox.cut_next_patch(after=MB)
    error = storage_error(lambda: upload_bytes(storage, KEY, big_file(RESUMABLE_ABOVE + 1)))
    assert str(error).startswith(f"could not reach Supabase at 127.0.0.1:{sandbox.port}")
    assert tus_requests(sandbox).count("HEAD") == 2


def test_a_big_file_over_the_projects_limit_is_refused_at_creation(tmp_path):
    with StorageSandbox(tmp_path / "s", max_object_size=7 * MB) as sandbox:
        storage = connect(sandbox)
        error = too_large(lambda: upload_bytes(storage, KEY, big_file(8 * MB)))
        storage.close()
    assert (error.size, error.limit) == (8 * MB, 7 * MB)
    assert "over the project's upload limit of 7.0 MB" in str(error)
    assert tus_requests(sandbox) == ["POST", "OPTIONS"]  # refused before any byte was sent


def test_a_wrong_key_on_a_big_upload_is_reported_as_rejected(sandbox, raw):
    raw.create_bucket(BUCKET)
    wrong = connect(sandbox, key="sb_secret_wrong")
    wrong.bucket_limit, wrong._bucket_ready = None, True  # as if checked with the right key
    error = storage_error(lambda: upload_bytes(wrong, KEY, big_file(RESUMABLE_ABOVE + 1)))
    wrong.close()
    assert str(error) == KEY_REJECTED
