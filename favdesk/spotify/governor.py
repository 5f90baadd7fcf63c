"""How many requests of one fetch may be in flight, and when the next may leave.

Spotify publishes no rate, only 429s with `Retry-After` over a rolling window, so the window is
learned from the 429s. The first one ends a run of requests that got through: their count is
the window's size, and the moment its `Retry-After` says the oldest of them frees its place
bounds the window's length. `Retry-After` counts whole seconds, and so do rate-limit windows
(Spotify's is 30 s): the length is taken as the whole number of seconds within that bound. From
then on a request leaves only when fewer than that many are in the window, so the fetch runs
just under the limit instead of into it. Spotify counts a request somewhere between its send
and its answer, at the same step of its way each time, so a request holds its place for a
window's length from its send plus the spread of the round trips seen (how much that step can
move), and never beyond its answer: no jitter in when Spotify saw which request makes the fetch
run into the limit.

Every 429 also pauses every request until its `Retry-After` has passed (one pause, however many
requests it caught in flight); after a pause one request goes first, and the rest follow once it
got through. A 429 for that first request means the pause ended before the window had room
(`Retry-After` shorter than the window): the window is longer, by whole seconds. A 429 in the
middle of a run means the window is not what was learned: first its length loses the rounding
to whole seconds, then its size shrinks. The size grows a little after some whole windows
without a 429, until a 429 shows where it ends, so a size measured while another client shared
the window does not stick.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

#: Requests that must get through before a 429 before their count is taken as the window's
#: size: fewer say more about who else used the window than about its size.
MIN_WINDOW_SAMPLE = 4
#: Added to a learned length: Spotify's clock and ours see each request a little apart.
WINDOW_MARGIN = 0.02
#: After this many whole windows without a 429 the size grows by GROWTH of itself (at least
#: 1): finding that it was right costs a 429 and a pause that outlasts the window by up to a
#: second, worth it only when the fetch still has windows to go.
GROW_AFTER = 4
GROWTH = 0.25


@dataclass(frozen=True)
class RateWindow:
    """Spotify's rolling limit as learned: at most `requests` in any `seconds`."""

    requests: int
    seconds: float


