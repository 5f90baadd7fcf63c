"""`favdesk history`, `diff`, `export`, `prune` and `worker --schedule`, as a person runs them:
the Spotify stand-in, the real worker and a real Redis, the commands in-process."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from rq import Worker
from rq.command import send_shutdown_command

from favdesk import cli
from favdesk.export import COLUMNS
from favdesk.history import record_written
from favdesk.redisconn import connect
from favdesk.standalone import run_standalone
from favdesk.storage import raw_key
from tests.support.snapshots import library, put
from tests.test_ingest import USER, browser, configured_sandbox, open_runtime  # noqa: F401

TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture
def spotify(redis_url, monkeypatch):
    with configured_sandbox(80, redis_url, monkeypatch) as server:
        yield server


@pytest.fixture
def imported(spotify, open_runtime):  # noqa: F811 - the fixture imported from test_ingest
    """A linked account whose first import ran: yesterday's snapshot, then today's, in which
    5 songs were liked and 2 unliked."""
    runtime, recorder = open_runtime()
    runtime.link(open_browser=browser, run_import_here=True)
    assert recorder.wait_finished(1)[1]
    move(runtime, TODAY, YESTERDAY)
    spotify.remove_tracks(2, at=10)
    spotify.add_tracks(5)
    runtime.sync(USER)
    assert recorder.wait_finished(2)[1]
    return runtime


def move(runtime, day: date, to: date) -> None:
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder, "copy.json")
        with runtime.storage.open(raw_key(USER, day)) as source, copy.open("wb") as target:
            shutil.copyfileobj(source, target)
        runtime.storage.upload_file(raw_key(USER, to), copy)
    runtime.storage.delete(raw_key(USER, day))


def run(capsys, *args: str) -> tuple[int, str, str]:
    """`favdesk ARGS` in this process; what it sets process-wide is put back afterwards."""
    with cli_state_kept():
        code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@contextmanager
def cli_state_kept() -> Iterator[None]:
    """`cli.main` sets up logging and a SIGTERM handler for its process: undo both."""
    root, names = logging.getLogger(), ("httpx", "httpcore")
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in names}
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


def test_history_lists_each_snapshot_with_songs_size_and_change(imported, capsys):
    code, out, _err = run(capsys, "history")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith(f"2 snapshots of user {USER} in local folder")
    assert lines[2].split()[0] == str(TODAY) and lines[2].endswith("+5, -2")
    assert lines[2].split()[1] == "83"
    assert lines[3].split()[0] == str(YESTERDAY) and lines[3].endswith("first")
    assert lines[-1].startswith("Automatic backups: daily at 12:00; next ")

    code, out, _err = run(capsys, "history", "--json")
    rows = json.loads(out)
    assert [(r["day"], r["count"], r["added"], r["removed"]) for r in rows] == [
        (str(TODAY), 83, 5, 2),
        (str(YESTERDAY), 80, None, None),
    ]


def test_diff_prints_the_songs_added_and_removed(imported, capsys):
    code, out, _err = run(capsys, "diff", str(YESTERDAY))
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == f"{USER}: {YESTERDAY} -> {TODAY}: +5 songs, -2 songs (80 songs -> 83 songs)"
    assert lines[1] == "Added (5):" and len([x for x in lines if x.startswith("  + ")]) == 5
    assert "Removed (2):" in lines and len([x for x in lines if x.startswith("  - ")]) == 2

    code, _out, err = run(capsys, "diff", "2001-01-01")
    assert code == 1 and "No snapshot of 2001-01-01" in err
    with pytest.raises(SystemExit), cli_state_kept():
        cli.main(["diff", "yesterday"])


def test_export_writes_exportifys_csv_to_a_file_or_standard_output(imported, capsys, tmp_path):
    target = tmp_path / "liked.csv"
    code, _out, err = run(capsys, "export", "latest", "--out", str(target))
    assert code == 0 and err.strip() == f"Wrote 83 songs of {TODAY} to {target}"
    with target.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 84

    code, out, _err = run(capsys, "export", str(YESTERDAY))
    assert code == 0 and len(list(csv.reader(io.StringIO(out)))) == 81


def write_as_favdesk(runtime, day: date, songs: int) -> None:
    """A snapshot favdesk wrote on this computer (noted as the import notes it)."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "library.json")
        source.write_bytes(json.dumps(library(range(songs))).encode())
        stored = runtime.storage.upload_file(raw_key(USER, day), source)
        record_written(runtime.settings.data_dir, USER, stored, source)


