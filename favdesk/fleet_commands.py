"""CLI handlers that steer every worker on the Redis: `favdesk pause | resume | workers |
cancel | stop-worker`. They call the runtime the dashboard calls; errors go to `favdesk.cli`."""

from __future__ import annotations

import argparse
import json

from favdesk.fleet import Fleet, WorkerInfo
from favdesk.keys import QUEUE_NAME
from favdesk.queue import QueuePause
from favdesk.runtime import Runtime
from favdesk.settings import Settings

STOCK_NOTE = (
    "{count} stock RQ worker(s) on {queue} do not hear favdesk's pause and keep taking jobs: "
    "{names} (`rq suspend` would stop them too, at about 300 commands a minute each)"
)


def pause(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk pause [--cancel]`: no favdesk worker takes a job until `favdesk resume`."""
    with Runtime(settings) as runtime:
        paused = runtime.pause_queue(cancel_running=args.cancel, by="favdesk pause")
        fleet = runtime.workers()
    running = (
        "running imports are cancelled between pages and re-queued"
        if args.cancel
        else "running imports finish first"
    )
    print(f"Queue {QUEUE_NAME} paused for every favdesk worker ({paused.by}); {running}.")
    print_stock_note(fleet)
    return 0


def resume(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk resume`: favdesk's workers take jobs again, what was queued first."""
    with Runtime(settings) as runtime:
        resumed = runtime.resume_queue()
    print(f"Queue {QUEUE_NAME} " + ("resumed." if resumed else "was not paused."))
    return 0


def workers(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk workers [--json] [--clean]`: every worker on this Redis; `--clean` removes the
    registrations of those whose heartbeat expired."""
    from favdesk.commands import to_jsonable

    with Runtime(settings) as runtime:
        fleet = runtime.workers()
        removed = runtime.clean_workers([w.name for w in fleet.expired]) if args.clean else 0
        own = runtime.worker.worker_name
    if args.json:
        print(json.dumps(to_jsonable(fleet), indent=2))
        return 0
    print(pause_line(fleet.pause))
    for worker in fleet.workers:
        print(worker_line(worker, own))
    if not fleet.workers:
        print("No worker is registered on this Redis.")
    print_stock_note(fleet)
    if fleet.expired and not args.clean:
        print(
            f"{len(fleet.expired)} expired registration(s): `favdesk workers --clean` removes them"
        )
    if removed:
        print(f"Removed {removed} expired registration(s).")
    return 0


def cancel(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk cancel JOB_ID`: the worker running it cancels it between pages."""
    with Runtime(settings) as runtime:
        worker = runtime.cancel_job(args.job_id)
    print(
        f"Asked {worker} to cancel {args.job_id}: a favdesk worker stops after the page it is "
        "fetching (the pages are kept; the next sync resumes), a stock RQ worker kills the job."
    )
    return 0


def stop_worker(args: argparse.Namespace, settings: Settings) -> int:
    """`favdesk stop-worker NAME`: RQ's shutdown command; the worker finishes its job first."""
    with Runtime(settings) as runtime:
        runtime.stop_worker(args.name)
    print(f"Asked {args.name} to stop after its current job.")
    return 0


def pause_line(pause: QueuePause | None) -> str:
    if pause is None:
        return f"Queue {QUEUE_NAME}: running"
    since = f" since {pause.since.astimezone():%Y-%m-%d %H:%M}" if pause.since else ""
    return f"Queue {QUEUE_NAME}: paused{since} by {pause.by}"


def worker_line(worker: WorkerInfo, own: str | None = None) -> str:
    where = f"{worker.host or '?'}:{worker.pid or '?'}"
    beat = f"{worker.last_heartbeat.astimezone():%H:%M:%S}" if worker.last_heartbeat else "-"
    job = worker.job_id or "-"
    if worker.progress is not None and worker.progress.total:
        job += f" ({worker.progress.phase} {worker.progress.fetched}/{worker.progress.total})"
    this = " (this process)" if worker.name == own else ""
    state = "expired: heartbeat gone" if worker.expired else worker.state
    return f"  {worker.name}  {worker.kind}{this}  {where}  {state}  job {job}  heartbeat {beat}"


def print_stock_note(fleet: Fleet) -> None:
    stock = fleet.stock_on_queue
    if stock and fleet.pause is not None:
        names = ", ".join(w.name for w in stock)
        print(STOCK_NOTE.format(count=len(stock), queue=QUEUE_NAME, names=names))
