"""The fetch governor's rules, driven with made-up moments (no sleeping, no HTTP)."""

from __future__ import annotations

import pytest

from favdesk.spotify.governor import (
    GROW_AFTER,
    GROWTH,
    MIN_WINDOW_SAMPLE,
    WINDOW_MARGIN,
    Governor,
    RateWindow,
)

STEP = 0.01  # seconds between the sends of a burst
LATENCY = 0.05  # seconds from a send to its answer


def burst(governor: Governor, count: int, start: float) -> list[int]:
    """`count` sends, STEP apart from `start`, each answered 200 LATENCY later; their tickets."""
    tickets = [governor.sent(start + i * STEP) for i in range(count)]
    for i, ticket in enumerate(tickets):
        governor.answered(ticket, start + i * STEP + LATENCY, got_through=True)
    return tickets


def limited_after(accepted: int, *, wait: float = 2.0, cap: int = 8) -> Governor:
    """`accepted` sends from t=0 got through, the next one (sent at t=1) got a 429 read at
    t=1.05 asking for `wait` seconds."""
    governor = Governor(cap=cap, now=0.0)
    burst(governor, accepted, 0.0)
    governor.rate_limited(governor.sent(1.0), now=1.05, wait=wait)
    return governor


def test_starts_at_the_cap_with_no_pause_and_no_window():
    governor = Governor(cap=8, now=5.0)
    assert governor.limit == 8
    assert governor.window is None
    assert governor.ready_at() == 0.0


def test_a_429_pauses_every_request_until_its_retry_after_has_passed():
    governor = Governor(cap=8, now=0.0)
    assert governor.rate_limited(governor.sent(1.0), now=2.0, wait=3.0) is True
    assert governor.ready_at() == 5.0


def test_429_of_a_request_sent_before_the_pause_only_extends_it():
    governor = Governor(cap=8, now=0.0)
    first, second = governor.sent(1.0), governor.sent(1.5)
    governor.rate_limited(first, now=2.0, wait=3.0)
    assert governor.rate_limited(second, now=2.5, wait=4.0) is False
    assert governor.ready_at() == 6.5


def test_429_of_a_request_sent_before_the_pause_never_shortens_it():
    governor = Governor(cap=8, now=0.0)
    first, second = governor.sent(1.0), governor.sent(1.5)
    governor.rate_limited(first, now=2.0, wait=3.0)
    governor.rate_limited(second, now=2.5, wait=1.0)
    assert governor.ready_at() == 5.0


def test_after_a_pause_one_request_goes_first_and_its_success_lets_the_rest_follow():
    governor = limited_after(0)
    assert governor.limit == 1
    governor.answered(governor.sent(3.1), 3.15, got_through=True)
    assert governor.limit == 8


def test_an_answer_that_is_no_page_keeps_one_at_a_time():
    governor = limited_after(0)
    governor.answered(governor.sent(3.1), 3.15, got_through=False)
    assert governor.limit == 1


def test_success_of_a_request_sent_before_the_pause_keeps_one_at_a_time():
    governor = Governor(cap=8, now=0.0)
    early, late = governor.sent(1.0), governor.sent(1.5)
    governor.rate_limited(late, now=2.0, wait=1.0)
    governor.answered(early, 2.1, got_through=True)
    assert governor.limit == 1


def test_first_429_learns_the_size_from_the_requests_that_got_through():
    governor = limited_after(10)
    assert governor.window is not None
    assert governor.window.requests == 10


def test_first_429_learns_the_length_as_whole_seconds_within_its_retry_after():
    # the oldest request left at t=0; the 429 read at t=1.05 asked for 2 s more: the window
    # frees within 3.05 s of the oldest, so it is 3 s long (a whole number of seconds)
    assert limited_after(10, wait=2.0).window == RateWindow(10, 3 + WINDOW_MARGIN)


def test_too_few_requests_through_before_the_429_teach_nothing():
    assert limited_after(MIN_WINDOW_SAMPLE - 1).window is None


def test_429s_for_requests_in_flight_at_the_first_lower_the_size_and_tighten_the_length():
    governor = Governor(cap=8, now=0.0)
    burst(governor, 10, 0.0)
    in_flight = [governor.sent(0.2 + i * STEP) for i in range(3)]
    governor.rate_limited(governor.sent(0.5), now=0.55, wait=3.0)
    assert governor.window == RateWindow(13, 3 + WINDOW_MARGIN)
    for ticket in in_flight:  # sent before the pause: refused too, and freeing sooner
        governor.rate_limited(ticket, now=0.6, wait=2.0)
    assert governor.window == RateWindow(10, 2 + WINDOW_MARGIN)


def test_a_request_held_back_at_the_gate_does_not_count_towards_the_size():
    governor = Governor(cap=8, now=0.0)
    burst(governor, 10, 0.0)
    held = governor.sent(0.2)
    governor.rate_limited(governor.sent(0.3), now=0.35, wait=2.0)
    governor.withdrawn(held)
    assert governor.window is not None
    assert governor.window.requests == 10


