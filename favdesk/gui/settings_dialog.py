"""The Settings dialog: validated like the CLI, secrets to the keyring, the rest to the config file.

Values are checked with `settings_from_values` before anything is written, so the dialog shows
the CLI's messages. Secrets (`SECRET_NAMES`) go to the keyring under the names `settings` reads
them from (`keyring_username`) and never into a file or a field; the rest goes to the lowest
`.env` layer, `{config dir}/.env` (`saved_file`), written atomically and without defaults.
Settings apply when the runtime is opened again (or at the next start). The keyring is written
on a worker thread: a locked keyring's unlock prompt must not freeze the window.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values
from keyring.errors import PasswordDeleteError
from PySide6.QtCore import QTime, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from favdesk.accounts import keyring_calls, require_keyring
from favdesk.embedded_redis import unsupported_reason
from favdesk.errors import KeyringUnavailable, SettingsError
from favdesk.gui.bridge import Bridge, user_message
from favdesk.gui.panels.common import tone_colour, wrapped
from favdesk.schedule import WEEKDAY_NAMES, WEEKDAYS, Frequency
from favdesk.settings import (
    DEFAULT_REDIRECT_URI,
    DEFAULT_VALUES,
    KEEP_ALL,
    KEYRING_SERVICE,
    MAX_FETCH_CONCURRENCY,
    MAX_KEEP_DAILY,
    MIN_FETCH_CONCURRENCY,
    SECRET_NAMES,
    Settings,
    keyring_username,
    overriding_names,
    saved_file,
    settings_from_values,
)

#: Names the dialog owns in the config file (other lines there are kept as they are).
FILE_NAMES = (
    "SPOTIFY_CLIENT_ID",
    "REDIRECT_URI",
    "REDIS_URL",
    "SUPABASE_URL",
    "NEXT_PUBLIC_SUPABASE_URL",
    "FAVDESK_USER_ID",
    "FAVDESK_FETCH_CONCURRENCY",
    "FAVDESK_WAIT_FOR_OTHER_JOBS",
    "FAVDESK_COMMAND_QUOTA",
    "FAVDESK_BACKUP_SCHEDULE",
    "FAVDESK_BACKUP_TIME",
    "FAVDESK_BACKUP_DAY",
    "FAVDESK_KEEP_DAILY",
)
#: A spin box holds a 32-bit int: a larger quota set in a file shows as this.
MAX_QUOTA_SHOWN = 2_000_000_000
#: The schedule's choices as the combo box shows them.
FREQUENCIES = (
    (Frequency.OFF, "Off"),
    (Frequency.DAILY, "Daily"),
    (Frequency.WEEKLY, "Weekly"),
)
#: `Bridge.run_in_background`'s shape: run a task off the GUI thread, call back on it.
Runner = Callable[
    [Callable[[], object], Callable[[object], None], Callable[[BaseException], None]], object
]


def keyring_usable() -> bool:
    """Whether the configured keyring backend can keep a secret at all (not `null`/`fail`)."""
    try:
        require_keyring()
    except KeyringUnavailable:
        return False
    return True


def own_redis_hint() -> str:
    """What an empty Redis URL means here: favdesk's own Redis, or none where it cannot run."""
    reason = unsupported_reason()
    if reason is None:
        return "empty: favdesk starts its own local Redis"
    return f"required: favdesk can't run its own Redis on this system ({reason})"


