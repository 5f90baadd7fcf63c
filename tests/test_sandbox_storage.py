"""The Storage stand-in speaks Supabase Storage's wire shapes to the real `supabase` client."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions
from supabase import ClientOptions, create_client

from favdesk.sandbox.storage import DEMO_SERVICE_ROLE_KEY, StorageSandbox

BUCKET = "favorites_raw"
KEY = "spotify/u1/2026-11-29.json"
UPSERT = CreateSignedUploadUrlOptions(upsert="true")
JSON = {"content-type": "application/json"}


@pytest.fixture
def sandbox(tmp_path):
    with StorageSandbox(tmp_path / "sandbox") as server:
        yield server


@pytest.fixture
def http():
    with httpx.Client(timeout=10) as client:
        yield client


def storage_client(sandbox: StorageSandbox, http: httpx.Client, key: str | None = None):
    """The real supabase client's storage, as favdesk builds it."""
    options = ClientOptions(httpx_client=http)
    return create_client(sandbox.url, key or sandbox.service_role_key, options).storage


def client_with_bucket(sandbox: StorageSandbox, http: httpx.Client, **options):
    """The real client's storage, with the private bucket created (`options` added)."""
    client = storage_client(sandbox, http)
    client.create_bucket(BUCKET, options={"public": False, **options})
    return client


@pytest.fixture
def storage(sandbox, http):
    return client_with_bucket(sandbox, http)


def auth(sandbox: StorageSandbox) -> dict[str, str]:
    key = sandbox.service_role_key
    return {"apikey": key, "Authorization": f"Bearer {key}"}


def upload(storage, data: bytes, key: str = KEY, options=UPSERT) -> None:
    bucket = storage.from_(BUCKET)
    signed = bucket.create_signed_upload_url(key, options)
    bucket.upload_to_signed_url(key, signed["token"], data, JSON)


def api_error(call) -> StorageApiError:
    with pytest.raises(StorageApiError) as caught:
        call()
    return caught.value


def test_demo_key_is_the_default(sandbox):
    assert sandbox.service_role_key == DEMO_SERVICE_ROLE_KEY
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}"


def test_bucket_is_created_private_and_read_back(sandbox, http):
    client = storage_client(sandbox, http)
    assert client.create_bucket(BUCKET, options={"public": False}) == {"name": BUCKET}
    bucket = client.get_bucket(BUCKET)
    assert (bucket.id, bucket.public) == (BUCKET, False)
    assert [b.id for b in client.list_buckets()] == [BUCKET]


def test_missing_bucket_errors_come_as_http_400_with_string_status(sandbox, http):
    client = storage_client(sandbox, http)
    error = api_error(lambda: client.get_bucket(BUCKET))
    assert (error.status, error.code, error.message) == (
        "404",
        "Bucket not found",
        "Bucket not found",
    )
    raw = http.get(f"{sandbox.url}/storage/v1/bucket/{BUCKET}", headers=auth(sandbox))
    assert raw.status_code == 400
    assert raw.json() == {
        "statusCode": "404",
        "error": "Bucket not found",
        "message": "Bucket not found",
        "code": "NoSuchBucket",
    }


def test_creating_a_bucket_twice_is_409_duplicate(storage):
    error = api_error(lambda: storage.create_bucket(BUCKET, options={"public": False}))
    assert (error.status, error.code) == ("409", "Duplicate")


def test_listing_a_missing_bucket_returns_empty_list(sandbox, http):
    assert storage_client(sandbox, http).from_("nowhere").list("spotify/u1") == []


def test_signing_in_a_missing_bucket_is_the_foreign_key_error(sandbox, http):
    bucket = storage_client(sandbox, http).from_("nowhere")
    error = api_error(lambda: bucket.create_signed_upload_url(KEY, UPSERT))
    assert (error.status, error.code) == ("404", "InvalidRequest")
    assert error.message == "The related resource does not exist"


def test_signing_an_existing_key_without_upsert_is_409_at_sign_time(sandbox, storage, http):
    upload(storage, b"[1]")
    signs_before = sandbox.request_log.count(
        ("POST", f"/storage/v1/object/upload/sign/{BUCKET}/{KEY}")
    )
    error = api_error(lambda: storage.from_(BUCKET).create_signed_upload_url(KEY))
    assert (error.status, error.code) == ("409", "Duplicate")
    signs_after = sandbox.request_log.count(
        ("POST", f"/storage/v1/object/upload/sign/{BUCKET}/{KEY}")
    )
    assert signs_after == signs_before + 1
    raw = http.post(
        f"{sandbox.url}/storage/v1/object/upload/sign/{BUCKET}/{KEY}", headers=auth(sandbox)
    )
    assert (raw.status_code, raw.json()["statusCode"], raw.json()["code"]) == (
        400,
        "409",
        "KeyAlreadyExists",
    )


