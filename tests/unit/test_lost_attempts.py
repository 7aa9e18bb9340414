"""Attempts that end with no outcome of their own: lost in a crash (each uses up one of the
task's attempts, so that a poison task ends), handed back unstarted on pause (free), or
timed out by their agent (a failure, after which the attempt's late replies are dropped)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from helpers import chain_strategy, replay

from stratexec.actors.messages import (
    RecordTaskFailure,
    RecordTaskProgress,
    RecordTaskStarted,
    RecordTaskSuccess,
)
from stratexec.actors.turn import INTERRUPTED_BY_RESTART, ExecutionTurn, InterruptActiveTasks
from stratexec.domain.execution import Execution, ExecutionStatus, TaskStatus
from stratexec.domain.propagation import propagate
from stratexec.domain.retry import RetryPolicy

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
LAST_ATTEMPT_LOST = f"{INTERRUPTED_BY_RESTART}; that used up its last attempt"


def start(*chains: list[str], attempts: int = 3) -> Execution:
    definition = chain_strategy(*chains)
    return Execution.start(uuid4(), "w", "chains", propagate(definition.items),
                           RetryPolicy(maximum_attempts=attempts, initial_interval=0.0))


def run(execution: Execution, task_id: str = "a:research") -> int:
    """Assign what is ready and start the task's new attempt; its number."""
    execution.assign_ready_tasks(NOW)
    task = execution.task(task_id)
    assert task.status is TaskStatus.ASSIGNED, task
    execution.start_task(task_id, task.attempt)
    return task.attempt


def crash(execution: Execution) -> list[str]:
    """What recovery does after the process died."""
    return execution.interrupt_active_tasks(INTERRUPTED_BY_RESTART)


def fail(execution: Execution, task_id: str = "a:research") -> datetime | None:
    attempt = execution.task(task_id).attempt
    return execution.fail_task(task_id, attempt, "flaky", "try again", 5.0, NOW)


def hand_back(execution: Execution, task_id: str = "a:research") -> None:
    """Assign the task, and have its agent hand the attempt back unstarted (a pause)."""
    execution.assign_ready_tasks(NOW)
    execution.interrupt_task(task_id, execution.task(task_id).attempt, "withdrawn: paused")


def interruptions(events: list[Any]) -> list[tuple[int, bool]]:
    return [(e.attempt, e.counted) for e in events
            if isinstance(e, Execution.TaskInterrupted)]


# ---------------------------------------------------------------------- the budget


def test_a_task_lost_in_every_crash_fails_for_good_after_its_attempts() -> None:
    execution = start(["a", "b", "c"], ["d"])
    for attempt in (1, 2):
        assert run(execution) == attempt
        crash(execution)
        task = execution.task("a:research")
        assert (task.status, task.interruptions, task.failures) == (
            TaskStatus.PENDING, attempt, 0)
    assert run(execution) == 3

    assert crash(execution) == ["a:research", "d:research"]

    a = execution.task("a:research")
    assert (a.status, a.attempt, a.failures, a.interruptions) == (TaskStatus.FAILED, 3, 1, 2)
    assert (a.error_kind, a.error_message) == ("interrupted", f"{LAST_ATTEMPT_LOST} (3 allowed)")
    assert (a.duration_ms, a.retry_at) == (None, None)  # how long it ran is not known
    assert [execution.task(t).status for t in ("b:research", "c:research")] == [
        TaskStatus.SKIPPED, TaskStatus.SKIPPED]
    # d was assigned at every crash but never started: it never ran, and costs nothing.
    d = execution.task("d:research")
    assert (d.status, d.interruptions) == (TaskStatus.PENDING, 0)
    assert execution.failed_task_ids == ["a:research"]
    inputs = execution.health_inputs()
    assert (inputs.failed, inputs.failed_attempts, inputs.skipped) == (1, 1, 2)


def test_a_task_with_a_single_attempt_fails_at_its_first_crash() -> None:
    execution = start(["a"], attempts=1)
    run(execution)
    crash(execution)
    assert execution.task("a:research").status is TaskStatus.FAILED
    assert execution.finish_if_done()
    assert execution.status is ExecutionStatus.FAILED


def test_lost_and_failed_attempts_share_the_budget() -> None:
    lost_last = start(["a"])
    run(lost_last)
    assert fail(lost_last) is not None
    run(lost_last)
    crash(lost_last)  # 2 of 3 used
    run(lost_last)
    crash(lost_last)
    assert lost_last.task("a:research").error_kind == "interrupted"

    failed_last = start(["a"])
    run(failed_last)
    crash(failed_last)
    run(failed_last)
    assert fail(failed_last) is not None  # 2 of 3 used
    run(failed_last)
    assert fail(failed_last) is None
    task = failed_last.task("a:research")
    assert (task.status, task.error_kind, task.failures, task.interruptions) == (
        TaskStatus.FAILED, "flaky", 2, 1)


