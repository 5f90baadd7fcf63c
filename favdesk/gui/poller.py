"""When the dashboard reads Redis: only while someone is looking and the worker is not paused.

Hosted Redis bills per command, so the poller sends nothing while the window is hidden or the
worker paused. While visible it reads every 5 s during a job and every 30 s otherwise, plus on
demand; after a failure it backs off (2 s up to 60 s) until Redis answers again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from favdesk.gui.bridge import Bridge, user_message
from favdesk.gui.state import PollPlan

BUSY_INTERVAL = 5.0
IDLE_INTERVAL = 30.0
BACKOFF = (2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


class StatusPoller(QObject):
    """Calls `fetch` (the runtime's `status()`) in the background on a plan it keeps current."""

    polled = Signal(object)
    failed = Signal(str)
    plan_changed = Signal(object)

    def __init__(self, bridge: Bridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        #: `runtime.status`; called with `full=True` when the user asked (re-reads the jobs table).
        self.fetch: Callable[..., Any] | None = None
        self.calls = 0
        self.plan = PollPlan()
        self._ready = self._visible = self._paused = self._busy = False
        self._in_flight = self._again = False
        #: the read in flight (the controller waits for it before closing its runtime)
        self.running: Future | None = None
        self._timer = QTimer(self)
        self._timer.setObjectName("status-poll-timer")
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.poll_now)

    def update(
        self,
        *,
        ready: bool | None = None,
        visible: bool | None = None,
        paused: bool | None = None,
        busy: bool | None = None,
    ) -> None:
        """Take in what changed; start, re-time or stop the polling to match."""
        was_active = self.plan.active
        self._ready = self._ready if ready is None else ready
        self._visible = self._visible if visible is None else visible
        self._paused = self._paused if paused is None else paused
        self._busy = self._busy if busy is None else busy
        self._replan(self.plan.failures)
        if self.plan.active and not was_active:
            self.poll_now()

    def poll_now(self, force: bool = False) -> bool:
        """Read Redis once now if the plan allows it (or the user asked: `force`)."""
        if self.fetch is None or not (self.plan.active or force):
            return False
        if self._in_flight:
            self._again = True
            return False
        self._timer.stop()
        self._in_flight = True
        self.calls += 1
        fetch = self.fetch
        task = functools.partial(fetch, full=True) if force else fetch
        self.running = self.bridge.run_in_background(
            task,
            functools.partial(self._succeeded, fetch),
            functools.partial(self._failed, fetch),
        )
        return True

    def next_poll_in(self) -> float | None:
        """Seconds until the next scheduled read, or None when none is scheduled."""
        return self._timer.remainingTime() / 1000 if self._timer.isActive() else None

    def stop(self) -> None:
        self.fetch = None
        self._timer.stop()

    def _succeeded(self, fetch: Callable[..., Any], snapshot: Any) -> None:
        if fetch != self.fetch:  # read from a runtime since replaced: it says nothing now
            self._settle(self.plan.failures)
            return
        reachable = snapshot.redis.reachable
        self._settle(0 if reachable else self.plan.failures + 1)
        self.polled.emit(snapshot)

    def _failed(self, fetch: Callable[..., Any], error: BaseException) -> None:
        if fetch != self.fetch:
            self._settle(self.plan.failures)
            return
        self._settle(self.plan.failures + 1)
        self.failed.emit(user_message(error))

    def _settle(self, failures: int) -> None:
        self._in_flight = False
        self.running = None
        self._replan(failures, rearm=True)
        if self._again:
            self._again = False
            self.poll_now()

    def _replan(self, failures: int, rearm: bool = False) -> None:
        """Keep the timer as it is unless the plan changed or a poll just ended."""
        plan = self._plan(failures)
        changed = plan != self.plan
        if changed:
            self.plan = plan
            self.plan_changed.emit(plan)
        if not plan.active or plan.interval is None:
            self._timer.stop()
        elif not self._in_flight and (changed or rearm or not self._timer.isActive()):
            self._timer.start(round(plan.interval * 1000))

    def _plan(self, failures: int) -> PollPlan:
        if not self._ready:
            return PollPlan(False, None, "starting", failures)
        if self._paused:
            return PollPlan(False, None, "the worker is paused", failures)
        if not self._visible:
            return PollPlan(False, None, "the window is hidden", failures)
        if failures:
            return PollPlan(True, BACKOFF[min(failures, len(BACKOFF)) - 1], "retrying", failures)
        return PollPlan(True, BUSY_INTERVAL if self._busy else IDLE_INTERVAL, "visible", 0)
