"""How many requests of one fetch may be in flight, and when the next may leave.

Spotify publishes no rate, only 429s with `Retry-After`, so the bound is found by probing: it
grows while replies stay quick and halves at a 429. A 429 also pauses every request until its
`Retry-After` has passed (one pause, however many requests it caught in flight) and, when enough
requests got through since the last pause to measure the rate Spotify allowed, paces the rest of
the fetch a little slower than that rate. Each accepted request relaxes the pace, so an estimate
skewed by other clients sharing the app's window cannot stick.
"""

from __future__ import annotations

import math

#: Requests in flight before Spotify has shown how fast it answers.
INITIAL_CONCURRENCY = 2
#: Pace a little slower than the rate Spotify let through before its 429.
PACE_MARGIN = 1.05
#: Requests accepted since the last pause needed before a 429 may set a pace: fewer say more
#: about who else used Spotify's window than about its rate (the pause and halving suffice).
MIN_PACE_SAMPLE = 8
#: Each accepted request shortens the gap between requests by this factor, so a pace set too
#: slow cannot stick; one set right is re-measured at the next 429.
PACE_RELAX = 0.95
#: A reply slower than twice the fastest one seen plus this many seconds is not quick.
QUICK_SLACK = 0.05


class Governor:
    """Adaptive concurrency and a shared pause and pace for every request of one fetch.

    Pure bookkeeping for one thread (the fetch's dispatcher): every moment is passed in, read
    from one monotonic clock, so the rules can be tested without sleeping. `limit` is the bound
    on requests in flight; `interval` the seconds kept between two sends (0: no pace).
    """

    def __init__(self, cap: int, now: float) -> None:
        self.cap = cap
        self.limit = max(1, min(cap, INITIAL_CONCURRENCY))
        self.interval = 0.0
        self._slow_start = True
        self._streak = 0
        self._fastest = math.inf
        self._paused_until = 0.0
        self._pause_began = -math.inf
        self._next_send = 0.0
        self._run_began = now
        self._accepted = 0

    def ready_at(self) -> float:
        """The earliest moment the next request may leave."""
        return max(self._paused_until, self._next_send)

    def sent(self, now: float) -> None:
        """A request left at `now`: the next one waits for the pace."""
        self._next_send = now + self.interval

    def succeeded(self, sent_at: float, latency: float) -> None:
        """Relax the pace; grow while replies stay quick (doubling until the first 429, then +1).

        Only requests sent since the last pause ended count towards the next pace measurement.
        """
        if sent_at >= self._run_began:
            self._accepted += 1
            self.interval *= PACE_RELAX
        self._fastest = min(self._fastest, latency)
        if latency > 2 * self._fastest + QUICK_SLACK:
            self._streak = 0
            return
        if self._slow_start:
            self.limit = min(self.cap, self.limit + 1)
            return
        self._streak += 1
        if self._streak >= self.limit:
            self.limit = min(self.cap, self.limit + 1)
            self._streak = 0

    def rate_limited(self, sent_at: float, now: float, wait: float) -> bool:
        """Pause everyone; on a new episode also halve the bound and pace at the seen rate.

        A 429 for a request sent before the current pause began belongs to that pause: it only
        extends it. Returns True when this 429 started a new pause.
        """
        self._paused_until = max(self._paused_until, now + wait)
        if sent_at < self._pause_began:
            return False
        if self._accepted >= MIN_PACE_SAMPLE:
            span = (now - self._run_began) + wait
            self.interval = PACE_MARGIN * span / self._accepted
        self.limit = max(1, self.limit // 2)
        self._slow_start = False
        self._streak = 0
        self._pause_began = now
        self._run_began = self._paused_until
        self._accepted = 0
        return True
