"""The dashboard window: banners, the section cards, and the prompts that need a person's answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QHideEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from favdesk import __version__
from favdesk.gui.controller import AppController
from favdesk.gui.describe import size, status_line
from favdesk.gui.icons import app_icon
from favdesk.gui.panels.account import AccountPanel
from favdesk.gui.panels.common import button, tone_colour, wrapped
from favdesk.gui.panels.connection import RedisPanel
from favdesk.gui.panels.files import StoragePanel
from favdesk.gui.panels.history import HistoryPanel
from favdesk.gui.panels.jobs import QueuePanel
from favdesk.gui.panels.logview import LogPanel
from favdesk.gui.panels.sync import SyncPanel
from favdesk.gui.panels.worker import QUEUE_SHORTCUT, WorkerPanel
from favdesk.gui.state import Dashboard

if TYPE_CHECKING:
    from favdesk.retention import RetentionPlan

DEMO_TEXT = (
    "Demo mode: favdesk is using its built-in Spotify stand-in and local folders, so no real "
    "account is touched. To back up your own Liked Songs, set SPOTIFY_CLIENT_ID in Settings "
    "(your app's Client ID from the Spotify Developer Dashboard)."
)
#: The first window size in logical pixels (Qt scales them on high-DPI screens), shrunk to fit.
DEFAULT_SIZE = QSize(1000, 760)
SCREEN_SHARE = 0.9
#: A choice in a question box: button label, its role, and what it does.
Choice = tuple[str, QMessageBox.ButtonRole, Callable[[], None]]
GO_ON = QMessageBox.ButtonRole.AcceptRole
#: The retention question names at most this many snapshots.
PRUNE_LISTED = 20
CANCEL_JOB = QMessageBox.ButtonRole.DestructiveRole


def fitting(preferred: QSize, available: QSize) -> QSize:
    """`preferred`, shrunk to a share of the screen's free area where the screen is smaller."""
    room = QSize(int(available.width() * SCREEN_SHARE), int(available.height() * SCREEN_SHARE))
    return preferred.boundedTo(room)


