"""The phases of an import and how far each got: songs while fetching, bytes while uploading.

Qt-free and Redis-free, so the job, the CLI and the window's first paint share one wording:
"1,500 / 10,000 songs", "40 / 99 MB".
"""

from __future__ import annotations

from enum import StrEnum

MIB = 1024 * 1024
#: A progress bar's range is a 32-bit int: byte counts go to it in KiB.
_BAR_KIB = 1024


class ImportPhase(StrEnum):
    """What an import is doing; the values are what the progress hash in Redis holds."""

    STARTING = "starting"
    FETCHING = "fetching"
    UPLOADING = "uploading"
    DONE = "done"


def counts_bytes(phase: str) -> bool:
    """True when the phase's progress counts bytes (the upload), not songs."""
    return phase == ImportPhase.UPLOADING


def amount(phase: str, done: int, total: int | None) -> str:
    """How far the phase got, in its unit; before the total is known, what is done so far."""
    if counts_bytes(phase):
        if not total:
            return f"{megabytes(done, done)} MB"
        return f"{megabytes(done, total)} / {megabytes(total, total)} MB"
    if total is None:
        return f"{done:,} songs"
    return f"{done:,} / {total:,} songs"


def megabytes(size: int, scale: int) -> str:
    """MB of 1024 * 1024 bytes, as Supabase counts its limits; a decimal below 10 MB."""
    return f"{size / MIB:.1f}" if scale < 10 * MIB else f"{size / MIB:.0f}"


def bar_values(phase: str, done: int, total: int) -> tuple[int, int]:
    """(value, maximum) for a progress bar, which holds 32-bit ints: bytes go as KiB."""
    done, total = min(done, max(total, 1)), max(total, 1)
    if counts_bytes(phase):
        return done // _BAR_KIB, max(total // _BAR_KIB, 1)
    return done, total
