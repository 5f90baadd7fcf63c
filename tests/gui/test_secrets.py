"""No secret leaks: the whole flow with known secrets, then every place they must not be.

Spotify's tokens and codes (the stand-in marks each one it issues), the client secret (so the
token calls use Basic auth) and the Supabase service-role key go through the Settings dialog,
`favdesk link`, imports to the Supabase Storage stand-in (signed upload URLs), `status --json`
and `files --json`, failures (expired signed URLs, a revoked link, a forced crash) and the
dashboard's own Sync now. Then logs at every level (httpx and httpcore included), the CLI's
output and crash output, Redis, the dashboard's widgets and every file under the test's
folder (data dir with the SQLite database, config dir, the uploaded files) are searched. The
test keyring's file is the one place allowed to hold them, and it must.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import subprocess
import sys
import zlib

import pytest
import redis
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QTableWidget,
    QWidget,
)

from favdesk.gui.app import Desktop
from favdesk.gui.settings_dialog import SettingsDialog
from favdesk.sandbox.spotify import SpotifySandbox
from favdesk.sandbox.storage import StorageSandbox
from favdesk.settings import load_settings

pytestmark = pytest.mark.slow

MARKER = "LEAK-7f3c"
TOKEN_MARKER = f"tok-{MARKER}-"
CLIENT_SECRET = f"secret-{MARKER}-client-5b1e0a"
SERVICE_ROLE_KEY = f"srk-{MARKER}-service-9d2a41"
BROWSER = f"{shlex.quote(sys.executable)} -m favdesk.sandbox.browser %s"
LONG = 60_000
#: favdesk crashing with its live settings and storage in the message (`favdesk files`).
CRASH = """
import sys
from favdesk import cli, runtime

def crash(self, *args, **kwargs):
    raise RuntimeError(f"forced crash: {self.settings!r} {self.storage!r} {vars(self)!r}")

runtime.Runtime.files = crash
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture
def services(tmp_path, monkeypatch, redis_url):
    """The stand-ins with known secrets; what is no secret comes from the environment."""
    with (
        SpotifySandbox(
            tracks=150, client_secret=CLIENT_SECRET, user_id="leaky", display_name="Leak Tester"
        ) as spotify,
        StorageSandbox(tmp_path / "supabase", service_role_key=SERVICE_ROLE_KEY) as storage,
    ):
        spotify.accounts.token_marker = TOKEN_MARKER
        monkeypatch.setenv("SPOTIFY_ACCOUNTS_URL", spotify.accounts_url)
        monkeypatch.setenv("SPOTIFY_API_URL", spotify.api_url)
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("BROWSER", BROWSER)
        yield spotify, storage


def save_settings(qtbot, spotify: SpotifySandbox, storage: StorageSandbox) -> None:
    """Type the app and both secrets into the Settings dialog and save, as a person would."""
    dialog = SettingsDialog(load_settings())
    qtbot.addWidget(dialog)
    dialog.show()
    for edit, text in (
        (dialog.client_id, spotify.client_id),
        (dialog.client_secret.edit, CLIENT_SECRET),
        (dialog.supabase_url, storage.url),
        (dialog.supabase_key.edit, SERVICE_ROLE_KEY),
    ):
        edit.clear()
        qtbot.keyClicks(edit, text)
    with qtbot.waitSignal(dialog.saved, timeout=LONG):
        save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    assert widget_texts(dialog)  # looked at below with the window's
    dialog.close()


def widget_texts(root: QWidget) -> list[str]:
    """Every text a widget tree shows or says: labels, fields, buttons, lists, tables, the log,
    tooltips and accessible descriptions."""
    found = [root.windowTitle()]
    for widget in [root, *root.findChildren(QWidget)]:
        found += [widget.toolTip(), widget.accessibleName(), widget.accessibleDescription()]
        if isinstance(widget, QLabel | QAbstractButton | QLineEdit):
            found.append(widget.text())
        if isinstance(widget, QLineEdit):
            found.append(widget.placeholderText())
        if isinstance(widget, QPlainTextEdit):
            found.append(widget.toPlainText())
        if isinstance(widget, QProgressBar):
            found.append(widget.text())
        if isinstance(widget, QListWidget):
            found += [widget.item(i).text() for i in range(widget.count())]
        if isinstance(widget, QTableWidget):
            for row in range(widget.rowCount()):
                for column in range(widget.columnCount()):
                    item = widget.item(row, column)
                    if item is not None:
                        found += [item.text(), item.toolTip()]
    return found


def redis_texts(url: str) -> list[bytes]:
    """Every key and value in Redis (RQ's zlib-compressed job data unpacked as well)."""
    conn = redis.Redis.from_url(url)
    found: list[bytes] = []
    try:
        for key in conn.scan_iter(count=1000):
            kind = conn.type(key)
            if kind == b"string":
                values = [conn.get(key) or b""]
            elif kind == b"hash":
                values = [b for pair in conn.hgetall(key).items() for b in pair]
            elif kind == b"list":
                values = conn.lrange(key, 0, -1)
            elif kind == b"set":
                values = list(conn.smembers(key))
            elif kind == b"zset":
                values = conn.zrange(key, 0, -1)
            else:
                values = []
            found.append(key)
            for value in values:
                found.append(value)
                with contextlib.suppress(zlib.error):
                    found.append(zlib.decompress(value))
    finally:
        conn.close()
    return found