class Banner(QFrame):
    """A coloured strip across the top of the window with a message and optional buttons."""

    def __init__(self, accessible_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(accessible_name)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = wrapped(accessible_name=f"{accessible_name} text", parent=self)
        self.row = QHBoxLayout(self)
        self.row.addWidget(self.text, 1)
        self.tone = "neutral"

    def add_button(self, label: str) -> QPushButton:
        made = button(label, self)
        self.row.addWidget(made)
        return made

    def show_message(self, text: str | None, tone: str = "neutral") -> None:
        self.setVisible(bool(text))
        self.text.setText(text or "")
        self.tone = tone
        colour = tone_colour(tone, self.palette()).name()
        self.setStyleSheet(f"Banner {{ border: 1px solid {colour}; border-radius: 4px; }}")


class MainWindow(QMainWindow):
    """Renders the controller's `Dashboard` and turns clicks into controller calls.

    Every visible button has its own Alt+letter (tests/gui/test_keyboard.py checks they never
    clash); the Tab order follows the reading order: banners, then the cards, then the tabs.
    """

    settings_requested = Signal()

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.tray_available = False
        self.hint_shown = False
        self.shown = controller.state
        self.setWindowIcon(app_icon())
        self._build()
        self._build_menu()
        self._connect()
        self._restore_geometry()
        self.show_state(controller.state)

    def _build(self) -> None:
        """Widgets in reading order, which is also the Tab order."""
        self.startup_banner = Banner("Startup", self)
        self.startup_settings = self.startup_banner.add_button("S&ettings...")
        self.startup_retry = self.startup_banner.add_button("Try &again")
        self.demo_banner = Banner("Demo mode", self)
        self.demo_settings = self.demo_banner.add_button("S&ettings...")
        self.notice_banner = Banner("Notice", self)
        self.notice_dismiss = self.notice_banner.add_button("Dis&miss")
        self.account = AccountPanel(self)
        self.sync = SyncPanel(self)
        self.worker = WorkerPanel(self)
        self.redis = RedisPanel(self)
        self.tabs = QTabWidget(self)
        self.queue = QueuePanel(self)
        self.storage = StoragePanel(self)
        self.history = HistoryPanel(self)
        self.log = LogPanel(self)
        self.tabs.addTab(self.queue, "&Queue")
        self.tabs.addTab(self.storage, "St&orage")
        self.tabs.addTab(self.history, "Back&up history")
        self.tabs.addTab(self.log, "Lo&g")
        grid = QGridLayout()
        grid.addWidget(self.account, 0, 0)
        grid.addWidget(self.sync, 0, 1)
        grid.addWidget(self.worker, 1, 0)
        grid.addWidget(self.redis, 1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        for banner in (self.startup_banner, self.demo_banner, self.notice_banner):
            layout.addWidget(banner)
        layout.addLayout(grid)
        layout.addWidget(self.tabs, 1)
        scroll = QScrollArea(self)  # a screen smaller than the layout scrolls instead of clipping
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        scroll.setWidget(central)
        self.setCentralWidget(scroll)

    def _build_menu(self) -> None:
        menu = self.menuBar().addMenu("&favdesk")
        self.settings_action = self._action(menu, "&Settings...", "Ctrl+,")
        self.refresh_action = self._action(menu, "&Refresh", "Ctrl+R", "F5")
        self.queue_action = self._action(menu, "Pause or resume the &queue", QUEUE_SHORTCUT)
        menu.addSeparator()
        self.close_action = self._action(menu, "&Close window", "Ctrl+W")
        self.quit_action = self._action(menu, "&Quit", "Ctrl+Q")
        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = self._action(help_menu, "&About favdesk")

    def _action(self, menu: QMenu, label: str, *shortcuts: str) -> QAction:
        action = QAction(label, self)
        action.setShortcuts([QKeySequence(key) for key in shortcuts])
        menu.addAction(action)
        return action

    def _connect(self) -> None:
        c = self.controller
        c.changed.connect(self.show_state)
        c.events.log_line.connect(self.log.append)
        c.file_saved.connect(lambda path: c.note(f"Saved a copy to {path}"))
        self.account.link_clicked.connect(c.link)
        self.account.cancel_link_clicked.connect(c.cancel_link)
        self.account.sync_clicked.connect(c.sync)
        self.account.user_selected.connect(c.select_user)
        self.sync.action_clicked.connect(self._remedy)
        self.worker.pause_clicked.connect(c.pause)
        self.worker.resume_clicked.connect(c.resume)
        self.worker.stop_clicked.connect(self.ask_stop)
        self.worker.queue_clicked.connect(self.ask_queue)
        self.queue_action.triggered.connect(self.ask_queue)
        self.queue.cancel_clicked.connect(self.ask_cancel_job)
        self.queue.workers.stop_clicked.connect(self.ask_stop_worker)
        self.queue.workers.clean_clicked.connect(c.steering.clean_workers)
        self.tabs.currentChanged.connect(
            lambda _index: c.steering.queue_tab_shown(self.tabs.currentWidget() is self.queue)
        )
        self.redis.refresh_clicked.connect(c.refresh)
        self.queue.retry_clicked.connect(c.retry_job)
        self.queue.delete_clicked.connect(c.delete_job)
        self.storage.open_clicked.connect(c.open_file)
        self.storage.save_clicked.connect(self.ask_save_path)
        self.storage.refresh_clicked.connect(c.load_files)
        self.history.compare_clicked.connect(c.compare)
        self.history.export_clicked.connect(self.ask_export_path)
        self.history.prune_clicked.connect(c.plan_retention)
        self.history.refresh_clicked.connect(c.load_history)
        c.retention_planned.connect(self.ask_prune)
        self.tabs.currentChanged.connect(lambda _index: self._history_visibility())
        self.startup_retry.clicked.connect(c.start)
        for trigger in (self.startup_settings.clicked, self.demo_settings.clicked):
            trigger.connect(self.settings_requested)
        self.notice_dismiss.clicked.connect(lambda: c.note(None))
        self.settings_action.triggered.connect(self.settings_requested)
        self.refresh_action.triggered.connect(c.refresh)
        self.close_action.triggered.connect(self.close)
        self.quit_action.triggered.connect(self.ask_quit)
        self.about_action.triggered.connect(self._about)

    def show_state(self, d: Dashboard) -> None:
        """Show `d` everywhere: banners, cards, tabs and the title."""
        self.shown = d
        self._render_banners(d)
        panels = (self.account, self.sync, self.worker, self.redis, self.queue, self.storage)
        for panel in (*panels, self.history):
            panel.show_state(d)
        self.refresh_action.setEnabled(d.ready)
        demo = " (demo mode)" if d.demo_mode else ""
        self.setWindowTitle(f"{status_line(d)}{demo}")  # the desktop adds " — favdesk"

    def _render_banners(self, d: Dashboard) -> None:
        if d.startup == "starting":
            self.startup_banner.show_message(
                "Starting favdesk: opening Redis, storage and the worker...", "busy"
            )
        elif d.startup == "failed":
            self.startup_banner.show_message(f"favdesk could not start: {d.startup_error}", "error")
        else:
            self.startup_banner.show_message(None)
        failed = d.startup == "failed"
        self.startup_settings.setVisible(failed)
        self.startup_retry.setVisible(failed)
        self.demo_banner.show_message(DEMO_TEXT if d.demo_mode else None, "warn")
        self.demo_settings.setVisible(not failed)  # one Settings button at a time (one Alt+E)
        self.notice_banner.show_message(d.notice, "warn")

    def _remedy(self, action: str) -> None:
        """The Sync card's remedy button: link, settings, resume, start or sync again."""
        handlers = {
            "link": self.controller.link,
            "relink": self.controller.link,
            "settings": self.settings_requested.emit,
            "resume": self.controller.resume,
            "start": self.controller.resume,
            "sync": self.controller.sync,
        }
        handlers[action]()

    def ask_stop(self) -> None:
        """Stop the worker; with a job running, ask whether to let it finish or cancel it."""
        if self.controller.state.job is None:
            self.controller.stop(cancel_current=False)
            return
        stop = self.controller.stop
        self._ask(
            "Stop the worker",
            "A sync is running. Let it finish, and the worker stops when it is done; or cancel "
            "it between pages, and it stops after the page it is fetching. A cancelled sync "
            "keeps the pages already fetched and resumes from there next time.",
            ("&Finish the current job", GO_ON, lambda: stop(False)),
            ("Cancel it &between pages", CANCEL_JOB, lambda: stop(True)),
        )

    def ask_quit(self) -> None:
        """Quit; with a sync running, ask whether to quit after it or cancel it."""
        if self.controller.state.job is None:
            self.controller.quit(cancel_current=False)
            return
        if not self.isVisible():
            self.show_dashboard()  # the question needs a window (Quit may come from the tray)
        quit_ = self.controller.quit
        self._ask(
            "Quit favdesk",
            "A sync is running. favdesk can quit when it finishes, or cancel it between pages "
            "now (the pages already fetched are kept for next time).",
            ("Quit &after the current job", GO_ON, lambda: quit_(False)),
            ("&Cancel it and quit", CANCEL_JOB, lambda: quit_(True)),
        )

    def ask_queue(self) -> None:
        """Pause the queue for every worker (asking what happens to running imports), or
        resume it."""
        d, steering = self.shown, self.controller.steering
        if not d.ready:
            return
        if d.queue_paused:
            steering.resume_queue()
            return
        running = d.snapshot.counts.get("started", 0) if d.snapshot is not None else 0
        if not running and d.job is None:
            steering.pause_queue()
            return
        self._ask(
            "Pause the queue",
            "Every favdesk worker, here and on other machines, stops taking jobs until the "
            "queue is resumed. Imports running now can finish first, or be cancelled between "
            "pages: they keep the pages fetched, go back to the queue and resume from there.",
            ("Let them &finish", GO_ON, lambda: steering.pause_queue(False)),
            ("Cancel them &between pages", CANCEL_JOB, lambda: steering.pause_queue(True)),
        )

    def ask_cancel_job(self, job_id: str) -> None:
        """Cancel a running job between pages, wherever it runs, if the person says so."""
        if not job_id:
            return
        steering = self.controller.steering
        self._ask(
            "Cancel the job",
            f"The worker running {job_id} stops it after the page it is fetching. The pages "
            "fetched so far are kept; the next sync of this account resumes from there. (A stock "
            "RQ worker kills the job instead.)",
            ("Cancel it &between pages", CANCEL_JOB, lambda: steering.cancel_job(job_id)),
        )

    def ask_stop_worker(self, name: str) -> None:
        steering = self.controller.steering
        self._ask(
            "Stop a worker",
            f"{name} finishes its current job, then stops; on another machine it stays stopped "
            "until someone starts it again.",
            ("&Stop it", GO_ON, lambda: steering.stop_worker(name)),
        )

    def _ask(self, title: str, text: str, *choices: Choice) -> None:
        """A window-modal question; the first choice is the default, "Keep running" does nothing."""
        box = QMessageBox(
            QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, self
        )
        box.setObjectName(title.lower().replace(" ", "-"))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        added = [(box.addButton(label, role), act) for label, role, act in choices]
        actions: dict[QAbstractButton, Callable[[], None]] = dict(added)
        box.addButton("&Keep running", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(added[0][0])
        box.finished.connect(lambda _result: actions.get(box.clickedButton(), _nothing)())
        box.open()

    def ask_save_path(self, key: str, name: str) -> None:
        path, _filter = QFileDialog.getSaveFileName(
            self, "Save a copy", name, "JSON files (*.json);;All files (*)"
        )
        if path:
            self.controller.save_file(key, path)

    def ask_export_path(self, day: date) -> None:
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export as CSV", f"liked-songs-{day}.csv", "CSV files (*.csv);;All files (*)"
        )
        if path:
            self.controller.export_snapshot(day, path)

    def ask_prune(self, plan: RetentionPlan) -> None:
        """Show what retention would delete, and delete it only if the person says so."""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Delete old snapshots",
            retention_question(plan),
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("delete-old-snapshots")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        count = len(plan.delete)
        delete = box.addButton(
            f"&Delete {count} snapshot{'s' if count != 1 else ''}",
            QMessageBox.ButtonRole.DestructiveRole,
        )
        keep = box.addButton("&Keep them", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.finished.connect(
            lambda _result: self.controller.prune(plan) if box.clickedButton() is delete else None
        )
        box.open()

    def _history_visibility(self) -> None:
        showing = self.isVisible() and not self.isMinimized()
        self.controller.set_history_visible(showing and self.tabs.currentWidget() is self.history)

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About favdesk",
            f"favdesk {__version__}\nBacks up your Spotify Liked Songs through a real job "
            "pipeline, and lets you watch and steer it.",
        )

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """With a tray, closing hides to it; without one, closing quits (asking if a job runs)."""
        self.save_geometry()
        if self.controller.quitting:
            event.accept()
            return
        event.ignore()
        if not self.tray_available:
            self.ask_quit()
            return
        self.hide()
        if not self.hint_shown:
            self.hint_shown = True
            self.controller.notified.emit(
                "favdesk keeps running", "favdesk is still in the tray; Quit is in its menu."
            )

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.controller.set_window_visible(True)
        self._history_visibility()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt override
        super().hideEvent(event)
        self.controller.set_window_visible(False)
        self._history_visibility()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        """Minimised counts as hidden (nothing is polled); a new palette re-tints the banners."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.WindowStateChange:
            self.controller.set_window_visible(self.isVisible() and not self.isMinimized())
        elif event.type() == QEvent.Type.PaletteChange:
            self._render_banners(self.shown)

    def show_dashboard(self) -> None:
        """Bring the window up (tray "Open dashboard", a second launch)."""
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def _qsettings(self) -> QSettings:
        path = self.controller.settings.config_dir / "window.ini"
        return QSettings(str(path), QSettings.Format.IniFormat)

    def _restore_geometry(self) -> None:
        geometry = self._qsettings().value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(fitting(DEFAULT_SIZE, self.screen().availableGeometry().size()))

    def save_geometry(self) -> None:
        """Keep the window's size and place for next time (on close, and when favdesk quits)."""
        store = self._qsettings()
        store.setValue("window/geometry", self.saveGeometry())
        store.sync()


def _nothing() -> None:
    """The answer "Keep running" (or closing the question) changes nothing."""


def retention_question(plan: RetentionPlan) -> str:
    """The question before retention deletes: which snapshots, how big, what stays."""
    listed = [f"{f.day}  ({size(f.size)})" for f in plan.delete[:PRUNE_LISTED]]
    more = len(plan.delete) - len(listed)
    if more:
        listed.append(f"... and {more} more")
    total = size(sum(f.size for f in plan.delete))
    text = (
        f"Retention keeps the newest {plan.keep_daily} snapshots and the newest of each month. "
        f"These {len(plan.delete)} snapshots favdesk wrote fall outside it ({total} in all) "
        "and would be deleted from Storage for good:\n\n" + "\n".join(listed)
    )
    if plan.foreign:
        text += (
            f"\n\n{len(plan.foreign)} older snapshots that other programs wrote (or that changed "
            "since favdesk wrote them) are kept."
        )
    return text
