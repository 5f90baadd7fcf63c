"""Turns the dashboard's state into words, tones and icon looks; Qt-free so tests read it directly.

Tones are "neutral", "ok", "busy", "warn" and "error"; widgets map them to palette-aware colours.
`SyncState` and rq's `JobStatus` are imported in the functions that compare them: their modules
load Redis and RQ, which the first paint must not wait for, and which the runtime that read the
snapshot has loaded by then (tests/gui/test_run_app.py checks the first paint).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from favdesk.gui.state import Dashboard, JobOutcome, LiveJob
from favdesk.progress import amount
from favdesk.worker_events import WorkerState

if TYPE_CHECKING:
    from favdesk.fleet import WorkerInfo
    from favdesk.sync_status import Progress, SyncStatus

#: What to do about each `error:<reason>` a sync can end with (keys: `SyncErrorReason` values).
REMEDIES = {
    "reauth": "Spotify no longer accepts this link: press Link again to link the account again.",
    "auth": "Spotify refused favdesk's credentials: check the Client ID (and secret) in Settings, "
    "then link again.",
    "notallowed": "This Spotify app is in development mode and the account is not on its "
    "allow-list: add it under Users and Access in the Spotify Developer Dashboard, or use your "
    "own Client ID in Settings.",
    "noaccount": "No Spotify account is linked for this user: press Link Spotify.",
    "settings": "A setting is wrong: fix it in Settings, then press Sync now.",
    "network": "A service could not be reached: check the connection, then press Sync now.",
    "spotify": "Spotify answered with an error: press Sync now to try again later.",
    "storage": "Storage did not take the file (the message below says why): for Supabase, "
    "check its URL and service-role key in Settings; for the local folder, its free space and "
    "permissions. Then press Sync now: the songs already fetched are kept.",
    "toolarge": "The file is bigger than Supabase accepts: raise the project's upload limit "
    "(Storage > Settings in the Supabase dashboard; paid plans allow more than 50 MB) or the "
    "bucket's file size limit, or use the local folder (clear the Supabase URL in Settings), "
    "then press Sync now: the songs already fetched are kept.",
    "redis": "Redis could not be reached: check the Redis URL in Settings.",
    "keyring": "The system keyring is locked or missing: unlock it (or install a Secret "
    "Service), then press Sync now.",
    "cancelled": "The import was stopped; the pages already fetched are kept: press Sync now "
    "to resume.",
}
DEFAULT_REMEDY = "Press Sync now to try again."
#: A failed sync's reason in a few words.
REASON_WORDS = {
    "reauth": "the Spotify link expired or was revoked",
    "auth": "Spotify refused the app's credentials",
    "notallowed": "the account is not allowed in this Spotify app",
    "noaccount": "no linked account",
    "settings": "a setting is wrong",
    "network": "a service could not be reached",
    "spotify": "Spotify answered with an error",
    "storage": "Storage refused the file",
    "toolarge": "the file is over Supabase's size limit",
    "redis": "Redis could not be reached",
    "keyring": "the keyring is unavailable",
    "cancelled": "stopped before it finished",
    "ratelimited": "Spotify's rate limit",
}
#: The button that carries out a remedy: error reason -> action (anything else: "sync").
REMEDY_ACTIONS = {
    "reauth": "relink",
    "noaccount": "link",
    "auth": "settings",
    "notallowed": "settings",
    "settings": "settings",
    "storage": "settings",
    "redis": "settings",
}
#: Why a queued sync does not start, and the button that fixes it, by worker state.
QUEUED_REMEDY: dict[WorkerState, tuple[str, str | None]] = {
    WorkerState.PAUSED: ("The worker is paused: press Resume to run the sync.", "resume"),
    WorkerState.STOPPED: ("The worker is stopped: press Start to run the sync.", "start"),
    WorkerState.QUEUE_PAUSED: (
        "The queue is paused for every worker: Resume the queue (Worker card) to run it.",
        None,
    ),
}
WORKER_WORDS = {
    WorkerState.STOPPED: ("Stopped: no jobs run until you start it", "warn"),
    WorkerState.IDLE: ("Running, idle", "ok"),
    WorkerState.BUSY: ("Running a job", "busy"),
    WorkerState.WAITING: ("Waiting for jobs from other apps", "ok"),
    WorkerState.PAUSED: ("Paused: queued jobs wait until you resume", "warn"),
    WorkerState.QUEUE_PAUSED: ("Waiting for the queue to resume (no commands meanwhile)", "warn"),
    WorkerState.STOPPING: ("Stopping after the current job...", "busy"),
    WorkerState.WAITING_FOR_REDIS: ("Waiting for Redis: jobs run when it answers again", "warn"),
}
#: Worker states in which no new job starts.
HALTED = (
    WorkerState.PAUSED,
    WorkerState.STOPPED,
    WorkerState.STOPPING,
    WorkerState.QUEUE_PAUSED,
)
#: What a stop does to the sync that is running, by the choice made (see `Dashboard.stopping`).
STOPPING_WORDS = {
    "finish": "Stopping: the current sync finishes first, then no new ones start",
    "cancel": "Stopping: the current sync ends after the page it is fetching",
}


def local(moment: datetime) -> datetime:
    """A datetime in local time; naive values from the core are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone()


