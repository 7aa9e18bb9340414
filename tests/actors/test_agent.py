from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pykka
import pytest
from helpers import Collector, Inbox

from stratexec.actors.agent import AgentActor, AgentStats
from stratexec.actors.agents.base import AgentError, OptionError, TaskContext
from stratexec.actors.agents.demo import AGENT_TYPES, DemoAgent, demo_agents
from stratexec.actors.messages import (
    AgentTask,
    RecordTaskFailure,
    RecordTaskProgress,
    RecordTaskStarted,
    RecordTaskSuccess,
    ReturnTask,
    RunTask,
    WithdrawTasks,
)

TIMEOUT = 5.0




def count(kind: type[Any], n: int) -> Callable[[list[Any]], bool]:
    return lambda messages: sum(isinstance(m, kind) for m in messages) >= n


def finished(n: int) -> Callable[[list[Any]], bool]:
    return lambda ms: sum(isinstance(m, RecordTaskSuccess | RecordTaskFailure) for m in ms) >= n


def make_task(
    task_id: str,
    agent: str = "email",
    priority: str = "medium",
    order: int = 0,
    execution_id: UUID | None = None,
    **inputs: Any,
) -> AgentTask:
    return AgentTask(
        execution_id=execution_id or UUID(int=1), workspace_id="default", task_id=task_id,
        item_id=f"item-{task_id}", title=f"Send the {task_id} newsletter", agent=agent,
        priority=priority, order=order, attempt=1, inputs=dict(inputs),
    )


class FnHandler:
    """A test handler that delegates to a function."""

    def __init__(self, fn: Callable[[AgentTask, TaskContext], dict[str, Any]]) -> None:
        self.agent_type = "email"
        self.fn = fn

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        return self.fn(task, context)


class GatedHandler:
    """Blocks every attempt until the gate opens; counts how many run at once."""

    agent_type = "email"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.cond = threading.Condition()
        self.current = 0
        self.max_current = 0
        self.order: list[str] = []

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        with self.cond:
            self.current += 1
            self.max_current = max(self.max_current, self.current)
            self.order.append(task.task_id)
            self.cond.notify_all()
        try:
            assert self.gate.wait(TIMEOUT)
        finally:
            with self.cond:
                self.current -= 1
        return {"ok": True}

    def wait_running(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.current >= n, TIMEOUT)


@pytest.fixture
def reply_to(inbox: Inbox) -> pykka.ActorRef[Collector]:
    return Collector.start(inbox)


def stats(agent: pykka.ActorRef[AgentActor]) -> AgentStats:
    result: AgentStats = agent.proxy().stats().get(timeout=TIMEOUT)
    return result


def settled_stats(agent: pykka.ActorRef[AgentActor], finished: int) -> AgentStats:
    """The stats once `finished` attempts are counted: a worker tells its execution first and
    the agent second, so the agent may lag the replies by a message or two."""
    deadline = time.monotonic() + TIMEOUT
    while (current := stats(agent)).finished < finished:
        assert time.monotonic() < deadline, current
    return current


def test_concurrency_limit_is_never_exceeded(
    inbox: Inbox, reply_to: pykka.ActorRef[Collector]
) -> None:
    handler = GatedHandler()
    agent = AgentActor.start(handler, 3)
    for i in range(20):
        agent.tell(RunTask(make_task(f"t{i}"), reply_to))
    handler.wait_running(3)

    blocked = stats(agent)
    assert (blocked.running, blocked.queued) == (3, 17)
    handler.gate.set()
    inbox.wait_until(count(RecordTaskSuccess, 20))

    assert handler.max_current == 3
    assert settled_stats(agent, 20) == AgentStats("email", 3, 0, 0, 3, 20, 20)


def test_queued_attempts_run_by_priority_then_order_then_arrival(
    inbox: Inbox, reply_to: pykka.ActorRef[Collector]
) -> None:
    handler = GatedHandler()
    agent = AgentActor.start(handler, 1)
    agent.tell(RunTask(make_task("first", priority="low", order=9), reply_to))
    handler.wait_running(1)
    for task_id, priority, order in [
        ("low-1", "low", 1), ("med-5", "medium", 5), ("high-7", "high", 7),
        ("med-2", "medium", 2), ("high-3a", "high", 3), ("high-3b", "high", 3),
    ]:
        agent.tell(RunTask(make_task(task_id, priority=priority, order=order), reply_to))
    assert stats(agent).queued == 6

    handler.gate.set()
    inbox.wait_until(count(RecordTaskSuccess, 7))
    assert handler.order == ["first", "high-3a", "high-3b", "high-7", "med-2", "med-5", "low-1"]


