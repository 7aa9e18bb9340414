"""The circuit breaker of an agent type (a plain object) and the AgentCircuit aggregate that
records its changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stratexec.actors.circuit import CircuitBreaker, Closed, Opened
from stratexec.circuit_settings import CircuitSettings
from stratexec.domain.circuit import AgentCircuit, CircuitState, agent_circuit_id
from stratexec.domain.errors import InvalidTransition

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SETTINGS = CircuitSettings(window=4, failure_rate=0.5, cool_down=30.0)
PROBE_AT = NOW + timedelta(seconds=30)


def feed(breaker: CircuitBreaker, outcomes: str, start: int = 0) -> list[Opened | Closed | None]:
    """One finished attempt per letter: F failed, s succeeded, w withdrawn."""
    failed = {"F": True, "s": False, "w": None}
    return [breaker.finished(f"x:t:{start + i}", failed[o], NOW)
            for i, o in enumerate(outcomes)]


def tripped() -> CircuitBreaker:
    breaker = CircuitBreaker(SETTINGS)
    assert feed(breaker, "sFsF")[-1] == Opened(0.5, 4, ("x:t:1", "x:t:3"), PROBE_AT)
    return breaker


# ---------------------------------------------------------------------------- breaker

def test_it_opens_once_the_window_is_full_and_the_threshold_reached() -> None:
    breaker = CircuitBreaker(SETTINGS)

    assert feed(breaker, "FFF") == [None, None, None]  # three failures: the window is not full
    assert breaker.may_start()
    opened = breaker.finished("x:t:9", False, NOW)

    assert opened == Opened(0.75, 4, ("x:t:0", "x:t:1", "x:t:2"), PROBE_AT)
    assert breaker.state is CircuitState.OPEN
    assert not breaker.may_start()


def test_below_the_threshold_it_stays_closed() -> None:
    breaker = CircuitBreaker(SETTINGS)

    assert feed(breaker, "FsssFss") == [None] * 7

    assert breaker.state is CircuitState.CLOSED


def test_the_window_slides_old_failures_out() -> None:
    breaker = CircuitBreaker(SETTINGS)
    feed(breaker, "Fsss")  # one failure of four
    feed(breaker, "s", start=4)  # the failure leaves the window
    assert feed(breaker, "F", start=5) == [None]  # one of four again, not two

    assert feed(breaker, "F", start=6)[0] == Opened(0.5, 4, ("x:t:5", "x:t:6"), PROBE_AT)


def test_withdrawn_attempts_do_not_count() -> None:
    breaker = CircuitBreaker(SETTINGS)

    assert feed(breaker, "FwFwwww") == [None] * 7

    assert breaker.state is CircuitState.CLOSED
    assert feed(breaker, "ss", start=7)[-1] is not None  # F F s s: half failed


def test_open_it_lets_nothing_start_and_counts_nothing() -> None:
    breaker = tripped()

    assert not breaker.may_start()
    assert not breaker.starting("x:t:10")
    assert feed(breaker, "ssss", start=10) == [None] * 4  # started before it opened
    assert breaker.state is CircuitState.OPEN


def test_after_the_cool_down_exactly_one_probe_starts() -> None:
    breaker = tripped()

    assert breaker.probe_due(PROBE_AT)

    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.may_start()
    assert breaker.starting("x:t:20")
    assert not breaker.may_start()
    assert not breaker.starting("x:t:21")
    assert breaker.probe == "x:t:20"


def test_a_successful_probe_closes_it_with_an_empty_window() -> None:
    breaker = tripped()
    breaker.probe_due(PROBE_AT)
    breaker.starting("x:t:20")

    assert breaker.finished("x:t:19", True, NOW) is None  # not the probe
    assert breaker.finished("x:t:20", False, NOW) == Closed("x:t:20")

    assert breaker.state is CircuitState.CLOSED
    assert breaker.may_start()
    assert feed(breaker, "FFF", start=30) == [None] * 3  # the window starts afresh


def test_a_failed_probe_opens_it_for_another_cool_down() -> None:
    breaker = tripped()
    breaker.probe_due(PROBE_AT)
    breaker.starting("x:t:20")
    later = NOW + timedelta(seconds=31)

    reopened = breaker.finished("x:t:20", True, later)

    assert reopened == Opened(1.0, 1, ("x:t:20",), later + timedelta(seconds=30))
    assert breaker.state is CircuitState.OPEN
    assert not breaker.may_start()
    assert not breaker.probe_due(PROBE_AT)  # the first cool-down's timer is stale now
    assert breaker.probe_due(later + timedelta(seconds=30))


def test_a_withdrawn_probe_lets_the_next_attempt_probe() -> None:
    breaker = tripped()
    breaker.probe_due(PROBE_AT)
    breaker.starting("x:t:20")

    assert breaker.finished("x:t:20", None, NOW) is None

    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.starting("x:t:21")


def test_a_reset_by_hand_closes_it_and_a_stale_timer_changes_nothing() -> None:
    breaker = tripped()

    breaker.reset()

    assert breaker.state is CircuitState.CLOSED
    assert breaker.may_start()
    assert not breaker.probe_due(PROBE_AT)
    assert breaker.state is CircuitState.CLOSED


def test_restored_after_a_restart_it_is_open_until_its_probe_is_due() -> None:
    breaker = CircuitBreaker(SETTINGS)

    breaker.restore(PROBE_AT)

    assert not breaker.may_start()
    assert breaker.probe_due(PROBE_AT)
    assert breaker.starting("x:t:1")


@pytest.mark.parametrize("settings", [
    {"window": 0}, {"failure_rate": 0.0}, {"failure_rate": 1.5}, {"cool_down": -1.0}])
def test_settings_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        CircuitSettings(**settings)


def test_the_default_settings() -> None:
    assert CircuitSettings() == CircuitSettings(window=10, failure_rate=0.5, cool_down=30.0)


# -------------------------------------------------------------------------- aggregate

def replay(events: list[Any]) -> AgentCircuit:
    rebuilt: AgentCircuit | None = None
    for each in events:
        rebuilt = each.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


def test_the_aggregate_records_pause_probe_and_resume() -> None:
    circuit = AgentCircuit("email")
    assert circuit.id == agent_circuit_id("email") != agent_circuit_id("content")
    assert circuit.state is CircuitState.CLOSED

    circuit.pause(0.5, 4, ["e:t:1", "e:t:3"], PROBE_AT)
    assert (circuit.state, circuit.is_paused, circuit.probe_at) == (
        CircuitState.OPEN, True, PROBE_AT)
    circuit.start_probe("e:t:9")
    assert (circuit.state, circuit.probe) == (CircuitState.HALF_OPEN, "e:t:9")
    circuit.pause(1.0, 1, ["e:t:9"], PROBE_AT + timedelta(seconds=60))
    circuit.start_probe("e:t:10")
    circuit.resume("probe", "e:t:10")
    assert (circuit.state, circuit.probe_at, circuit.is_paused) == (
        CircuitState.CLOSED, None, False)

    events = circuit.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Watched", "Paused", "Probing", "Paused", "Probing", "Resumed"]
    rebuilt = replay(list(events))
    assert (rebuilt.state, rebuilt.attempts, rebuilt.failure_rate) == (
        CircuitState.CLOSED, ["e:t:9"], 1.0)


def test_the_aggregate_refuses_what_its_state_forbids() -> None:
    circuit = AgentCircuit("email")
    with pytest.raises(InvalidTransition) as refused:
        circuit.resume("operator")
    assert refused.value.details == {"agentType": "email", "state": "closed"}
    with pytest.raises(InvalidTransition, match="not paused"):
        circuit.start_probe("e:t:1")
    circuit.pause(0.5, 4, ["e:t:1"], PROBE_AT)
    with pytest.raises(InvalidTransition, match="paused already"):
        circuit.pause(0.5, 4, ["e:t:1"], PROBE_AT)
    circuit.resume("operator")
    assert circuit.state is CircuitState.CLOSED
