"""The fetch governor's rules, driven with made-up moments (no sleeping, no HTTP)."""

from __future__ import annotations

import pytest

from favdesk.spotify.governor import (
    INITIAL_CONCURRENCY,
    MIN_PACE_SAMPLE,
    PACE_MARGIN,
    PACE_RELAX,
    Governor,
)

QUICK = 0.1  # seconds a reply takes when Spotify answers quickly
SLOW = 1.0  # well over twice QUICK: not quick


def quick_replies(governor: Governor, count: int, sent_at: float = 0.0) -> None:
    for _ in range(count):
        governor.succeeded(sent_at, QUICK)


def paced_after_a_429(accepted: int = 10) -> Governor:
    """A governor that saw `accepted` quick replies from t=0, then a 429 at t=10 with a 2 s wait."""
    governor = Governor(cap=8, now=0.0)
    quick_replies(governor, accepted)
    governor.rate_limited(sent_at=9.0, now=10.0, wait=2.0)
    return governor


def test_starts_with_the_initial_bound_no_pause_and_no_pace():
    governor = Governor(cap=8, now=5.0)
    assert governor.limit == INITIAL_CONCURRENCY
    assert governor.interval == 0.0
    assert governor.ready_at() == 0.0


def test_initial_bound_never_exceeds_the_cap():
    assert Governor(cap=1, now=0.0).limit == 1


def test_each_quick_reply_raises_the_bound_by_one_before_any_429():
    governor = Governor(cap=8, now=0.0)
    quick_replies(governor, 2)  # one round of 2 in flight: doubled
    assert governor.limit == 4
    quick_replies(governor, 4)
    assert governor.limit == 8


def test_bound_grows_no_further_than_the_cap():
    governor = Governor(cap=3, now=0.0)
    quick_replies(governor, 20)
    assert governor.limit == 3


def test_slow_reply_does_not_raise_the_bound():
    governor = Governor(cap=8, now=0.0)
    quick_replies(governor, 1)
    governor.succeeded(0.0, SLOW)
    assert governor.limit == INITIAL_CONCURRENCY + 1


def test_429_halves_the_bound():
    governor = Governor(cap=8, now=0.0)
    quick_replies(governor, 6)
    assert governor.rate_limited(sent_at=1.0, now=2.0, wait=1.0) is True
    assert governor.limit == 4


def test_429_never_takes_the_bound_below_one():
    governor = Governor(cap=1, now=0.0)
    governor.rate_limited(sent_at=1.0, now=2.0, wait=1.0)
    assert governor.limit == 1


def test_after_a_429_the_bound_grows_by_one_per_full_round_of_quick_replies():
    governor = Governor(cap=8, now=0.0)
    quick_replies(governor, 6)
    governor.rate_limited(sent_at=1.0, now=2.0, wait=1.0)
    quick_replies(governor, 3, sent_at=3.0)
    assert governor.limit == 4
    quick_replies(governor, 1, sent_at=3.0)
    assert governor.limit == 5
    quick_replies(governor, 5, sent_at=3.0)
    assert governor.limit == 6


def test_after_a_429_a_slow_reply_restarts_the_round():
    governor = Governor(cap=8, now=0.0)
    quick_replies(governor, 6)
    governor.rate_limited(sent_at=1.0, now=2.0, wait=1.0)
    quick_replies(governor, 3, sent_at=3.0)
    governor.succeeded(3.0, SLOW)
    quick_replies(governor, 3, sent_at=3.0)
    assert governor.limit == 4
    quick_replies(governor, 1, sent_at=3.0)
    assert governor.limit == 5


def test_429_pauses_every_request_until_its_retry_after_has_passed():
    governor = Governor(cap=8, now=0.0)
    governor.rate_limited(sent_at=1.0, now=2.0, wait=3.0)
    assert governor.ready_at() == 5.0


