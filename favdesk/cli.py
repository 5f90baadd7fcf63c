"""The `favdesk` command: the desktop app with no arguments, headless subcommands otherwise.

Each subcommand calls the same core functions the GUI calls; errors are caught here, at the
edge, and turned into one clear line and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, cast

from favdesk import __version__
from favdesk.errors import FavdeskError

#: subcommand -> "module:function"; each handler takes (args, settings) and returns an exit code.
HANDLERS = {
    "app": "favdesk.gui.app:run_app",
    "link": "favdesk.commands:link",
    "unlink": "favdesk.commands:unlink",
    "sync": "favdesk.commands:sync",
    "status": "favdesk.commands:status",
    "files": "favdesk.commands:files",
    "worker": "favdesk.commands:worker",
    "pause": "favdesk.fleet_commands:pause",
    "resume": "favdesk.fleet_commands:resume",
    "workers": "favdesk.fleet_commands:workers",
    "cancel": "favdesk.fleet_commands:cancel",
    "stop-worker": "favdesk.fleet_commands:stop_worker",
    "history": "favdesk.history_commands:history",
    "diff": "favdesk.history_commands:diff",
    "export": "favdesk.history_commands:export",
    "prune": "favdesk.history_commands:prune",
    "demo": "favdesk.commands:demo",
}


def day_argument(text: str) -> date:
    """argparse type: a snapshot's date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def snapshot_count(text: str) -> int:
    """argparse type: how many snapshots retention keeps, 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of snapshots (1 or more)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="favdesk",
        description="Back up your Spotify Liked Songs. With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"favdesk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug lines")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("app", help="open the desktop app (the default)")

    link = commands.add_parser("link", help="link a Spotify account in the browser")
    link.add_argument("--no-browser", action="store_true", help="only print the login URL")
    link.add_argument(
        "--timeout", type=float, default=300.0, metavar="SECONDS",
        help="how long to wait for the browser (default 300)",
    )  # fmt: skip

    unlink = commands.add_parser("unlink", help="forget a linked account and its tokens")
    unlink.add_argument("--user", metavar="ID", help="the user id (default: the linked account)")

    sync = commands.add_parser("sync", help="import the Liked Songs of a linked account")
    sync.add_argument("--wait", action="store_true", help="wait for the import and show progress")
    sync.add_argument("--user", metavar="ID", help="the user id (default: the linked account)")

    status = commands.add_parser("status", help="Redis, queue and sync status")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    files = commands.add_parser("files", help="the user's files in Storage")
    files.add_argument("--json", action="store_true", help="machine-readable output")
    files.add_argument("--user", metavar="ID", help="the user id (default: the linked account)")

    worker = commands.add_parser("worker", help="run a headless queue worker")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument(
        "--schedule", action="store_true",
        help="also run the automatic backups of the accounts linked here",
    )  # fmt: skip

    add_fleet_commands(commands)

    history = commands.add_parser("history", help="every snapshot, with songs, size and change")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    history.add_argument("--user", metavar="ID", help="the user id (default: the linked account)")

    diff = commands.add_parser(
        "diff", help="songs added and removed between two snapshots (default: the last two)"
    )
    diff.add_argument("first", nargs="?", type=day_argument, metavar="DATE_A")
    diff.add_argument("second", nargs="?", type=day_argument, metavar="DATE_B")
    diff.add_argument("--json", action="store_true", help="machine-readable output")
    diff.add_argument("--user", metavar="ID", help="the user id (default: the linked account)")

    export = commands.add_parser("export", help="a snapshot as CSV in Exportify's columns")
    export.add_argument("day", metavar="DATE", help="the snapshot's date, YYYY-MM-DD, or latest")
    export.add_argument("--out", metavar="FILE", help="write to FILE (default: standard output)")
    export.add_argument("--user", metavar="ID", help="the user id (default: the linked account)")

    prune = commands.add_parser(
        "prune", help="retention: delete favdesk's snapshots outside the newest N and monthly"
    )
    prune.add_argument(
        "--keep", type=snapshot_count, metavar="N",
        help="keep the newest N plus each month's newest (default: FAVDESK_KEEP_DAILY)",
    )  # fmt: skip
    prune.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    prune.add_argument("--yes", action="store_true", help="delete without asking")
    prune.add_argument("--user", metavar="ID", help="the user id (default: the linked account)")

    commands.add_parser("demo", help="the whole flow against built-in stand-ins, no accounts")
    return parser


def add_fleet_commands(commands: Any) -> None:
    """`pause`, `resume`, `workers`, `cancel`, `stop-worker`: every worker on the Redis."""
    pause = commands.add_parser("pause", help="pause the queue for every favdesk worker")
    pause.add_argument(
        "--cancel", action="store_true",
        help="cancel running imports between pages (re-queued) instead of letting them finish",
    )  # fmt: skip
    commands.add_parser("resume", help="resume the queue for every favdesk worker")
    workers = commands.add_parser("workers", help="every worker on this Redis")
    workers.add_argument("--json", action="store_true", help="machine-readable output")
    workers.add_argument(
        "--clean", action="store_true", help="remove the registrations whose heartbeat expired"
    )
    cancel = commands.add_parser("cancel", help="cancel a running job between pages")
    cancel.add_argument("job_id", metavar="JOB_ID")
    stop = commands.add_parser("stop-worker", help="stop a worker after its current job")
    stop.add_argument("name", metavar="NAME", help="as `favdesk workers` lists it")


Handler = Callable[[argparse.Namespace, Any], int]


def resolve(command: str) -> Handler:
    """The handler of a subcommand, imported only when it runs (the GUI's Qt stays unloaded)."""
    module_name, function = HANDLERS[command].split(":")
    return cast(Handler, getattr(importlib.import_module(module_name), function))


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends a command as Ctrl-C does, so embedded services are stopped on the way out."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:  # one line per HTTP request is noise on a terminal
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    from favdesk.settings import load_settings

    if args.command not in (None, "app"):  # the app handles its own signals
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        settings = load_settings()
        return int(resolve(args.command or "app")(args, settings) or 0)
    except FavdeskError as error:
        print(f"favdesk: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("favdesk: interrupted", file=sys.stderr)
        return 130
