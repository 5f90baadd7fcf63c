"""An import's progress in words: songs while fetching, megabytes while uploading."""

from __future__ import annotations

import pytest

from favdesk.commands import progress_line
from favdesk.progress import ImportPhase, amount, bar_values, counts_bytes
from favdesk.sync_status import Progress

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("phase", "done", "total", "words"),
    [
        ("fetching", 1_500, 10_000, "1,500 / 10,000 songs"),
        ("fetching", 1_500, None, "1,500 songs"),
        ("done", 50_000, 50_000, "50,000 / 50,000 songs"),
        ("uploading", 40 * MIB, 99 * MIB, "40 / 99 MB"),
        ("uploading", 3 * MIB // 2, 5 * MIB, "1.5 / 5.0 MB"),
        ("uploading", 0, 0, "0.0 MB"),
    ],
)
def test_amounts_read_in_the_phases_unit(phase, done, total, words):
    assert amount(phase, done, total) == words


def test_only_the_upload_counts_bytes():
    assert [p for p in ImportPhase if counts_bytes(p)] == [ImportPhase.UPLOADING]


def test_a_progress_bar_gets_bytes_as_kib_so_files_over_2_gb_fit_its_int():
    assert bar_values("uploading", 3 * 1024**3, 5 * 1024**3) == (3 * 1024**2, 5 * 1024**2)
    assert bar_values("fetching", 70, 50) == (50, 50)


def test_the_cli_prints_what_the_window_shows():
    progress = Progress(40 * MIB, 99 * MIB, "uploading", "ingest-u", None, None)
    assert progress_line(progress) == "uploading: 40 / 99 MB"
    assert progress_line(Progress(0, 0, "fetching", "ingest-u", None, None)) == "fetching..."
