"""The Execution aggregate: task dispatch, attempts, retries, skips, pause, cancel, replay."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from helpers import replay

from stratexec.domain.errors import InvalidTransition, UnknownTask
from stratexec.domain.execution import Execution, ExecutionStatus, TaskStatus
from stratexec.domain.health import HealthInputs
from stratexec.domain.propagation import propagate
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import StrategyItem

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def leaf(
    item_id: str, *agents: str, priority: str = "medium", depends_on: tuple[str, ...] = ()
) -> StrategyItem:
    return StrategyItem(
        id=item_id, level=4, parent_id="l3", title=f"Item {item_id}",
        depends_on=depends_on, agents=agents or ("email",), priority=priority,
    )


def start(*items: StrategyItem, policy: RetryPolicy | None = None) -> Execution:
    return Execution.start(
        strategy_id=uuid4(), workspace_id="w", strategy_name="s", plan=propagate(items),
        retry_policy=policy or RetryPolicy(),
    )


def assign(execution: Execution, now: datetime = NOW) -> list[str]:
    return [task.id for task in execution.assign_ready_tasks(now)]


def complete(execution: Execution, task_id: str, duration_ms: float = 100.0) -> None:
    """Start and succeed the task's current (assigned) attempt."""
    attempt = execution.task(task_id).attempt
    execution.start_task(task_id, attempt)
    execution.succeed_task(task_id, attempt, {"ok": True}, duration_ms)


def fail(
    execution: Execution, task_id: str, now: datetime = NOW, **options: Any
) -> datetime | None:
    attempt = execution.task(task_id).attempt
    return execution.fail_task(task_id, attempt, "timeout", "no answer", 50.0, now, **options)


def status_of(execution: Execution) -> ExecutionStatus:
    """The status, read through a call so that mypy does not keep an earlier narrowing."""
    return execution.status


def statuses(execution: Execution) -> dict[str, TaskStatus]:
    return {task_id: task.status for task_id, task in execution.tasks.items()}


def assert_counts_consistent(execution: Execution) -> None:
    by_status = Counter(task.status for task in execution.tasks.values())
    assert execution.counts == {status: by_status[status] for status in TaskStatus}
    metrics = execution.agent_metrics()
    agents = {task.plan.agent for task in execution.tasks.values()}
    assert set(metrics) == agents
    for agent in agents:
        tasks = [t for t in execution.tasks.values() if t.plan.agent == agent]
        by_agent = Counter(t.status for t in tasks)
        assert metrics[agent]["tasks"] == len(tasks)
        for status in TaskStatus:
            assert metrics[agent][str(status)] == by_agent[status], (agent, status)


# -------------------------------------------------------------------------- dispatch


def test_a_new_execution_is_pending_with_every_task_pending() -> None:
    execution = start(leaf("a", "research", "analysis"), leaf("b"))

    assert execution.status is ExecutionStatus.PENDING
    assert set(statuses(execution).values()) == {TaskStatus.PENDING}
    assert execution.total_tasks == 3
    assert execution.counts[TaskStatus.PENDING] == 3
    assert execution.next_retry_at() is None
    assert not execution.is_finished


def test_the_first_assignment_makes_the_execution_running() -> None:
    execution = start(leaf("a"))

    assert assign(execution) == ["a:email"]

    assert execution.status is ExecutionStatus.RUNNING
    task = execution.task("a:email")
    assert (task.status, task.attempt) == (TaskStatus.ASSIGNED, 1)


def test_ready_tasks_are_assigned_by_priority_then_plan_order() -> None:
    execution = start(
        leaf("low", priority="low"), leaf("high-1", priority="high"),
        leaf("medium", priority="medium"), leaf("high-2", priority="high"),
    )

    assert assign(execution) == ["high-1:email", "high-2:email", "medium:email", "low:email"]


def test_a_limit_assigns_the_first_ready_tasks_and_leaves_the_rest_ready() -> None:
    execution = start(
        leaf("low", priority="low"), leaf("high-1", priority="high"),
        leaf("medium", priority="medium"), leaf("high-2", priority="high"),
    )

    first = [task.id for task in execution.assign_ready_tasks(NOW, limit=3)]
    assert first == ["high-1:email", "high-2:email", "medium:email"]
    assert execution.task("low:email").status is TaskStatus.PENDING
    assert assign(execution) == ["low:email"]