def run_app_sync(qtbot, spotify: SpotifySandbox) -> list[str]:
    """The dashboard: Sync now runs an import in the app; returns what the window and tray
    showed and what the app notified."""
    spotify.expire_access_tokens()  # the app's import refreshes first (Basic auth)
    desktop = Desktop(load_settings(), quit_app=lambda: None)
    notes: list[str] = []
    desktop.controller.notified.connect(lambda title, message: notes.append(f"{title} {message}"))
    try:
        desktop.start()
        qtbot.waitExposed(desktop.window)
        controller, window = desktop.controller, desktop.window
        qtbot.waitUntil(
            lambda: controller.state.ready and bool(controller.state.accounts), timeout=LONG
        )
        qtbot.waitUntil(lambda: window.account.sync.isEnabled(), timeout=LONG)
        qtbot.mouseClick(window.account.sync, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: controller.state.outcome is not None, timeout=LONG)
        assert controller.state.outcome.ok, controller.state.outcome
        qtbot.waitUntil(lambda: window.storage.table.rowCount() == 1, timeout=LONG)
        return [*widget_texts(window), desktop.tray.icon.toolTip(), *notes]
    finally:
        desktop.close()
        desktop.window.deleteLater()


def leaks(secrets: list[str], where: str, text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return [f"{secret[:16]}... in {where}" for secret in secrets if secret.encode() in data]


def test_no_secret_is_anywhere_but_the_keyring(
    qtbot, services, favdesk_cli, caplog, capfd, tmp_path, redis_url
):
    spotify, storage = services
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "favdesk", "rq"):
        caplog.set_level(logging.DEBUG, logger=name)
    outputs: dict[str, str] = {}

    def cli(name: str, *args: str, expect: int | None = 0) -> str:
        """Run `favdesk -v ARGS` (debug logs on stderr), keep its output, return its stdout."""
        result = favdesk_cli("-v", *args)
        outputs[name] = result.stdout + result.stderr
        if expect is not None:
            assert result.returncode == expect, outputs[name][-3000:]
        return result.stdout

    save_settings(qtbot, spotify, storage)
    cli("link", "link", "--timeout", "60")
    cli("sync", "sync", "--wait")
    assert json.loads(cli("status --json", "status", "--json"))["syncs"]["leaky"]["state"] == "done"
    assert len(json.loads(cli("files --json", "files", "--json"))) == 1
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH, "-v", "files"], capture_output=True, text=True, timeout=120
    )
    outputs["forced crash"] = crashed.stdout + crashed.stderr
    assert crashed.returncode != 0, outputs["forced crash"][-3000:]
    assert "RuntimeError: forced crash" in crashed.stderr, outputs["forced crash"][-3000:]

    storage.expire_next_signed_urls(2)
    spotify.expire_access_tokens()
    cli("sync with expired signed URLs", "sync", "--wait", expect=1)
    assert "signed upload URL as expired" in outputs["sync with expired signed URLs"]

    shown = run_app_sync(qtbot, spotify)

    spotify.revoke_refresh_tokens()
    spotify.expire_access_tokens()
    cli("sync with a revoked link", "sync", "--wait", expect=1)

    keyring_file = tmp_path / "keyring.json"
    held = keyring_file.read_text()
    assert CLIENT_SECRET in held and SERVICE_ROLE_KEY in held and TOKEN_MARKER in held
    secrets = [MARKER, CLIENT_SECRET, SERVICE_ROLE_KEY, *storage.issued_tokens]
    secrets += [token.rsplit(".", 1)[-1] for token in storage.issued_tokens]  # signatures
    assert len(storage.issued_tokens) >= 2, "the imports signed upload URLs"

    # the search covers what it should: signed uploads logged (masked), every logger, the window
    assert "HTTP Request: PUT" in outputs["sync"] and "token=<hidden>" in outputs["sync"]
    assert {"httpx", "httpcore.http11", "favdesk.gui.controller"} <= {
        r.name for r in caplog.records
    }
    assert any("[spotify-ingest]" in text for text in shown), "the worker's log panel"
    assert any("Leak Tester" in text for text in shown)
    found: list[str] = []
    for name, text in outputs.items():
        found += leaks(secrets, f"the output of favdesk {name}", text)
    for record in caplog.records:
        line = logging.Formatter().format(record)
        found += leaks(secrets, f"log {record.name} {record.levelname}", line)
    found += leaks(secrets, "the tests' stdout and stderr", "".join(capfd.readouterr()))
    for text in shown:
        found += leaks(secrets, "the dashboard", text)
    for value in redis_texts(redis_url):
        found += leaks(secrets, "Redis", value)
    scanned = []
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path != keyring_file:
            scanned.append(path.relative_to(tmp_path).as_posix())
            found += leaks(secrets, str(path.relative_to(tmp_path)), path.read_bytes())
    settings = load_settings()
    assert settings.database_path.relative_to(tmp_path).as_posix() in scanned
    assert (settings.config_dir / ".env").relative_to(tmp_path).as_posix() in scanned
    assert any(name.startswith("supabase/") for name in scanned), "the uploaded files"
    assert found == []