def clock(moment: datetime | None, now: datetime | None = None) -> str:
    """HH:MM for today, "28 Nov 14:05" for another day, "never" for None."""
    if moment is None:
        return "never"
    moment = local(moment)
    today = local(now or datetime.now(UTC)).date()
    if moment.date() == today:
        return moment.strftime("%H:%M")
    return f"{moment.day} {moment:%b %H:%M}"


def size(count: int) -> str:
    """A byte count for people: 812 B, 12.3 kB, 4.1 MB."""
    amount = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def number(count: int | None) -> str:
    return "?" if count is None else f"{count:,}"


def reason_of(text: str | None) -> str | None:
    """The short reason in "error:reason[:detail]" or "reason", if it is one favdesk knows."""
    if not text:
        return None
    head = text.removeprefix("error:").split(":", 1)[0].strip()
    return head if head in REMEDIES or head == "ratelimited" else None


def remedy(reason: str | None, resume_at: datetime | None = None, halted: bool = False) -> str:
    """What the user can do about a failed sync (`halted`: the worker is paused or stopped)."""
    if reason == "ratelimited":
        if resume_at is None:
            return "Spotify asked favdesk to slow down: press Sync now again later."
        at = clock(resume_at)
        if halted:
            return f"Spotify asked favdesk to slow down: press Resume; it then continues at {at}."
        return f"Spotify asked favdesk to slow down: the import resumes by itself at {at}."
    return REMEDIES.get(reason or "", DEFAULT_REMEDY)


@dataclass(frozen=True)
class SyncView:
    words: str
    tone: str
    remedy: str | None = None
    fetched: int = 0
    total: int | None = None
    active: bool = False
    last_success: str = "never"
    action: str | None = None
    #: The failure's own message (what Spotify, Storage or Redis said), when there is one.
    detail: str | None = None
    #: The sync's phase (`progress.ImportPhase`): it says what `fetched` and `total` count.
    phase: str = ""


def user_progress(d: Dashboard) -> Progress | None:
    """The selected user's progress as the last Redis read found it."""
    if d.snapshot is None or d.user_id is None:
        return None
    return d.snapshot.progress.get(d.user_id)


def last_success(d: Dashboard) -> datetime | None:
    """When the selected user's last sync succeeded: worker callback, job list or newest file."""
    if d.user_id is None:
        return None
    found: list[datetime] = []
    if d.outcome and d.outcome.ok and d.outcome.user_id == d.user_id:
        found.append(d.outcome.at)
    if d.snapshot is not None:
        from rq.job import JobStatus

        progress = user_progress(d)
        if progress is not None and progress.done_at:
            found.append(progress.done_at)
        found += [
            j.ended_at
            for j in d.snapshot.jobs
            if j.user_id == d.user_id and j.state == JobStatus.FINISHED and j.ended_at
        ]
    found += [f.updated_at for f in d.files if f.updated_at]
    return max((local(moment) for moment in found), default=None)


