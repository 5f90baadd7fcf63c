"""Redis is read only while someone looks and the worker is not paused, and backs off when down."""

from __future__ import annotations

import pytest

from favdesk.errors import RedisUnavailable
from favdesk.gui import poller as poller_module
from favdesk.gui.bridge import Bridge
from favdesk.gui.poller import BACKOFF, BUSY_INTERVAL, IDLE_INTERVAL, StatusPoller
from tests.gui import samples


class Reads:
    """Stands in for `runtime.status()`: counts calls; fails while `down` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.full_calls = 0
        self.down = False

    def __call__(self, full: bool = False):
        self.calls += 1
        self.full_calls += full
        if self.down:
            raise RedisUnavailable("Redis at unix:///x.sock did not answer: Connection refused")
        return samples.snapshot()


@pytest.fixture
def poller(qtbot):
    bridge = Bridge()
    made = StatusPoller(bridge)
    made.fetch = Reads()
    yield made
    made.stop()
    bridge.close()


def test_first_look_reads_once_then_every_30_s_or_5_s_during_a_job(qtbot, poller):
    with qtbot.waitSignal(poller.polled):
        poller.update(ready=True, visible=True)
    assert poller.fetch.calls == 1
    assert poller.plan.interval == IDLE_INTERVAL
    assert IDLE_INTERVAL * 0.9 < poller.next_poll_in() <= IDLE_INTERVAL * 1.05  # a coarse timer
    poller.update(busy=True)
    assert poller.plan.interval == BUSY_INTERVAL
    assert poller.next_poll_in() <= BUSY_INTERVAL * 1.05


@pytest.mark.slow
def test_paused_or_hidden_sends_nothing_not_even_on_demand(qtbot, poller, monkeypatch):
    monkeypatch.setattr(poller_module, "IDLE_INTERVAL", 0.02)
    with qtbot.waitSignal(poller.polled):
        poller.update(ready=True, visible=True)
    qtbot.waitUntil(lambda: poller.fetch.calls >= 3)  # it does read on its own while looked at
    qtbot.waitUntil(lambda: not poller._in_flight)
    poller.update(paused=True)
    before = poller.fetch.calls
    assert poller.poll_now() is False
    with qtbot.assertNotEmitted(poller.polled, wait=300):
        pass
    assert poller.fetch.calls == before
    assert poller.next_poll_in() is None
    assert poller.plan.reason == "the worker is paused"
    poller.update(paused=False, visible=False)
    with qtbot.assertNotEmitted(poller.polled, wait=300):
        pass
    assert poller.fetch.calls == before
    assert poller.plan.reason == "the window is hidden"


def test_the_user_can_still_ask_for_one_read_while_paused(qtbot, poller):
    poller.update(ready=True, visible=True, paused=True)
    assert poller.fetch.calls == 0
    with qtbot.waitSignal(poller.polled):
        assert poller.poll_now(force=True)
    assert poller.fetch.calls == 1
    assert poller.fetch.full_calls == 1  # asked for: the jobs table is read again too
    assert poller.next_poll_in() is None


def test_redis_down_backs_off_and_recovers_by_itself(qtbot, poller, monkeypatch):
    monkeypatch.setattr(poller_module, "BACKOFF", (0.02, 0.04, 60.0))
    poller.fetch.down = True
    with qtbot.waitSignal(poller.failed) as failed:
        poller.update(ready=True, visible=True)
    assert "did not answer" in failed.args[0]
    assert poller.plan.failures == 1 and poller.plan.reason == "retrying"
    qtbot.waitUntil(lambda: poller.plan.failures == 3)
    assert poller.plan.interval == 60.0
    poller.fetch.down = False
    with qtbot.waitSignal(poller.polled):
        poller.poll_now()
    assert poller.plan.failures == 0
    assert poller.plan.interval == IDLE_INTERVAL


def test_backoff_is_capped():
    assert BACKOFF[-1] == 60.0
    assert list(BACKOFF) == sorted(BACKOFF)
