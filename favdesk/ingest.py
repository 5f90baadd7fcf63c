"""The `spotify-ingest` job: fetch every liked track of one user and upload the raw JSON.

In order: `fav:sync:{userId}` = `syncing`; load the linked account; fetch (resumable, with
progress), each page to disk as it arrives; assemble the day's file from the pages on disk;
upload it to `favorites_raw/spotify/{userId}/{YYYY-MM-DD}.json`, streamed from disk; `done`.
The library is never held in memory, whatever its size. Any failure sets `error:<reason>` and
fails the job so the queue shows it; the fetched pages stay for the next attempt. A long 429
ends the job and arranges a retry at the resume time instead of sleeping in the worker.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from rq import get_current_job

from favdesk import retries, sync_status
from favdesk.checkpoint import PageCheckpoint
from favdesk.errors import FavdeskError, NoAccount, RateLimited, TakenOver
from favdesk.history import record_written
from favdesk.job_context import JobContext, current_job_context
from favdesk.progress import ImportPhase
from favdesk.services import Services, open_services
from favdesk.spotify.auth import AccountsClient
from favdesk.spotify.library import LibraryFetcher, Page
from favdesk.spotify.tokens import TokenProvider
from favdesk.storage import BUCKET, Storage, StoredFile, check_user_id, raw_key
from favdesk.sync_status import SyncErrorReason, SyncState, SyncStatus

PREFIX = "[spotify-ingest]"
#: Progress reaches Redis at most this often: other processes see it, Upstash bills it.
PROGRESS_INTERVAL = 1.0
RETRY_FLOOR = timedelta(minutes=1)
QUOTA_RETRY_FLOOR = timedelta(hours=1)


def run_import(user_id: str) -> dict[str, Any]:
    """RQ entry point (`favdesk.ingest.run_import`): import one user's Liked Songs."""
    job = get_current_job()
    context = current_job_context()
    job_id = job.id if job else context.job_id
    conn = job.connection if job else None
    if context.services is not None:
        return ingest(context.services, user_id, job_id=job_id, conn=conn, context=context)
    with open_services() as services:  # a worker that is not favdesk's, e.g. a stock `rq worker`
        return ingest(services, user_id, job_id=job_id, conn=conn, context=context)


@dataclass
class Split:
    """Where an import's time went, in seconds; the job's result carries it."""

    #: Waiting for Spotify and reading its pages (page writes not included).
    fetch: float = 0.0
    #: Writing the pages to disk as they arrive.
    page_writes: float = 0.0
    #: Copying the day's file together from the pages.
    assembly: float = 0.0
    upload: float = 0.0

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in asdict(self).items()}


def ingest(
    services: Services,
    user_id: str,
    *,
    job_id: str | None,
    conn: redis.Redis | None,
    context: JobContext,
) -> dict[str, Any]:
    """The job's body, separated from RQ so that its steps read top to bottom."""
    reporter = ProgressReporter(conn, user_id, job_id, context)
    split = Split()
    status(conn, user_id, SyncState.SYNCING)
    try:
        started = time.perf_counter()
        tracks = fetch_library(services, user_id, reporter, context, split)
        split.fetch = time.perf_counter() - started - split.page_writes
        say(context, f"{PREFIX} tracks: {tracks}")
        ensure_current(context)
        checkpoint = PageCheckpoint.for_user(services.settings.data_dir, user_id)
        data_dir = services.settings.data_dir
        key = upload(services.storage, user_id, checkpoint, tracks, reporter, split, data_dir)
        say(context, f"upload complete -> {BUCKET}/{key}")
        ensure_current(context)
        checkpoint.clear()
        reporter.phase(ImportPhase.DONE, tracks, tracks)
        status(conn, user_id, SyncState.DONE)
    except Exception as error:  # an unexpected one too must not leave `syncing` behind
        fail(conn, user_id, job_id, context, error)
        raise
    say(context, f"{PREFIX} DONE {job_id}")
    return {"tracks": tracks, "key": f"{BUCKET}/{key}", "seconds": split.rounded()}


def fetch_library(
    services: Services,
    user_id: str,
    reporter: ProgressReporter,
    context: JobContext,
    split: Split,
) -> int:
    """Fetch every liked track to disk, page by page, resuming from the pages an earlier
    attempt kept; the number of tracks."""
    check_user_id(user_id)  # a key Storage would refuse fails now, not after the whole fetch
    account = services.accounts.by_user_id(user_id)
    if account is None:
        raise NoAccount(f"No Spotify account is linked for user {user_id}: link Spotify first")
    checkpoint = PageCheckpoint.for_user(services.settings.data_dir, user_id)
    known = checkpoint.load()
    if known:
        say(context, f"{PREFIX} resuming with {len(known)} pages kept from the last attempt")
    reporter.phase(ImportPhase.FETCHING, 0, 0)

    def keep(page: Page) -> None:
        started = time.perf_counter()
        checkpoint.save(page)
        split.page_writes += time.perf_counter() - started

    with AccountsClient(services.spotify_app) as accounts:  # closes its refresh connection
        fetcher = LibraryFetcher(
            services.spotify_app.api_url,
            TokenProvider(accounts, services.accounts, account.spotify_id),
            max_concurrency=services.settings.fetch_concurrency,
            max_rate_limit_wait=services.settings.max_rate_limit_wait,
        )
        return fetcher.fetch_to(
            keep,
            known_pages=known,
            on_progress=lambda fetched, total: reporter.phase(ImportPhase.FETCHING, fetched, total),
            cancel=context.cancel,
        )