def sync_view(d: Dashboard, now: datetime | None = None) -> SyncView:
    """The selected user's sync in words and tone, with the remedy for an error."""
    done_at = last_success(d)
    last = clock(done_at, now)
    if not d.ready:
        return SyncView("Waiting for favdesk to start", "neutral", last_success=last)
    if d.user_id is None:
        return SyncView(
            "Nothing to sync yet",
            "neutral",
            REMEDIES["noaccount"],
            last_success=last,
            action="link",
        )
    if d.job is not None and d.job.user_id == d.user_id:
        return _live_sync(d.job, last)
    snapshot = d.snapshot
    status = snapshot.syncs.get(d.user_id) if snapshot is not None else None
    outcome = d.outcome if d.outcome and d.outcome.user_id == d.user_id else None
    if d.queued_job is not None or _queued_in_snapshot(d, outcome):
        hint, action = QUEUED_REMEDY.get(_holding_back(d), (None, None))
        return SyncView("Queued", "busy", hint, last_success=last, action=action)
    if outcome is not None and (
        snapshot is None or status is None or outcome.at >= snapshot.taken_at
    ):
        return _outcome_sync(outcome, now, last)
    if status is not None:
        return _status_sync(d, status, done_at, now, last)
    return SyncView("Not synced yet" if done_at is None else "Idle", "neutral", last_success=last)


def _holding_back(d: Dashboard) -> WorkerState:
    """What keeps a queued sync waiting: the worker's own pause or stop, else the queue's."""
    if d.worker not in QUEUED_REMEDY and d.queue_paused:
        return WorkerState.QUEUE_PAUSED
    return d.worker


def _queued_in_snapshot(d: Dashboard, outcome: JobOutcome | None) -> bool:
    """A job of the user waits in the queue (say, re-queued by a stop) per a read newer than
    the worker's last word."""
    snapshot = d.snapshot
    if snapshot is None or (outcome is not None and outcome.at > snapshot.taken_at):
        return False
    from rq.job import JobStatus

    return any(j.user_id == d.user_id and j.state == JobStatus.QUEUED for j in snapshot.jobs)


def _live_sync(job: LiveJob, last: str) -> SyncView:
    words = f"Syncing: {job.phase}" if job.phase else "Syncing"
    return SyncView(words, "busy", None, job.fetched, job.total, True, last, phase=job.phase)


def _outcome_sync(outcome: JobOutcome, now: datetime | None, last: str) -> SyncView:
    if outcome.ok:
        return SyncView(f"Done at {clock(outcome.at, now)}", "ok", last_success=last)
    return _error_view(reason_of(outcome.error), None, last, outcome.error)


def _status_sync(
    d: Dashboard, status: SyncStatus, done_at: datetime | None, now: datetime | None, last: str
) -> SyncView:
    from favdesk.sync_status import SyncErrorReason, SyncState

    if status.state == SyncState.SYNCING:
        progress = user_progress(d)
        fetched = progress.fetched if progress else 0
        total = progress.total if progress else None
        phase = progress.phase if progress else ""
        words = f"Syncing: {phase}" if phase else "Syncing"
        return SyncView(words, "busy", None, fetched, total, True, last, phase=phase)
    if status.state == SyncState.DONE:
        at = f" at {clock(done_at, now)}" if done_at else ""
        return SyncView(f"Done{at}", "ok", last_success=last)
    if status.state == SyncState.ERROR:
        message = (
            _failure_message(d) or f"Redis says: error:{status.reason or SyncErrorReason.FAILED}"
        )
        halted = d.worker in HALTED
        return _error_view(status.reason_kind, status.resume_at, last, message, halted)
    return SyncView("Idle", "neutral", last_success=last)


def _failure_message(d: Dashboard) -> str | None:
    """The selected user's last failure in its own words: the worker's, else the job table's."""
    if d.outcome is not None and d.outcome.user_id == d.user_id and not d.outcome.ok:
        return d.outcome.error
    from rq.job import JobStatus

    jobs = d.snapshot.jobs if d.snapshot is not None else []
    failed = [j for j in jobs if j.user_id == d.user_id and j.state == JobStatus.FAILED]
    return failed[0].error if failed else None


def _error_view(
    reason: str | None,
    resume_at: datetime | None,
    last: str,
    message: str | None,
    halted: bool = False,
) -> SyncView:
    """A failed sync: its reason in words, the remedy, and the failure's own message."""
    help_text = remedy(reason, resume_at, halted)
    if reason == "ratelimited" and resume_at is not None:
        words = f"Waiting for Spotify until {clock(resume_at)}"
        return SyncView(words, "warn", help_text, last_success=last, detail=message)
    words = f"Error: {REASON_WORDS.get(reason or '', 'the import failed')}"
    action = REMEDY_ACTIONS.get(reason or "", "sync")
    return SyncView(words, "error", help_text, last_success=last, action=action, detail=message)


