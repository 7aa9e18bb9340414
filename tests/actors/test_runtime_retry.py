"""Retry by hand through the Runtime, on real stores: a finished execution gets its actor
back with the retry as its first command, a live one takes it as any other command."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from helpers import ScriptedAgent, chain_strategy, scripted_agents

from stratexec.actors.runtime import Runtime
from stratexec.domain.application import StratexecApp
from stratexec.domain.errors import InvalidTransition, UnknownTask
from stratexec.domain.execution import Execution, ExecutionStatus, TaskStatus
from stratexec.domain.retry import RetryPolicy
from stratexec.settings import EngineOptions

OPTIONS = EngineOptions(health_interval=0.05, seed=1, retry=RetryPolicy(
    maximum_attempts=2, initial_interval=0.01, maximum_interval=0.05))


def script(**outcomes: list[str]) -> dict[str, list[str]]:
    return {f"{item}:research": attempts for item, attempts in outcomes.items()}


@pytest.fixture
def agents() -> dict[str, ScriptedAgent]:
    # a fails for good at once and succeeds at its next attempt; d fails twice (its whole
    # budget of two attempts), then succeeds
    return scripted_agents(script(a=["fatal", "ok"], d=["fail", "fail", "ok"]))


@pytest.fixture
def runtime(app: StratexecApp, agents: dict[str, ScriptedAgent]) -> Iterator[Runtime]:
    running = Runtime(app, agents, OPTIONS).start()
    yield running
    running.stop()


def run(app: StratexecApp, runtime: Runtime, *chains: list[str]) -> Execution:
    """Start an execution of `chains` and wait until it has finished."""
    strategy, _ = app.define_strategy(chain_strategy(*chains))
    execution_id = runtime.start_execution(strategy).id
    return finished(app, runtime, execution_id)


def finished(app: StratexecApp, runtime: Runtime, execution_id: UUID) -> Execution:
    assert runtime.wait(execution_id, timeout=20), "the execution did not finish"
    return app.get_execution(execution_id)


def statuses(execution: Execution) -> dict[str, str]:
    return {task_id.split(":")[0]: str(task.status) for task_id, task in execution.tasks.items()}


def test_a_failed_execution_reopens_and_runs_to_completion(
        app: StratexecApp, runtime: Runtime, agents: dict[str, ScriptedAgent]) -> None:
    failed = run(app, runtime, ["a", "b", "c"], ["d"])
    assert failed.status is ExecutionStatus.FAILED
    assert statuses(failed) == {"a": "failed", "b": "skipped", "c": "skipped", "d": "failed"}
    assert not runtime.is_live(failed.id)

    transition = runtime.retry(failed.id)

    assert transition.status == "running"
    assert transition.position > failed.version  # the position of the save that reopened it
    done = finished(app, runtime, failed.id)
    assert done.status is ExecutionStatus.COMPLETED
    attempts = agents["research"].attempts
    assert [n for task, n in attempts if task == "a:research"] == [1, 2]
    assert [n for task, n in attempts if task == "d:research"] == [1, 2, 3]
    assert len(set(attempts)) == len(attempts), "an idempotency key was used twice"
    assert not runtime.is_live(failed.id)


def test_retrying_one_task_leaves_the_other_failed(app: StratexecApp, runtime: Runtime) -> None:
    failed = run(app, runtime, ["a", "b"], ["d"])

    assert runtime.retry(failed.id, "a:research").status == "running"

    done = finished(app, runtime, failed.id)
    assert statuses(done) == {"a": "completed", "b": "completed", "d": "failed"}
    assert done.status is ExecutionStatus.FAILED


def test_a_live_execution_retries_a_task_that_failed_for_good(
        app: StratexecApp, runtime: Runtime, agents: dict[str, ScriptedAgent]) -> None:
    gate = agents["research"].gate("e:research")
    strategy, _ = app.define_strategy(chain_strategy(["a", "b"], ["e"]))
    execution_id = runtime.start_execution(strategy).id
    assert agents["research"].entered["e:research"].wait(5)
    while app.get_execution(execution_id).tasks["a:research"].status is not TaskStatus.FAILED:
        assert runtime.is_live(execution_id)
        runtime.wait(execution_id, timeout=0.02)

    assert runtime.retry(execution_id, "a:research").status == "running"

    gate.set()
    done = finished(app, runtime, execution_id)
    assert statuses(done) == {"a": "completed", "b": "completed", "e": "completed"}


def test_a_refused_retry_records_nothing_and_leaves_no_actor(
        app: StratexecApp, runtime: Runtime) -> None:
    completed = run(app, runtime, ["b"])
    assert completed.status is ExecutionStatus.COMPLETED
    failed = run(app, runtime, ["a"], ["b"])

    with pytest.raises(InvalidTransition, match="cannot retry tasks of an execution that is"):
        runtime.retry(completed.id)
    with pytest.raises(InvalidTransition, match="it is completed, not failed"):
        runtime.retry(failed.id, "b:research")
    with pytest.raises(UnknownTask):
        runtime.retry(failed.id, "nope:research")

    for execution in (completed, failed):
        assert runtime.wait(execution.id, timeout=5)
        assert not runtime.is_live(execution.id)
        assert app.get_execution(execution.id).version == execution.version
    assert runtime.retry(failed.id).status == "running"  # a refusal leaves no trace
    assert finished(app, runtime, failed.id).status is ExecutionStatus.COMPLETED


def test_a_retry_after_a_restart(app: StratexecApp, agents: dict[str, ScriptedAgent]) -> None:
    with Runtime(app, agents, OPTIONS) as first:
        failed = run(app, first, ["a", "b"])
    with Runtime(app, agents, OPTIONS) as second:
        assert second.recover() == []  # a failed execution is finished: nothing to take up
        second.retry(failed.id)
        assert finished(app, second, failed.id).status is ExecutionStatus.COMPLETED