def test_only_tasks_whose_dependencies_completed_are_assigned() -> None:
    execution = start(
        leaf("a", "research", "analysis"), leaf("b", depends_on=("a",)), leaf("c"),
    )

    assert assign(execution) == ["a:research", "c:email"]
    assert assign(execution) == []
    complete(execution, "a:research")
    assert assign(execution) == ["a:analysis"]
    complete(execution, "c:email")
    assert assign(execution) == []
    complete(execution, "a:analysis")
    assert assign(execution) == ["b:email"]


def test_a_task_with_two_dependencies_waits_for_both() -> None:
    execution = start(leaf("a"), leaf("b"), leaf("c", depends_on=("a", "b")))
    assign(execution)

    complete(execution, "a:email")
    assert assign(execution) == []
    complete(execution, "b:email")
    assert assign(execution) == ["c:email"]


def test_an_unknown_task_is_an_error() -> None:
    execution = start(leaf("a"))

    with pytest.raises(UnknownTask):
        execution.task("nope")
    with pytest.raises(UnknownTask):
        execution.start_task("nope", 1)


# -------------------------------------------------------------------------- one task


def test_a_task_starts_progresses_and_succeeds() -> None:
    execution = start(leaf("a"))
    assign(execution)

    execution.start_task("a:email", 1)
    assert execution.task("a:email").status is TaskStatus.IN_PROGRESS
    execution.report_progress("a:email", 1, 0.4, "drafting")
    assert execution.task("a:email").progress == 0.4
    execution.succeed_task("a:email", 1, {"sent": 3}, 1500.0)

    task = execution.task("a:email")
    assert task.status is TaskStatus.COMPLETED
    assert (task.result, task.duration_ms, task.progress) == ({"sent": 3}, 1500.0, 1.0)
    assert execution.counts[TaskStatus.COMPLETED] == 1


@pytest.mark.parametrize(("reported", "recorded"), [(1.7, 1.0), (-0.5, 0.0), (0.25, 0.25)])
def test_progress_is_clamped_to_zero_one(reported: float, recorded: float) -> None:
    execution = start(leaf("a"))
    assign(execution)
    execution.start_task("a:email", 1)

    execution.report_progress("a:email", 1, reported, "")

    assert execution.task("a:email").progress == recorded


def test_an_assigned_task_may_succeed_without_a_start() -> None:
    execution = start(leaf("a"))
    assign(execution)

    execution.succeed_task("a:email", 1, {}, 10.0)

    assert execution.task("a:email").status is TaskStatus.COMPLETED


def test_the_current_attempt_is_recognised() -> None:
    execution = start(leaf("a"))
    assert not execution.is_current_attempt("a:email", 0)
    assign(execution)

    assert execution.is_current_attempt("a:email", 1)
    assert not execution.is_current_attempt("a:email", 2)
    assert not execution.is_current_attempt("nope", 1)
    complete(execution, "a:email")
    assert not execution.is_current_attempt("a:email", 1)


# ------------------------------------------------------------------ invalid transitions


def assert_refused(execution: Execution, command: Any, *args: Any) -> None:
    version = execution.version
    before = statuses(execution), execution.status
    with pytest.raises(InvalidTransition):
        command(*args)
    assert execution.version == version
    assert (statuses(execution), execution.status) == before


def test_a_pending_task_cannot_start_progress_succeed_fail_or_be_interrupted() -> None:
    execution = start(leaf("a"), leaf("b", depends_on=("a",)))
    assign(execution)

    assert_refused(execution, execution.start_task, "b:email", 0)
    assert_refused(execution, execution.start_task, "b:email", 1)
    assert_refused(execution, execution.report_progress, "b:email", 0, 0.5, "")
    assert_refused(execution, execution.succeed_task, "b:email", 0, {}, 1.0)
    assert_refused(execution, execution.fail_task, "b:email", 0, "x", "y", 1.0, NOW)
    assert_refused(execution, execution.interrupt_task, "b:email", 0, "lost")