def worker_view(d: Dashboard) -> tuple[str, str]:
    """The worker's state in words and tone; a stop in progress says what happens to the job,
    and while Redis does not answer, that the worker waits for it and since when."""
    if d.worker == WorkerState.STOPPING and d.stopping in STOPPING_WORDS:
        return STOPPING_WORDS[d.stopping], "busy"
    waiting = redis_wait(d)
    if waiting is not None:
        return f"{waiting}: jobs run when it answers again", "warn"
    return WORKER_WORDS[d.worker]


def redis_wait(d: Dashboard) -> str | None:
    """ "Waiting for Redis since 14:05" while Redis does not answer and the worker would run."""
    if d.redis_down_since is None or d.worker in HALTED:
        return None
    return f"Waiting for Redis since {clock(d.redis_down_since)}"


def can_sync(d: Dashboard) -> bool:
    """Sync now makes sense: a linked account that needs no re-linking and is not syncing."""
    account = d.account
    if not d.ready or account is None or account.needs_relink or "sync" in d.pending:
        return False
    return d.job is None or d.job.user_id != d.user_id


@dataclass(frozen=True)
class RedisView:
    words: str
    tone: str
    where: str
    latency: str
    version: str
    activity: str


def redis_view(d: Dashboard) -> RedisView:
    """Reachability from the last read, and what favdesk is sending Redis right now."""
    health = d.snapshot.redis if d.snapshot is not None else None
    where = (health.where if health else "") or d.redis_where or "-"
    activity = redis_activity(d)
    if d.status_error and (health is None or not health.reachable):
        return RedisView(f"Redis unreachable: {d.status_error}", "error", where, "", "", activity)
    if health is None:
        return RedisView("Not read yet", "neutral", where, "", "", activity)
    if not health.reachable:
        words = f"Redis unreachable: {health.error or 'no answer'}"
        return RedisView(words, "error", where, "", "", activity)
    latency = f"{health.latency_ms:.1f} ms" if health.latency_ms is not None else ""
    return RedisView("Reachable", "ok", where, latency, health.version or "", activity)


def redis_activity(d: Dashboard) -> str:
    """ "Polling: ..." when favdesk sends Redis commands now, "Quiet: ..." when it sends none."""
    senders = []
    if d.poll.active and d.poll.interval:
        what = "retrying" if d.poll.failures else "reading the queue"
        senders.append(f"the dashboard is {what} every {d.poll.interval:g} s")
    if d.worker in (WorkerState.BUSY, WorkerState.STOPPING):
        senders.append("the worker is running a job")
    elif d.worker == WorkerState.WAITING:
        senders.append("the worker waits for jobs from other apps (a blocking read)")
    if senders:
        return "Polling: " + "; ".join(senders)
    return f"Quiet: favdesk sends Redis no commands ({d.poll.reason})"


PAUSE_QUEUE, RESUME_QUEUE = "Pause the queue", "Resume the queue"
#: What the Worker card says under the queue's pause, and the tooltip of its button.
QUEUE_TIP = (
    "Pause or resume the queue for every favdesk worker (this app's, and `favdesk worker` on "
    "any machine): running imports finish first, or are cancelled between pages if you ask."
)


@dataclass(frozen=True)
class QueueView:
    """The queue's pause for every worker: words, tone, and the button's label."""

    words: str
    tone: str
    button: str
    #: Stock RQ workers on the queue do not hear favdesk's pause: said when there are some.
    note: str = ""


def queue_view(d: Dashboard) -> QueueView:
    """ "Queue running" or "Queue paused since 14:02 by favdesk pause on laptop"."""
    stock = d.fleet.stock_on_queue if d.fleet is not None else ()
    if not d.queue_paused:
        return QueueView("Queue: running for every worker", "ok", PAUSE_QUEUE)
    pause = d.queue_pause
    since = f" since {clock(pause.since)}" if pause is not None and pause.since else ""
    by = f" by {pause.by}" if pause is not None else ""
    note = ""
    if stock:
        note = (
            f"{len(stock)} stock RQ worker(s) on the queue do not hear this pause and keep "
            "taking jobs (`rq suspend` would stop them, at about 300 commands a minute each)."
        )
    words = f"Queue paused{since}{by}: no favdesk worker takes a job"
    return QueueView(words, "warn", RESUME_QUEUE, note)


