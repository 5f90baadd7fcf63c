"""The Redis commands favdesk sends, counted in the client: hosted Redis bills each one.

Every client `redisconn.connect` builds counts the commands it writes (pipelines and pub/sub
included), so counting costs Redis nothing. A process keeps its last hour second by second;
it shares that count through a small file in the data dir (written at most every few seconds
while it sends, never while it is quiet), so the app, `favdesk worker` and the CLI on one
machine add up to favdesk's total without asking Redis.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

HOUR = 3600
MINUTE = 60
#: Commands a month at the last hour's rate: a month is taken as 30 days.
HOURS_A_MONTH = 30 * 24
#: Upstash's free tier: commands a month.
DEFAULT_QUOTA = 500_000
#: A process writes its count at most this often (seconds), and only after it sent something.
PUBLISH_DELAY = 2.0
FOLDER_NAME = "meter"


@dataclass(frozen=True)
class CommandCount:
    """Commands sent in the last minute and hour, and per minute for the sparkline."""

    last_minute: int = 0
    last_hour: int = 0
    #: The last 60 minutes, oldest first; the last one is the minute still running.
    per_minute: tuple[int, ...] = (0,) * (HOUR // MINUTE)


@dataclass(frozen=True)
class CommandUsage:
    """What the Redis panel and `favdesk status` show: this process, and favdesk on this
    machine (every process sharing the data dir), projected over a month against the quota."""

    process: CommandCount
    machine: CommandCount
    quota: int = DEFAULT_QUOTA
    #: The machine's commands in 30 days at the last hour's rate, and its share of the quota.
    month_projection: int = 0
    quota_share: float = 0.0

    @classmethod
    def of(cls, process: CommandCount, machine: CommandCount, quota: int) -> CommandUsage:
        month = machine.last_hour * HOURS_A_MONTH
        return cls(process, machine, quota, month, month / quota if quota else 0.0)


def count(seconds: Iterable[Mapping[int, int]], now: float | None = None) -> CommandCount:
    """Sum per-second counts (of one or more processes) into the last minute and hour."""
    current = int(time.time() if now is None else now)
    per_minute = [0] * (HOUR // MINUTE)
    last_minute = 0
    for counts in seconds:
        for second, sent in counts.items():
            age = current - second
            if not 0 <= age < HOUR:
                continue
            per_minute[-1 - age // MINUTE] += sent
            if age < MINUTE:
                last_minute += sent
    return CommandCount(last_minute, sum(per_minute), tuple(per_minute))


class CommandMeter:
    """Commands sent, per second, for the last hour; thread-safe and cheap. A meter of one
    client (the app's) also counts into its `parent`, the process's."""

    def __init__(
        self, clock: Callable[[], float] = time.time, parent: CommandMeter | None = None
    ) -> None:
        self._clock = clock
        self.parent = parent
        self._lock = threading.Lock()
        self._seconds: dict[int, int] = {}
        self._pruned = 0
        self.total = 0
        self._folder: Path | None = None
        self._flush: threading.Timer | None = None

    def add(self, sent: int = 1) -> None:
        """Called by the connection for each command it writes."""
        second = int(self._clock())
        with self._lock:
            self._seconds[second] = self._seconds.get(second, 0) + sent
            self.total += sent
            if second - self._pruned >= MINUTE:
                self._prune(second)
            if self._folder is not None and self._flush is None:
                self._flush = threading.Timer(PUBLISH_DELAY, self.publish)
                self._flush.daemon = True
                self._flush.start()
        if self.parent is not None:
            self.parent.add(sent)

    def _prune(self, second: int) -> None:
        self._pruned = second
        for old in [s for s in self._seconds if second - s >= HOUR]:
            del self._seconds[old]

    def seconds(self) -> dict[int, int]:
        """A copy of the per-second counts (the last hour, maybe a minute more)."""
        with self._lock:
            return dict(self._seconds)

    def reading(self) -> CommandCount:
        return count([self.seconds()], self._clock())

    # sharing with the other favdesk processes on this machine

    def publish_to(self, folder: Path) -> None:
        """Share this process's count in `folder` from now on (the last call wins)."""
        with self._lock:
            self._folder = folder
        self.publish()

    def publish(self) -> None:
        """Write this process's count to its file (replaced at once); quiet failures."""
        with self._lock:
            self._flush = None
            folder = self._folder
            seconds = dict(self._seconds)
        if folder is None:
            return
        body = json.dumps({"pid": os.getpid(), "seconds": seconds})
        path = folder / f"{os.getpid()}.json"
        temporary = path.with_suffix(".part")
        with contextlib.suppress(OSError):
            folder.mkdir(exist_ok=True)  # in the data dir, which must still be there
            temporary.write_text(body)
            os.replace(temporary, path)

    def machine_reading(self) -> CommandCount:
        """favdesk's count on this machine: this process, plus the files of the others that
        sent commands in the last hour (older files are removed)."""
        now = self._clock()
        seconds = [self.seconds()]
        folder = self._folder
        if folder is not None:
            seconds += read_folder(folder, now)
        return count(seconds, now)


def read_folder(folder: Path, now: float) -> list[dict[int, int]]:
    """The per-second counts in the other processes' files in `folder`."""
    found: list[dict[int, int]] = []
    for path in folder.glob("*.json"):
        seconds = _read(path) if path.stem != str(os.getpid()) else None
        if seconds is None:
            continue
        if not any(now - s < HOUR for s in seconds):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found.append(seconds)
    return found


def _read(path: Path) -> dict[int, int] | None:
    try:
        raw = json.loads(path.read_text())
        return {int(second): int(sent) for second, sent in raw["seconds"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


#: The meter of this process: every client `redisconn.connect` builds counts into it.
PROCESS = CommandMeter()
atexit.register(PROCESS.publish)


def folder_in(data_dir: Path) -> Path:
    return data_dir / FOLDER_NAME