def test_a_started_task_cannot_start_again() -> None:
    execution = start(leaf("a"))
    assign(execution)
    execution.start_task("a:email", 1)

    assert_refused(execution, execution.start_task, "a:email", 1)


def test_progress_needs_a_started_task() -> None:
    execution = start(leaf("a"))
    assign(execution)

    assert_refused(execution, execution.report_progress, "a:email", 1, 0.5, "")


def test_a_completed_task_cannot_succeed_fail_start_or_be_interrupted_again() -> None:
    execution = start(leaf("a"))
    assign(execution)
    complete(execution, "a:email")

    assert_refused(execution, execution.succeed_task, "a:email", 1, {}, 1.0)
    assert_refused(execution, execution.fail_task, "a:email", 1, "x", "y", 1.0, NOW)
    assert_refused(execution, execution.start_task, "a:email", 1)
    assert_refused(execution, execution.interrupt_task, "a:email", 1, "lost")


def test_a_stale_attempt_is_refused() -> None:
    execution = start(leaf("a"))
    assign(execution)
    retry_at = fail(execution, "a:email")
    assert retry_at is not None
    assign(execution, retry_at)

    assert execution.task("a:email").attempt == 2
    assert_refused(execution, execution.start_task, "a:email", 1)
    assert_refused(execution, execution.succeed_task, "a:email", 1, {}, 1.0)
    assert_refused(execution, execution.fail_task, "a:email", 1, "x", "y", 1.0, NOW)
    assert_refused(execution, execution.succeed_task, "a:email", 3, {}, 1.0)


def test_the_invalid_transition_names_the_task_state() -> None:
    execution = start(leaf("a"))

    with pytest.raises(InvalidTransition) as raised:
        execution.start_task("a:email", 1)

    assert raised.value.details == {"taskId": "a:email", "status": "pending", "attempt": 0}


def test_only_a_paused_execution_can_resume() -> None:
    execution = start(leaf("a"))
    assert_refused(execution, execution.resume)
    assign(execution)
    assert_refused(execution, execution.resume)
    complete(execution, "a:email")
    execution.finish_if_done()
    assert_refused(execution, execution.resume)


def test_a_finished_or_paused_execution_cannot_pause() -> None:
    completed = start(leaf("a"))
    assign(completed)
    complete(completed, "a:email")
    completed.finish_if_done()
    assert_refused(completed, completed.pause)

    paused = start(leaf("a"))
    paused.pause()
    assert_refused(paused, paused.pause)

    cancelled = start(leaf("a"))
    cancelled.cancel()
    assert_refused(cancelled, cancelled.pause)


def test_a_finished_execution_cannot_be_cancelled() -> None:
    cancelled = start(leaf("a"))
    cancelled.cancel()
    assert_refused(cancelled, cancelled.cancel)

    completed = start(leaf("a"))
    assign(completed)
    complete(completed, "a:email")
    completed.finish_if_done()
    assert_refused(completed, completed.cancel)


def test_the_refusal_says_which_command_and_status() -> None:
    execution = start(leaf("a"))

    with pytest.raises(InvalidTransition) as raised:
        execution.resume()

    assert raised.value.details == {"status": "pending", "command": "resume"}


# --------------------------------------------------------------------------- retries


def test_a_failure_with_retries_left_schedules_a_retry() -> None:
    execution = start(leaf("a"))
    assign(execution)
    execution.start_task("a:email", 1)

    retry_at = execution.fail_task("a:email", 1, "timeout", "slow", 75.0, NOW)

    assert retry_at == NOW + timedelta(seconds=1)
    task = execution.task("a:email")
    assert (task.status, task.retry_at, task.failures) == (TaskStatus.PENDING, retry_at, 1)
    assert (task.error_kind, task.error_message, task.duration_ms) == ("timeout", "slow", 75.0)
    assert execution.next_retry_at() == retry_at
    assert execution.agent_metrics()["email"]["retries"] == 1


