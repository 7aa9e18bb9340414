from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka
import pytest
from helpers import Collector, Inbox

from stratexec.actors.clock import Clock

TIMEOUT = 5.0




@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock(name="clock-under-test")
    clock.start()
    yield clock
    clock.stop()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def collector(inbox: Inbox) -> pykka.ActorRef[Collector]:
    return Collector.start(inbox)


def test_messages_arrive_in_due_order(
    clock: Clock, inbox: Inbox, collector: pykka.ActorRef[Collector]
) -> None:
    clock.tell_later(0.06, collector, "d")
    clock.tell_later(0.02, collector, "b")
    clock.tell_at(datetime.now(UTC) + timedelta(milliseconds=40), collector, "c")
    clock.tell_later(0.0, collector, "a")
    clock.tell_at(datetime.now(UTC) - timedelta(hours=1), collector, "overdue")

    received = inbox.wait_until(lambda ms: len(ms) == 5)
    assert sorted(received[:2]) == ["a", "overdue"]
    assert received[2:] == ["b", "c", "d"]
    assert clock.pending == 0


def test_tell_at_needs_an_aware_datetime(clock: Clock, collector: pykka.ActorRef[Any]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.tell_at(datetime.now(), collector, "x")


def test_cancelled_one_shot_never_arrives(
    clock: Clock, inbox: Inbox, collector: pykka.ActorRef[Collector]
) -> None:
    cancel = clock.tell_later(0.2, collector, "cancelled")
    clock.tell_later(0.25, collector, "marker")
    cancel()
    assert inbox.wait_until(lambda ms: "marker" in ms) == ["marker"]


def test_tell_every_repeats_until_cancelled(
    clock: Clock, inbox: Inbox, collector: pykka.ActorRef[Collector]
) -> None:
    cancel = clock.tell_every(0.01, collector, "tick")
    inbox.wait_until(lambda ms: len(ms) >= 3)
    cancel()
    ticks_at_cancel = len(inbox.wait_until(lambda ms: True))
    assert clock.pending == 0

    # Ten intervals later: at most the one tick already on its way when cancel() ran.
    clock.tell_later(0.1, collector, "marker")
    received = inbox.wait_until(lambda ms: "marker" in ms)
    assert received[-1] == "marker"
    assert len(received) - 1 <= ticks_at_cancel + 1


def test_a_dead_target_does_not_stop_the_clock(
    clock: Clock, inbox: Inbox, collector: pykka.ActorRef[Collector]
) -> None:
    dead = Collector.start(Inbox())
    dead.stop()
    clock.tell_later(0.0, dead, "retry")
    clock.tell_every(0.01, dead, "tick")
    clock.tell_later(0.05, collector, "marker")

    assert inbox.wait_until(lambda ms: "marker" in ms) == ["marker"]
    assert clock.pending == 0, "the periodic tell to a dead actor is cancelled"
    clock.tell_later(0.0, collector, "still ticking")
    inbox.wait_until(lambda ms: "still ticking" in ms)


def test_stop_drops_pending_messages_and_joins(collector: pykka.ActorRef[Collector]) -> None:
    clock = Clock(name="clock-under-test")
    clock.start()
    clock.tell_later(3600, collector, "much later")
    clock.tell_every(3600, collector, "hourly")
    assert clock.pending == 2

    clock.stop()
    assert clock.pending == 0
    assert not any(t.name == "clock-under-test" for t in threading.enumerate())
    clock.tell_later(0.0, collector, "after stop")
    assert clock.pending == 0