def test_upsert_signed_upload_replaces_the_object(storage):
    upload(storage, b"[1]")
    upload(storage, b"[2, 3]")
    assert storage.from_(BUCKET).download(KEY) == b"[2, 3]"


def test_reusing_a_token_without_upsert_after_success_is_409(storage):
    bucket = storage.from_(BUCKET)
    signed = bucket.create_signed_upload_url(KEY)
    bucket.upload_to_signed_url(KEY, signed["token"], b"[1]", JSON)
    error = api_error(lambda: bucket.upload_to_signed_url(KEY, signed["token"], b"[2]", JSON))
    assert (error.status, error.code) == ("409", "Duplicate")
    assert bucket.download(KEY) == b"[1]"


def test_expired_token_gives_the_exp_claim_error(sandbox, storage):
    bucket = storage.from_(BUCKET)
    sandbox.expire_next_signed_urls(1)
    expired = bucket.create_signed_upload_url(KEY, UPSERT)
    fresh = bucket.create_signed_upload_url(KEY, UPSERT)
    error = api_error(lambda: bucket.upload_to_signed_url(KEY, expired["token"], b"[1]", JSON))
    assert (error.status, error.code) == ("400", "InvalidJWT")
    assert error.message == '"exp" claim timestamp check failed'
    bucket.upload_to_signed_url(KEY, fresh["token"], b"[1]", JSON)
    assert bucket.download(KEY) == b"[1]"


def test_signed_upload_url_expires_after_its_ttl(tmp_path, http):
    with StorageSandbox(tmp_path / "s", signed_upload_ttl=0.0) as sandbox:
        bucket = client_with_bucket(sandbox, http).from_(BUCKET)
        signed = bucket.create_signed_upload_url(KEY, UPSERT)
        error = api_error(lambda: bucket.upload_to_signed_url(KEY, signed["token"], b"[]", JSON))
        assert error.code == "InvalidJWT"


def test_garbage_token_and_token_for_another_key_are_refused(storage):
    bucket = storage.from_(BUCKET)
    garbage = api_error(lambda: bucket.upload_to_signed_url(KEY, "not-a-jwt", b"[]", JSON))
    assert (garbage.status, garbage.code, garbage.message) == (
        "400",
        "InvalidJWT",
        "Invalid Compact JWS",
    )
    other = bucket.create_signed_upload_url("spotify/u1/other.json", UPSERT)
    error = api_error(lambda: bucket.upload_to_signed_url(KEY, other["token"], b"[]", JSON))
    assert (error.status, error.code) == ("400", "InvalidSignature")


def test_upload_over_max_object_size_is_413(tmp_path, http):
    with StorageSandbox(tmp_path / "s", max_object_size=1000) as sandbox:
        client = client_with_bucket(sandbox, http)
        upload(client, b"x" * 1000)
        error = api_error(lambda: upload(client, b"x" * 1001))
        assert (error.status, error.code) == ("413", "Payload too large")
        assert client.from_(BUCKET).download(KEY) == b"x" * 1000


def test_bucket_file_size_limit_is_honoured(sandbox, http):
    client = client_with_bucket(sandbox, http, file_size_limit=10)
    error = api_error(lambda: upload(client, b"x" * 11))
    assert error.status == "413"


def test_wrong_key_is_refused_with_403_inside_a_400(sandbox, storage, http):
    wrong = storage_client(sandbox, http, key="not-the-key")
    for call in (
        lambda: wrong.get_bucket(BUCKET),
        lambda: wrong.from_(BUCKET).list("spotify"),
        lambda: wrong.from_(BUCKET).create_signed_upload_url(KEY, UPSERT),
        lambda: wrong.from_(BUCKET).download(KEY),
    ):
        error = api_error(call)
        assert (error.status, error.code) == ("403", "Unauthorized")
    raw = http.get(f"{sandbox.url}/storage/v1/bucket/{BUCKET}")
    assert (raw.status_code, raw.json()["statusCode"]) == (400, "403")


def test_signed_put_needs_no_key_and_keeps_a_raw_body_content_type(sandbox, storage, http):
    signed = storage.from_(BUCKET).create_signed_upload_url(KEY, UPSERT)
    reply = http.put(
        signed["signed_url"], content=b'{"a": 1}', headers={"content-type": "application/json"}
    )
    assert reply.json() == {"Key": f"{BUCKET}/{KEY}"}
    served = http.get(f"{sandbox.url}/storage/v1/object/{BUCKET}/{KEY}", headers=auth(sandbox))
    assert (served.content, served.headers["content-type"]) == (b'{"a": 1}', "application/json")
    assert served.headers["cache-control"] == "no-cache"