def test_the_retry_delay_follows_the_policy_and_its_jitter() -> None:
    policy = RetryPolicy(initial_interval=10.0, maximum_interval=100.0)
    execution = start(leaf("a"), policy=policy)
    assign(execution)

    first = fail(execution, "a:email", random_unit=0.0)
    assert first == NOW + timedelta(seconds=9)
    assign(execution, first)
    second = fail(execution, "a:email", now=first, random_unit=0.5)
    assert second == first + timedelta(seconds=20)


def test_a_retry_is_not_assigned_before_its_time() -> None:
    execution = start(leaf("a"), leaf("b", priority="low"))
    assert assign(execution) == ["a:email", "b:email"]
    retry_at = fail(execution, "a:email")
    assert retry_at is not None

    assert assign(execution, NOW) == []
    assert assign(execution, retry_at - timedelta(microseconds=1)) == []
    assert assign(execution, retry_at) == ["a:email"]

    task = execution.task("a:email")
    assert (task.status, task.attempt, task.retry_at) == (TaskStatus.ASSIGNED, 2, None)
    assert execution.next_retry_at() is None


def test_a_retry_is_assigned_after_its_time() -> None:
    execution = start(leaf("a"))
    assign(execution)
    retry_at = fail(execution, "a:email")
    assert retry_at is not None

    assert assign(execution, retry_at + timedelta(hours=1)) == ["a:email"]


def test_a_waiting_retry_does_not_hold_back_other_ready_tasks() -> None:
    execution = start(leaf("a", priority="high"), leaf("b"), leaf("c", depends_on=("b",)))
    assign(execution)
    fail(execution, "a:email")

    complete(execution, "b:email")

    assert assign(execution) == ["c:email"]


def test_maximum_attempts_failures_fail_the_task_for_good() -> None:
    execution = start(leaf("a"), policy=RetryPolicy(maximum_attempts=3))
    now = NOW
    for _ in range(2):
        assign(execution, now)
        retry_at = fail(execution, "a:email", now=now)
        assert retry_at is not None
        now = retry_at
    assign(execution, now)

    assert fail(execution, "a:email", now=now) is None

    task = execution.task("a:email")
    assert (task.status, task.failures, task.attempt) == (TaskStatus.FAILED, 3, 3)
    assert execution.failed_task_ids == ["a:email"]
    assert assign(execution, now + timedelta(days=1)) == []


def test_an_agent_types_own_policy_replaces_the_executions_for_its_tasks() -> None:
    execution = Execution.start(
        strategy_id=uuid4(), workspace_id="w", strategy_name="s",
        plan=propagate([leaf("a", "email"), leaf("b", "research")]),
        retry_policy=RetryPolicy(maximum_attempts=3),
        agent_retry_policies={"email": RetryPolicy(maximum_attempts=1),
                              "scheduling": RetryPolicy(maximum_attempts=9)})
    assign(execution)

    assert fail(execution, "a:email") is None
    assert fail(execution, "b:research") is not None
    assert execution.task("a:email").status is TaskStatus.FAILED
    assert execution.retry_policy_for("research") == RetryPolicy(maximum_attempts=3)
    assert set(execution.agent_retry_policies) == {"email"}  # only the plan's types
    assert_same_state(replay(list(execution.collect_events())), execution)


def test_a_started_event_recorded_before_per_agent_policies_still_loads() -> None:
    execution = start(leaf("a"), policy=RetryPolicy(maximum_attempts=2))
    started, *_ = execution.collect_events()
    assert vars(started).pop("agent_retry_policies") is None  # as an older release stored it

    rebuilt = replay([started])

    assert rebuilt.agent_retry_policies == {}
    assert rebuilt.retry_policy_for("email") == RetryPolicy(maximum_attempts=2)


def test_a_non_retryable_kind_fails_at_once() -> None:
    execution = start(leaf("a"), policy=RetryPolicy(non_retryable=frozenset({"auth"})))
    assign(execution)

    assert execution.fail_task("a:email", 1, "auth", "bad token", 5.0, NOW) is None
    assert execution.task("a:email").status is TaskStatus.FAILED


