"""CLI handlers: each takes (args, settings), calls the same core functions as the GUI,
prints plain lines, and returns an exit code. Errors are printed by `favdesk.cli`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
import webbrowser
from datetime import datetime
from pathlib import Path
from typing import Any

from favdesk.errors import FavdeskError
from favdesk.meter import CommandUsage
from favdesk.progress import amount
from favdesk.queue_status import JobInfo, import_state
from favdesk.runtime import Runtime, StatusSnapshot
from favdesk.services import open_demo
from favdesk.settings import Settings
from favdesk.sync_status import SyncState, SyncStatus
from favdesk.worker_events import WorkerListener

DEMO_NOTICE = (
    "Demo mode: no SPOTIFY_CLIENT_ID set, linking against favdesk's built-in Spotify stand-in"
)
WAIT_POLL = 1.0


def link(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk link`: log in to Spotify in the browser, store the link, queue the first import."""
    from favdesk.accounts import check_keyring

    check_keyring()  # before anything starts: without a keyring the login would be wasted
    if settings.demo_mode:
        print(DEMO_NOTICE, flush=True)
    with Runtime(settings) as runtime:
        result = runtime.link(
            open_browser=_no_browser if args.no_browser else webbrowser.open,
            on_url=lambda url: print(f"Open this URL to log in to Spotify: {url}", flush=True),
            timeout=args.timeout,
            run_import_here=False,
        )
    account = result.account
    print(f"Linked {account.display_name} ({account.spotify_id})")
    print(f"jobId: {result.job_id} (the app or `favdesk worker` runs it, or `favdesk sync --wait`)")
    return 0


def _no_browser(url: str) -> bool:
    return False


