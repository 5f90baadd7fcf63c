"""The one table every benchmark prints: a figure, what was measured, its target, met or not.

A benchmark yields `Row`s (and `Section`s between groups); `print_rows` prints them as they come,
so a long run shows its progress, and `python -m benchmarks` prints every benchmark's rows as
one table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FIGURE_WIDTH = 44
TARGET_WIDTH = 26


@dataclass(frozen=True)
class Row:
    """One figure; `met` is None when it has no target."""

    figure: str
    measured: str
    target: str = ""
    met: bool | None = None


@dataclass(frozen=True)
class Section:
    """A heading between groups of rows: what was measured, and how."""

    title: str


def header() -> str:
    return f"{'figure':<{FIGURE_WIDTH}} {'met':<3} {'target':<{TARGET_WIDTH}} measured"


def line(entry: Row | Section) -> str:
    """Target and verdict before the measurement, which may run long."""
    if isinstance(entry, Section):
        return f"\n-- {entry.title}"
    met = "" if entry.met is None else ("yes" if entry.met else "NO")
    return (
        f"{entry.figure:<{FIGURE_WIDTH}} {met:<3} {entry.target:<{TARGET_WIDTH}} {entry.measured}"
    )


def print_rows(entries: Iterable[Row | Section]) -> None:
    """Print rows as they are produced (a benchmark may take minutes per row)."""
    print(header(), flush=True)
    for entry in entries:
        print(line(entry), flush=True)
