"""The completion estimate on DAGs whose answer is known: chains, fan-outs, a diamond,
uneven agent speeds, concurrency, running attempts and retries due later."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from stratexec.domain.eta import (
    CRITICAL_PATH_SHOWN,
    AgentSpeed,
    Eta,
    RemainingTask,
    estimate,
    nearest_rank,
    time_left,
)

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
ONE = AgentSpeed(p50=1.0, p90=2.0, concurrency=4)
# Sizes of the large plans; STRATEXEC_ETA_TASKS=100000 for a longer run.
LARGE = int(os.environ.get("STRATEXEC_ETA_TASKS", "10000"))


def task(task_id: str, *depends_on: str, agent: str = "x", running_for: float | None = None,
         ready_in: float = 0.0, rank: int = 0) -> RemainingTask:
    return RemainingTask(task_id, agent, depends_on, running_for, ready_in, (rank,))


def chain(length: int, agent: str = "x", prefix: str = "t") -> list[RemainingTask]:
    return [task(f"{prefix}{i}", *([f"{prefix}{i - 1}"] if i else []), agent=agent)
            for i in range(length)]


def test_a_chain_takes_the_sum_of_its_durations() -> None:
    eta = estimate(chain(3), {"x": ONE}, NOW)

    assert (eta.seconds, eta.p90_seconds, eta.remaining_tasks) == (3.0, 6.0, 3)
    assert eta.critical_path == ("t0", "t1", "t2")
    assert eta.estimated_at == NOW


def test_a_fan_out_within_the_concurrency_takes_one_duration() -> None:
    eta = estimate([task(f"f{i}") for i in range(4)], {"x": ONE}, NOW)

    assert (eta.seconds, eta.p90_seconds) == (1.0, 2.0)


def test_a_fan_out_beyond_the_concurrency_waits_for_slots() -> None:
    """100 tasks, 4 at a time: 25 durations, and the critical path is the 25 tasks that
    followed each other in one slot."""
    tasks = [task("root"), *(task(f"f{i:03}", "root", agent="y") for i in range(100))]

    eta = estimate(tasks, {"x": ONE, "y": AgentSpeed(1.0, 1.5, 4)}, NOW)

    assert eta.seconds == pytest.approx(26.0)
    assert eta.p90_seconds == pytest.approx(2.0 + 25 * 1.5)
    assert eta.critical_path[0] == "root"
    assert len(eta.critical_path) == 26
    assert all(t.startswith("f") for t in eta.critical_path[1:])


def test_a_diamond_waits_for_its_slower_branch() -> None:
    tasks = [task("a"), task("b", "a", agent="fast"), task("c", "a", agent="slow"),
             task("d", "b", "c")]
    speeds = {"x": ONE, "fast": AgentSpeed(1.0, 1.0, 4), "slow": AgentSpeed(3.0, 5.0, 4)}

    eta = estimate(tasks, speeds, NOW)

    assert (eta.seconds, eta.p90_seconds) == (5.0, 2.0 + 5.0 + 2.0)
    assert eta.critical_path == ("a", "c", "d")


def test_uneven_agent_speeds_make_the_slow_chain_critical() -> None:
    tasks = [*chain(4, "quick", "q"), *chain(2, "slow", "s")]
    speeds = {"quick": AgentSpeed(1.0, 1.0, 1), "slow": AgentSpeed(10.0, 12.0, 1)}

    eta = estimate(tasks, speeds, NOW)

    assert eta.seconds == 20.0
    assert eta.critical_path == ("s0", "s1")


def test_concurrency_one_serialises_independent_tasks() -> None:
    eta = estimate([task(f"i{i}") for i in range(5)], {"x": AgentSpeed(2.0, 3.0, 1)}, NOW)

    assert (eta.seconds, eta.p90_seconds) == (10.0, 15.0)
    assert len(eta.critical_path) == 5


def test_ready_tasks_start_in_rank_order() -> None:
    """One slot: the high-ranked long chain's head starts first, then the short task."""
    tasks = [task("late", rank=2), task("head", rank=1), task("tail", "head", rank=1)]

    eta = estimate(tasks, {"x": AgentSpeed(1.0, 1.0, 1)}, NOW)

    assert eta.seconds == 3.0
    assert eta.critical_path[0] == "head"


def test_a_running_attempt_has_its_elapsed_time_less_to_go() -> None:
    tasks = [task("a", running_for=0.25), task("b", "a")]

    eta = estimate(tasks, {"x": ONE}, NOW)

    assert eta.seconds == pytest.approx(1.75)
    assert eta.p90_seconds == pytest.approx(3.75)
    assert eta.critical_path == ("a", "b")


def test_an_attempt_past_its_duration_is_expected_to_end_soon() -> None:
    assert time_left(1.0, 5.0) == pytest.approx(0.1)
    assert time_left(1.0, None) == 1.0
    assert estimate([task("a", running_for=9.0)], {"x": ONE}, NOW).seconds == pytest.approx(0.1)