def test_prune_shows_first_asks_and_deletes_only_favdesks_own(imported, capsys, monkeypatch):
    for day, songs in ((date(2026, 1, 5), 3), (date(2026, 1, 10), 4), (date(2026, 1, 20), 5)):
        write_as_favdesk(imported, day, songs)
    put(imported.storage, date(2026, 1, 15), library(range(6)))  # another program wrote it
    listed = lambda: {f.day for f in imported.storage.list_files(USER)}  # noqa: E731
    before = listed()

    code, out, _err = run(capsys, "prune", "--keep", "1", "--dry-run")
    assert code == 0 and listed() == before
    assert "Would delete 2 snapshot(s)" in out
    assert f"favorites_raw/spotify/{USER}/2026-01-10.json" in out.split("Keeping")[0]
    assert f"favorites_raw/spotify/{USER}/2026-01-05.json" in out.split("Keeping")[0]
    assert f"favorites_raw/spotify/{USER}/2026-01-15.json" in out.split("Also keeping")[1]

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nobody to ask
    code, _out, err = run(capsys, "prune", "--keep", "1")
    assert code == 1 and "then with --yes to carry it out" in err and listed() == before

    code, out, _err = run(capsys, "prune", "--keep", "1", "--yes")
    assert code == 0 and "Deleted 2 snapshots." in out
    assert listed() == before - {date(2026, 1, 5), date(2026, 1, 10)}


def test_prune_without_a_number_says_retention_is_off(imported, capsys):
    code, _out, err = run(capsys, "prune", "--dry-run")
    assert code == 2 and "FAVDESK_KEEP_DAILY: retention is off" in err
    with pytest.raises(SystemExit) as caught, cli_state_kept():
        cli.main(["prune", "--keep", "0", "--dry-run"])
    assert caught.value.code == 2 and "not a number of snapshots" in capsys.readouterr().err


def test_worker_schedule_runs_the_automatic_backup_and_says_what_changed(
    spotify,
    open_runtime,  # noqa: F811
):
    runtime, recorder = open_runtime()
    runtime.link(open_browser=browser, run_import_here=True)
    assert recorder.wait_finished(1)[1]
    move(runtime, TODAY, YESTERDAY)
    spotify.add_tracks(3)
    timer = runtime.scheduler
    timer.startup_delay = 0.0
    timer.clock = lambda: datetime.now(UTC) + timedelta(days=1)  # the next slot has come
    out = io.StringIO()
    ended = threading.Event()

    def work() -> None:
        run_standalone(
            lambda: connect(runtime.redis_url, for_worker=True),
            burst=False,
            services=runtime.services,
            out=out,
            scheduler=timer,
            describe_backup=lambda user_id: runtime.history(user_id).latest.summary,
        )
        ended.set()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while "backup of zoe:" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    for worker in Worker.all(connection=runtime.app_redis):
        send_shutdown_command(runtime.app_redis, worker.name)
    assert ended.wait(10), out.getvalue()
    lines = out.getvalue().splitlines()
    assert any(line.startswith("[schedule] daily at 12:00; next backup: ") for line in lines)
    assert any(f"for user {USER}: queued ingest-{USER}" in line for line in lines), lines
    summary = f"[schedule] backup of {USER}: +3 songs, -0 songs since {YESTERDAY} (83 songs)"
    assert summary in lines


def test_worker_schedule_needs_a_worker_that_keeps_running(capsys):
    code, _out, err = run(capsys, "worker", "--schedule", "--burst")
    assert code == 1 and "leave out --burst" in err


def test_a_song_named_with_terminal_escapes_is_printed_as_text_not_obeyed():
    from favdesk.history_commands import track_line
    from favdesk.snapshot import Track, TrackKind

    hostile = Track(
        identity="spotify:track:x",
        kind=TrackKind.TRACK,
        name="\x1b]0;owned\x07Song\r",
        artists=("\u202eArtist",),
        album="Album 🎵",
        added_at="2026-05-03T00:00:00Z",
        duration_ms=1,
        uri="spotify:track:x",
    )
    line = track_line(hostile)
    assert line.isprintable()
    assert line == "\\x1b]0;owned\\x07Song\\r - \\u202eArtist - Album 🎵 (added 2026-05-03)"
