"""The live services of one favdesk process, wired from the settings.

The GUI, the CLI and the tests all open a `Runtime` and call the same methods (link, sync,
status, files). With nothing configured it starts favdesk's embedded parts: a private Redis on
a unix socket in the data dir, the built-in Spotify stand-in, and the local storage folder.
Every method may block on the network: the GUI calls them off its thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

import redis

from favdesk import fleet, meter, queue, queue_status, retention, retries, scheduler, sync_status
from favdesk.accounts import Account, AccountStore
from favdesk.diff import SnapshotDiff, compare, find, pick
from favdesk.embedded_redis import EmbeddedRedis
from favdesk.errors import NoAccount, RedisUnavailable, SettingsError
from favdesk.export import export_to_file, write_csv
from favdesk.history import History, HistoryFolder, OnProgress, identities, refresh
from favdesk.import_route import ApiResponse, import_spotify
from favdesk.importer import start_import
from favdesk.link import LinkResult, link_spotify
from favdesk.redisconn import connect, describe, server_commands, server_info
from favdesk.retention import RetentionPlan
from favdesk.schedule import Slot, SlotOutcome, SlotResult
from favdesk.scheduler import BackupScheduler, SlotLog
from favdesk.secret import Secret
from favdesk.services import Services, open_services
from favdesk.settings import Settings, load_settings
from favdesk.spotify.auth import SpotifyApp
from favdesk.storage import Storage, StoredFile
from favdesk.worker import WorkerController
from favdesk.worker_events import WorkerListener

RECENT_JOBS = 20
COUNT_NAMES = ("queued", "started", "finished", "failed", "deferred", "scheduled")


@dataclass(frozen=True)
class RedisHealth:
    """What the dashboard says about Redis; `where` never carries a password."""

    reachable: bool
    where: str
    latency_ms: float | None = None
    version: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class StatusSnapshot:
    """Everything other processes may change, read at one moment."""

    redis: RedisHealth
    counts: dict[str, int]
    syncs: dict[str, sync_status.SyncStatus]
    progress: dict[str, sync_status.Progress]
    jobs: list[queue_status.JobInfo]
    taken_at: datetime
    #: The queue is paused for every favdesk worker (None: it is not, or Redis did not say).
    queue_paused: queue.QueuePause | None = None
    #: The commands favdesk sent, counted in the client (reading them costs no command).
    commands: meter.CommandUsage | None = None
    #: The server's own count of commands, all clients, when asked for (one INFO more).
    server_commands: int | None = None


class Runtime:
    """Settings -> live Redis, Spotify app, storage, accounts and the embedded worker."""

    def __init__(self, settings: Settings, *, listener: WorkerListener | None = None) -> None:
        self.settings = settings
        self._stack = ExitStack()
        self._version: str | None = None
        self._jobs: tuple[dict[str, int], list[queue_status.JobInfo]] | None = None
        meter.PROCESS.publish_to(meter.folder_in(settings.data_dir))
        try:
            self.redis_url = self._start_redis()
            self.redis_where = describe(self.redis_url)
            #: The app client's own commands (they count into the process's meter too).
            self.app_meter = meter.CommandMeter(parent=meter.PROCESS)
            self.app_redis = connect(self.redis_url, counter=self.app_meter)
            self._stack.callback(self.app_redis.close)
            self.services: Services = self._stack.enter_context(open_services(settings))
            self.spotify_app: SpotifyApp = self.services.spotify_app
            self.accounts: AccountStore = self.services.accounts
            self.storage: Storage = self.services.storage
            self.worker = WorkerController(
                lambda: connect(self.redis_url, for_worker=True),
                services=self.services,
                wait_for_other_jobs=settings.wait_for_other_jobs,
                listener=listener,
            )
            #: Automatic backups; started by the app and `favdesk worker --schedule` only.
            self.scheduler = BackupScheduler(
                settings.backup_schedule,
                accounts=self.accounts.list,
                log=SlotLog(settings.data_dir / "schedule.json"),
                run_slot=self.queue_slot,
            )
        except BaseException:
            self._stack.close()
            raise

    def _start_redis(self) -> Secret:
        if self.settings.redis_url is not None:
            return self.settings.redis_url
        server = EmbeddedRedis(self.settings.data_dir / "redis")
        self._stack.enter_context(server)
        return Secret(server.url)

    @property
    def storage_description(self) -> str:
        return self.storage.description

    # --- the flows -------------------------------------------------------------------------

    def link(
        self,
        *,
        open_browser: Callable[[str], bool],
        on_url: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        timeout: float = 300.0,
        run_import_here: bool = True,
    ) -> LinkResult:
        """Browser login, then the import API: links the account and enqueues its first import.

        `run_import_here` wakes this process's worker for it; a CLI that exits right away
        leaves the job to the app or a `favdesk worker`.
        """

        def import_after_login(code: Secret, code_verifier: str, redirect_uri: str) -> LinkResult:
            started = start_import(
                self.services,
                self.app_redis,
                code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
            )
            if run_import_here:
                self.worker.start()
            return started

        return link_spotify(
            self.settings,
            self.spotify_app,
            open_browser=open_browser,
            on_url=on_url,
            timeout=timeout,
            cancel=cancel,
            on_code=import_after_login,
        )

    def import_spotify(self, request: dict) -> ApiResponse:
        """The web app's import route, in-process: `{code, ...}` -> 202 {jobId}."""
        return import_spotify(self.services, self.app_redis, request)

    def default_account(self, user_id: str | None = None) -> Account:
        """The account for `user_id`, or the one linked account; NoAccount says what to do."""
        if user_id is None:
            return self.accounts.default()
        account = self.accounts.by_user_id(user_id)
        if account is None:
            raise NoAccount(f"No Spotify account is linked for user {user_id}: run `favdesk link`")
        return account

    def unlink(self, user_id: str | None = None) -> Account:
        """Forget a linked account and delete its tokens from the keyring; its queued import
        and pending retry go too (a running one must be stopped first). Its backups stay."""
        account = self.default_account(user_id)
        queue.delete_job(self.app_redis, queue.import_job_id(account.user_id))
        retries.cancel_retry(self.app_redis, account.user_id)
        self.accounts.remove(account.spotify_id)
        return account

    def sync(self, user_id: str | None = None, *, run_here: bool = True) -> queue.EnqueueResult:
        """Enqueue an import (one per user at a time); `run_here` starts the embedded worker
        (a no-op while the user has paused it)."""
        account = self.default_account(user_id)
        result = queue.enqueue_import(self.app_redis, account.user_id)
        if run_here:
            self.worker.start()
        return result

    def status(self, *, full: bool = False, server_total: bool | None = None) -> StatusSnapshot:
        """Redis health, queue depth, sync status and recent jobs; Redis down is a state.

        A poll is one pipelined round trip (9 commands for one user), timed as the latency.
        The jobs table is re-read only when the counts changed (or `full`), since every
        change to a job moves it between registries. `server_total` (by default when `full`,
        a read the user asked for) adds the server's own command count: one INFO more.
        """
        user_ids = [account.user_id for account in self.accounts.list()]
        try:
            if self._version is None:
                self._version = server_info(self.app_redis).version
            started = time.perf_counter()
            snapshot = queue_status.queue_snapshot(self.app_redis, user_ids)
            latency = (time.perf_counter() - started) * 1000.0
            counts = {name: getattr(snapshot, name) for name in COUNT_NAMES}
            if full or self._jobs is None or counts != self._jobs[0]:
                self._jobs = (counts, queue_status.recent_jobs(self.app_redis, RECENT_JOBS))
            asked = full if server_total is None else server_total
            total = self.server_commands() if asked else None
        except (RedisUnavailable, redis.RedisError) as error:
            self._version = self._jobs = None
            health = RedisHealth(False, self.redis_where, error=str(error))
            return StatusSnapshot(
                health, {}, {}, {}, [], datetime.now(UTC), commands=self.command_usage()
            )
        health = RedisHealth(True, self.redis_where, latency, self._version)
        syncs = {user_id: user.sync for user_id, user in snapshot.users.items()}
        progress = {
            user_id: user.progress
            for user_id, user in snapshot.users.items()
            if user.progress is not None
        }
        return StatusSnapshot(
            health,
            counts,
            syncs,
            progress,
            self._jobs[1],
            datetime.now(UTC),
            snapshot.paused,
            self.command_usage(),
            total,
        )

    def files(self, user_id: str | None = None) -> list[StoredFile]:
        return self.storage.list_files(self.default_account(user_id).user_id)

    # --- automatic backups and the history ---------------------------------------------------

    def queue_slot(self, user_id: str, slot: Slot) -> SlotOutcome:
        """The scheduler's call when a slot is due: claim it, queue the import, wake the
        worker (a no-op while paused or stopped, or in a CLI that runs none)."""
        period = self.settings.backup_schedule.period
        outcome = scheduler.queue_slot(self.app_redis, user_id, slot, period)
        if outcome.result is not SlotResult.TAKEN:
            self.worker.kick()
        return outcome

    def history(self, user_id: str | None = None, on_progress: OnProgress | None = None) -> History:
        """Every snapshot of the user, newest first, from the local index brought up to date
        (only snapshots it does not know are read)."""
        user = self.default_account(user_id).user_id
        return refresh(self.storage, self.settings.data_dir, user, on_progress)

    def diff(
        self, first: date | None = None, second: date | None = None, user_id: str | None = None
    ) -> SnapshotDiff:
        """The songs added and removed between two snapshots (default: the last two)."""
        found = self.history(user_id)
        old, new = pick(found, first, second)
        folder = HistoryFolder(self.settings.data_dir, found.user_id)
        return compare(
            self.storage,
            found.user_id,
            old,
            new,
            lambda snapshot: identities(self.storage, folder, snapshot),
        )

    def export_csv(self, day: date, target: Path | TextIO, user_id: str | None = None) -> int:
        """Write a snapshot as Exportify's CSV to a file (replaced at once) or a text stream;
        the songs written."""
        snapshot = find(self.history(user_id), day)
        if isinstance(target, Path):
            return export_to_file(self.storage, snapshot.key, target)
        return write_csv(self.storage, snapshot.key, target)

    def retention_plan(
        self, keep_daily: int | None = None, user_id: str | None = None
    ) -> RetentionPlan:
        """What retention would delete (`keep_daily` or the setting; all kept when neither)."""
        keep = keep_daily or self.settings.keep_daily
        if keep is None:
            raise SettingsError(
                "FAVDESK_KEEP_DAILY",
                "retention is off (every snapshot is kept): set it to a number of snapshots, "
                "or give one, as in `favdesk prune --keep 30`",
            )
        user = self.default_account(user_id).user_id
        return retention.make_plan(self.storage, self.settings.data_dir, user, keep)

    def prune(self, plan: RetentionPlan) -> list[StoredFile]:
        """Delete what `plan` would, as far as it still holds; the files deleted."""
        return retention.apply(self.storage, self.settings.data_dir, plan)

    def sync_status(self, user_id: str) -> sync_status.SyncStatus:
        return sync_status.get_sync_status(self.app_redis, user_id)

    def download(self, key: str) -> bytes:
        return self.storage.download(key)

    def retry_job(self, job_id: str) -> None:
        queue.retry_job(self.app_redis, job_id)
        self.worker.kick()

    def delete_job(self, job_id: str) -> None:
        queue.delete_job(self.app_redis, job_id)

    # --- every worker on this Redis, and what favdesk costs in commands ----------------------

    def pause_queue(self, *, cancel_running: bool = False, by: str = "favdesk") -> queue.QueuePause:
        """Pause the queue for every favdesk worker (`queue.pause_queue`); this process's own
        worker, if it runs, then waits for the resume on its subscription."""
        pause = queue.pause_queue(self.app_redis, queue.pauser(by), cancel_running=cancel_running)
        self.worker.kick()
        return pause

    def resume_queue(self) -> bool:
        """Resume the queue; whether it was paused. What was queued meanwhile runs now."""
        resumed = queue.resume_queue(self.app_redis)
        self.worker.kick()
        return resumed

    def workers(self) -> fleet.Fleet:
        """Every worker on this Redis, and the queue's pause (two or three round trips)."""
        return fleet.read_fleet(self.app_redis)

    def stop_worker(self, name: str) -> None:
        fleet.stop_worker(self.app_redis, name)

    def clean_workers(self, names: list[str]) -> int:
        return fleet.clean_expired(self.app_redis, names)

    def cancel_job(self, job_id: str) -> str:
        """Cancel a running job between pages, on whichever worker runs it; its name."""
        return queue.cancel_job(self.app_redis, job_id)

    def command_usage(self) -> meter.CommandUsage:
        """This process's and this machine's favdesk commands (no Redis command)."""
        return meter.CommandUsage.of(
            meter.PROCESS.reading(), meter.PROCESS.machine_reading(), self.settings.command_quota
        )

    def server_commands(self) -> int:
        """The server's own count of commands since it started, all clients (one INFO)."""
        return server_commands(self.app_redis)

    def close(self, *, cancel_current: bool = False) -> None:
        """Stop the worker (after its current job, or cancelling it between pages: it is
        re-queued and resumes where it stopped), then the embedded services, always."""
        try:
            self.scheduler.stop()
            self.worker.stop(cancel_current=cancel_current)
            self.worker.join()
        finally:
            self._stack.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """An interrupted process (Ctrl-C, SIGTERM) does not wait for a whole import."""
        self.close(cancel_current=exc_type is not None and issubclass(exc_type, KeyboardInterrupt))


def open_runtime(
    settings: Settings | None = None, *, listener: WorkerListener | None = None
) -> Runtime:
    return Runtime(settings or load_settings(), listener=listener)
