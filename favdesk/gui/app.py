"""The desktop app: builds the parts, wires them together and runs the Qt event loop."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping

from PySide6.QtCore import QObject, QSocketNotifier
from PySide6.QtWidgets import QApplication

from favdesk import APP_ID, APP_NAME
from favdesk.errors import FavdeskError
from favdesk.gui.bridge import user_message
from favdesk.gui.controller import AppController, Opener, default_opener
from favdesk.gui.icons import app_icon
from favdesk.gui.main_window import MainWindow
from favdesk.gui.settings_dialog import SettingsDialog
from favdesk.gui.single_instance import (
    InstanceServer,
    ask_running_instance,
    lock_data_dir,
    server_name,
)
from favdesk.gui.tray import Tray
from favdesk.settings import Settings, load_settings


def application() -> QApplication:
    """The process's QApplication, named for the desktop (icon, .desktop file, window class)."""
    running = QApplication.instance()
    # WM_CLASS "favdesk", "favdesk"
    app = running if isinstance(running, QApplication) else QApplication([APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)
    return app


class Desktop(QObject):
    """The running app: controller, window, tray and Settings dialog, wired to each other."""

    def __init__(
        self,
        settings: Settings,
        opener: Opener = default_opener,
        quit_app: Callable[[], None] = QApplication.quit,
    ) -> None:
        super().__init__()
        self.quit_app = quit_app
        self.controller = AppController(settings, opener, self)
        self.window = MainWindow(self.controller)
        self.tray = Tray(self)
        self.window.tray_available = self.tray.show()
        self.dialog: SettingsDialog | None = None
        self._connect()

    def _connect(self) -> None:
        c, tray, window = self.controller, self.tray, self.window
        c.changed.connect(tray.show_state)
        c.notified.connect(tray.notify)
        c.quit_ready.connect(lambda: self.quit_app())
        tray.sync_requested.connect(c.sync)
        tray.link_requested.connect(c.link)
        tray.pause_requested.connect(c.pause)
        tray.resume_requested.connect(c.resume)
        tray.open_requested.connect(window.show_dashboard)
        tray.quit_requested.connect(window.ask_quit)
        window.settings_requested.connect(self.open_settings)

    def start(self) -> None:
        """Show the window at once ("Starting..."), then open the runtime in the background."""
        self.window.show()
        self.controller.start()

    def open_settings(self) -> None:
        if self.dialog is not None:
            self.dialog.raise_()
            return
        c = self.controller
        self.dialog = SettingsDialog(c.settings, self.window, c.bridge.run_in_background)
        self.dialog.saved.connect(self._settings_saved)
        self.dialog.finished.connect(self._settings_closed)
        self.dialog.open()

    def _settings_closed(self) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = None

    def _settings_saved(self, _checked: Settings) -> None:
        """Re-read the settings (all layers); apply them now unless a sync is running.

        A browser wait for Link Spotify is cancelled (its runtime closes), and says so.
        """
        c = self.controller

        def apply(settings: Settings) -> None:
            if c.state.job is not None:  # checked again: a sync may have started meanwhile
                c.note(
                    "Settings saved. They apply when you restart favdesk (a sync is running now)."
                )
                return
            c.note("Settings saved and applied.")
            c.reopen(settings)

        c.bridge.run_in_background(
            load_settings, apply, lambda e: c.note(f"Settings saved, but: {user_message(e)}")
        )

    def close(self) -> None:
        """Close everything; blocks until the runtime is closed (call after the event loop).

        The window's geometry is saved here too: Quit from the menu, the tray or SIGTERM never
        closes the window.
        """
        self.window.save_geometry()
        self.controller.shutdown()
        self.tray.close()
        self.window.hide()


def stop_on_signals(app: QApplication, on_signal: Callable[[], None]) -> socket.socket:
    """Ctrl-C and SIGTERM reach Python while Qt's loop waits: wake it through a socket pair."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)
    notifier.activated.connect(lambda: reader.recv(64))
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: on_signal())
    return writer


def require_display(environ: Mapping[str, str]) -> None:
    """On Linux, say plainly that there is no desktop instead of letting Qt abort."""
    if not sys.platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return
    raise FavdeskError(
        "no desktop to show the window on (neither DISPLAY nor WAYLAND_DISPLAY is set): "
        "start favdesk from a desktop session, or use `favdesk-cli demo` and the other commands "
        "in a terminal (`favdesk-cli --help`)"
    )


def run_app(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk` with no command: the desktop app (or the running one's window, if any)."""
    require_display(os.environ)
    app = application()
    name = server_name(settings.data_dir)
    if ask_running_instance(name):
        print("favdesk is already running: its window was brought up.", file=sys.stderr)
        return 0
    lock = lock_data_dir(settings.data_dir)
    if lock is None:
        raise FavdeskError(
            f"favdesk is already running for {settings.data_dir} but did not answer: "
            "wait for it to start, or end it, then try again"
        )
    server = InstanceServer(name, app)
    if not server.listen():
        print(
            f"favdesk: a second launch cannot bring up this window ({server.failure})",
            file=sys.stderr,
        )
    desktop = Desktop(settings)
    server.show_requested.connect(desktop.window.show_dashboard)
    keep = stop_on_signals(app, lambda: desktop.controller.quit(cancel_current=True))
    desktop.start()
    try:
        return app.exec()
    finally:
        desktop.close()
        server.close()
        keep.close()
        lock.unlock()