def test_an_error_marked_not_retryable_fails_at_once() -> None:
    execution = start(leaf("a"))
    assign(execution)

    assert fail(execution, "a:email", retryable=False) is None
    assert execution.task("a:email").status is TaskStatus.FAILED
    assert execution.agent_metrics()["email"]["retries"] == 0


def test_a_failure_for_good_skips_every_unfinished_dependent_transitively() -> None:
    execution = start(
        leaf("a", "research", "analysis"),
        leaf("b", depends_on=("a",)),
        leaf("c", depends_on=("b",)),
        leaf("d", priority="low"),
        leaf("e", depends_on=("a", "d")),
        policy=RetryPolicy(maximum_attempts=1),
    )
    assign(execution)
    execution.collect_events()

    assert fail(execution, "a:research") is None

    events = execution.collect_events()
    skipped: list[Any] = [e for e in events if type(e).__name__ == "TasksSkipped"]
    assert len(skipped) == 1
    assert skipped[0].task_ids == ["a:analysis", "b:email", "c:email", "e:email"]
    assert skipped[0].failed_task_id == "a:research"
    assert {t for t, s in statuses(execution).items() if s is TaskStatus.SKIPPED} == {
        "a:analysis", "b:email", "c:email", "e:email"}
    assert execution.task("d:email").status is TaskStatus.ASSIGNED
    assert_counts_consistent(execution)


def test_a_task_already_skipped_is_not_skipped_again() -> None:
    execution = start(
        leaf("a"), leaf("b"), leaf("c", depends_on=("a", "b")), leaf("d", depends_on=("b",)),
        policy=RetryPolicy(maximum_attempts=1),
    )
    assign(execution)
    fail(execution, "a:email")
    execution.collect_events()

    fail(execution, "b:email")

    skipped: list[Any] = [
        e for e in execution.collect_events() if type(e).__name__ == "TasksSkipped"]
    assert [e.task_ids for e in skipped] == [["d:email"]]
    assert execution.counts[TaskStatus.SKIPPED] == 2
    assert_counts_consistent(execution)


def test_independent_tasks_go_on_after_a_failure_and_the_execution_fails_at_the_end() -> None:
    execution = start(
        leaf("a"), leaf("b", depends_on=("a",)), leaf("c"), leaf("d", depends_on=("c",)),
        policy=RetryPolicy(maximum_attempts=1),
    )
    assign(execution)
    fail(execution, "a:email")

    assert not execution.finish_if_done()
    complete(execution, "c:email")
    assert assign(execution) == ["d:email"]
    assert not execution.finish_if_done()
    complete(execution, "d:email")

    assert execution.finish_if_done()
    assert execution.status is ExecutionStatus.FAILED
    assert execution.is_finished
    assert not execution.finish_if_done()


def test_an_execution_whose_tasks_all_completed_is_completed() -> None:
    execution = start(leaf("a", "research", "analysis"), leaf("b"))
    while ready := assign(execution):
        assert not execution.finish_if_done()
        for task_id in ready:
            complete(execution, task_id)

    assert execution.finish_if_done()
    assert execution.status is ExecutionStatus.COMPLETED
    assert not execution.finish_if_done()
    assert execution.status is ExecutionStatus.COMPLETED


def test_a_retried_task_that_succeeds_completes_the_execution() -> None:
    execution = start(leaf("a"))
    assign(execution)
    retry_at = fail(execution, "a:email")
    assert retry_at is not None
    assert not execution.finish_if_done()
    assign(execution, retry_at)
    complete(execution, "a:email")

    assert execution.finish_if_done()
    assert execution.status is ExecutionStatus.COMPLETED


# ---------------------------------------------------------------- pause, resume, cancel


def test_pause_stops_assignment_and_resume_restarts_it() -> None:
    execution = start(leaf("a"), leaf("b", depends_on=("a",)))
    assign(execution)

    execution.pause()
    assert execution.status is ExecutionStatus.PAUSED
    complete(execution, "a:email")
    assert assign(execution) == []
    assert execution.task("b:email").status is TaskStatus.PENDING

    execution.resume()
    assert status_of(execution) is ExecutionStatus.RUNNING
    assert assign(execution) == ["b:email"]


