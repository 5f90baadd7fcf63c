"""GUI fixtures: the window on its own (rendering data), and screenshots for reviewers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from favdesk.gui.controller import AppController
from favdesk.gui.main_window import MainWindow
from favdesk.settings import load_settings

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def settings():
    return load_settings()


@pytest.fixture
def window(qtbot, settings):
    """A main window over a controller that is never started: tests feed it states."""
    controller = AppController(settings, opener=_never_opened)
    shown = MainWindow(controller)
    qtbot.addWidget(shown)
    shown.resize(1000, 760)
    shown.show()
    qtbot.waitExposed(shown)
    yield shown
    controller.shutdown()


def _never_opened(settings, listener):
    raise AssertionError("this test renders data; it never opens a runtime")


@pytest.fixture
def screenshot(qtbot):
    """Save a PNG of a widget to artifacts/screenshots/ (kept for review, never compared)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(widget, name: str) -> Path:
        path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        QApplication.sendPostedEvents()  # let pending layout requests settle before the grab
        QApplication.processEvents()
        assert widget.grab().save(str(path)), f"could not save {path}"
        return path

    return save
