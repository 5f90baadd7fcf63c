"""Account: the linked Spotify accounts, Link Spotify (with its browser wait), and Sync now."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from favdesk.gui.describe import can_sync, next_backup
from favdesk.gui.panels.common import Card, StatusLabel, button, row, stack, wrapped
from favdesk.gui.state import Dashboard

if TYPE_CHECKING:
    from favdesk.accounts import Account


def link_state(account: Account) -> tuple[str, str]:
    """An account's link state in words and tone."""
    if account.needs_relink:
        return "needs re-linking", "error"
    return "linked", "ok"


class AccountPanel(Card):
    link_clicked = Signal()
    cancel_link_clicked = Signal()
    sync_clicked = Signal()
    user_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Account", parent)
        self.status = StatusLabel("Link state", self)
        self.accounts = QListWidget(self)
        self.accounts.setAccessibleName("Linked accounts")
        self.accounts.currentItemChanged.connect(self._selected)
        self.waiting = wrapped(accessible_name="Browser login", parent=self)
        self.waiting.setOpenExternalLinks(True)
        self.waiting.setTextFormat(Qt.TextFormat.RichText)
        self.message = wrapped(accessible_name="Link result", parent=self)
        self.backups = wrapped(accessible_name="Automatic backups", parent=self)
        self.link = button("&Link Spotify", self, self.link_clicked)
        self.cancel = button("&Cancel login", self, self.cancel_link_clicked)
        self.sync = button("&Sync now", self, self.sync_clicked)
        buttons = row(self.link, self.cancel, self.sync, None)
        parts = (self.status, self.accounts, self.waiting, self.message, self.backups, buttons)
        stack(self, *parts, None)
        self._rendering = False

    def show_state(self, d: Dashboard) -> None:
        self._render_accounts(d)
        account = d.account
        if not d.ready:
            self.status.show_status("Reading the linked accounts...", "neutral")
        elif account is None:
            self.status.show_status("Not linked: no Spotify account yet", "warn")
        else:
            words, tone = link_state(account)
            self.status.show_status(f"{account.display_name or account.spotify_id}: {words}", tone)
        self._render_link(d)
        relink = account is not None and account.needs_relink
        self.link.setEnabled(d.ready and not d.link.waiting)
        self.link.setText("&Link again" if relink else "&Link Spotify")
        self.sync.setVisible(not relink)  # an expired link cannot sync: Link again instead
        self.sync.setEnabled(can_sync(d))
        backups = next_backup(d) if account is not None else ""
        self.backups.setText(backups)
        self.backups.setVisible(bool(backups))

    def _render_link(self, d: Dashboard) -> None:
        link = d.link
        self.cancel.setVisible(link.waiting)
        self.waiting.setVisible(link.waiting)
        if link.waiting:
            url = html.escape(link.url or "")
            shown = f'<a href="{url}">{url}</a>' if url else "(preparing the login page)"
            self.waiting.setText(
                "Waiting for the browser... Log in to Spotify there and allow access. "
                f"If no browser opened, open this address yourself: {shown}"
            )
        text = link.error or link.message or ""
        self.message.setVisible(bool(text))
        self.message.setText(text)

    def _render_accounts(self, d: Dashboard) -> None:
        """Refill the list only when the accounts changed, keeping the selection."""
        wanted = [(a.user_id, _account_label(a)) for a in d.accounts]
        shown = [
            (self.accounts.item(i).data(Qt.ItemDataRole.UserRole), self.accounts.item(i).text())
            for i in range(self.accounts.count())
        ]
        self._rendering = True
        try:
            if wanted != shown:
                self.accounts.clear()
                for user_id, label in wanted:
                    item = QListWidgetItem(label, self.accounts)
                    item.setData(Qt.ItemDataRole.UserRole, user_id)
            for i in range(self.accounts.count()):
                if self.accounts.item(i).data(Qt.ItemDataRole.UserRole) == d.user_id:
                    self.accounts.setCurrentRow(i)
        finally:
            self._rendering = False
        self.accounts.setVisible(bool(wanted))
        rows = min(max(len(wanted), 1), 3)
        frame = 2 * self.accounts.frameWidth()
        self.accounts.setFixedHeight(rows * self.accounts.fontMetrics().height() * 3 // 2 + frame)

    def _selected(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None and not self._rendering:
            self.user_selected.emit(item.data(Qt.ItemDataRole.UserRole))


def _account_label(account: Account) -> str:
    words, _tone = link_state(account)
    name = account.display_name or account.spotify_id
    return f"{name} ({account.spotify_id}, user {account.user_id}): {words}"
