"""Keeps None, True and False alive under a PySide6 build that drops references to them.

Measured with PySide6-Essentials 6.12.0 (abi3 wheel) on CPython 3.11: every Qt method that
returns nothing hands back `None` without a reference of its own, and `Signal.emit()` does
the same with `True`. Python 3.12 made these objects immortal; on 3.11 each call costs one
reference, and after some thousands of calls (a few minutes of a live dashboard) the
interpreter aborts with "none_dealloc: deallocating None". These objects are never freed, so
a large reserve of references is harmless; it is added only when the fault is measured.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

#: Extra references given to each of None, True and False when PySide6 loses them.
RESERVE = 1 << 40
PROBES = 8


class _Probe(QObject):
    fired = Signal()


def loses_references(singleton: object, call) -> bool:
    """Whether each `call()` takes one reference away from `singleton`."""
    before = sys.getrefcount(singleton)
    for _ in range(PROBES):
        call()
    return before - sys.getrefcount(singleton) >= PROBES


def _add_references(singleton: object, count: int) -> None:
    """Raise the reference count in place (CPython keeps it in the object's first field)."""
    field = ctypes.c_ssize_t.from_address(id(singleton))
    field.value += count


def protect_singletons() -> bool:
    """Give None, True and False a reserve if this PySide6 drops references to them."""
    if sys.version_info >= (3, 12):
        return False  # immortal: nothing can be dropped
    probe = _Probe()
    faulty = loses_references(None, lambda: probe.setObjectName("probe")) or loses_references(
        True, probe.fired.emit
    )
    if faulty:
        for singleton in (None, True, False):
            _add_references(singleton, RESERVE)
    return faulty


SINGLETONS_PROTECTED = protect_singletons()
