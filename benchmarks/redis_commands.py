"""Count the Redis commands favdesk's queue layer sends: figures for the issue note.

Hosted Redis (Upstash) bills per command. Each figure is an `INFO commandstats` delta on a
private redis-server (the meter's own INFO subtracted): per enqueue, per job, per dashboard
snapshot, per stop, and per minute while idle, paused or waiting for other apps' jobs.

    .venv/bin/python -m benchmarks.redis_commands [--window S] [--blocking-minutes M]

(run from the repository root: the test job functions come from tests/jobs.py.) The blocking
worker's idle cost needs a long window to be measured (one blocking pop lasts 1785 s); without
`--blocking-minutes` it is derived from RQ's timings and marked so.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis
from rq.defaults import DEFAULT_MAINTENANCE_TASK_INTERVAL

from favdesk import keys, queue, queue_status, recovery, redisconn
from favdesk.embedded_redis import EmbeddedRedis
from favdesk.rq_worker import EmbeddedWorker
from favdesk.worker import WAITING_WORKER_TTL, WorkerController
from favdesk.worker_events import WorkerListener, WorkerState
from tests import jobs
from tests.jobs import CommandMeter


class Waiter(WorkerListener):
    """Lets the benchmark wait for worker events without sleeping."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.finished = 0
        self.state = WorkerState.STOPPED

    def on_state(self, state: WorkerState) -> None:
        with self.changed:
            self.state = state
            self.changed.notify_all()

    def on_job_finished(self, job_id, user_id, ok, error) -> None:
        with self.changed:
            self.finished += 1
            self.changed.notify_all()

    def wait(self, check: Callable[[], bool], timeout: float = 30) -> None:
        with self.changed:
            if not self.changed.wait_for(check, timeout):
                raise SystemExit("the worker did not get there in time")


def measure(meter: CommandMeter, action: Callable[[], object]) -> Counter[str]:
    meter.reset()
    action()
    return meter.delta()


def row(label: str, counts: Counter[str] | float, note: str = "") -> None:
    """Counts print as whole commands, rates and averages with two decimals."""
    figure = f"{counts:8.2f}" if isinstance(counts, float) else f"{sum(counts.values()):8d}"
    print(f"{label:<52} {figure}  {note}")


def wait_until_blocked(conn: redis.Redis, workers: int = 1) -> None:
    deadline = time.monotonic() + 30
    while (
        sum(c.get("cmd") == "blmove" and "b" in c.get("flags", "") for c in conn.client_list())
        < workers
    ):
        if time.monotonic() > deadline:
            raise SystemExit("the blocking worker never blocked")
        time.sleep(0.05)


def per_operation(url: str, meter: CommandMeter) -> None:
    app = redisconn.connect(url)
    first = measure(meter, lambda: queue.enqueue_import(app, "u0", func=jobs.quick))
    row("enqueue_import, first call on a new client", first, "(+HELLO, INFO, SCRIPT LOAD)")
    row("enqueue_import", measure(meter, lambda: queue.enqueue_import(app, "u1", func=jobs.quick)))
    again = measure(meter, lambda: queue.enqueue_import(app, "u1", func=jobs.quick))
    row("enqueue_import while one is queued (same job id)", again)
    for users in (1, 3):
        ids = [f"u{i}" for i in range(users)]
        snap = measure(meter, lambda ids=ids: queue_status.queue_snapshot(app, ids))
        row(f"queue_snapshot, {users} user(s) (1 round trip)", snap)
    row(
        "recent_jobs(limit=20) (2 round trips)",
        measure(meter, lambda: queue_status.recent_jobs(app)),
    )
    row(
        "recover_abandoned_jobs, nothing started",
        measure(meter, lambda: recovery.recover_abandoned_jobs(app)),
    )
    row("ping (dashboard latency)", measure(meter, lambda: redisconn.ping(app)))
    app.delete(keys.QUEUE_KEY)