class Governor:
    """The bound on requests in flight, and the shared pause and learned window of one fetch.

    Pure bookkeeping for one thread (the fetch's dispatcher): every moment is passed in, read
    from one monotonic clock, so the rules can be tested without sleeping. Each send gets a
    ticket; its outcome is reported with that ticket.
    """

    def __init__(self, cap: int, now: float) -> None:
        self.cap = cap
        self.limit = cap
        self.window: RateWindow | None = None
        self._paused_until = 0.0
        self._pause_began = -math.inf
        self._run_began = now
        self._sends: dict[int, float] = {}  # ticket -> moment, in sending order; no 429s
        self._answers: dict[int, float] = {}  # ticket -> moment its answer came
        self._fastest = math.inf  # round trips seen, in seconds
        self._slowest = 0.0
        self._tickets = itertools.count()
        self._longest = math.inf  # the window's length is at most this
        self._whole = False  # the length was rounded down to whole seconds
        self._measured: tuple[float, float] | None = None  # the run the first 429s ended
        self._grow_at = math.inf
        self._before_growth = 0
        self._grown = False
        self._found = False

    def ready_at(self) -> float:
        """The earliest moment the next request may leave."""
        return max(self._paused_until, self._window_frees_at())

    def sent(self, now: float) -> int:
        """A request leaves at `now`; returns its ticket."""
        if now >= self._run_began:
            self._measured = None  # the measured run's answers are all in
        self._maybe_grow(now)
        ticket = next(self._tickets)
        self._sends[ticket] = now
        self._forget_old(now)
        return ticket

    def withdrawn(self, ticket: int) -> None:
        """A request was held back before it reached the wire: it never counted."""
        self._sends.pop(ticket, None)
        self._measure()

    def answered(self, ticket: int, now: float, *, got_through: bool) -> None:
        """Any answer but a 429 came at `now` (or the request failed on the way: it may have
        counted). The first request through after a pause lets the others follow."""
        if ticket in self._sends:
            self._answers[ticket] = now
            self._fastest = min(self._fastest, now - self._sends[ticket])
            self._slowest = max(self._slowest, now - self._sends[ticket])
        if got_through and self._sends.get(ticket, -math.inf) >= self._run_began:
            self.limit = self.cap

    def rate_limited(self, ticket: int, now: float, wait: float) -> bool:
        """A 429 read at `now` asking for `wait` seconds: pause everyone; learn the window.

        A 429 for a request sent before the current pause began belongs to that pause: it only
        extends it (and refines a window measured on the run it ended). Returns True when this
        429 started a new pause.
        """
        sent_at = self._sends.pop(ticket, now)
        self._paused_until = max(self._paused_until, now + wait)
        frees_by = now + wait  # Spotify saw the request by the time it answered
        if sent_at < self._pause_began:
            self._measure(frees_by)
            return False
        self._learn(sent_at, now, frees_by)
        self.limit = 1
        self._pause_began = now
        self._run_began = self._paused_until
        seconds = self.window.seconds if self.window is not None else math.inf
        self._grow_at = self._paused_until + GROW_AFTER * seconds
        return True

    def _learn(self, sent_at: float, now: float, frees_by: float) -> None:
        """What the 429 of a request sent at `sent_at` says about the window: Spotify would have
        let it through by `frees_by` (its `Retry-After`, counted from the answer)."""
        before = [moment for moment in self._sends.values() if moment < sent_at]
        window = self.window
        if window is None:
            self._measured = (self._run_began, now)
            self._measure(frees_by)
        elif not any(moment >= self._run_began for moment in before):
            tickets = [ticket for ticket, moment in self._sends.items() if moment < sent_at]
            if tickets:
                oldest = tickets[-min(window.requests, len(tickets))]
                held = sent_at - self._held_until(oldest)
                self._lengthen(window, held, frees_by - self._sends[oldest])
        elif self._grown:  # the larger size was too large: the one before it was right
            self.window = RateWindow(self._before_growth, window.seconds)
            self._found, self._grown = True, False
        elif self._whole:  # the length was a whole second too short
            self._whole = False
            self.window = RateWindow(window.requests, self._longest)
        else:  # another client takes part of the window, or it shrank
            self.window = RateWindow(max(1, window.requests - 1), window.seconds)
            self._found = False

    def _measure(self, frees_by: float = math.inf) -> None:
        """The window, from the run the first 429s ended: its size is the requests of that run
        that got through (requests still in flight at the first 429 may lower it), its length
        at most the time from the run's first request to the earliest moment a 429 of the run
        said the window frees, rounded down to whole seconds."""
        if self._measured is None:
            return
        began, ended = self._measured
        run = [moment for moment in self._sends.values() if began <= moment < ended]
        self._longest = min(self._longest, frees_by - run[0] if run else math.inf)
        if len(run) < MIN_WINDOW_SAMPLE:
            return
        whole = math.floor(self._longest)
        self._whole = whole >= 1
        seconds = whole + WINDOW_MARGIN if self._whole else self._longest
        self.window = RateWindow(len(run), seconds)

    def _lengthen(self, window: RateWindow, held: float, longest: float) -> None:
        """The first request after a pause was refused: the window still held its oldest
        request `held` seconds after its answer came, so it is longer than that."""
        if self._whole:
            seconds = max(window.seconds, math.floor(held) + 1 + WINDOW_MARGIN)
        else:
            seconds = max(window.seconds, longest)
        self._longest = max(self._longest, seconds)
        self.window = RateWindow(window.requests, seconds)

    def _window_frees_at(self) -> float:
        """When the learned window next has room (0: it has room, or none was learned; never,
        until an answer comes, while the request whose place is next is still in flight)."""
        window = self.window
        if window is None or len(self._sends) < window.requests:
            return 0.0
        return self._held_until(list(self._sends)[-window.requests]) + window.seconds

    def _held_until(self, ticket: int) -> float:
        """From when a request's place in the window counts down at the latest: its send plus
        the spread of round trips, or its answer if sooner (in flight: not known yet)."""
        answer = self._answers.get(ticket)
        if answer is None:
            return math.inf
        return min(answer, self._sends[ticket] + self._slowest - self._fastest)

    def _maybe_grow(self, now: float) -> None:
        """After GROW_AFTER whole windows without a 429 (then after each one), while the window
        is what holds the fetch back (this send fills it), try a slightly larger size, until a
        429 finds where it ends."""
        window = self.window
        if window is None or self._found or now < self._grow_at:
            return
        inside = sum(self._held_until(ticket) > now - window.seconds for ticket in self._sends)
        if inside < window.requests - 1:
            return
        self._before_growth = window.requests
        grown = window.requests + max(1, int(window.requests * GROWTH))
        self.window = RateWindow(grown, window.seconds)
        self._grown = True
        self._grow_at = now + window.seconds

    def _forget_old(self, now: float) -> None:
        """Drop sends no rule looks at again: older than the run and the window, and not among
        the window's worth of latest ones (a pause that was too short reaches back to those)."""
        window = self.window
        keep = window.requests if window is not None else 0
        horizon = self._run_began if window is None else min(self._run_began, now - window.seconds)
        while len(self._sends) > keep:
            ticket, moment = next(iter(self._sends.items()))
            if moment >= horizon:
                return
            del self._sends[ticket]
            self._answers.pop(ticket, None)
