"""Count the Redis commands favdesk sends, beside a stock `rq worker`: figures, not a test.

Hosted Redis (Upstash) bills per command. Each figure is an `INFO commandstats` delta on a
private redis-server (the meter's own INFO subtracted): per enqueue, per job, per dashboard
refresh, per import of a real library from the Spotify stand-in, per hour while idle (the
window open), hidden, paused or waiting for other apps' jobs, beside a stock `rq worker` idle
and suspended (`rq suspend`); and what steering every worker costs (the queue's pause, the
Workers list, a remote stop) with the client-side meter checked against the server's count.

    .venv/bin/python -m benchmarks.redis_commands [--window S] [--songs N] [--blocking-minutes M]

(run from the repository root: the test job functions come from tests/jobs.py.) Per-hour
figures are per-minute windows of `--window` seconds times 60, labelled derived; a blocking
worker's idle cost needs a long window to be measured (one blocking pop lasts minutes), so
without `--blocking-minutes` it is derived from RQ's timings and marked so.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keyring
import redis
from rq import Queue
from rq.defaults import DEFAULT_MAINTENANCE_TASK_INTERVAL, DEFAULT_WORKER_TTL

from benchmarks.table import Row, Section, print_rows
from favdesk import fleet, keys, queue, queue_status, recovery, redisconn
from favdesk.embedded_redis import EmbeddedRedis
from favdesk.gui.poller import IDLE_INTERVAL
from favdesk.meter import CommandMeter as ClientMeter
from favdesk.rq_worker import EmbeddedWorker
from favdesk.runtime import Runtime
from favdesk.sandbox.memkeyring import MemoryKeyring
from favdesk.sandbox.spotify import SpotifySandbox
from favdesk.settings import settings_from_values
from favdesk.worker import WAITING_WORKER_TTL, WorkerController
from favdesk.worker_events import WorkerListener, WorkerState
from tests import jobs
from tests.jobs import CommandMeter
from tests.test_ingest import login_request, spotify_env

USER = "zoe"
#: Seconds a stock `rq worker` runs before its idle window is measured (start-up's commands).
STOCK_SETTLE = 3.0


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

    def wait(self, check: Callable[[], bool], timeout: float = 60) -> None:
        with self.changed:
            if not self.changed.wait_for(check, timeout):
                raise SystemExit("the worker did not get there in time")


def measure(meter: CommandMeter, action: Callable[[], object]) -> Counter[str]:
    meter.reset()
    action()
    return meter.delta()


def row(label: str, counts: Counter[str] | float, note: str = "", target: int | None = None) -> Row:
    """Counts show as whole commands, rates and averages with two decimals."""
    total = counts if isinstance(counts, float) else sum(counts.values())
    figure = f"{total:.2f}" if isinstance(counts, float) else f"{total:d}"
    met = None if target is None else total <= target
    return Row(label, f"{figure} {note}".rstrip(), "" if target is None else f"{target}", met)


def wait_until_blocked(conn: redis.Redis, workers: int = 1) -> None:
    deadline = time.monotonic() + 30
    while (
        sum(c.get("cmd") == "blmove" and "b" in c.get("flags", "") for c in conn.client_list())
        < workers
    ):
        if time.monotonic() > deadline:
            raise SystemExit("the blocking worker never blocked")
        time.sleep(0.05)


def per_operation(url: str, meter: CommandMeter) -> Iterator[Row]:
    app = redisconn.connect(url)
    first = measure(meter, lambda: queue.enqueue_import(app, "u0", func=jobs.quick))
    yield row("enqueue_import, first call on a new client", first, "(+HELLO, INFO, SCRIPT LOAD)")
    yield row(
        "enqueue_import", measure(meter, lambda: queue.enqueue_import(app, "u1", func=jobs.quick))
    )
    again = measure(meter, lambda: queue.enqueue_import(app, "u1", func=jobs.quick))
    yield row("enqueue_import while one is queued (same job id)", again)
    for users in (1, 3):
        ids = [f"u{i}" for i in range(users)]
        snap = measure(meter, lambda ids=ids: queue_status.queue_snapshot(app, ids))
        yield row(f"dashboard refresh, {users} user(s) (1 round trip)", snap)
    yield row(
        "dashboard jobs table, recent_jobs(20) (2 round trips)",
        measure(meter, lambda: queue_status.recent_jobs(app)),
        "(only when the counts change)",
    )
    yield row(
        "recover_abandoned_jobs, nothing started",
        measure(meter, lambda: recovery.recover_abandoned_jobs(app)),
    )
    app.delete(keys.QUEUE_KEY)


def per_job(url: str, meter: CommandMeter) -> Iterator[Row]:
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
    yield row("first burst of a new controller, empty queue", meter.delta(), "(worker start-up)")
    meter.reset()
    controller.kick()
    controller.join(30)
    yield row("kick with an empty queue (one burst)", meter.delta())
    burst_of(1, "a")
    yield row("one job: kick -> burst -> done (worker side)", meter.delta())
    burst_of(5, "b")
    yield row("per job, 5 jobs in one burst (worker side)", sum(meter.delta().values()) / 5)
    controller.stop(timeout=30)


def heartbeat_cost(url: str, meter: CommandMeter) -> Iterator[Row]:
    app = redisconn.connect(url)
    jobs.PLANS["hb"] = plan = jobs.Plan()
    queue.enqueue_import(app, "hb", func=jobs.paged)
    worker = EmbeddedWorker(connection=redisconn.connect(url, for_worker=True))
    thread = threading.Thread(target=worker.work, kwargs={"burst": True}, daemon=True)
    thread.start()
    plan.holding.wait(30)
    job = worker.execution.job
    counts = measure(meter, lambda: worker.maintain_heartbeats(job))
    yield row("one heartbeat while a job runs (every 60 s)", counts, "(MULTI/EXEC counted)")
    plan.gate.set()
    thread.join(30)


def per_import(url: str, meter: CommandMeter, songs: int) -> Iterator[Row]:
    """One real import, from the import API's link to the file in Storage (local folder)."""
    with (
        tempfile.TemporaryDirectory() as folder,
        SpotifySandbox(tracks=songs, user_id=USER) as sandbox,
    ):
        keyring.set_keyring(MemoryKeyring())
        settings = settings_from_values(
            {**spotify_env(sandbox), "REDIS_URL": url, "FAVDESK_DATA_DIR": f"{folder}/data"}
        )
        waiter = Waiter()
        with Runtime(settings, listener=waiter) as runtime:
            meter.reset()
            if not runtime.import_spotify(login_request(sandbox)).ok:
                raise SystemExit("the import API refused the stand-in's login")
            runtime.worker.start()
            waiter.wait(lambda: waiter.finished >= 1, timeout=300)
            runtime.worker.join(30)
            counts = meter.delta()
    yield row(f"one import, {songs:,} songs: link, enqueue, run, done", counts)


