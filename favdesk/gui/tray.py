"""The tray icon: its look follows the state, its menu is rebuilt each time it opens.

The menu model (`menu_entries`) is plain data, so it is built and tested even where the desktop
has no system tray (offscreen, plain Xvfb); the icon itself is only shown where a tray exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from favdesk.gui.describe import can_sync, next_backup, status_line, tray_look
from favdesk.gui.icons import tray_icon
from favdesk.gui.panels.common import plain_tip
from favdesk.gui.state import Dashboard
from favdesk.worker_events import WorkerState


@dataclass(frozen=True)
class MenuEntry:
    key: str
    label: str
    enabled: bool = True


def pause_entry(d: Dashboard) -> MenuEntry:
    """One item for Pause / Resume / Start whose label follows the worker's state."""
    if d.worker == WorkerState.PAUSED:
        return MenuEntry("toggle", "Resume", d.ready)
    if d.worker == WorkerState.STOPPED:
        return MenuEntry("toggle", "Start worker", d.ready)
    return MenuEntry("toggle", "Pause", d.ready and d.worker != WorkerState.STOPPING)


def sync_entry(d: Dashboard) -> MenuEntry:
    """Sync now; for an account whose link expired, Link again in its place."""
    account = d.account
    if account is not None and account.needs_relink:
        return MenuEntry("link", "Link Spotify again...", d.ready and not d.link.waiting)
    return MenuEntry("sync", "Sync now", can_sync(d))


def menu_entries(d: Dashboard) -> list[MenuEntry]:
    """The tray menu for state `d`: status line, Sync now, Pause/Resume, Open dashboard, Quit."""
    return [
        MenuEntry("status", status_line(d), False),
        sync_entry(d),
        pause_entry(d),
        MenuEntry("open", "Open dashboard"),
        MenuEntry("quit", "Quit"),
    ]


class Tray(QObject):
    """Owns the QSystemTrayIcon and its menu; emits what the user picked."""

    sync_requested = Signal()
    link_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    open_requested = Signal()
    quit_requested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = Dashboard()
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild)
        self.icon = QSystemTrayIcon(self)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.show_state(self.state)
        self.rebuild()

    def show(self) -> bool:
        """Show the icon where the desktop has a tray; say whether it did."""
        if self.available:
            self.icon.show()
        return self.available

    def show_state(self, d: Dashboard) -> None:
        self.state = d
        self.icon.setIcon(tray_icon(tray_look(d)))
        backup = next_backup(d)
        tip = f"favdesk: {status_line(d)}" + (f"\n{backup}" if backup else "")
        self.icon.setToolTip(plain_tip(tip))

    def rebuild(self) -> None:
        """Refill the menu from the latest state (called each time it is about to open)."""
        self.menu.clear()
        for entry in menu_entries(self.state):
            action = self.menu.addAction(entry.label)
            action.setEnabled(entry.enabled)
            action.setData(entry.key)
            if entry.key != "status":
                action.triggered.connect(lambda _checked=False, key=entry.key: self.choose(key))
            if entry.key in ("status", "open"):
                self.menu.addSeparator()

    def choose(self, key: str) -> None:
        """Carry out a menu entry by its key."""
        if key == "toggle":
            paused_or_stopped = self.state.worker in (WorkerState.PAUSED, WorkerState.STOPPED)
            (self.resume_requested if paused_or_stopped else self.pause_requested).emit()
            return
        signals = {
            "sync": self.sync_requested,
            "link": self.link_requested,
            "open": self.open_requested,
            "quit": self.quit_requested,
        }
        signals[key].emit()

    def notify(self, title: str, message: str) -> None:
        if self.available and self.icon.isVisible():
            self.icon.showMessage(title, message, tray_icon(tray_look(self.state)), 8000)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.open_requested.emit()

    def close(self) -> None:
        self.icon.hide()
        self.menu.deleteLater()