def test_the_learned_window_holds_a_place_for_its_length_from_the_send():
    governor = limited_after(10, wait=1.0)  # 10 per 2 s, paused until t=2.05
    tickets = burst(governor, 10, 2.1)  # every round trip alike: Spotify saw each as sent
    assert governor.ready_at() == pytest.approx(2.1 + 2 + WINDOW_MARGIN)
    governor.withdrawn(tickets[-1])  # never sent: its place is free, the first burst's too
    assert governor.ready_at() == pytest.approx(2.05)


def test_a_place_is_held_longer_by_the_spread_of_round_trips_but_not_past_its_answer():
    governor = limited_after(4, wait=1.0)  # 4 per 2 s
    tickets = [governor.sent(2.1 + i * STEP) for i in range(4)]
    governor.answered(tickets[0], 2.2, got_through=True)  # 0.1 s round trip
    for ticket, answer in zip(tickets[1:], (2.16, 2.17, 2.18), strict=True):
        governor.answered(ticket, answer, got_through=True)  # 0.05 s: a spread of 0.05 s
    assert governor.ready_at() == pytest.approx(2.1 + 0.05 + 2 + WINDOW_MARGIN)
    slow = governor.sent(4.2)
    governor.answered(slow, 5.2, got_through=True)  # a spread of 0.95 s: answers bound it
    assert governor.ready_at() == pytest.approx(2.16 + 2 + WINDOW_MARGIN)


def test_a_place_held_by_a_request_in_flight_frees_only_after_its_answer():
    governor = limited_after(4, wait=1.0)  # 4 per 2 s
    first = governor.sent(2.1)
    burst(governor, 3, 2.2)
    assert governor.ready_at() == float("inf")
    governor.answered(first, 2.5, got_through=True)
    assert governor.ready_at() == pytest.approx(2.1 + (0.4 - LATENCY) + 2 + WINDOW_MARGIN)


def test_a_refused_first_request_after_a_pause_lengthens_the_window_by_whole_seconds():
    governor = limited_after(10, wait=1.0)  # learned 10 per 2 s
    probe = governor.sent(2.1)  # the oldest (answered at 0.05) still held its place
    assert governor.rate_limited(probe, now=2.15, wait=1.0) is True
    assert governor.window == RateWindow(10, 3 + WINDOW_MARGIN)
    probe = governor.sent(3.2)
    governor.rate_limited(probe, now=3.25, wait=1.0)
    assert governor.window == RateWindow(10, 4 + WINDOW_MARGIN)


def test_a_429_mid_run_first_drops_the_rounding_to_whole_seconds():
    governor = limited_after(10, wait=1.5)  # bound 2.55 s from the oldest: taken as 2 s
    burst(governor, 9, 2.6)
    governor.rate_limited(governor.sent(2.7), now=2.75, wait=1.0)
    assert governor.window == RateWindow(10, pytest.approx(2.55))


def test_a_second_429_mid_run_shrinks_the_size():
    governor = limited_after(10, wait=1.5)
    burst(governor, 9, 2.6)
    governor.rate_limited(governor.sent(2.7), now=2.75, wait=1.0)
    burst(governor, 5, 3.8)
    governor.rate_limited(governor.sent(3.9), now=3.95, wait=1.0)
    assert governor.window == RateWindow(9, pytest.approx(2.55))


def full_windows(governor: Governor, count: int, size: int = 8) -> float:
    """`count` windows of `size` sends, 2.1 s apart from t=2.1; when the next would start."""
    for n in range(count):
        burst(governor, size, 2.1 + 2.1 * n)
    return 2.1 + 2.1 * count


def test_the_size_grows_after_some_whole_windows_without_a_429_while_it_holds_the_fetch_back():
    governor = limited_after(8, wait=1.0)  # 8 per 2 s, paused until t=2.05
    later = full_windows(governor, GROW_AFTER)
    assert governor.window == RateWindow(8, 2 + WINDOW_MARGIN)
    burst(governor, 8, later)  # GROW_AFTER whole windows after the pause, filling the window
    assert governor.window == RateWindow(8 + int(8 * GROWTH), 2 + WINDOW_MARGIN)


def test_a_429_right_after_growing_restores_the_size_and_growing_stops():
    governor = limited_after(8, wait=1.0)
    later = full_windows(governor, GROW_AFTER)
    burst(governor, 9, later)  # grew to 10
    governor.rate_limited(governor.sent(later + 0.1), now=later + 0.15, wait=2.0)
    assert governor.window == RateWindow(8, 2 + WINDOW_MARGIN)
    for n in range(GROW_AFTER + 2):
        burst(governor, 8, later + 2.3 + 2.1 * n)
    assert governor.window == RateWindow(8, 2 + WINDOW_MARGIN)


def test_the_window_is_not_grown_while_the_fetch_sends_slower_than_it_allows():
    governor = limited_after(8, wait=1.0)
    for second in range(2, 20):
        governor.answered(governor.sent(second + 0.1), second + 0.15, got_through=True)
    assert governor.window == RateWindow(8, 2 + WINDOW_MARGIN)


def test_after_many_sends_the_window_still_counts_the_latest_ones():
    governor = limited_after(10, wait=1.0)  # 10 per 2 s
    for second in range(3, 200, 3):
        burst(governor, 5, float(second))  # half the window every 3 s: it never grows
    assert governor.ready_at() == pytest.approx(195 + 2 + WINDOW_MARGIN)
    assert governor.window == RateWindow(10, 2 + WINDOW_MARGIN)
