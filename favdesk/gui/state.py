"""The dashboard's state as one immutable value: the controller replaces it, widgets render it.

Qt-free, so tests build any state from plain data and the window renders it without a runtime.
Core values (accounts, snapshots, files) are kept as the core returns them; their types are
imported for the type checker only (the snapshot's module loads Redis and RQ, which the runtime
loads off the GUI thread).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from favdesk.worker_events import WorkerState

if TYPE_CHECKING:
    from favdesk.accounts import Account
    from favdesk.diff import SnapshotDiff
    from favdesk.fleet import Fleet
    from favdesk.history import History
    from favdesk.meter import CommandUsage
    from favdesk.queue import QueuePause
    from favdesk.runtime import StatusSnapshot
    from favdesk.schedule import SchedulePlan
    from favdesk.storage import StoredFile

Startup = Literal["starting", "ready", "failed"]


@dataclass(frozen=True)
class LiveJob:
    """The job the embedded worker is running, from its callbacks (no Redis involved)."""

    job_id: str
    user_id: str
    fetched: int = 0
    total: int | None = None
    phase: str = "starting"


@dataclass(frozen=True)
class JobOutcome:
    """How the embedded worker's last job ended."""

    job_id: str
    user_id: str
    ok: bool
    error: str | None
    at: datetime


@dataclass(frozen=True)
class LinkState:
    """The "Link Spotify" flow: waiting for the browser, or its last result."""

    waiting: bool = False
    url: str | None = None
    message: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class PollPlan:
    """Whether the dashboard reads Redis now, how often, and why (or why not)."""

    active: bool = False
    interval: float | None = None
    reason: str = "starting"
    failures: int = 0


@dataclass(frozen=True)
class Dashboard:
    """Everything the main window and the tray show."""

    startup: Startup = "starting"
    startup_error: str | None = None
    demo_mode: bool = False
    storage_description: str = ""
    redis_where: str = ""
    accounts: tuple[Account, ...] = ()
    user_id: str | None = None
    link: LinkState = field(default_factory=LinkState)
    worker: WorkerState = WorkerState.STOPPED
    wait_for_other_jobs: bool = False
    job: LiveJob | None = None
    #: A stop asked for while a job ran: "finish" it first, or "cancel" it between pages.
    stopping: Literal["finish", "cancel"] | None = None
    queued_job: str | None = None
    outcome: JobOutcome | None = None
    snapshot: StatusSnapshot | None = None
    status_error: str | None = None
    #: When Redis first failed to answer a poll or the worker; None while it answers.
    redis_down_since: datetime | None = None
    #: The queue is paused for every favdesk worker, as last heard (worker, poll or click),
    #: and since when and by whom when a read said so.
    queue_paused: bool = False
    queue_pause: QueuePause | None = None
    #: Every worker on this Redis: read only while the Queue tab is in front; this app's own
    #: worker's name among them.
    fleet: Fleet | None = None
    worker_name: str | None = None
    fleet_error: str | None = None
    #: favdesk's Redis commands, counted in the client; Redis's own total when last asked.
    commands: CommandUsage | None = None
    server_commands: tuple[int, datetime] | None = None
    poll: PollPlan = field(default_factory=PollPlan)
    files: tuple[StoredFile, ...] = ()
    files_error: str | None = None
    #: Automatic backups: the timer's plan (None until it started).
    schedule: SchedulePlan | None = None
    #: Retention's setting: keep this many newest snapshots plus each month's (None: all).
    keep_daily: int | None = None
    #: The selected user's snapshots (None until listed), and why they could not be.
    history: History | None = None
    history_error: str | None = None
    #: While the history reads snapshots it does not know: (done, total, the day being read).
    history_reading: tuple[int, int, date] | None = None
    #: The last comparison asked for in the History tab.
    diff: SnapshotDiff | None = None
    notice: str | None = None
    pending: frozenset[str] = frozenset()

    @property
    def ready(self) -> bool:
        return self.startup == "ready"

    @property
    def account(self) -> Account | None:
        """The selected account (the one Sync now and Storage act on)."""
        return next((a for a in self.accounts if a.user_id == self.user_id), None)