def redis_url_has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def mask_redis_url(url: str) -> str:
    """The URL with its password replaced by asterisks, for a placeholder."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:********@{host}"))


def quote(value: str) -> str:
    """A double-quoted .env value (python-dotenv unescapes \\\\ and \\")."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Write `values` as a .env file atomically (temp file, rename), readable by the user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    body = "".join(f"{name}={quote(value)}\n" for name, value in values.items())
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# favdesk settings, written by the Settings dialog\n" + body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class SecretField(QWidget):
    """A password field that never shows the saved value: empty keeps it, Forget removes it."""

    def __init__(self, name: str, saved: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.saved = saved
        self.forget = False
        self.edit = QLineEdit(self)
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setAccessibleName(name)
        self.clear = QPushButton("Forget", self)
        self.clear.setAccessibleName(f"Forget {name}")
        self.clear.clicked.connect(self._forget)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.clear)
        self._placeholder()

    def _forget(self) -> None:
        self.forget = True
        self.edit.clear()
        self._placeholder()

    def _placeholder(self, saved_text: str = "saved in the keyring: leave empty to keep") -> None:
        if self.forget:
            self.edit.setPlaceholderText("will be removed when you save")
        elif self.saved:
            self.edit.setPlaceholderText(saved_text)
        else:
            self.edit.setPlaceholderText("not set")
        self.clear.setEnabled(self.saved and not self.forget)

    def typed(self) -> str:
        return self.edit.text().strip()


class SettingsDialog(QDialog):
    """Edits favdesk's settings; `saved` carries the validated values' Settings after a save."""

    saved = Signal(object)

    def __init__(
        self,
        settings: Settings,
        parent: QWidget | None = None,
        run_in_background: Runner | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.run_in_background = run_in_background or Bridge(self).run_in_background
        self.setWindowTitle("favdesk settings")
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 90)  # scales with the font
        self.saved_secrets = self._saved_secrets()
        #: a save is under way: Esc and closing wait for it (it ends by accepting or re-enabling)
        self.saving = False
        self._build()
        self._fill()

    def _saved_secrets(self) -> dict[str, str]:
        """Secrets as loaded (keyring or elsewhere): used to validate, never shown."""
        found = {name: self.settings.sources.get(name, "") for name in SECRET_NAMES}
        return {name: value for name, value in found.items() if value}

    def _build(self) -> None:
        self.client_id = self._line("SPOTIFY_CLIENT_ID", "empty: demo mode (built-in stand-in)")
        self.client_secret = SecretField(
            "SPOTIFY_CLIENT_SECRET", bool(self._secret("SPOTIFY_CLIENT_SECRET")), self
        )
        self.redirect_uri = self._line("REDIRECT_URI", DEFAULT_REDIRECT_URI)
        self.redis_url = self._line("REDIS_URL", own_redis_hint())
        self.redis_forget = False
        self.redis_forget_button = QPushButton("Forget", self)
        self.redis_forget_button.setAccessibleName("Forget the saved Redis URL")
        self.redis_forget_button.clicked.connect(self._forget_redis)
        redis_row = QHBoxLayout()
        redis_row.addWidget(self.redis_url, 1)
        redis_row.addWidget(self.redis_forget_button)
        self.supabase_url = self._line("SUPABASE_URL", "empty: files go to a local folder")
        self.supabase_key = SecretField(
            "SUPABASE_SERVICE_ROLE_KEY", bool(self._secret("SUPABASE_SERVICE_ROLE_KEY")), self
        )
        self.user_id = self._line("FAVDESK_USER_ID", "empty: the linked Spotify account's id")
        self.concurrency = QSpinBox(self)
        self.concurrency.setRange(MIN_FETCH_CONCURRENCY, MAX_FETCH_CONCURRENCY)
        self.concurrency.setAccessibleName("FAVDESK_FETCH_CONCURRENCY")
        self.wait_for_others = QCheckBox("Also run jobs that other apps put in the queue", self)
        self.wait_for_others.setAccessibleName("FAVDESK_WAIT_FOR_OTHER_JOBS")
        self.quota = QSpinBox(self)
        self.quota.setAccessibleName("FAVDESK_COMMAND_QUOTA")
        self.quota.setRange(1, MAX_QUOTA_SHOWN)
        self.quota.setGroupSeparatorShown(True)
        self.quota.setSuffix(" Redis commands a month")
        self.quota.setToolTip(
            "What your Redis plan includes (Upstash's free tier: 500,000): the Redis card "
            "projects a month of favdesk's commands against it"
        )
        self._build_backups()
        form = QFormLayout()
        form.addRow("Spotify &Client ID:", self.client_id)
        form.addRow("Client s&ecret (optional):", self.client_secret)
        form.addRow("&Redirect URI:", self.redirect_uri)
        form.addRow("Re&dis URL:", redis_row)
        form.addRow("Su&pabase URL:", self.supabase_url)
        form.addRow("Service-role &key:", self.supabase_key)
        form.addRow("&User id:", self.user_id)
        form.addRow("Fetch c&oncurrency:", self.concurrency)
        form.addRow("", self.wait_for_others)
        form.addRow("Command &quota:", self.quota)
        form.addRow("Automatic &backups:", self.frequency)
        form.addRow("Backup da&y (weekly):", self.weekday)
        form.addRow("Backup &time:", self.backup_time)
        form.addRow("Keep s&napshots:", self.keep_daily)
        self.note = wrapped(accessible_name="Settings note", parent=self)
        self.error = wrapped(accessible_name="Settings error", parent=self)
        self.error.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def _build_backups(self) -> None:
        """Automatic backups (off, daily or weekly at a time) and retention."""
        self.frequency = QComboBox(self)
        self.frequency.setAccessibleName("FAVDESK_BACKUP_SCHEDULE")
        for frequency, label in FREQUENCIES:
            self.frequency.addItem(label, frequency.value)
        self.frequency.currentIndexChanged.connect(lambda _index: self._frequency_changed())
        self.weekday = QComboBox(self)
        self.weekday.setAccessibleName("FAVDESK_BACKUP_DAY")
        for code, name in zip(WEEKDAYS, WEEKDAY_NAMES, strict=True):
            self.weekday.addItem(name, code)
        self.backup_time = QTimeEdit(self)
        self.backup_time.setDisplayFormat("HH:mm")
        self.backup_time.setAccessibleName("FAVDESK_BACKUP_TIME")
        self.keep_daily = QSpinBox(self)
        self.keep_daily.setAccessibleName("FAVDESK_KEEP_DAILY")
        self.keep_daily.setRange(0, MAX_KEEP_DAILY)
        self.keep_daily.setSpecialValueText("all: delete nothing")
        self.keep_daily.setSuffix(" newest, and each month's newest")
        self.keep_daily.setToolTip(
            "Delete old snapshots favdesk wrote, keeping this many of the newest and the newest "
            "of each month; favdesk shows them and asks first (History tab)"
        )

    def _frequency_changed(self) -> None:
        frequency = Frequency(self.frequency.currentData())
        self.weekday.setEnabled(frequency is Frequency.WEEKLY)
        self.backup_time.setEnabled(frequency is not Frequency.OFF)

    def _line(self, name: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setAccessibleName(name)
        edit.setPlaceholderText(placeholder)
        return edit

    def _secret(self, name: str) -> str:
        return self.saved_secrets.get(name, "")

    def _fill(self) -> None:
        s = self.settings
        self.client_id.setText(s.spotify_client_id or "")
        self.redirect_uri.setText(s.redirect_uri)
        self._fill_redis(s.redis_url.reveal() if s.redis_url else "")
        self.supabase_url.setText(s.supabase_url or "")
        self.user_id.setText(s.user_id or "")
        self.concurrency.setValue(s.fetch_concurrency)
        self.wait_for_others.setChecked(s.wait_for_other_jobs)
        self.quota.setValue(min(s.command_quota, MAX_QUOTA_SHOWN))
        schedule = s.backup_schedule
        self.frequency.setCurrentIndex(self.frequency.findData(schedule.frequency.value))
        self.weekday.setCurrentIndex(schedule.weekday)
        self.backup_time.setTime(QTime(schedule.at.hour, schedule.at.minute))
        self.keep_daily.setValue(s.keep_daily or 0)
        self._frequency_changed()
        overridden = sorted(overriding_names(s.config_dir) & {*FILE_NAMES, *SECRET_NAMES})
        where = saved_file(s.config_dir)
        text = (
            f"Saved to {where}; secrets go to the system keyring. Saving applies the changes at "
            "once (while a sync runs: at the next start)."
        )
        if overridden:
            text += (
                " These are also set in the environment or another .env file, which wins: "
                + ", ".join(overridden)
                + "."
            )
        self.note.setText(text)

    def _fill_redis(self, url: str) -> None:
        """A URL with a password is a secret: the field stays empty and shows it masked."""
        self._redis_saved = url if redis_url_has_password(url) else ""
        self.redis_forget_button.setVisible(bool(self._redis_saved))
        if self._redis_saved:
            self.redis_url.setPlaceholderText(f"saved: {mask_redis_url(url)} (type to replace)")
            return
        self.redis_url.setText(url)

    def _forget_redis(self) -> None:
        self.redis_forget = True
        self.redis_forget_button.setEnabled(False)
        self.redis_url.setPlaceholderText("will be removed when you save: favdesk's own Redis")

    # -- saving ---------------------------------------------------------------------------------

    def values(self) -> dict[str, str]:
        """Every setting the dialog stands for, secrets included, as name -> value."""
        s = self.settings
        values = {
            "FAVDESK_DATA_DIR": str(s.data_dir),
            "FAVDESK_CONFIG_DIR": str(s.config_dir),
            "SPOTIFY_CLIENT_ID": self.client_id.text().strip(),
            "REDIRECT_URI": self.redirect_uri.text().strip() or DEFAULT_REDIRECT_URI,
            "SUPABASE_URL": self.supabase_url.text().strip(),
            "FAVDESK_USER_ID": self.user_id.text().strip(),
            "FAVDESK_FETCH_CONCURRENCY": str(self.concurrency.value()),
            "FAVDESK_WAIT_FOR_OTHER_JOBS": "1" if self.wait_for_others.isChecked() else "0",
            "FAVDESK_COMMAND_QUOTA": str(self.quota.value()),
            "FAVDESK_BACKUP_SCHEDULE": str(self.frequency.currentData()),
            "FAVDESK_BACKUP_DAY": str(self.weekday.currentData()),
            "FAVDESK_BACKUP_TIME": self.backup_time.time().toString("HH:mm"),
            "FAVDESK_KEEP_DAILY": str(self.keep_daily.value() or KEEP_ALL),
            "SPOTIFY_CLIENT_SECRET": self._secret_value(self.client_secret),
            "SUPABASE_SERVICE_ROLE_KEY": self._secret_value(self.supabase_key),
        }
        redis_url = self.redis_url.text().strip() or (
            "" if self.redis_forget else self._redis_saved
        )
        redis_name = "UPSTASH_REDIS_URL" if redis_url_has_password(redis_url) else "REDIS_URL"
        values[redis_name] = redis_url
        return {name: value for name, value in values.items() if value}

    def _secret_value(self, field: SecretField) -> str:
        if field.typed():
            return field.typed()
        return "" if field.forget else self._secret(field.name)

    def validate(self) -> Settings | None:
        """The Settings these values make, or None after showing the CLI's message."""
        try:
            checked = settings_from_values(self.values())
        except SettingsError as error:
            self._show_error(str(error))
            self._focus(error.variable)
            return None
        self.error.hide()
        return checked

    def _show_error(self, text: str) -> None:
        """The message in the error colour that reads on the current (light or dark) palette."""
        self.error.setStyleSheet(f"color: {tone_colour('error', self.palette()).name()}")
        self.error.setText(text)
        self.error.show()

    def _focus(self, variable: str) -> None:
        fields = {
            "SPOTIFY_CLIENT_ID": self.client_id,
            "REDIRECT_URI": self.redirect_uri,
            "REDIS_URL": self.redis_url,
            "UPSTASH_REDIS_URL": self.redis_url,
            "SUPABASE_URL": self.supabase_url,
            "NEXT_PUBLIC_SUPABASE_URL": self.supabase_url,
            "SUPABASE_SERVICE_ROLE_KEY": self.supabase_key.edit,
            "FAVDESK_USER_ID": self.user_id,
            "FAVDESK_FETCH_CONCURRENCY": self.concurrency,
            "FAVDESK_COMMAND_QUOTA": self.quota,
            "FAVDESK_BACKUP_SCHEDULE": self.frequency,
            "FAVDESK_BACKUP_DAY": self.weekday,
            "FAVDESK_BACKUP_TIME": self.backup_time,
            "FAVDESK_KEEP_DAILY": self.keep_daily,
        }
        if variable in fields:
            fields[variable].setFocus()

    def save(self) -> None:
        """Validate, then write secrets to the keyring (in the background) and the rest to the
        config file once the keyring took them."""
        checked = self.validate()
        if checked is None:
            return
        changes, values = self.secret_changes(), self.values()
        self.buttons.setEnabled(False)
        self.saving = True

        def stored(_nothing: object) -> None:
            self.saving = False
            self._store_file(values)
            self.saved.emit(checked)
            self.accept()

        self.run_in_background(lambda: self._store_secrets(changes), stored, self._not_stored)

    def reject(self) -> None:
        """Esc, Cancel and closing the window; ignored while a save runs (it would be lost)."""
        if not self.saving:
            super().reject()

    def _not_stored(self, error: BaseException) -> None:
        self.saving = False
        self.buttons.setEnabled(True)
        self._show_error(f"Nothing was saved: {user_message(error)}")

    def secret_changes(self) -> dict[str, str | None]:
        """Secrets to write (a value) or remove (None); untouched ones are left as they are."""
        changes: dict[str, str | None] = {}
        for field in (self.client_secret, self.supabase_key):
            if field.typed():
                changes[field.name] = field.typed()
            elif field.forget:
                changes[field.name] = None
        typed = self.redis_url.text().strip()
        if redis_url_has_password(typed):
            changes["UPSTASH_REDIS_URL"] = typed
        elif typed or self.redis_forget or not self._redis_saved:
            changes["UPSTASH_REDIS_URL"] = None
        return changes

    @staticmethod
    def _store_secrets(changes: Mapping[str, str | None]) -> None:
        """Write and remove secrets; `KeyringUnavailable` when a secret cannot be kept.

        The `null` backend would drop a secret silently and `fail` raises its own error: both
        refuse the save. With only removals to do, no usable keyring means nothing to remove.
        """
        if not any(changes.values()) and not keyring_usable():
            return
        with keyring_calls() as backend:
            for name, secret in changes.items():
                username = keyring_username(name)
                if secret:
                    backend.set_password(KEYRING_SERVICE, username, secret)
                    continue
                with contextlib.suppress(PasswordDeleteError):
                    backend.delete_password(KEYRING_SERVICE, username)

    def _store_file(self, values: Mapping[str, str]) -> None:
        """Keep the file's other lines; leave secrets out (there they would beat the keyring)."""
        path = saved_file(self.settings.config_dir)
        existing = dotenv_values(path) if path.is_file() else {}
        kept = {
            name: value
            for name, value in existing.items()
            if value is not None and name not in FILE_NAMES and name not in SECRET_NAMES
        }
        for name in FILE_NAMES:
            chosen = values.get(name)
            if chosen and chosen != DEFAULT_VALUES.get(name):
                kept[name] = chosen
        write_env_file(path, kept)