def test_an_attempt_reports_started_progress_and_success(
    inbox: Inbox, reply_to: pykka.ActorRef[Collector]
) -> None:
    def work(task: AgentTask, context: TaskContext) -> dict[str, Any]:
        context.report_progress(0.5, "half way")
        return {"sent": 3}

    agent = AgentActor.start(FnHandler(work))
    agent.tell(RunTask(make_task("t1"), reply_to))
    messages = inbox.wait_until(finished(1))

    started, progress, success = messages
    assert started == RecordTaskStarted("t1", 1)
    assert progress == RecordTaskProgress("t1", 1, 0.5, "half way")
    assert isinstance(success, RecordTaskSuccess)
    assert (success.task_id, success.attempt, success.result) == ("t1", 1, {"sent": 3})
    assert success.duration_ms >= 0


def test_failures_map_to_record_task_failure(
    inbox: Inbox, reply_to: pykka.ActorRef[Collector]
) -> None:
    def work(task: AgentTask, context: TaskContext) -> dict[str, Any]:
        if task.inputs["fail"] == "agent":
            raise AgentError("invalid_recipient", "no such mailbox", retryable=False)
        raise ValueError("bad template")

    agent = AgentActor.start(FnHandler(work), 1)
    agent.tell(RunTask(make_task("a", fail="agent"), reply_to))
    agent.tell(RunTask(make_task("b", fail="plain"), reply_to))
    inbox.wait_until(finished(2))

    failures = {f.task_id: f for f in inbox.of(RecordTaskFailure)}
    a, b = failures["a"], failures["b"]
    assert (a.error_kind, a.error_message, a.retryable) == (
        "invalid_recipient", "no such mailbox", False)
    assert (b.error_kind, b.error_message, b.retryable) == (
        "exception", "ValueError: bad template", True)
    assert settled_stats(agent, 2).running == 0


def waiting_handler(task: AgentTask, context: TaskContext) -> dict[str, Any]:
    """Waits to be cancelled when asked to, else returns at once."""
    if task.inputs.get("wait") and context.wait_cancelled(TIMEOUT):
        raise AgentError("cancelled", "attempt cancelled", retryable=False)
    return {"done": task.task_id}


@pytest.mark.parametrize(("cancel_running", "reason"), [
    (True, "withdrawn: execution cancelled"),
    (False, "withdrawn: execution paused"),
])
def test_withdraw_returns_queued_attempts(
    inbox: Inbox, reply_to: pykka.ActorRef[Collector], cancel_running: bool, reason: str
) -> None:
    mine, other = uuid4(), uuid4()
    agent = AgentActor.start(FnHandler(waiting_handler), 1)
    agent.tell(RunTask(make_task("running", execution_id=mine, wait=True), reply_to))
    inbox.wait_until(count(RecordTaskStarted, 1))
    for task_id, execution_id in [("q1", mine), ("q2", other), ("q3", mine)]:
        agent.tell(RunTask(make_task(task_id, execution_id=execution_id), reply_to))

    agent.tell(WithdrawTasks(mine, cancel_running=cancel_running))
    inbox.wait_until(count(ReturnTask, 2))
    assert inbox.of(ReturnTask) == [ReturnTask("q1", 1, reason), ReturnTask("q3", 1, reason)]

    if cancel_running:
        inbox.wait_until(finished(2))
        [failure] = inbox.of(RecordTaskFailure)
        assert (failure.task_id, failure.error_kind) == ("running", "cancelled")
        assert [s.task_id for s in inbox.of(RecordTaskSuccess)] == ["q2"]
    else:
        assert (stats(agent).running, stats(agent).queued) == (1, 1)
        assert not inbox.of(RecordTaskFailure)


def test_stopping_the_agent_cancels_running_attempts(
    inbox: Inbox, reply_to: pykka.ActorRef[Collector]
) -> None:
    agent = AgentActor.start(FnHandler(waiting_handler), 2)
    agent.tell(RunTask(make_task("a", wait=True), reply_to))
    agent.tell(RunTask(make_task("b", wait=True), reply_to))
    inbox.wait_until(count(RecordTaskStarted, 2))

    agent.stop(timeout=TIMEOUT)
    failures = inbox.wait_until(finished(2))
    assert {m.error_kind for m in failures if isinstance(m, RecordTaskFailure)} == {"cancelled"}


def test_replies_to_a_stopped_execution_are_dropped(inbox: Inbox) -> None:
    gone = Collector.start(inbox)
    gone.stop()
    live = Collector.start(inbox)
    agent = AgentActor.start(FnHandler(waiting_handler), 1)
    agent.tell(RunTask(make_task("lost"), gone))
    agent.tell(RunTask(make_task("kept"), live))

    inbox.wait_until(finished(1))
    assert [m.task_id for m in inbox.of(RecordTaskSuccess)] == ["kept"]
    assert settled_stats(agent, 2).running == 0


