"""What an AgentActor enforces on an attempt beside concurrency: a result that is a small
JSON object, the agent type's timeout, and its heartbeat timeout (Temporal's semantics)."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from helpers import Collector, Inbox

from stratexec.actors.agent import AgentActor
from stratexec.actors.agents.base import AgentError, AgentLimits, TaskContext
from stratexec.actors.messages import (
    AgentTask,
    RecordTaskFailure,
    RecordTaskProgress,
    RecordTaskStarted,
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


# -------------------------------------------------------------------------- timeouts


def wait_for_cancel(task: AgentTask, context: TaskContext) -> dict[str, Any]:
    """A well-behaved handler that has nothing to do but wait: it stops when cancelled."""
    if context.wait_cancelled(TIMEOUT):
        raise AgentError("cancelled", "attempt cancelled", retryable=False)
    return {"waited": True}


def test_an_attempt_past_its_timeout_is_cancelled_and_fails_retryably(inbox: Inbox) -> None:
    failure = run_one(inbox, wait_for_cancel, AgentLimits(1, timeout=0.2))
    assert isinstance(failure, RecordTaskFailure)
    assert (failure.task_id, failure.attempt, failure.error_kind, failure.retryable) == (
        "t1", 1, "timeout", True)
    assert "timeout of 0.2 s" in failure.error_message
    assert failure.duration_ms >= 200
    # The handler saw the cancellation and stopped: its own report comes second.
    late = inbox.wait_until(outcomes(2))[-1]
    assert isinstance(late, RecordTaskFailure)
    assert late.error_kind == "cancelled"


def test_an_attempt_within_its_timeout_succeeds(inbox: Inbox) -> None:
    success = run_one(inbox, lambda task, context: {"quick": True}, AgentLimits(1, timeout=5))
    assert isinstance(success, RecordTaskSuccess)


def test_progress_reports_extend_the_deadline_by_the_heartbeat_timeout(inbox: Inbox) -> None:
    def beating(task: AgentTask, context: TaskContext) -> dict[str, Any]:
        for step in range(20):  # 0.6 s in all, twice the heartbeat timeout
            context.report_progress(step / 20, "working")
            if context.wait_cancelled(0.03):
                raise AgentError("cancelled", "attempt cancelled", retryable=False)
        return {"beats": 20}

    success = run_one(inbox, beating, AgentLimits(1, heartbeat_timeout=0.3))
    assert isinstance(success, RecordTaskSuccess)
    assert len(inbox.of(RecordTaskProgress)) == 20


def test_an_attempt_that_stops_reporting_fails_with_heartbeat_timeout(inbox: Inbox) -> None:
    def beats_once(task: AgentTask, context: TaskContext) -> dict[str, Any]:
        context.report_progress(0.1, "began")
        return wait_for_cancel(task, context)

    failure = run_one(inbox, beats_once, AgentLimits(1, timeout=5, heartbeat_timeout=0.2))
    assert isinstance(failure, RecordTaskFailure)
    assert (failure.error_kind, failure.retryable) == ("heartbeat_timeout", True)
    assert "heartbeat timeout of 0.2 s" in failure.error_message


def test_heartbeats_do_not_extend_the_timeout(inbox: Inbox) -> None:
    def beats_until_cancelled(task: AgentTask, context: TaskContext) -> dict[str, Any]:
        while not context.wait_cancelled(0.02):
            context.report_progress(0.5, "still working")
        raise AgentError("cancelled", "attempt cancelled", retryable=False)

    failure = run_one(inbox, beats_until_cancelled,
                      AgentLimits(1, timeout=0.3, heartbeat_timeout=0.2))
    assert isinstance(failure, RecordTaskFailure)
    assert failure.error_kind == "timeout"
    assert failure.duration_ms >= 300


def test_a_handler_that_ignores_cancellation_keeps_its_slot_until_it_returns(
        inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    def stubborn(task: AgentTask, context: TaskContext) -> dict[str, Any]:
        if task.task_id == "stubborn":
            assert release.wait(TIMEOUT)
        return {"done": task.task_id}

    caplog.set_level(logging.INFO, logger="stratexec.actors.agent")
    agent = AgentActor.start(FnHandler(stubborn), AgentLimits(1, timeout=0.1))
    reply_to = Collector.start(inbox)
    agent.tell(RunTask(make_task("stubborn"), reply_to))
    agent.tell(RunTask(make_task("next"), reply_to))
    [failure] = inbox.wait_until(outcomes(1))[1:]
    assert isinstance(failure, RecordTaskFailure)
    assert (failure.task_id, failure.error_kind) == ("stubborn", "timeout")
    stats = agent.proxy().stats().get(timeout=TIMEOUT)
    assert (stats.running, stats.queued) == (1, 1)  # never more than the limit at once
    assert "its slot is taken until the handler returns" in caplog.text

    release.set()
    messages = inbox.wait_until(outcomes(3))
    late, success = (m for m in messages if isinstance(m, RecordTaskSuccess))
    assert (late.task_id, success.task_id) == ("stubborn", "next")
    assert messages.index(late) < messages.index(RecordTaskStarted("next", 1))
    assert "returned" in caplog.text


@pytest.mark.parametrize("limits", [AgentLimits(1, timeout=0),
                                    AgentLimits(1, heartbeat_timeout=-1)])
def test_limits_must_be_positive(limits: AgentLimits) -> None:
    with pytest.raises(ValueError, match="must be a positive number of seconds"):
        AgentActor(FnHandler(wait_for_cancel), limits)