@dataclass(frozen=True)
class MeterView:
    """The Redis card's command meter: counts, the month ahead, Redis's own total."""

    words: str
    month: str
    tone: str
    per_minute: tuple[int, ...]
    server: str


def meter_view(d: Dashboard) -> MeterView:
    """favdesk's commands on this machine in the last minute and hour (this app's own too),
    a month at the last hour's rate against the quota, and Redis's total when asked."""
    server = "-"
    if d.server_commands is not None:
        total, at = d.server_commands
        server = f"{total:,} since Redis started, all its clients (asked at {clock(at)})"
    usage = d.commands
    if usage is None:
        return MeterView("not counted yet", "", "neutral", (), server)
    machine, mine = usage.machine, usage.process
    words = (
        f"{machine.last_minute:,} in the last minute, {machine.last_hour:,} in the last hour"
        f" (this app: {mine.last_minute:,} and {mine.last_hour:,})"
    )
    month = (
        f"{usage.month_projection:,} a month at this rate: {usage.quota_share:.0%} of your "
        f"{usage.quota:,}"
    )
    tone = "error" if usage.quota_share > 1 else "warn" if usage.quota_share > 0.8 else "ok"
    return MeterView(words, month, tone, machine.per_minute, server)


#: The Workers table's columns.
WORKER_COLUMNS = ("Worker", "Kind", "Host", "State", "Job", "Progress", "Heartbeat")
RQ_STATE_WORDS = {
    "suspended": "paused (waits for the queue)",
    "busy": "running a job",
    "idle": "idle",
    "started": "starting",
    "expired": "gone: heartbeat expired",
}


def worker_cells(
    worker: WorkerInfo, own: str | None, now: datetime | None = None
) -> tuple[str, ...]:
    """One row of the Workers table; this app's own worker is marked."""
    kind = f"{worker.kind} (this app)" if worker.name == own else worker.kind
    where = worker.host or "?"
    if worker.pid:
        where += f" pid {worker.pid}"
    progress = worker.progress
    done = ""
    if progress is not None and progress.phase:
        done = f"{progress.phase}: {amount(progress.phase, progress.fetched, progress.total)}"
    beat = clock(worker.last_heartbeat, now) if worker.last_heartbeat else ""
    state = RQ_STATE_WORDS.get(worker.state, worker.state)
    return (worker.name, kind, where, state, worker.job_id or "", done, beat)


def status_line(d: Dashboard) -> str:
    """One line for the tray tooltip and the top of its menu."""
    if d.startup == "starting":
        return "favdesk is starting..."
    if d.startup == "failed":
        return "favdesk could not start: open the dashboard"
    if d.job is not None:
        return f"Syncing: {amount(d.job.phase, d.job.fetched, d.job.total)}"
    if d.worker == WorkerState.PAUSED:
        return "Paused"
    if d.queue_paused:
        return "Queue paused for every worker"
    waiting = redis_wait(d)
    if waiting is not None:
        return waiting
    view = sync_view(d)
    if view.tone == "error":
        return f"Sync failed: {view.words.removeprefix('Error: ')}"
    if d.user_id is None:
        return "No Spotify account linked"
    if d.account is not None and d.account.needs_relink:
        return "The Spotify link expired: link again"
    return f"Idle, last sync {view.last_success}"


def tray_look(d: Dashboard) -> str:
    """Which tray icon fits: syncing, error, paused or idle (in that order of importance)."""
    if d.job is not None:
        return "syncing"
    if d.startup == "failed" or redis_wait(d) is not None or sync_view(d).tone == "error":
        return "error"
    if d.worker in (WorkerState.PAUSED, WorkerState.STOPPED):
        return "paused"
    return "idle"


def next_backup(d: Dashboard, now: datetime | None = None) -> str:
    """When the next automatic backup is queued, for the tray tooltip and the Account card."""
    plan = d.schedule
    if plan is None:
        return ""
    if not plan.schedule.enabled:
        return "Automatic backups are off (Settings)"
    what = f"Automatic backups {plan.schedule.describe()}"
    if plan.next_run is None:
        return f"{what}: they start once an account is linked"
    now = now or datetime.now(UTC)
    due = plan.next_run <= now
    if plan.held:
        if due:
            return f"{what}: one is due and runs when you resume the worker"
        return f"{what}: next {clock(plan.next_run, now)} (if the worker runs then)"
    return f"{what}: next {'now' if due else clock(plan.next_run, now)}"