def test_running_attempts_hold_their_slots() -> None:
    """Two slots, both running for 0.5 s of 1 s: the queued task starts at 0.5."""
    tasks = [task("r1", running_for=0.5), task("r2", running_for=0.5), task("q")]

    eta = estimate(tasks, {"x": AgentSpeed(1.0, 1.0, 2)}, NOW)

    assert eta.seconds == pytest.approx(1.5)
    assert eta.critical_path[-1] == "q"


def test_a_retry_due_later_starts_no_sooner() -> None:
    tasks = [task("retrying", ready_in=4.0), task("after", "retrying")]

    eta = estimate(tasks, {"x": ONE}, NOW)

    assert eta.seconds == 6.0
    assert eta.critical_path == ("retrying", "after")


def test_finished_dependencies_are_satisfied() -> None:
    eta = estimate([task("b", "a-finished-long-ago")], {"x": ONE}, NOW)

    assert (eta.seconds, eta.remaining_tasks) == (1.0, 1)


def test_nothing_left_finishes_now() -> None:
    eta = estimate([], {}, NOW)

    assert (eta.seconds, eta.p90_seconds, eta.remaining_tasks, eta.critical_path) == (
        0.0, 0.0, 0, ())


def test_zero_durations_finish_at_once() -> None:
    eta = estimate(chain(5), {"x": AgentSpeed(0.0, 0.0, 4)}, NOW)

    assert eta.seconds == 0.0
    assert len(eta.critical_path) == 5


def test_a_large_concurrency_bound_fan_out() -> None:
    tasks = [task(f"f{i}") for i in range(LARGE)]

    eta = estimate(tasks, {"x": AgentSpeed(1.0, 2.0, 4)}, NOW)

    assert eta.seconds == pytest.approx(LARGE / 4)
    assert eta.p90_seconds == pytest.approx(LARGE / 2)
    assert len(eta.critical_path) == CRITICAL_PATH_SHOWN


def test_a_large_plan_of_chains_of_two() -> None:
    """The benchmark's shape: N chains of two tasks on two types; with 4 slots each, the
    first type's N tasks take N/4 durations and the last second-type task ends one after."""
    chains = LARGE // 2
    tasks = [t for i in range(chains)
             for t in (task(f"a{i}", agent="a", rank=i), task(f"b{i}", f"a{i}", agent="b",
                                                                 rank=i))]
    speeds = {"a": AgentSpeed(1.0, 1.0, 4), "b": AgentSpeed(1.0, 1.0, 4)}

    eta = estimate(tasks, speeds, NOW)

    assert eta.seconds == pytest.approx(chains / 4 + 1)
    assert eta.remaining_tasks == 2 * chains


def test_a_long_chain_keeps_the_head_of_its_critical_path() -> None:
    eta = estimate(chain(LARGE), {"x": AgentSpeed(0.5, 1.0, 4)}, NOW)

    assert eta.seconds == pytest.approx(LARGE * 0.5)
    assert eta.critical_path == tuple(f"t{i}" for i in range(CRITICAL_PATH_SHOWN))


def test_observed_durations_replace_the_prior() -> None:
    prior = AgentSpeed(30.0, 60.0, 3)

    assert AgentSpeed.observed([], prior) == prior
    assert AgentSpeed.observed([4.0, 1.0, 2.0, 3.0, 10.0], prior) == AgentSpeed(3.0, 10.0, 3)


def test_nearest_rank() -> None:
    assert nearest_rank([], 50) is None
    assert nearest_rank([5.0], 90) == 5.0
    assert nearest_rank(range(1, 101), 95) == 95
    assert nearest_rank([3.0, 1.0, 2.0], 50) == 2.0


def test_an_estimate_is_recorded_as_its_wire_shape_and_read_back() -> None:
    eta = Eta(12.34567, 20.0, NOW, 7, ("a", "b"))

    record = eta.as_record()

    assert record == {"seconds": 12.346, "p90Seconds": 20.0,
                      "estimatedAt": "2026-12-02T01:00:00+00:00", "remainingTasks": 7,
                      "criticalPath": ["a", "b"]}
    assert Eta.from_record(record) == Eta(12.346, 20.0, NOW, 7, ("a", "b"))


def test_an_estimate_is_worth_recording_when_it_moved() -> None:
    earlier = Eta(100.0, 150.0, NOW, 10)

    assert Eta(100.0, 150.0, NOW, 10).moved_from(None)
    assert Eta(100.0, 150.0, NOW, 9).moved_from(earlier)  # a task finished
    assert Eta(89.0, 150.0, NOW, 10).moved_from(earlier)  # more than a tenth
    assert not Eta(95.0, 150.0, NOW, 10).moved_from(earlier)  # time passing