def test_a_pending_execution_can_be_paused() -> None:
    execution = start(leaf("a"))

    execution.pause()

    assert assign(execution) == []
    execution.resume()
    assert assign(execution) == ["a:email"]


def test_cancel_marks_every_unfinished_task_cancelled() -> None:
    execution = start(leaf("a"), leaf("b"), leaf("c", depends_on=("a",)), leaf("d"))
    assign(execution)
    complete(execution, "a:email")
    execution.start_task("b:email", 1)

    execution.cancel()

    assert execution.status is ExecutionStatus.CANCELLED
    assert statuses(execution) == {
        "a:email": TaskStatus.COMPLETED, "b:email": TaskStatus.CANCELLED,
        "c:email": TaskStatus.CANCELLED, "d:email": TaskStatus.CANCELLED,
    }
    assert assign(execution) == []
    assert not execution.finish_if_done()
    assert_refused(execution, execution.succeed_task, "b:email", 1, {}, 1.0)
    assert_counts_consistent(execution)


def test_a_paused_execution_can_be_cancelled() -> None:
    execution = start(leaf("a"))
    execution.pause()

    execution.cancel()

    assert execution.status is ExecutionStatus.CANCELLED
    assert execution.task("a:email").status is TaskStatus.CANCELLED


# ------------------------------------------------------------------------ interrupts


def test_interrupted_tasks_go_back_to_pending_without_using_a_retry() -> None:
    execution = start(leaf("a"), leaf("b"), leaf("c", depends_on=("a",)))
    assign(execution)
    execution.start_task("b:email", 1)

    interrupted = execution.interrupt_active_tasks("worker lost")

    assert sorted(interrupted) == ["a:email", "b:email"]
    for task_id in interrupted:
        task = execution.task(task_id)
        assert (task.status, task.failures) == (TaskStatus.PENDING, 0)
    assert execution.task("c:email").status is TaskStatus.PENDING
    assert assign(execution) == ["a:email", "b:email"]
    assert [execution.task(t).attempt for t in ("a:email", "b:email")] == [2, 2]
    assert_counts_consistent(execution)


def test_nothing_to_interrupt_records_nothing() -> None:
    execution = start(leaf("a"))
    version = execution.version

    assert execution.interrupt_active_tasks("restart") == []
    assert execution.version == version


def test_interrupting_one_task_gives_it_a_new_attempt() -> None:
    execution = start(leaf("a"), policy=RetryPolicy(maximum_attempts=1))
    assign(execution)

    execution.interrupt_task("a:email", 1, "agent handed it back")

    assert assign(execution) == ["a:email"]
    assert execution.task("a:email").attempt == 2
    complete(execution, "a:email")
    assert execution.finish_if_done()
    assert execution.status is ExecutionStatus.COMPLETED


# ------------------------------------------------------------------ counts and health


def test_counts_and_agent_metrics_follow_every_transition() -> None:
    execution = start(
        leaf("a", "research", "analysis"), leaf("b", "email", "coordination"),
        leaf("c", depends_on=("b",)), policy=RetryPolicy(maximum_attempts=2),
    )
    assert_counts_consistent(execution)
    assign(execution)
    assert_counts_consistent(execution)
    execution.start_task("a:research", 1)
    assert_counts_consistent(execution)
    retry_at = fail(execution, "b:email")
    assert retry_at is not None
    assert_counts_consistent(execution)
    execution.succeed_task("a:research", 1, {}, 10.0)
    assign(execution, retry_at)
    assert_counts_consistent(execution)
    fail(execution, "b:email", now=retry_at)
    assert_counts_consistent(execution)
    execution.cancel()
    assert_counts_consistent(execution)

    metrics = execution.agent_metrics()
    assert list(metrics) == sorted(metrics)
    assert metrics["email"] == {
        "tasks": 2, "pending": 0, "assigned": 0, "in_progress": 0, "completed": 0,
        "failed": 1, "skipped": 1, "cancelled": 0, "retries": 1,
    }
    assert metrics["analysis"]["cancelled"] == 1
    assert metrics["research"]["completed"] == 1


