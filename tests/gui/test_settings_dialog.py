"""The Settings dialog validates like the CLI, keeps secrets in the keyring and writes the rest."""

from __future__ import annotations

import os
import stat
import threading

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import KeyringLocked, PasswordDeleteError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QLineEdit

from favdesk.accounts import NO_KEYRING
from favdesk.gui.settings_dialog import SettingsDialog
from favdesk.settings import load_settings


@pytest.fixture
def dialog(qtbot, settings):
    made = SettingsDialog(settings)
    qtbot.addWidget(made)
    made.show()
    return made


def save(qtbot, dialog) -> None:
    button = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def type_into(qtbot, edit: QLineEdit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


BAD_VALUES = [
    ("redirect_uri", "REDIRECT_URI", "http://localhost:8888/callback"),
    ("redis_url", "REDIS_URL", "http://127.0.0.1:6379"),
    ("supabase_url", "SUPABASE_URL", "http://127.0.0.1:54321"),
]


@pytest.mark.parametrize(("field", "name", "bad"), BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_bad_values_are_refused_with_the_cli_message(
    qtbot, dialog, settings, favdesk_cli, screenshot, field, name, bad
):
    type_into(qtbot, getattr(dialog, field), bad)
    save(qtbot, dialog)
    assert dialog.isVisible(), "a bad value must keep the dialog open"
    screenshot(dialog, f"settings-refuses-{name}")
    cli = favdesk_cli("status", env={**os.environ, name: bad})
    assert cli.returncode != 0
    assert name.split("_")[0] in dialog.error.text()
    assert dialog.error.text() == cli.stderr.strip().removeprefix("favdesk: ")
    assert not (settings.config_dir / ".env").exists(), "nothing is written when a value is bad"


def test_secrets_go_to_the_keyring_and_the_rest_to_the_config_file(qtbot, dialog, settings):
    type_into(qtbot, dialog.client_id, "0123456789abcdef")
    type_into(qtbot, dialog.client_secret.edit, "client-secret-value")
    type_into(qtbot, dialog.supabase_url, "http://127.0.0.1:54321")
    type_into(qtbot, dialog.supabase_key.edit, "service-role-key-value")
    type_into(qtbot, dialog.user_id, "user-42")
    dialog.concurrency.setValue(4)
    dialog.wait_for_others.setChecked(True)
    with qtbot.waitSignal(dialog.saved):
        save(qtbot, dialog)

    path = settings.config_dir / ".env"
    text = path.read_text()
    assert "client-secret-value" not in text and "service-role-key-value" not in text
    assert 'SPOTIFY_CLIENT_ID="0123456789abcdef"' in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyring.get_password("favdesk", "setting:SPOTIFY_CLIENT_SECRET") == "client-secret-value"
    stored = keyring.get_password("favdesk", "setting:SUPABASE_SERVICE_ROLE_KEY")
    assert stored == "service-role-key-value"

    loaded = load_settings()
    assert loaded.spotify_client_id == "0123456789abcdef"
    assert loaded.spotify_client_secret.reveal() == "client-secret-value"
    assert loaded.supabase_url == "http://127.0.0.1:54321"
    assert (loaded.user_id, loaded.fetch_concurrency, loaded.wait_for_other_jobs) == (
        "user-42",
        4,
        True,
    )
    assert not loaded.demo_mode


def test_a_saved_secret_is_never_shown_and_forget_removes_it(qtbot, settings):
    keyring.set_password("favdesk", "setting:SPOTIFY_CLIENT_SECRET", "kept-secret")
    (settings.config_dir).mkdir(parents=True, exist_ok=True)
    (settings.config_dir / ".env").write_text('SPOTIFY_CLIENT_ID="abc"\nOTHER_TOOL="keep me"\n')
    dialog = SettingsDialog(load_settings())
    qtbot.addWidget(dialog)
    assert dialog.client_secret.edit.text() == ""
    assert "saved in the keyring" in dialog.client_secret.edit.placeholderText()
    assert dialog.client_id.text() == "abc"
    qtbot.mouseClick(dialog.client_secret.clear, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.saved):
        save(qtbot, dialog)
    assert keyring.get_password("favdesk", "setting:SPOTIFY_CLIENT_SECRET") is None
    assert 'OTHER_TOOL="keep me"' in (settings.config_dir / ".env").read_text()


def test_a_redis_url_with_a_password_is_a_secret(qtbot, dialog, settings):
    url = "rediss://default:upstash-token@example.upstash.io:6379"
    type_into(qtbot, dialog.redis_url, url)
    with qtbot.waitSignal(dialog.saved):
        save(qtbot, dialog)
    assert "upstash-token" not in (settings.config_dir / ".env").read_text()
    assert keyring.get_password("favdesk", "setting:UPSTASH_REDIS_URL") == url
    again = SettingsDialog(load_settings())
    qtbot.addWidget(again)
    assert again.redis_url.text() == ""
    assert "default:********@example.upstash.io" in again.redis_url.placeholderText()
    assert "upstash-token" not in again.redis_url.placeholderText()


def test_names_set_in_the_environment_are_pointed_out(qtbot, monkeypatch):
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", "from-the-shell")
    dialog = SettingsDialog(load_settings())
    qtbot.addWidget(dialog)
    assert "which wins: SPOTIFY_CLIENT_ID." in dialog.note.text()


class LockedKeyring(KeyringBackend):
    """A keyring that refuses writes, noting the thread each write came from."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        self.threads.append(threading.current_thread())
        raise KeyringLocked("the collection is locked")

    def delete_password(self, service, username):
        raise PasswordDeleteError("nothing stored")


def test_a_refusing_keyring_is_asked_off_the_gui_thread_and_nothing_is_saved(
    qtbot, dialog, settings
):
    locked = LockedKeyring()
    keyring.set_keyring(locked)
    type_into(qtbot, dialog.client_secret.edit, "client-secret-value")
    save(qtbot, dialog)
    qtbot.waitUntil(lambda: dialog.error.isVisible())
    assert dialog.error.text() == f"Nothing was saved: {NO_KEYRING}"
    assert locked.threads and locked.threads[0] is not threading.main_thread()
    assert dialog.isVisible() and dialog.buttons.isEnabled()
    assert not (settings.config_dir / ".env").exists()


UNUSABLE = [null.Keyring, fail.Keyring]


@pytest.mark.parametrize("backend", UNUSABLE, ids=["null", "fail"])
def test_a_keyring_that_cannot_keep_a_secret_refuses_the_whole_save(
    qtbot, dialog, settings, monkeypatch, backend
):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{backend.__module__}.{backend.__qualname__}")
    keyring.set_keyring(backend())
    type_into(qtbot, dialog.client_id, "0123456789abcdef")
    type_into(qtbot, dialog.client_secret.edit, "client-secret-value")
    with qtbot.assertNotEmitted(dialog.saved):
        save(qtbot, dialog)
        qtbot.waitUntil(lambda: dialog.error.isVisible())
    assert dialog.error.text() == f"Nothing was saved: {NO_KEYRING}"
    assert dialog.isVisible() and dialog.buttons.isEnabled()
    assert not (settings.config_dir / ".env").exists(), "no half-save: the client id waits too"
    assert load_settings().spotify_client_secret is None


def test_without_a_usable_keyring_settings_without_secrets_still_save(
    qtbot, dialog, settings, monkeypatch
):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    keyring.set_keyring(null.Keyring())
    dialog.concurrency.setValue(3)
    with qtbot.waitSignal(dialog.saved):
        save(qtbot, dialog)
    assert load_settings().fetch_concurrency == 3


def test_escape_while_saving_waits_for_the_save_which_then_closes_the_dialog(qtbot, settings):
    held = []
    made = SettingsDialog(settings, None, lambda *call: held.append(call))
    qtbot.addWidget(made)
    made.show()
    made.concurrency.setValue(3)
    save(qtbot, made)
    qtbot.keyClick(made, Qt.Key.Key_Escape)
    made.close()
    assert made.isVisible()
    task, on_done, _on_error = held[0]
    with qtbot.waitSignal(made.saved):
        on_done(task())
    assert not made.isVisible() and made.result() == made.DialogCode.Accepted
    assert load_settings().fetch_concurrency == 3
