"""Retry by hand: tasks that failed for good get a fresh budget, their skipped dependents
come back, and a failed execution reopens; all of it recorded, so a replay agrees."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from stratexec.domain.errors import InvalidTransition, UnknownTask
from stratexec.domain.execution import Execution, ExecutionStatus, TaskStatus
from stratexec.domain.propagation import propagate
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import StrategyItem

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)


def leaf(item_id: str, *depends_on: str) -> StrategyItem:
    return StrategyItem(id=item_id, level=4, parent_id="l3", title=f"Item {item_id}",
                        depends_on=depends_on, agents=("email",), priority="medium")


def start(*items: StrategyItem, policy: RetryPolicy = ONE_ATTEMPT) -> Execution:
    return Execution.start(strategy_id=uuid4(), workspace_id="w", strategy_name="s",
                           plan=propagate(items), retry_policy=policy)


def assign(execution: Execution) -> list[str]:
    return [task.id for task in execution.assign_ready_tasks(NOW)]


def complete(execution: Execution, task_id: str) -> None:
    attempt = execution.task(task_id).attempt
    execution.start_task(task_id, attempt)
    execution.succeed_task(task_id, attempt, {"ok": True}, 10.0)


def fail(execution: Execution, task_id: str) -> None:
    attempt = execution.task(task_id).attempt
    execution.fail_task(task_id, attempt, "boom", "it broke", 5.0, NOW)


def statuses(execution: Execution) -> dict[str, str]:
    return {task_id: str(task.status) for task_id, task in execution.tasks.items()}


def status_of(execution: Execution) -> ExecutionStatus:
    return execution.status  # through a call, so that mypy keeps no earlier narrowing


def assert_counts_consistent(execution: Execution) -> None:
    by_status = Counter(task.status for task in execution.tasks.values())
    assert execution.counts == {status: by_status[status] for status in TaskStatus}
    metrics = execution.agent_metrics()
    for status in TaskStatus:
        assert sum(m[str(status)] for m in metrics.values()) == by_status[status]


def failed_diamond() -> Execution:
    """a -> b -> d and a -> c -> d, e alone; b and e failed for good, d skipped."""
    execution = start(leaf("a"), leaf("b", "a"), leaf("c", "a"), leaf("d", "b", "c"),
                      leaf("e"))
    assign(execution)
    complete(execution, "a:email")
    fail(execution, "e:email")
    assign(execution)
    fail(execution, "b:email")
    complete(execution, "c:email")
    assert execution.finish_if_done()
    assert execution.status is ExecutionStatus.FAILED
    assert statuses(execution) == {"a:email": "completed", "b:email": "failed",
                                   "c:email": "completed", "d:email": "skipped",
                                   "e:email": "failed"}
    return execution


def replay(events: list[Any]) -> Execution:
    rebuilt: Execution | None = None
    for each in events:
        rebuilt = each.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


# ------------------------------------------------------------------------- retry all

def test_retrying_every_failed_task_reopens_the_execution() -> None:
    execution = failed_diamond()

    retried = execution.retry_failed()

    assert retried == ["e:email", "b:email"]  # in the order they failed
    assert execution.status is ExecutionStatus.RUNNING
    assert not execution.is_finished
    assert statuses(execution) == {"a:email": "completed", "b:email": "pending",
                                   "c:email": "completed", "d:email": "pending",
                                   "e:email": "pending"}
    assert execution.failed_task_ids == []
    assert execution.health_inputs().failed_task_ids == ()
    assert_counts_consistent(execution)
    event = execution.pending_events[-1]
    assert type(event).__name__ == "TasksRetried"
    assert (event.task_ids, event.unskipped_task_ids) == (  # type: ignore[attr-defined]
        ["e:email", "b:email"], ["d:email"])


def test_retried_tasks_run_again_with_attempt_numbers_going_on_upward() -> None:
    execution = failed_diamond()
    execution.retry_failed()

    assert sorted(assign(execution)) == ["b:email", "e:email"]  # d waits for b

    assert [execution.task(t).attempt for t in ("b:email", "e:email")] == [2, 2]
    complete(execution, "b:email")
    complete(execution, "e:email")
    assert assign(execution) == ["d:email"]
    assert execution.task("d:email").attempt == 1
    complete(execution, "d:email")
    assert execution.finish_if_done()
    assert status_of(execution) is ExecutionStatus.COMPLETED


def test_a_retried_task_has_its_whole_retry_budget_again() -> None:
    execution = start(leaf("a"), policy=RetryPolicy(maximum_attempts=2, initial_interval=0))
    assign(execution)
    fail(execution, "a:email")
    assign(execution)
    fail(execution, "a:email")
    assert execution.task("a:email").failures == 2
    assert execution.finish_if_done()

    execution.retry_failed()

    task = execution.task("a:email")
    assert (task.status, task.failures, task.retry_at) == (TaskStatus.PENDING, 0, None)
    assert task.error_kind == "boom"  # the last error stays readable
    assign(execution)
    fail(execution, "a:email")  # the first failure of the new budget is retried
    assert execution.task("a:email").status is TaskStatus.PENDING
    assign(execution)
    fail(execution, "a:email")
    assert execution.task("a:email").status is TaskStatus.FAILED
    assert execution.task("a:email").attempt == 4
    assert execution.finish_if_done()
    assert status_of(execution) is ExecutionStatus.FAILED


# ------------------------------------------------------------------------- retry one

def test_retrying_one_task_leaves_the_others_failed() -> None:
    execution = failed_diamond()

    assert execution.retry_failed(["b:email"]) == ["b:email"]

    assert statuses(execution)["e:email"] == "failed"
    assert statuses(execution)["b:email"] == "pending"
    assert statuses(execution)["d:email"] == "pending"
    assert execution.failed_task_ids == ["e:email"]
    assert_counts_consistent(execution)
    assign(execution)
    complete(execution, "b:email")
    assign(execution)
    complete(execution, "d:email")
    assert execution.finish_if_done()
    assert execution.status is ExecutionStatus.FAILED  # e still failed


def test_a_skipped_task_held_back_by_another_failure_stays_skipped() -> None:
    execution = start(leaf("a"), leaf("b"), leaf("c", "a", "b"))
    assign(execution)
    fail(execution, "a:email")
    fail(execution, "b:email")
    assert execution.finish_if_done()
    assert statuses(execution)["c:email"] == "skipped"

    execution.retry_failed(["a:email"])
    assert statuses(execution)["c:email"] == "skipped"  # b still failed

    execution.retry_failed(["b:email"])  # the execution is running now
    assert statuses(execution)["c:email"] == "pending"
    assert_counts_consistent(execution)


def test_a_running_execution_can_retry_a_task_that_failed_for_good() -> None:
    execution = start(leaf("a"), leaf("b"), leaf("c", "a"))
    assign(execution)
    fail(execution, "a:email")
    assert execution.status is ExecutionStatus.RUNNING  # b still runs

    execution.retry_failed(["a:email"])

    assert statuses(execution) == {"a:email": "pending", "b:email": "assigned",
                                   "c:email": "pending"}
    assert assign(execution) == ["a:email"]


# ------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("how", ["all", "one"])
def test_nothing_failed_is_refused(how: str) -> None:
    execution = start(leaf("a"), leaf("b"))
    assign(execution)
    complete(execution, "a:email")
    version = execution.version

    with pytest.raises(InvalidTransition) as refused:
        execution.retry_failed(None if how == "all" else ["a:email"])

    assert refused.value.details == {"status": "running", "command": "retry"}
    assert execution.version == version


@pytest.mark.parametrize("finish", ["complete", "cancel", "pause"])
def test_only_a_failed_or_running_execution_retries(finish: str) -> None:
    execution = start(leaf("a"), leaf("b"))
    assign(execution)
    fail(execution, "a:email")
    if finish == "complete":
        complete(execution, "b:email")
        execution.retry_failed()  # failed: allowed, and then...
        assign(execution)
        complete(execution, "a:email")
        assert execution.finish_if_done()
        assert execution.status is ExecutionStatus.COMPLETED
    elif finish == "cancel":
        execution.cancel()
    else:
        execution.pause()

    with pytest.raises(InvalidTransition, match="cannot retry tasks of an execution that is"):
        execution.retry_failed()


def test_an_unknown_task_is_not_found_and_a_known_unfailed_one_refused() -> None:
    execution = failed_diamond()

    with pytest.raises(UnknownTask):
        execution.retry_failed(["nope"])
    with pytest.raises(InvalidTransition, match="'c:email': it is completed"):
        execution.retry_failed(["b:email", "c:email"])
    with pytest.raises(InvalidTransition, match="no task to retry"):
        execution.retry_failed([])
    assert execution.status is ExecutionStatus.FAILED


# -------------------------------------------------------------------------- replay

def test_replay_after_a_retry_gives_the_same_state_and_the_same_dispatch() -> None:
    execution = failed_diamond()
    events = list(execution.collect_events())
    execution.retry_failed(["b:email"])
    events += execution.collect_events()

    rebuilt = replay(events)

    assert rebuilt.status is execution.status is ExecutionStatus.RUNNING
    assert statuses(rebuilt) == statuses(execution)
    assert rebuilt.counts == execution.counts
    assert rebuilt.failed_task_ids == execution.failed_task_ids
    assert rebuilt.health_inputs() == execution.health_inputs()
    assert [(t.attempt, t.failures) for t in rebuilt.tasks.values()] == [
        (t.attempt, t.failures) for t in execution.tasks.values()]
    assert assign(rebuilt) == assign(execution) == ["b:email"]
