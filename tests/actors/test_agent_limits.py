"""What an AgentActor enforces on an attempt beside concurrency: a result that is a small
JSON object."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pykka
import pytest
from helpers import Collector, Inbox

from stratexec.actors.agent import AgentActor
from stratexec.actors.agents.base import AgentLimits, TaskContext
from stratexec.actors.messages import (
    AgentTask,
    RecordTaskFailure,
    RecordTaskSuccess,
    RunTask,
)
from stratexec.actors.results import MAX_RESULT_BYTES

TIMEOUT = 5.0  # what a test waits for at most; the limits under test are far shorter
Work = Callable[[AgentTask, TaskContext], Any]


class FnHandler:
    agent_type = "email"

    def __init__(self, fn: Work) -> None:
        self.fn = fn

    def run(self, task: AgentTask, context: TaskContext) -> Any:
        return self.fn(task, context)


def make_task(task_id: str) -> AgentTask:
    return AgentTask(execution_id=UUID(int=1), workspace_id="w", task_id=task_id,
                     item_id=task_id, title=task_id, agent="email", priority="medium",
                     order=0, attempt=1)


def outcomes(n: int) -> Callable[[list[Any]], bool]:
    return lambda ms: sum(isinstance(m, RecordTaskSuccess | RecordTaskFailure) for m in ms) >= n


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


ONE_AT_A_TIME = AgentLimits(1)


def run_one(inbox: Inbox, work: Work, limits: AgentLimits = ONE_AT_A_TIME,
            task_id: str = "t1") -> RecordTaskSuccess | RecordTaskFailure:
    """Run one attempt of `work` in an agent actor; its first outcome."""
    agent = AgentActor.start(FnHandler(work), limits)
    agent.tell(RunTask(make_task(task_id), Collector.start(inbox)))
    first = next(m for m in inbox.wait_until(outcomes(1))
                 if isinstance(m, RecordTaskSuccess | RecordTaskFailure))
    assert isinstance(first, RecordTaskSuccess | RecordTaskFailure)
    return first


# --------------------------------------------------------------------------- results


def test_a_result_is_recorded_as_its_json_object(inbox: Inbox) -> None:
    success = run_one(inbox, lambda task, context: {"ids": (1, 2), 3: "three", "ok": None})
    assert isinstance(success, RecordTaskSuccess)
    assert success.result == {"ids": [1, 2], "3": "three", "ok": None}


def test_a_result_just_under_the_limit_is_recorded(inbox: Inbox) -> None:
    text = "x" * (MAX_RESULT_BYTES - len('{"text":""}'))
    success = run_one(inbox, lambda task, context: {"text": text})
    assert isinstance(success, RecordTaskSuccess)
    assert success.result == {"text": text}


def test_a_result_over_the_limit_is_a_final_failure_naming_the_limit_and_size(
        inbox: Inbox) -> None:
    text = "é" * (MAX_RESULT_BYTES // 2)  # two bytes each in UTF-8: over by the key
    failure = run_one(inbox, lambda task, context: {"text": text})
    assert isinstance(failure, RecordTaskFailure)
    assert (failure.error_kind, failure.retryable) == ("result_too_large", False)
    size = MAX_RESULT_BYTES + len('{"text":""}')
    assert failure.error_message == (
        f"the result is {size:,} bytes of JSON, over the limit of 262,144 bytes"
        " (MAX_RESULT_BYTES)")


@pytest.mark.parametrize(("result", "problem"), [
    (["a", "list"], "a result must be a JSON object, got list"),
    (None, "a result must be a JSON object, got NoneType"),
    ({"tags": {"a", "b"}}, "the result is not JSON: Object of type set is not JSON serializable"),
    ({"score": math.nan}, "the result is not JSON: Out of range float values are not JSON"),
    ({"big": 2**64}, "the result holds an integer of 20 digits, beyond 64 bits"),
])
def test_a_result_that_is_not_a_json_object_is_a_final_failure(
        inbox: Inbox, result: Any, problem: str) -> None:
    failure = run_one(inbox, lambda task, context: result)
    assert isinstance(failure, RecordTaskFailure)
    assert (failure.error_kind, failure.retryable) == ("result_invalid", False)
    assert failure.error_message.startswith(problem)
