"""A long session of Qt calls and signals keeps None and True alive.

PySide6-Essentials 6.12.0 on CPython 3.11 hands back None from void methods, and True from
Signal.emit(), without a reference of its own: after some thousands of calls the interpreter
aborts ("none_dealloc"). 6.11.3 does not; this test fails on a build that does.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class Events(QObject):
    happened = Signal(str)


def test_qt_calls_and_signals_do_not_steal_references_to_none_or_true(qtbot):
    label = QLabel()
    events = Events()
    events.happened.connect(label.setText)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for n in range(2_000):
        label.setToolTip("x")
        events.happened.emit(str(n))
    assert label.text() == "1999"
    assert sys.getrefcount(None) >= none_before - 50
    assert sys.getrefcount(True) >= true_before - 50