def per_minute(meter: CommandMeter, window: float) -> float:
    meter.reset()
    time.sleep(window)
    return 60 * meter.total() / window


def per_hour(
    url: str, meter: CommandMeter, window: float, blocking_minutes: float, refresh: int
) -> Iterator[Row]:
    """favdesk's idle modes, then a stock `rq worker` idle and suspended, per hour."""
    app = redisconn.connect(url)
    waiter = Waiter()
    burst = WorkerController(lambda: redisconn.connect(url, for_worker=True), listener=waiter)
    burst.start()
    burst.join(30)
    idle = per_minute(meter, window)
    polls = 3600 / IDLE_INTERVAL
    yield row(
        "favdesk idle, window open, per hour",
        60 * idle + polls * refresh,
        f"(derived: {polls:.0f} refreshes x {refresh} + {idle:.2f}/min [{window:g} s])",
    )
    yield row(
        "favdesk idle, window hidden, per hour",
        60 * idle,
        f"(derived: no refreshes + {idle:.2f}/min [{window:g} s])",
        target=0,
    )
    burst.pause()
    queue.enqueue_import(app, "waiting", func=jobs.quick)
    burst.kick()
    paused = per_minute(meter, window)
    yield row(
        "favdesk paused, a job queued, per hour",
        60 * paused,
        f"(derived: {paused:.2f}/min [{window:g} s]; no refreshes while paused)",
        target=0,
    )
    burst.stop(timeout=30)
    app.delete(keys.QUEUE_KEY)

    blocking = WorkerController(
        lambda: redisconn.connect(url, for_worker=True), listener=waiter, wait_for_other_jobs=True
    )
    blocking.start()
    wait_until_blocked(app)
    waiting = per_minute(meter, blocking_minutes * 60 or window)
    note = f"{waiting:.2f}/min [{blocking_minutes * 60 or window:g} s]"
    if not blocking_minutes:
        waiting = derived_blocking_rate(WAITING_WORKER_TTL, extra=1)
        note = f"RQ's timings, worker_ttl {WAITING_WORKER_TTL} s; {note} measured"
    yield row("favdesk waiting for other apps' jobs, per hour", 60 * waiting, f"(derived: {note})")
    yield row(
        "stopping a waiting worker (wake-up job)", measure(meter, lambda: blocking.stop(timeout=30))
    )
    yield from stock_worker(url, meter, window)