def test_health_inputs_sum_up_the_attempts() -> None:
    execution = start(
        leaf("a"), leaf("b"), leaf("c", depends_on=("b",)), leaf("d"), leaf("e"),
        policy=RetryPolicy(maximum_attempts=2),
    )
    assign(execution)
    retry_at = fail(execution, "a:email")
    assert retry_at is not None
    assign(execution, retry_at)
    complete(execution, "a:email", duration_ms=300.0)
    fail(execution, "b:email")
    assign(execution, retry_at)
    fail(execution, "b:email", now=retry_at)
    complete(execution, "d:email", duration_ms=500.0)
    execution.cancel()

    assert execution.health_inputs() == HealthInputs(
        total=5, completed=2, failed=1, skipped=1, cancelled=1, attempts=5,
        failed_attempts=3, mean_duration_ms=400.0, failed_task_ids=("b:email",),
    )


def test_health_inputs_before_any_attempt() -> None:
    inputs = start(leaf("a")).health_inputs()

    assert (inputs.total, inputs.attempts, inputs.mean_duration_ms) == (1, 0, 0.0)
    assert inputs.failed_task_ids == ()


# ---------------------------------------------------------------------------- replay


def assert_same_state(rebuilt: Execution, execution: Execution) -> None:
    assert rebuilt.id == execution.id
    assert rebuilt.version == execution.version
    assert rebuilt.status is execution.status
    assert rebuilt.retry_policy == execution.retry_policy
    assert rebuilt.agent_retry_policies == execution.agent_retry_policies
    for task_id, task in execution.tasks.items():
        copy = rebuilt.tasks[task_id]
        assert (copy.status, copy.attempt, copy.failures, copy.retry_at, copy.progress) == (
            task.status, task.attempt, task.failures, task.retry_at, task.progress), task_id
        assert (copy.result, copy.error_kind, copy.duration_ms) == (
            task.result, task.error_kind, task.duration_ms), task_id
    assert rebuilt.counts == execution.counts
    assert rebuilt.agent_metrics() == execution.agent_metrics()
    assert rebuilt.health_inputs() == execution.health_inputs()
    assert rebuilt.next_retry_at() == execution.next_retry_at()


def test_replaying_the_events_gives_the_same_state() -> None:
    execution = start(
        leaf("a", "research", "analysis", priority="high"), leaf("b"),
        leaf("c", depends_on=("b",)), leaf("d", depends_on=("c",)), leaf("e", priority="low"),
        policy=RetryPolicy(maximum_attempts=2),
    )
    events: list[Any] = []
    assign(execution)
    complete(execution, "a:research")
    retry_at = fail(execution, "b:email")
    assert retry_at is not None
    execution.start_task("e:email", 1)
    execution.report_progress("e:email", 1, 0.3, "half way")
    execution.pause()
    execution.resume()
    events += execution.collect_events()
    assert_same_state(replay(events), execution)

    execution.interrupt_active_tasks("crash")
    assign(execution, retry_at)
    fail(execution, "b:email", now=retry_at)
    complete(execution, "a:analysis")
    complete(execution, "e:email")
    assert execution.finish_if_done()
    events += execution.collect_events()

    rebuilt = replay(events)
    assert_same_state(rebuilt, execution)
    assert rebuilt.status is ExecutionStatus.FAILED


def test_a_rebuilt_execution_dispatches_what_the_original_would() -> None:
    execution = start(
        leaf("a"), leaf("b", priority="high"), leaf("c", depends_on=("a", "b")),
        leaf("d", priority="low"),
    )
    events: list[Any] = []
    assign(execution)
    complete(execution, "b:email")
    retry_at = fail(execution, "a:email")
    assert retry_at is not None
    execution.interrupt_task("d:email", 1, "handed back")
    events += execution.collect_events()
    rebuilt = replay(events)

    for now in (NOW, retry_at):
        assert assign(rebuilt, now) == assign(execution, now)
    complete(execution, "a:email")
    complete(rebuilt, "a:email")
    assert assign(rebuilt) == assign(execution) == ["c:email"]
    assert_same_state(rebuilt, execution)