def test_attempts_handed_back_on_pause_use_up_nothing() -> None:
    execution = start(["a"], attempts=1)
    for _ in range(3):
        hand_back(execution)
    task = execution.task("a:research")
    assert (task.status, task.attempt, task.interruptions) == (TaskStatus.PENDING, 3, 0)

    assert run(execution) == 4
    crash(execution)  # its one attempt, lost
    assert (task.status, task.error_message) == (
        TaskStatus.FAILED, f"{LAST_ATTEMPT_LOST} (1 allowed)")


def test_a_retried_failure_after_hand_backs_still_has_its_retries() -> None:
    execution = start(["a"], attempts=2)
    hand_back(execution)
    hand_back(execution)
    run(execution)
    assert fail(execution) is not None


# ----------------------------------------------------------------------- the events


def test_the_decision_is_in_the_events_and_a_replay_rebuilds_it() -> None:
    execution = start(["a", "b"], attempts=2)
    hand_back(execution)
    run(execution)
    crash(execution)
    run(execution)
    crash(execution)
    assert execution.finish_if_done()
    events: list[Any] = list(execution.collect_events())

    assert interruptions(events) == [(1, False), (2, True)]
    failed = [e for e in events if type(e).__name__ == "TaskFailed"]
    assert [(e.attempt, e.error_kind, e.retry_at) for e in failed] == [(3, "interrupted", None)]
    rebuilt = replay(events)
    for task_id, task in execution.tasks.items():
        again = rebuilt.tasks[task_id]
        assert (again.status, again.attempt, again.failures, again.interruptions) == (
            task.status, task.attempt, task.failures, task.interruptions)
        assert (again.error_kind, again.error_message, again.duration_ms) == (
            task.error_kind, task.error_message, task.duration_ms)
    assert (rebuilt.status, rebuilt.counts) == (ExecutionStatus.FAILED, execution.counts)
    assert rebuilt.health_inputs() == execution.health_inputs()


def test_a_version_1_interruption_is_read_as_not_counted() -> None:
    assert Execution.TaskInterrupted.class_version == 2
    state: dict[str, Any] = {"task_id": "a:research", "attempt": 1, "reason": "crash"}
    Execution.TaskInterrupted.upcast_v1_v2(state)
    assert state == {"task_id": "a:research", "attempt": 1, "reason": "crash",
                     "counted": False}


# ------------------------------------------------------------------------ in a turn


def turn_over(execution: Execution) -> ExecutionTurn:
    execution.collect_events()
    return ExecutionTurn(execution, random.Random(1))


def test_recovery_that_uses_up_the_last_attempt_finishes_the_execution() -> None:
    execution = start(["a", "b"], attempts=1)
    run(execution)
    turn = turn_over(execution)

    turn.apply(InterruptActiveTasks(), NOW)
    effects = turn.end(NOW)

    assert (effects.dispatch, effects.finished) == ((), True)
    assert execution.status is ExecutionStatus.FAILED
    assert execution.task("b:research").status is TaskStatus.SKIPPED


def timed_out(turn: ExecutionTurn) -> None:
    """Attempt 1 of a:research starts and its agent records that it timed out."""
    (work,) = turn.end(NOW).dispatch
    turn.execution.collect_events()
    turn.apply(RecordTaskStarted(work.task_id, 1), NOW)
    turn.apply(RecordTaskFailure(work.task_id, 1, "timeout", "past 0.2 s", True, 200.0), NOW)


def late_replies_are_dropped(turn: ExecutionTurn) -> None:
    recorded = len(turn.execution.pending_events)
    for late in (RecordTaskProgress("a:research", 1, 0.9, "still here"),
                 RecordTaskSuccess("a:research", 1, {"late": True}, 900.0),
                 RecordTaskFailure("a:research", 1, "cancelled", "stopped", False, 900.0)):
        turn.apply(late, NOW)
    assert len(turn.execution.pending_events) == recorded
    assert turn.execution.task("a:research").result is None


def test_after_a_timeout_with_retries_left_the_attempts_late_replies_are_dropped() -> None:
    turn = turn_over(start(["a"]))
    timed_out(turn)
    assert turn.execution.task("a:research").status is TaskStatus.PENDING
    late_replies_are_dropped(turn)


def test_after_a_final_timeout_the_attempts_late_replies_are_dropped() -> None:
    turn = turn_over(start(["a"], attempts=1))
    timed_out(turn)
    assert turn.execution.task("a:research").status is TaskStatus.FAILED
    late_replies_are_dropped(turn)
    assert turn.end(NOW).finished
    assert turn.execution.status is ExecutionStatus.FAILED