def per_job(url: str, meter: CommandMeter) -> None:
    app = redisconn.connect(url)
    waiter = Waiter()
    controller = WorkerController(lambda: redisconn.connect(url, for_worker=True), listener=waiter)

    def burst_of(count: int, tag: str) -> None:
        target = waiter.finished + count
        for i in range(count):
            queue.enqueue_import(app, f"{tag}{i}", func=jobs.quick)
        meter.reset()
        controller.kick()
        waiter.wait(lambda: waiter.finished >= target)
        controller.join(30)

    meter.reset()
    controller.start()
    controller.join(30)
    row("first burst of a new controller, empty queue", meter.delta(), "(worker start-up)")
    meter.reset()
    controller.kick()
    controller.join(30)
    row("kick with an empty queue (one burst)", meter.delta())
    burst_of(1, "a")
    row("one job: kick -> burst -> done (worker side)", meter.delta())
    burst_of(5, "b")
    row("per job, 5 jobs in one burst (worker side)", sum(meter.delta().values()) / 5)
    controller.stop(timeout=30)


def heartbeat_cost(url: str, meter: CommandMeter) -> None:
    app = redisconn.connect(url)
    jobs.PLANS["hb"] = plan = jobs.Plan()
    queue.enqueue_import(app, "hb", func=jobs.paged)
    worker = EmbeddedWorker(connection=redisconn.connect(url, for_worker=True))
    thread = threading.Thread(target=worker.work, kwargs={"burst": True}, daemon=True)
    thread.start()
    plan.holding.wait(30)
    job = worker.execution.job
    counts = measure(meter, lambda: worker.maintain_heartbeats(job))
    row("one heartbeat while a job runs (every 60 s)", counts, "(MULTI/EXEC counted)")
    plan.gate.set()
    thread.join(30)


def idle(url: str, meter: CommandMeter, window: float, blocking_minutes: float) -> None:
    app = redisconn.connect(url)
    waiter = Waiter()
    burst = WorkerController(lambda: redisconn.connect(url, for_worker=True), listener=waiter)
    burst.start()
    burst.join(30)
    meter.reset()
    time.sleep(window)
    row(f"idle, burst mode (default), per minute [{window:.0f} s]", 60 * meter.total() / window)
    burst.pause()
    queue.enqueue_import(app, "waiting", func=jobs.quick)
    meter.reset()
    burst.kick()
    time.sleep(window)
    row(f"paused with a job queued, per minute [{window:.0f} s]", 60 * meter.total() / window)
    burst.stop(timeout=30)
    app.delete(keys.QUEUE_KEY)

    blocking = WorkerController(
        lambda: redisconn.connect(url, for_worker=True),
        listener=waiter,
        wait_for_other_jobs=True,
    )
    blocking.start()
    wait_until_blocked(app)
    seconds = blocking_minutes * 60 or window
    meter.reset()
    time.sleep(seconds)
    row(f"waiting for other apps' jobs, per minute [{seconds:.0f} s]", 60 * meter.total() / seconds)
    if not blocking_minutes:
        print(f"{'':<52} {derived_blocking_rate():>8.2f}  (derived: RQ timings)")
    stop = measure(meter, lambda: blocking.stop(timeout=30))
    row("stopping a waiting worker (wake-up job)", stop)


def derived_blocking_rate() -> float:
    """RQ's idle loop: HSET+EXPIRE+BLMOVE per blocking pop (WAITING_WORKER_TTL - 15 s); maintenance
    (11 commands, plus favdesk's 1-command dead-worker check) on every wake-up after 600 s."""
    pop = WAITING_WORKER_TTL - 15
    wakes_per_maintenance = -(-DEFAULT_MAINTENANCE_TASK_INTERVAL // pop)
    cycle = wakes_per_maintenance * pop
    commands = wakes_per_maintenance * 3 + 12
    return 60 * commands / cycle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=10.0, help="idle windows, seconds")
    parser.add_argument("--blocking-minutes", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as server:
        meter = CommandMeter(redisconn.connect(server.url))
        print(f"{'operation':<52} {'commands':>8}")
        per_operation(server.url, meter)
        per_job(server.url, meter)
        heartbeat_cost(server.url, meter)
        idle(server.url, meter, args.window, args.blocking_minutes)


if __name__ == "__main__":
    main()
