"""The account store: SQLite for details, the OS keyring (here the test backend) for tokens."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import keyring
import pytest
from keyring.backends import fail, null

from favdesk.accounts import NO_KEYRING, AccountStore, require_keyring
from favdesk.errors import KeyringUnavailable, NoAccount, ReauthRequired
from favdesk.sandbox.memkeyring import MemoryKeyring
from favdesk.secret import Secret
from favdesk.spotify.api import SpotifyUser
from favdesk.spotify.tokens import Tokens

ALICE = SpotifyUser(id="alice", display_name="Alice Ångström")
BOB = SpotifyUser(id="bob", display_name="Bob", account_id="acct-bob")


def tokens(tag: str = "1", expires_in: float = 3600) -> Tokens:
    return Tokens(
        Secret(f"access-{tag}-BQxyz"),
        Secret(f"refresh-{tag}-AQxyz"),
        time.time() + expires_in,
        "user-library-read",
    )


@pytest.fixture
def store(tmp_path):
    return AccountStore(tmp_path / "data" / "favdesk.sqlite3")


def files_under(path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_link_keeps_tokens_in_the_keyring_only(store, tmp_path):
    linked = tokens()
    account = store.save_link(ALICE, linked, user_id="alice")
    assert account.display_name == "Alice Ångström"
    assert account.scopes == "user-library-read"
    assert account.token_expires_at == linked.expires_at
    assert account.authorized_at == account.linked_at and not account.needs_relink

    entry = json.loads(keyring.get_password("favdesk", "spotify:alice"))
    assert entry["access_token"] == "access-1-BQxyz"
    assert entry["refresh_token"] == "refresh-1-AQxyz"
    assert store.load_tokens("alice") == linked
    keyring_file = tmp_path / "keyring.json"
    for path, content in files_under(tmp_path).items():
        if path != str(keyring_file):
            assert b"BQxyz" not in content and b"AQxyz" not in content, path


def test_relink_replaces_tokens_and_clears_needs_relink(store):
    store.save_link(ALICE, tokens("1"), user_id="alice")
    store.mark_needs_relink("alice")
    with pytest.raises(ReauthRequired, match="link Spotify again"):
        store.load_tokens("alice")
    store.save_link(ALICE, tokens("2"), user_id="alice")
    assert not store.get("alice").needs_relink
    assert store.load_tokens("alice").refresh_token == Secret("refresh-2-AQxyz")
    assert len(store.list()) == 1


def test_several_accounts_and_the_default_is_the_latest_link(store):
    with pytest.raises(NoAccount, match="favdesk link"):
        store.default()
    store.save_link(ALICE, tokens("a"), user_id="alice")
    assert store.default().spotify_id == "alice"
    store.save_link(BOB, tokens("b"), user_id="acct-bob")
    assert [a.spotify_id for a in store.list()] == ["alice", "bob"]
    assert store.default().spotify_id == "bob"
    assert store.by_user_id("acct-bob").spotify_id == "bob"
    assert store.by_user_id("nobody") is None
    assert store.load_tokens("alice").access_token == Secret("access-a-BQxyz")
    store.save_link(ALICE, tokens("a2"), user_id="alice")
    assert store.default().spotify_id == "alice"


def test_unknown_account_has_no_tokens(store):
    assert store.get("ghost") is None
    with pytest.raises(NoAccount, match="ghost is not linked"):
        store.load_tokens("ghost")


def test_tokens_missing_from_the_keyring_ask_for_a_new_link(store):
    store.save_link(ALICE, tokens(), user_id="alice")
    keyring.delete_password("favdesk", "spotify:alice")
    with pytest.raises(ReauthRequired, match="link Spotify again"):
        store.load_tokens("alice")


def test_save_tokens_replaces_both_tokens_and_the_expiry(store):
    store.save_link(ALICE, tokens("1"), user_id="alice")
    rotated = tokens("2", expires_in=7200)
    store.save_tokens("alice", rotated)
    assert store.load_tokens("alice") == rotated
    assert store.get("alice").token_expires_at == rotated.expires_at


def test_remove_forgets_the_account_and_its_tokens(store):
    store.save_link(ALICE, tokens(), user_id="alice")
    store.remove("alice")
    assert store.get("alice") is None
    assert keyring.get_password("favdesk", "spotify:alice") is None
    store.remove("alice")


def test_tokens_saved_after_an_unlink_are_not_kept(store):
    store.save_link(ALICE, tokens("1"), user_id="alice")
    store.remove("alice")
    with pytest.raises(NoAccount, match="alice was unlinked"):
        store.save_tokens("alice", tokens("2"))
    assert store.list() == []
    assert keyring.get_password("favdesk", "spotify:alice") is None


def test_unlink_with_a_failing_keyring_keeps_the_account(store):
    store.save_link(ALICE, tokens(), user_id="alice")
    keyring.set_keyring(fail.Keyring())
    with pytest.raises(KeyringUnavailable):
        store.remove("alice")
    assert store.get("alice") is not None


def test_link_is_flagged_only_while_the_failed_refresh_token_is_stored(store):
    first, renewed = tokens("1"), tokens("2")
    store.save_link(ALICE, first, user_id="alice")
    store.save_tokens("alice", renewed)  # another process refreshed meanwhile
    assert not store.mark_needs_relink("alice", first.refresh_token)
    assert not store.get("alice").needs_relink
    assert store.mark_needs_relink("alice", renewed.refresh_token)
    assert store.get("alice").needs_relink


@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring])
def test_unusable_keyring_backend_stops_the_link_and_writes_no_file(store, tmp_path, backend):
    keyring.set_keyring(backend())
    before = files_under(tmp_path)
    with pytest.raises(KeyringUnavailable) as caught:
        store.save_link(ALICE, tokens(), user_id="alice")
    assert str(caught.value) == NO_KEYRING
    assert "PYTHON_KEYRING_BACKEND" in str(caught.value)
    assert files_under(tmp_path) == before
    with pytest.raises(KeyringUnavailable):
        require_keyring()


def test_secret_service_without_dbus_is_keyring_unavailable(store, monkeypatch):
    from keyring.backends import SecretService

    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    keyring.set_keyring(SecretService.Keyring())
    with pytest.raises(KeyringUnavailable, match="install and unlock a Secret Service"):
        store.save_link(ALICE, tokens(), user_id="alice")


def test_store_is_safe_from_many_threads(store):
    keyring.set_keyring(MemoryKeyring())  # the file-backed test keyring is not thread-safe
    store.save_link(ALICE, tokens("0"), user_id="alice")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                store.save_tokens("alice", tokens(f"{n}-{i}"))
                store.load_tokens("alice")
                store.list()
        except BaseException as error:  # noqa: BLE001 - collected for the assert
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert store.load_tokens("alice").access_token.reveal().startswith("access-")


def test_schema_is_created_on_first_use(store):
    assert not store.database_path.exists()
    assert store.list() == []
    with sqlite3.connect(store.database_path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(accounts)")]
    assert columns == [
        "account_key",
        "spotify_id",
        "user_id",
        "display_name",
        "scopes",
        "token_expires_at",
        "authorized_at",
        "linked_at",
        "needs_relink",
    ]


def test_account_with_an_account_id_is_keyed_by_it_and_shown_by_id(store):
    linked = tokens("b")
    store.save_link(BOB, linked, user_id="acct-bob")
    assert keyring.get_password("favdesk", "spotify:acct-bob") is not None
    assert keyring.get_password("favdesk", "spotify:bob") is None
    bob = store.get("bob")
    assert (bob.spotify_id, bob.account_id, bob.key) == ("bob", "acct-bob", "acct-bob")
    assert store.get("acct-bob") == bob
    assert store.load_tokens("bob") == store.load_tokens("acct-bob") == linked


def test_spotify_id_renamed_under_the_same_account_id_stays_one_account(store):
    store.save_link(BOB, tokens("b"), user_id="acct-bob")
    renamed = SpotifyUser(id="bobby", display_name="Bobby", account_id="acct-bob")
    store.save_link(renamed, tokens("b2"), user_id="acct-bob")
    assert [(a.spotify_id, a.display_name) for a in store.list()] == [("bobby", "Bobby")]
    assert store.get("bob") is None
    assert store.load_tokens("bobby").refresh_token == Secret("refresh-b2-AQxyz")


def test_a_link_made_before_spotify_gave_an_account_id_relinks_under_it(store):
    old, new = tokens("old"), tokens("new")
    store.save_link(SpotifyUser(id="bob", display_name="Bob"), old, user_id="bob")
    assert keyring.get_password("favdesk", "spotify:bob") == old.to_json()
    assert store.load_tokens("bob") == old
    assert store.get("bob").key == "bob"

    store.save_link(BOB, new, user_id="bob")
    assert [a.key for a in store.list()] == ["acct-bob"]
    assert keyring.get_password("favdesk", "spotify:bob") is None
    assert store.load_tokens("bob") == new