def steering(url: str, meter: CommandMeter, window: float) -> Iterator[Row]:
    """The queue's pause for every favdesk worker, the Workers list, a remote stop; the app's
    client-side meter beside the server's count of the same commands."""
    counted = ClientMeter()
    app = redisconn.connect(url, counter=counted)
    app.ping()
    waiter = Waiter()
    blocking = WorkerController(
        lambda: redisconn.connect(url, for_worker=True), listener=waiter, wait_for_other_jobs=True
    )
    blocking.start()
    wait_until_blocked(app)
    burst = WorkerController(lambda: redisconn.connect(url, for_worker=True))
    burst.start()
    burst.join(30)
    yield row("pause_queue (SET + PUBLISH, 1 round trip)", measure(meter, lambda: pause(app)))
    waiter.wait(lambda: waiter.state is WorkerState.QUEUE_PAUSED)
    time.sleep(3)  # the wake-up of the blocked pop, then the check that it is gone
    yield row("a waiting worker hearing the pause (wake-up job)", meter.delta(), "(once)")
    kicked = measure(meter, lambda: (burst.kick(), time.sleep(1)))
    yield row("an idle app worker starting to wait out the pause", kicked, "(once)")
    paused = per_minute(meter, window)
    yield row(
        "both paused, per hour", 60 * paused, f"(derived: {paused:.2f}/min [{window:g} s])", 0
    )
    yield row("Workers list, 2 workers (2 round trips)", measure(meter, lambda: read(app)))
    resumed = measure(meter, lambda: (queue.resume_queue(app), time.sleep(1)))
    yield row("resume_queue, both workers back to work", resumed, "(queue empty)")
    name = blocking.worker_name or ""
    yield row(
        "stop a worker (RQ's shutdown) until it is gone",
        measure(meter, lambda: (fleet.stop_worker(app, name), blocking.join(30))),
    )
    burst.stop(timeout=30)
    sent = counted.total
    server = measure(meter, lambda: (pause(app), read(app), queue.resume_queue(app), poll(app)))
    yield row(
        "the app's meter (client side) for pause, list, resume, refresh",
        float(counted.total - sent),
        f"(the server counted {sum(server.values())}; no worker running)",
    )


def pause(app: redis.Redis) -> None:
    queue.pause_queue(app, "benchmark")


def read(app: redis.Redis) -> None:
    fleet.read_fleet(app)


def poll(app: redis.Redis) -> None:
    queue_status.queue_snapshot(app, [USER])


def stock_worker(url: str, meter: CommandMeter, window: float) -> Iterator[Row]:
    """`rq worker` as RQ ships it, on favdesk's queue: idle (blocking), then `rq suspend`ed.

    `rq worker` refuses to start while suspended and a blocking worker notices a suspension
    only between jobs, so one trivial job follows the suspension.
    """
    rq = [sys.executable, "-m", "rq.cli"]
    with stock_rq_worker(url):
        conn = redisconn.connect(url, for_worker=True)
        wait_until_blocked(conn)
        time.sleep(STOCK_SETTLE)
        idle = per_minute(meter, window)
        yield row(
            "stock rq worker, idle, per hour",
            60 * derived_blocking_rate(DEFAULT_WORKER_TTL),
            f"(derived: RQ's timings, worker_ttl {DEFAULT_WORKER_TTL} s; "
            f"{idle:.2f}/min measured [{window:g} s])",
        )
        subprocess.run([*rq, "suspend", "--url", url], check=True, capture_output=True)
        try:
            Queue(keys.QUEUE_NAME, connection=conn).enqueue("time.sleep", 0)
            time.sleep(STOCK_SETTLE)
            suspended = per_minute(meter, window)
        finally:
            subprocess.run([*rq, "resume", "--url", url], check=True, capture_output=True)
    yield row(
        "stock rq worker, suspended, per hour",
        60 * suspended,
        f"(derived: {suspended:.2f}/min [{window:g} s])",
    )


@contextmanager
def stock_rq_worker(url: str) -> Iterator[None]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--url", url, "--quiet", keys.QUEUE_NAME],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(30)


def derived_blocking_rate(worker_ttl: int, extra: int = 0) -> float:
    """Commands a minute of RQ's idle loop: HSET+EXPIRE+BLMOVE per blocking pop (worker_ttl -
    15 s); maintenance (11 commands, plus `extra`: favdesk's 1-command dead-worker check) on
    every wake-up after 600 s."""
    pop = worker_ttl - 15
    wakes_per_maintenance = -(-DEFAULT_MAINTENANCE_TASK_INTERVAL // pop)
    cycle = wakes_per_maintenance * pop
    commands = wakes_per_maintenance * 3 + 11 + extra
    return 60 * commands / cycle


def rows(
    window: float = 10.0, songs: int = 2_345, blocking_minutes: float = 0.0
) -> Iterator[Row | Section]:
    yield Section(
        "Redis commands (INFO commandstats deltas on a private redis-server; favdesk's queue "
        "layer, a real import, idle modes beside a stock rq worker)"
    )
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persistent=False) as server:
        meter = CommandMeter(redisconn.connect(server.url))
        dashboard = redisconn.connect(server.url)
        dashboard.ping()  # the client's own start-up (HELLO...) is not a refresh
        refresh = measure(meter, lambda: queue_status.queue_snapshot(dashboard, [USER]))
        yield from per_operation(server.url, meter)
        yield from per_job(server.url, meter)
        yield from heartbeat_cost(server.url, meter)
        yield from per_import(server.url, meter, songs)
        yield from per_hour(server.url, meter, window, blocking_minutes, sum(refresh.values()))
        yield from steering(server.url, meter, window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=10.0, help="idle windows, seconds")
    parser.add_argument("--songs", type=int, default=2_345, help="songs of the measured import")
    parser.add_argument("--blocking-minutes", type=float, default=0.0)
    args = parser.parse_args()
    print_rows(rows(args.window, args.songs, args.blocking_minutes))


if __name__ == "__main__":
    main()