# --- demo agents ------------------------------------------------------------------------

def run_demo(agent: DemoAgent, task: AgentTask) -> dict[str, Any]:
    reports: list[tuple[float, str]] = []
    context = TaskContext(lambda fraction, text: reports.append((fraction, text)))
    result = agent.run(task, context)
    assert [fraction for fraction, _ in reports] == [0.5]
    return result


FAST = (0.0, 0.01)


@pytest.mark.parametrize("agent_type", AGENT_TYPES)
def test_demo_agents_return_labelled_results(agent_type: str) -> None:
    agent = demo_agents(FAST)[agent_type]
    result = run_demo(agent, make_task("t1", agent=agent_type))
    assert agent.agent_type == agent_type
    assert result["demo"] is True
    assert len(result) > 1


def test_seeded_demo_runs_are_deterministic() -> None:
    for agent_type in AGENT_TYPES:
        task = make_task("t1", agent=agent_type)
        options = {"duration": FAST, "failure_rate": 0.5, "seed": 7}
        first = run_demo(DemoAgent(agent_type, options), task)
        assert run_demo(DemoAgent(agent_type, options), task) == first


def test_seeded_demo_failures_are_deterministic() -> None:
    def outcome(seed: int, task: AgentTask) -> str:
        try:
            options = {"duration": FAST, "failure_rate": 0.5, "seed": seed}
            run_demo(DemoAgent("research", options), task)
        except AgentError as e:
            return e.kind
        return "ok"

    tasks = [make_task(f"t{i}", agent="research") for i in range(20)]
    outcomes = [outcome(3, t) for t in tasks]
    assert outcomes == [outcome(3, t) for t in tasks]
    assert {"ok", "demo_failure"} == set(outcomes)


def test_demo_failure_rate_one_always_fails_and_zero_never() -> None:
    always = DemoAgent("email", {"duration": FAST, "failure_rate": 1.0})
    never = DemoAgent("email", {"duration": FAST, "failure_rate": 0.0})
    for i in range(20):
        task = make_task(f"t{i}")
        with pytest.raises(AgentError) as failure:
            run_demo(always, task)
        assert (failure.value.kind, failure.value.retryable) == ("demo_failure", True)
        assert "(demo)" in failure.value.message
        assert run_demo(never, task)["demo"] is True


def test_a_demo_agent_of_a_type_of_its_own_returns_a_labelled_result() -> None:
    result = run_demo(DemoAgent("legal", {"duration": FAST}), make_task("t1", agent="legal"))
    assert (result["demo"], result["agent"]) == (True, "legal")
    with pytest.raises(AgentError) as failure:
        run_demo(DemoAgent("legal", {"duration": FAST, "failure_rate": 1}),
                 make_task("t1", agent="legal"))
    assert failure.value.message == "legal agent failed (demo)"


@pytest.mark.parametrize(("options", "key", "problem"), [
    ({"duration": [2, 1]}, "duration", "need 0 <= min <= max, got [2, 1]"),
    ({"duration": "fast"}, "duration", "must be [min, max], two numbers, got a string"),
    ({"failure_rate": 2}, "failure_rate", "must be at least 0 and at most 1, got 2"),
    ({"seed": 1.5}, "seed", "must be an integer, got the number 1.5"),
    ({"speed": 1}, "speed", "unknown option; known: duration, failure_rate, seed"),
])
def test_a_demo_agent_checks_its_options(options: dict[str, Any], key: str, problem: str
                                         ) -> None:
    with pytest.raises(OptionError) as raised:
        DemoAgent("email", options)
    assert (raised.value.key, raised.value.problem) == (key, problem)


def test_a_cancelled_demo_attempt_stops_early() -> None:
    context = TaskContext(lambda fraction, text: None)
    context.cancel_event.set()
    with pytest.raises(AgentError) as failure:
        DemoAgent("content", {"duration": [30.0, 30.0]}).run(make_task("t1", agent="content"),
                                                             context)
    assert (failure.value.kind, failure.value.retryable) == ("cancelled", False)


def test_demo_agent_runs_in_an_agent_actor(
    inbox: Inbox, reply_to: pykka.ActorRef[Collector]
) -> None:
    agent = AgentActor.start(DemoAgent("analysis", {"duration": FAST, "seed": 1}), 2)
    for i in range(4):
        agent.tell(RunTask(make_task(f"t{i}", agent="analysis"), reply_to))
    inbox.wait_until(count(RecordTaskSuccess, 4))
    assert len(inbox.of(RecordTaskProgress)) == 4
    assert all(m.result["demo"] is True for m in inbox.of(RecordTaskSuccess))