def test_download_serves_bytes_and_content_type_on_both_routes(sandbox, storage, http):
    data = '[{"name": "Sigur Rós – Hoppípolla"}]'.encode()
    upload(storage, data)
    assert storage.from_(BUCKET).download(KEY) == data
    for route in ("object", "object/authenticated"):
        served = http.get(f"{sandbox.url}/storage/v1/{route}/{BUCKET}/{KEY}", headers=auth(sandbox))
        assert served.status_code == 200
        assert served.content == data
        assert served.headers["content-type"] == "application/json"
        assert served.headers["cache-control"] == "max-age=3600"


def test_download_of_a_missing_object_is_404_not_found(storage):
    error = api_error(lambda: storage.from_(BUCKET).download("spotify/u1/none.json"))
    assert (error.status, error.code, error.message) == ("404", "not_found", "Object not found")


def test_invalid_key_is_refused(sandbox, storage, http):
    raw = http.post(
        f"{sandbox.url}/storage/v1/object/upload/sign/{BUCKET}/spotify/caf%C3%A9.json",
        headers=auth(sandbox),
    )
    assert (raw.status_code, raw.json()["statusCode"], raw.json()["error"]) == (
        400,
        "400",
        "InvalidKey",
    )


def test_list_gives_direct_children_with_folders_as_id_null_rows(storage):
    for key in ("a/b.json", "a/e.json", "a/c/d.json", "z.json"):
        upload(storage, b"12345", key)
    rows = storage.from_(BUCKET).list("a")
    assert [row["name"] for row in rows] == ["b.json", "c", "e.json"]
    folder = rows[1]
    assert (folder["id"], folder["metadata"]) == (None, None)
    file = rows[0]
    assert file["id"] is not None
    assert file["metadata"]["size"] == 5
    assert file["metadata"]["mimetype"] == "application/json"
    assert file["updated_at"].endswith("Z")
    assert [row["name"] for row in storage.from_(BUCKET).list()] == ["a", "z.json"]


def test_list_honours_sort_limit_offset_and_search(storage):
    for day in ("01", "02", "03", "04", "05"):
        upload(storage, b"[]", f"spotify/u1/2026-01-{day}.json")
    bucket = storage.from_(BUCKET)
    desc = {"column": "name", "order": "desc"}
    page = bucket.list("spotify/u1", {"limit": 2, "offset": 1, "sortBy": desc})
    assert [row["name"] for row in page] == ["2026-01-04.json", "2026-01-03.json"]
    found = bucket.list("spotify/u1", {"search": "2026-01-02"})
    assert [row["name"] for row in found] == ["2026-01-02.json"]


def test_list_with_limit_zero_is_a_schema_error(sandbox, storage, http):
    raw = http.post(
        f"{sandbox.url}/storage/v1/object/list/{BUCKET}",
        json={"prefix": "", "limit": 0},
        headers=auth(sandbox),
    )
    assert raw.status_code == 400
    assert raw.json()["message"] == "body/limit must be >= 1"


def test_remove_returns_only_the_rows_deleted(storage):
    upload(storage, b"[]")
    removed = storage.from_(BUCKET).remove([KEY, "spotify/u1/none.json"])
    assert [row["name"] for row in removed] == [KEY]
    assert storage.from_(BUCKET).list("spotify/u1") == []


def test_objects_survive_a_restart_on_disk(tmp_path, http):
    root = tmp_path / "s"
    with StorageSandbox(root) as first:
        upload(client_with_bucket(first, http), b"[42]")
    with StorageSandbox(root) as second:
        client = storage_client(second, http)
        assert client.get_bucket(BUCKET).public is False
        assert client.from_(BUCKET).download(KEY) == b"[42]"
    assert second.object_path(BUCKET, KEY).read_bytes() == b"[42]"
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_request_log_records_paths_without_tokens(sandbox, storage):
    upload(storage, b"[]")
    assert ("PUT", f"/storage/v1/object/upload/sign/{BUCKET}/{KEY}") in sandbox.request_log
    assert sandbox.issued_tokens
    logged = json.dumps(sandbox.request_log)
    assert not any(token in logged for token in sandbox.issued_tokens)