def upload(
    storage: Storage,
    user_id: str,
    checkpoint: PageCheckpoint,
    tracks: int,
    reporter: ProgressReporter,
    split: Split,
    data_dir: Path | None = None,
) -> str:
    """Assemble today's (UTC) file from the kept pages, Spotify's items exactly as sent, and
    upload it from disk, replacing that day's file; progress in bytes. With `data_dir`, the
    snapshot also goes into the local history from the file on disk (`history.py`)."""
    key = raw_key(user_id, datetime.now(UTC).date())
    started = time.perf_counter()
    library = checkpoint.assemble(tracks)
    split.assembly = time.perf_counter() - started
    try:
        storage.ensure_bucket()
        reporter.phase(ImportPhase.UPLOADING, 0, library.stat().st_size)
        stored = storage.upload_file(
            key, library, lambda sent, size: reporter.phase(ImportPhase.UPLOADING, sent, size)
        )
        split.upload = time.perf_counter() - started - split.assembly
        if data_dir is not None:
            note_snapshot(data_dir, user_id, stored, library, reporter.context)
    finally:
        checkpoint.discard_library()
    return key


def note_snapshot(
    data_dir: Path, user_id: str, stored: StoredFile, library: Path, context: JobContext
) -> None:
    """Index the uploaded snapshot and note that favdesk wrote it, silently (the job's log lines
    are the web app's); a failure costs the history one download later, never the backup."""
    try:
        record_written(data_dir, user_id, stored, library)
    except (OSError, FavdeskError) as error:
        say(context, f"{PREFIX} history not updated ({error}): it catches up when listed")


def fail(
    conn: redis.Redis | None,
    user_id: str,
    job_id: str | None,
    context: JobContext,
    error: Exception,
) -> None:
    """Record why the job failed; a long 429 also arranges the retry at its resume time.
    A run that another worker took over records nothing: the job is the other run's."""
    if isinstance(error, TakenOver) or not context.still_current():
        say(context, f"{PREFIX} {job_id}: taken over by another worker, this run ends here")
        return
    reason = SyncErrorReason.FAILED
    if isinstance(error, FavdeskError):
        reason = SyncErrorReason(error.reason)
    resume_at = retry_time(error) if isinstance(error, RateLimited) else None
    if resume_at is not None and conn is not None:
        retries.schedule_retry(conn, user_id, resume_at)
    failed = SyncStatus(SyncState.ERROR, reason, resume_at)
    status(conn, user_id, failed)
    say(context, f"{PREFIX} FAILED {job_id} {(failed.value or '').removeprefix('error:')}")


def ensure_current(context: JobContext) -> None:
    """Stop a run whose worker slept past its heartbeat while another worker resumed the job
    (one Redis command, before the upload and before `done`)."""
    if not context.still_current():
        raise TakenOver("another worker took this import over while this one was away")


def retry_time(error: RateLimited) -> datetime:
    """When to try again: Spotify's resume time, but never sooner than a floor, so that a
    429 without a usable `Retry-After` cannot turn into an import (and its Redis commands)
    every second. A used-up daily quota waits at least an hour."""
    floor = QUOTA_RETRY_FLOOR if error.quota else RETRY_FLOOR
    return max(error.resume_at, datetime.now(UTC) + floor)


def status(conn: redis.Redis | None, user_id: str, value: SyncState | SyncStatus) -> None:
    if conn is not None:
        sync_status.set_sync_status(conn, user_id, value)


def say(context: JobContext, line: str) -> None:
    """A worker log line: to the app's log view, or to the logger under another worker."""
    context.log(line)


class ProgressReporter:
    """Reports every page and upload chunk to the local listener; to Redis each new phase, and
    progress within a phase at most once a second. Without a worker's job (no connection or
    id) only locally. Progress counts songs, or bytes while uploading (`progress.py`)."""

    def __init__(
        self, conn: redis.Redis | None, user_id: str, job_id: str | None, context: JobContext
    ) -> None:
        self.conn = conn
        self.user_id = user_id
        self.job_id = job_id
        self.context = context
        self.last_written = 0.0
        self.last_phase: str | None = None

    def phase(self, phase: ImportPhase, done: int, total: int) -> None:
        self.context.report(done, total, phase)
        if self.conn is None or self.job_id is None:
            return
        now = time.monotonic()
        if phase == self.last_phase and now - self.last_written < PROGRESS_INTERVAL:
            return
        self.last_written, self.last_phase = now, phase
        sync_status.set_progress(self.conn, self.user_id, self.job_id, done, total, phase)