def unlink(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk unlink`: forget a linked account and its tokens; its backups stay in Storage."""
    with Runtime(settings) as runtime:
        account = runtime.unlink(args.user)
    print(
        f"Unlinked {account.display_name} ({account.spotify_id}): its tokens are deleted from the "
        "keyring and its queued import is cancelled; its backups stay in Storage."
    )
    return 0


def sync(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk sync [--wait]`: queue an import; with --wait, see it through to done or error."""
    if settings.demo_mode:
        print("Demo mode: importing from favdesk's built-in Spotify stand-in", flush=True)
    with Runtime(settings) as runtime:
        account = runtime.default_account(args.user)
        result = runtime.sync(account.user_id, run_here=args.wait)
        state = "queued" if result.created else "already queued or running"
        print(f"jobId: {result.job_id} ({state})", flush=True)
        if not args.wait:
            return 0
        try:
            status, job = wait_for_import(runtime, account.user_id, result.job_id)
        except KeyboardInterrupt:
            print(
                "Stopping: the import is cancelled between pages and stays queued; it resumes "
                "where it stopped with the next `favdesk sync` or in the app.",
                flush=True,
            )
            raise
    if status.state is SyncState.DONE:
        return 0
    print(f"favdesk: import failed ({status.raw}): {job.error}", file=sys.stderr)
    return 1


def wait_for_import(runtime: Runtime, user_id: str, job_id: str) -> tuple[SyncStatus, JobInfo]:
    """Print progress until the job ends; the in-process worker runs it unless another did."""
    last = None
    while True:
        state = import_state(runtime.app_redis, user_id, job_id)
        if state.job is None:
            raise FavdeskError(f"The import {job_id} was deleted before it finished")
        line = progress_line(state.run_progress)
        if line and line != last:
            print(line, flush=True)
            last = line
        if state.job.state.value in ("finished", "failed", "canceled", "stopped"):
            if state.sync.state is SyncState.DONE:
                newest = runtime.files(user_id)[0]
                print(f"done: {state.job.tracks} tracks -> {newest.path}", flush=True)
            return state.sync, state.job
        time.sleep(WAIT_POLL)


def progress_line(progress: Any) -> str | None:
    """`fetching: 1,200 / 10,000 songs`, `uploading: 40 / 99 MB`, as the window shows them."""
    if progress is None or not progress.phase:
        return None
    if progress.total:
        return f"{progress.phase}: {amount(progress.phase, progress.fetched, progress.total)}"
    return f"{progress.phase}..."


def status(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk status [--json]`: Redis, queue depth by state, each user's sync, recent jobs."""
    with Runtime(settings) as runtime:
        snapshot = runtime.status(server_total=True)
        names = {a.user_id: a.display_name for a in runtime.accounts.list()}
    if args.json:
        print(json.dumps(to_jsonable(snapshot), indent=2))
    else:
        print_status(snapshot, names)
    return 0 if snapshot.redis.reachable else 1


def print_status(snapshot: StatusSnapshot, names: dict[str, str]) -> None:
    redis = snapshot.redis
    if redis.reachable:
        print(f"Redis: reachable at {redis.where}, {redis.latency_ms:.1f} ms, v{redis.version}")
    else:
        print(f"Redis: unreachable at {redis.where}: {redis.error}")
        return
    counts = ", ".join(f"{name} {count}" for name, count in snapshot.counts.items())
    print(f"Queue spotify-ingest: {counts}")
    if snapshot.queue_paused is not None:
        from favdesk.fleet_commands import pause_line

        print(pause_line(snapshot.queue_paused))
    if snapshot.commands is not None:
        print(commands_line(snapshot.commands))
    if snapshot.server_commands is not None:
        print(f"Redis's own count: {snapshot.server_commands:,} commands since it started")
    for user_id, sync_status in snapshot.syncs.items():
        progress = progress_line(snapshot.progress.get(user_id))
        extra = f" ({progress})" if progress and sync_status.state is SyncState.SYNCING else ""
        label = f"{names.get(user_id, user_id)} [{user_id}]"
        print(f"Sync {label}: {sync_status.raw or sync_status.state.value}{extra}")
    if not snapshot.syncs:
        print("No Spotify account linked: run `favdesk link`")
    for job in snapshot.jobs:
        when = job.ended_at or job.started_at or job.enqueued_at
        duration = f"{job.duration:.1f} s" if job.duration is not None else "-"
        tracks = f"{job.tracks} tracks" if job.tracks is not None else ""
        print(
            f"  {job.id}  {job.state.value:<9} {when:%Y-%m-%d %H:%M} {duration:>8} {tracks}"
            f"{'  ' + job.error if job.error else ''}"
        )


def commands_line(usage: CommandUsage) -> str:
    """favdesk's Redis commands on this machine, and a month of them against the quota."""
    machine = usage.machine
    return (
        f"Redis commands from favdesk on this machine: {machine.last_minute:,} in the last "
        f"minute, {machine.last_hour:,} in the last hour; a month at this rate: "
        f"{usage.month_projection:,} ({usage.quota_share:.0%} of {usage.quota:,})"
    )


def files(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk files [--json]`: the linked user's backups in Storage, newest first."""
    with Runtime(settings) as runtime:
        stored = runtime.files(args.user)
        where = runtime.storage_description
    if args.json:
        print(json.dumps([to_jsonable(f) | {"path": f.path} for f in stored], indent=2))
        return 0
    print(f"{len(stored)} file(s) in {where}")
    for item in stored:
        print(f"  {item.path}  {item.size:>10,} bytes  updated {item.updated_at:%Y-%m-%d %H:%M}")
    return 0


def worker(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk worker [--burst | --schedule]`: a headless worker; many machines can share one
    Redis; `--schedule` also runs the automatic backups of the accounts linked here."""
    from favdesk.redisconn import connect
    from favdesk.standalone import run_standalone

    if args.schedule and args.burst:
        raise FavdeskError("--schedule needs a worker that keeps running: leave out --burst")
    with Runtime(settings) as runtime:
        print(f"Redis: {runtime.redis_where}; Storage: {runtime.storage_description}", flush=True)
        return run_standalone(
            lambda: connect(runtime.redis_url, for_worker=True),
            burst=args.burst,
            services=runtime.services,
            scheduler=runtime.scheduler if args.schedule else None,
            describe_backup=lambda user_id: _latest_summary(runtime, user_id),
        )


def _latest_summary(runtime: Runtime, user_id: str) -> str:
    """What the newest snapshot changed, for the line after an automatic backup."""
    latest = runtime.history(user_id).latest
    return latest.summary if latest is not None else "no snapshot found"


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):
        return value.value
    return value


# --- demo ----------------------------------------------------------------------------------------


class DemoListener(WorkerListener):
    """Prints what the embedded worker does, and signals when the first import ends."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.ok = False
        self.error: str | None = None
        self.last_quarter = -1

    def on_job_started(self, job_id: str, user_id: str | None) -> None:
        print(f"   worker picked up {job_id}", flush=True)

    def on_job_progress(
        self, job_id: str, user_id: str | None, fetched: int, total: int, phase: str
    ) -> None:
        quarter = fetched * 4 // total if total else 0
        if phase == "fetching" and total and quarter > self.last_quarter:
            self.last_quarter = quarter
            print(f"   fetched {fetched}/{total}", flush=True)

    def on_log(self, line: str) -> None:
        print(f"   {line}", flush=True)

    def on_job_finished(
        self, job_id: str, user_id: str | None, ok: bool, error: str | None
    ) -> None:
        self.ok, self.error = ok, error
        self.finished.set()


def demo(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk demo`: the whole flow with no accounts, against favdesk's own stand-ins."""
    started = time.monotonic()
    print("favdesk demo: the whole pipeline, with stand-ins for Spotify and Supabase Storage")
    with open_demo(settings) as world:
        if world.memory_keyring:
            print("   (no OS keyring here: the demo keeps its stand-in tokens in memory)")
        listener = DemoListener()
        with Runtime(world.settings, listener=listener) as runtime:
            print(f"1. Spotify stand-in: {runtime.spotify_app.accounts_url}")
            print(f"2. Redis (embedded): {runtime.redis_where}")
            print(f"3. Storage stand-in: {runtime.storage_description}")
            print("4. Logging in with a simulated browser...", flush=True)
            result = runtime.link(open_browser=world.open_browser)
            account = result.account
            print(f"   linked {account.display_name} ({account.spotify_id}); jobId {result.job_id}")
            print("5. Importing Liked Songs:", flush=True)
            if not listener.finished.wait(timeout=300):
                raise FavdeskError("The demo import did not finish within 5 minutes")
            if not listener.ok:
                print(f"favdesk demo: the import failed: {listener.error}")
                return 1
            stored = runtime.files(account.user_id)
            snapshot = runtime.status()
        newest = stored[0]
        print("Summary")
        print(f"  account      {account.display_name} ({account.user_id})")
        print(f"  sync status  {snapshot.syncs[account.user_id].raw}")
        print(f"  file         {newest.path} ({newest.size:,} bytes)")
        print(f"  on disk      {world.object_path(newest.key)}")
        print(f"  took         {time.monotonic() - started:.1f} s")
    return 0