def test_command_line_serves_until_interrupted(tmp_path, http):
    command = [
        sys.executable,
        "-m",
        "favdesk.sandbox.storage",
        "--port",
        "0",
        "--root",
        str(tmp_path),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().split(" at ", 1)[1].split()[0]
            client = create_client(url, DEMO_SERVICE_ROLE_KEY, ClientOptions(httpx_client=http))
            client.storage.create_bucket(BUCKET)
            assert client.storage.get_bucket(BUCKET).public is False
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
    assert process.returncode == 0
    assert (tmp_path / "state.json").is_file()


# --- resumable uploads (TUS), as the real server answers them --------------------------------

TUS = "/storage/v1/upload/resumable"


def tus_headers(sandbox: StorageSandbox, **extra: str) -> dict[str, str]:
    return {"Tus-Resumable": "1.0.0", **auth(sandbox), **extra}


def create_upload(
    sandbox: StorageSandbox, http: httpx.Client, length: int, key: str = KEY, upsert: bool = True
) -> httpx.Response:
    fields = {"bucketName": BUCKET, "objectName": key, "contentType": "application/json"}
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())
    headers = tus_headers(sandbox, **{"Upload-Length": str(length), "Upload-Metadata": metadata})
    if upsert:
        headers["x-upsert"] = "true"
    return http.post(f"{sandbox.url}{TUS}", headers=headers)


def patch(sandbox, http, url: str, offset: int, data: bytes) -> httpx.Response:
    headers = tus_headers(
        sandbox,
        **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
    )
    return http.patch(url, content=data, headers=headers)


def test_options_tells_the_global_file_limit(tmp_path, http):
    with StorageSandbox(tmp_path / "s", max_object_size=52_428_800) as sandbox:
        answer = http.options(f"{sandbox.url}{TUS}", headers={"Tus-Resumable": "1.0.0"})
    assert answer.status_code == 204
    assert answer.headers["tus-max-size"] == "52428800"
    assert answer.headers["tus-version"] == "1.0.0"
    assert "creation" in answer.headers["tus-extension"].split(",")


def test_an_upload_is_created_patched_and_resumed_from_heads_offset(sandbox, storage, http):
    created = create_upload(sandbox, http, 10)
    assert created.status_code == 201 and created.content == b""
    location = created.headers["location"]
    assert location.startswith(f"http://127.0.0.1:{sandbox.port}/upload/resumable/")  # no /v1
    url = f"{sandbox.url}{TUS}/{location.rsplit('/', 1)[1]}"

    first = patch(sandbox, http, url, 0, b"[1,2")
    assert (first.status_code, first.headers["upload-offset"]) == (204, "4")
    head = http.head(url, headers=tus_headers(sandbox))
    assert (head.headers["upload-offset"], head.headers["upload-length"]) == ("4", "10")
    conflict = patch(sandbox, http, url, 0, b"[1,2")
    assert (conflict.status_code, conflict.text) == (409, "Upload-Offset conflict")
    assert storage.from_(BUCKET).list("spotify/u1") == []  # nothing until the last byte

    assert patch(sandbox, http, url, 4, b",3,45]").headers["upload-offset"] == "10"
    assert storage.from_(BUCKET).download(KEY) == b"[1,2,3,45]"
    (row,) = storage.from_(BUCKET).list("spotify/u1")
    assert row["metadata"]["mimetype"] == "application/json" and row["metadata"]["size"] == 10


def test_a_cut_patch_keeps_the_bytes_that_arrived(sandbox, storage, http):
    created = create_upload(sandbox, http, 3 * 1024 * 1024)
    url = f"{sandbox.url}{TUS}/{created.headers['location'].rsplit('/', 1)[1]}"
    sandbox.cut_next_patch(after=1024 * 1024)
    with pytest.raises(httpx.TransportError):
        patch(sandbox, http, url, 0, b"x" * (3 * 1024 * 1024))
    head = http.head(url, headers=tus_headers(sandbox))
    assert head.headers["upload-offset"] == str(1024 * 1024)


def test_tus_errors_are_plain_text_with_their_real_status(sandbox, http):
    missing = create_upload(sandbox, http, 10)
    assert (missing.status_code, missing.text) == (404, "Bucket not found")
    client_with_bucket(sandbox, http, file_size_limit=5)
    too_big = create_upload(sandbox, http, 6)
    assert (too_big.status_code, too_big.text) == (413, "Maximum size exceeded")
    unknown = http.head(f"{sandbox.url}{TUS}/no-such-upload", headers=tus_headers(sandbox))
    assert unknown.status_code == 404


def test_an_existing_object_without_upsert_is_409_at_creation(sandbox, storage, http):
    upload(storage, b"[]")
    refused = create_upload(sandbox, http, 2, upsert=False)
    assert (refused.status_code, refused.text) == (409, "The resource already exists")
    assert create_upload(sandbox, http, 2).status_code == 201


def test_a_wrong_key_on_tus_gets_the_rest_shape(sandbox, storage, http):
    headers = {"Tus-Resumable": "1.0.0", "Authorization": "Bearer nope", "Upload-Length": "2"}
    refused = http.post(f"{sandbox.url}{TUS}", headers=headers)
    assert refused.status_code == 400
    assert refused.json()["statusCode"] == "403"