def test_429_of_a_request_sent_before_the_pause_only_extends_the_shared_pause():
    governor = Governor(cap=8, now=0.0)
    quick_replies(governor, 6)
    governor.rate_limited(sent_at=1.0, now=2.0, wait=3.0)
    assert governor.rate_limited(sent_at=1.5, now=2.5, wait=4.0) is False
    assert governor.ready_at() == 6.5
    assert governor.limit == 4


def test_429_of_a_request_sent_before_the_pause_never_shortens_it():
    governor = Governor(cap=8, now=0.0)
    governor.rate_limited(sent_at=1.0, now=2.0, wait=3.0)
    governor.rate_limited(sent_at=1.5, now=2.5, wait=1.0)
    assert governor.ready_at() == 5.0


def test_429_of_a_request_sent_after_the_pause_began_starts_a_new_pause():
    governor = Governor(cap=8, now=0.0)
    quick_replies(governor, 6)
    governor.rate_limited(sent_at=1.0, now=2.0, wait=1.0)
    assert governor.rate_limited(sent_at=3.0, now=4.0, wait=1.0) is True
    assert governor.limit == 2
    assert governor.ready_at() == 5.0


def test_429_sets_no_pace_with_fewer_than_the_minimum_accepted_requests():
    governor = paced_after_a_429(accepted=MIN_PACE_SAMPLE - 1)
    assert governor.interval == 0.0


def test_429_paces_a_little_slower_than_the_rate_spotify_let_through():
    governor = paced_after_a_429(accepted=10)
    # 10 accepted from t=0 to the 429 at t=10, plus the 2 s Spotify asked to wait
    assert governor.interval == pytest.approx(PACE_MARGIN * (10.0 + 2.0) / 10)


def test_the_minimum_sample_of_accepted_requests_is_enough_to_set_a_pace():
    governor = paced_after_a_429(accepted=MIN_PACE_SAMPLE)
    assert governor.interval == pytest.approx(PACE_MARGIN * 12.0 / MIN_PACE_SAMPLE)


def test_a_send_makes_the_next_wait_for_the_pace():
    governor = paced_after_a_429()
    governor.sent(20.0)
    assert governor.ready_at() == pytest.approx(20.0 + governor.interval)


def test_the_pause_holds_requests_even_when_the_pace_would_let_them_go():
    governor = paced_after_a_429()  # paused until t=12, one request per 1.26 s
    governor.sent(10.0)
    assert governor.ready_at() == 12.0


def test_without_a_pace_a_send_does_not_delay_the_next():
    governor = Governor(cap=8, now=0.0)
    governor.sent(3.0)
    assert governor.ready_at() == 3.0


def test_each_accepted_request_after_the_pause_relaxes_the_pace():
    governor = paced_after_a_429()
    paced = governor.interval
    quick_replies(governor, 3, sent_at=12.0)
    assert governor.interval == pytest.approx(paced * PACE_RELAX**3)


def test_replies_to_requests_sent_before_the_pause_ended_do_not_relax_the_pace():
    governor = paced_after_a_429()
    paced = governor.interval
    quick_replies(governor, 3, sent_at=11.0)
    assert governor.interval == paced


def test_a_later_429_measures_only_requests_sent_since_the_pause_ended():
    governor = paced_after_a_429()  # pause ended at t=12
    quick_replies(governor, 5, sent_at=11.0)  # caught by the pause: not counted
    quick_replies(governor, MIN_PACE_SAMPLE, sent_at=13.0)
    governor.rate_limited(sent_at=19.0, now=20.0, wait=1.0)
    assert governor.interval == pytest.approx(PACE_MARGIN * (20.0 - 12.0 + 1.0) / MIN_PACE_SAMPLE)


def test_a_later_429_with_too_few_accepted_requests_keeps_the_current_pace():
    governor = paced_after_a_429()
    quick_replies(governor, MIN_PACE_SAMPLE - 1, sent_at=13.0)
    relaxed = governor.interval
    governor.rate_limited(sent_at=19.0, now=20.0, wait=1.0)
    assert governor.interval == relaxed
