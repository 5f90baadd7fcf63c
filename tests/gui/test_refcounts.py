"""The GUI survives a long session although this PySide6 drops references to None and True."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from favdesk.gui import SINGLETONS_PROTECTED
from favdesk.gui.refcounts import loses_references


class Events(QObject):
    happened = Signal(str)


def test_a_long_session_of_qt_calls_and_signals_does_not_abort(qtbot):
    label = QLabel()
    events = Events()
    events.happened.connect(label.setText)
    for n in range(60_000):  # more than None's and True's own references in this process
        label.setToolTip("x")
        events.happened.emit(str(n))
    assert label.text() == "59999"
    assert sys.getrefcount(None) > 100_000
    assert sys.getrefcount(True) > 100_000


def test_the_fault_is_measured_not_assumed():
    marker = object()
    holders = [marker] * 50
    assert not loses_references(marker, lambda: None)
    assert loses_references(marker, holders.pop)  # each call gives up one reference
    assert isinstance(SINGLETONS_PROTECTED, bool)
