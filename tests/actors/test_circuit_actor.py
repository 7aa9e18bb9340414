"""The circuit breaker in its AgentActor and in the whole engine, on real stores: a type
whose attempts fail pauses alone, probes after its cool-down, and stays paused across a
restart until its probe or an operator resumes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pykka
import pytest
from helpers import Collector, Inbox, scripted_agents, wait_for_store

from stratexec.actors.agent import AgentActor
from stratexec.actors.agents.base import AgentError, TaskContext
from stratexec.actors.clock import Clock
from stratexec.actors.messages import (
    AgentTask,
    AgentTypeState,
    RecordTaskFailure,
    RecordTaskSuccess,
    ResumeAgentType,
    RunTask,
    WithdrawTasks,
)
from stratexec.actors.runtime import Runtime
from stratexec.circuit_settings import CircuitSettings
from stratexec.domain.application import StratexecApp
from stratexec.domain.circuit import AgentCircuit, CircuitState
from stratexec.domain.errors import InvalidTransition, NotFound
from stratexec.domain.execution import Execution, ExecutionStatus
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import parse_strategy
from stratexec.settings import EngineOptions

TIMEOUT = 5.0
QUICK = CircuitSettings(window=3, failure_rate=0.5, cool_down=0.5)
LONG = CircuitSettings(window=3, failure_rate=0.5, cool_down=3600.0)


class Flaky:
    """Fails every attempt while `failing` is set; counts attempts as they begin."""

    def __init__(self, agent_type: str = "email") -> None:
        self.agent_type = agent_type
        self.failing = threading.Event()
        self.failing.set()
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.hold = threading.Event()  # while clear, attempts wait for it
        self.hold.set()

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        with self.lock:
            self.started.append(task.idempotency_key)
        while not self.hold.wait(0.02):
            if context.cancelled:
                raise AgentError("cancelled", "attempt cancelled", retryable=False)
        if self.failing.is_set():
            raise AgentError("down", f"{self.agent_type} is down")
        return {"ok": True}

    def count(self) -> int:
        with self.lock:
            return len(self.started)


def work(n: int, execution_id: UUID | None = None) -> AgentTask:
    return AgentTask(execution_id=execution_id or UUID(int=1), workspace_id="w",
                     task_id=f"t{n}", item_id=f"i{n}", title=f"task {n}", agent="email",
                     priority="medium", order=n, attempt=1)


def circuit(app: StratexecApp, agent_type: str = "email") -> AgentCircuit | None:
    return app.get_agent_circuit(agent_type)


def paused(app: StratexecApp, after_version: int = 0) -> AgentCircuit | None:
    """The email circuit if it is open (and has changed since `after_version`)."""
    found = circuit(app)
    if found is None or found.state is not CircuitState.OPEN or found.version <= after_version:
        return None
    return found


def probing(app: StratexecApp) -> AgentCircuit | None:
    found = circuit(app)
    return found if found is not None and found.state is CircuitState.HALF_OPEN else None


@pytest.fixture
def clock() -> Iterator[Clock]:
    running = Clock()
    running.start()
    yield running
    running.stop()


class Replies(Inbox):
    """What the attempts reported, collected by an actor that stands in for executions."""

    def __init__(self) -> None:
        super().__init__()
        self.ref = Collector.start(self)

    def outcomes(self) -> list[Any]:
        with self.cond:
            return [m for m in self.messages
                    if isinstance(m, RecordTaskSuccess | RecordTaskFailure)]

    def until_outcomes(self, n: int) -> list[Any]:
        self.wait_until(lambda ms: sum(
            isinstance(m, RecordTaskSuccess | RecordTaskFailure) for m in ms) >= n)
        return self.outcomes()


@pytest.fixture
def replies() -> Iterator[Replies]:
    collected = Replies()
    yield collected
    collected.ref.stop()


def start_agent(handler: Flaky, app: StratexecApp, clock: Clock, settings: CircuitSettings,
                concurrency: int = 1) -> pykka.ActorRef[AgentActor]:
    return AgentActor.start(handler, concurrency, circuit=settings, app=app, clock=clock)


# ----------------------------------------------------------------------- one actor

def test_failures_open_the_breaker_and_hold_the_queue(
        sqlite_app: StratexecApp, clock: Clock, replies: Replies) -> None:
    handler = Flaky()
    agent = start_agent(handler, sqlite_app, clock, LONG)
    try:
        for n in range(6):
            agent.tell(RunTask(work(n), replies.ref))
        opened = wait_for_store(sqlite_app, lambda: paused(sqlite_app))
        assert opened.attempts == [f"{UUID(int=1)}:t{n}:1" for n in range(3)]
        assert (opened.failure_rate, opened.probe_at is not None) == (1.0, True)
        assert len(replies.until_outcomes(3)) == 3
        stats = agent.proxy().stats().get(timeout=TIMEOUT)
        assert (stats.running, stats.queued) == (0, 3)  # the other three wait
        assert handler.count() == 3
    finally:
        agent.stop()


def test_a_probe_after_the_cool_down_then_success_closes_it(
        sqlite_app: StratexecApp, clock: Clock, replies: Replies) -> None:
    handler = Flaky()
    agent = start_agent(handler, sqlite_app, clock, QUICK)
    try:
        for n in range(8):
            agent.tell(RunTask(work(n), replies.ref))
        first = wait_for_store(sqlite_app, lambda: paused(sqlite_app))
        # The cool-down passes; the probe (t3) fails and the breaker opens again.
        again = wait_for_store(sqlite_app, lambda: paused(sqlite_app, first.version))
        assert again.attempts == [f"{UUID(int=1)}:t3:1"]
        assert len(replies.until_outcomes(4)) == 4
        assert handler.count() == 4
        handler.failing.clear()  # the agent works again: the next probe closes the breaker
        assert [isinstance(m, RecordTaskSuccess) for m in replies.until_outcomes(8)] == [
            False] * 4 + [True] * 4
        closed = circuit(sqlite_app)
        assert closed is not None
        assert (closed.state, closed.probe_at) == (CircuitState.CLOSED, None)
    finally:
        agent.stop()


def test_only_one_probe_runs_at_a_time(sqlite_app: StratexecApp, clock: Clock,
                                       replies: Replies) -> None:
    handler = Flaky()
    agent = start_agent(handler, sqlite_app, clock, QUICK, concurrency=4)
    try:
        for n in range(3):
            agent.tell(RunTask(work(n), replies.ref))
        wait_for_store(sqlite_app, lambda: paused(sqlite_app))
        replies.until_outcomes(3)
        handler.hold.clear()  # the probe will wait, so that its company would show
        handler.failing.clear()
        for n in range(3, 7):
            agent.tell(RunTask(work(n), replies.ref))
        probe = wait_for_store(sqlite_app, lambda: probing(sqlite_app))
        assert probe.probe == f"{UUID(int=1)}:t3:1"
        stats = agent.proxy().stats().get(timeout=TIMEOUT)
        assert (stats.running, stats.queued) == (1, 3)
        handler.hold.set()
        replies.until_outcomes(7)
        assert handler.count() == 7
    finally:
        agent.stop()


def test_cancelled_attempts_do_not_count(
        sqlite_app: StratexecApp, clock: Clock, replies: Replies) -> None:
    handler = Flaky()
    handler.hold.clear()
    agent = start_agent(handler, sqlite_app, clock, LONG, concurrency=3)
    try:
        execution_id = uuid4()
        for n in range(3):
            agent.tell(RunTask(work(n, execution_id), replies.ref))
        replies.wait_until(lambda ms: handler.count() == 3)
        agent.tell(WithdrawTasks(execution_id, cancel_running=True))
        replies.until_outcomes(3)
        agent.proxy().stats().get(timeout=TIMEOUT)  # the actor has seen the attempts end
        assert circuit(sqlite_app) is None  # never paused: nothing recorded
        with pytest.raises(InvalidTransition, match="not paused"):
            agent.ask(ResumeAgentType())
    finally:
        agent.stop()


def test_resumed_by_hand_the_queue_starts_again(
        sqlite_app: StratexecApp, clock: Clock, replies: Replies) -> None:
    handler = Flaky()
    agent = start_agent(handler, sqlite_app, clock, LONG)
    try:
        for n in range(5):
            agent.tell(RunTask(work(n), replies.ref))
        wait_for_store(sqlite_app, lambda: paused(sqlite_app))
        handler.failing.clear()

        state: AgentTypeState = agent.ask(ResumeAgentType(), block=True)

        assert (state.agent_type, state.state) == ("email", "closed")
        assert state.position == sqlite_app.recorder.max_notification_id()
        assert replies.until_outcomes(5)[-1].__class__ is RecordTaskSuccess
        with pytest.raises(InvalidTransition, match="not paused") as refused:
            agent.ask(ResumeAgentType())
        assert refused.value.details == {"agentType": "email", "state": "closed"}
    finally:
        agent.stop()


# ------------------------------------------------------------------ the whole engine

def two_types() -> Any:
    """Four email tasks and four content tasks, each on its own."""
    items: list[dict[str, Any]] = [
        {"id": "goal", "level": 1, "parentId": None, "title": "Goal"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Area"},
        {"id": "plan", "level": 3, "parentId": "area", "title": "Plan"},
    ]
    for agent in ("email", "content"):
        items += [{"id": f"{agent}{n}", "level": 4, "parentId": "plan",
                   "title": f"{agent} {n}", "agents": [agent]} for n in range(4)]
    return parse_strategy({"name": "two types", "workspaceId": "w", "items": items})


def engine(app: StratexecApp, email: Flaky, settings: CircuitSettings) -> Runtime:
    agents: dict[str, Any] = {**scripted_agents(), "email": email}
    options = EngineOptions(concurrency=1, health_interval=0.05, seed=1, retry=RetryPolicy(
        maximum_attempts=5, initial_interval=0.01, maximum_interval=0.02))
    return Runtime(app, agents, options, circuits={"email": settings}).start()


def tasks_done(app: StratexecApp, execution_id: UUID, agent: str) -> int:
    execution = app.get_execution(execution_id)
    return execution.agent_counts[agent]["completed"]  # type: ignore[index]


def test_a_failing_type_pauses_alone_and_resumes_by_hand(app: StratexecApp) -> None:
    email = Flaky()
    runtime = engine(app, email, LONG)
    try:
        strategy, _ = app.define_strategy(two_types())
        execution_id = runtime.start_execution(strategy).id
        opened = wait_for_store(app, lambda: paused(app))
        assert len(opened.attempts) == 3
        wait_for_store(app, lambda: tasks_done(app, execution_id, "content") == 4)
        assert email.count() == 3  # nothing started since it opened
        running: Execution = app.get_execution(execution_id)
        assert running.status is ExecutionStatus.RUNNING

        email.failing.clear()
        with pytest.raises(NotFound):
            runtime.resume_agent_type("plumbing")
        assert runtime.resume_agent_type("email").state == "closed"

        assert runtime.wait(execution_id, timeout=20)
        assert app.get_execution(execution_id).status is ExecutionStatus.COMPLETED
    finally:
        runtime.stop()


def test_a_paused_type_stays_paused_across_a_restart(app: StratexecApp) -> None:
    email = Flaky()
    runtime = engine(app, email, LONG)
    try:
        strategy, _ = app.define_strategy(two_types())
        execution_id = runtime.start_execution(strategy).id
        wait_for_store(app, lambda: paused(app))
        wait_for_store(app, lambda: tasks_done(app, execution_id, "content") == 4)
    finally:
        runtime.stop()
    email.failing.clear()
    started = email.count()

    runtime = engine(app, email, LONG)
    try:
        assert runtime.recover() == [execution_id]
        agent = runtime.agent_refs()["email"].proxy()
        deadline = time.monotonic() + TIMEOUT
        while (stats := agent.stats().get(timeout=TIMEOUT)).queued < 4:  # re-dispatched
            assert time.monotonic() < deadline, stats
        assert stats.running == 0  # they wait for the breaker
        assert email.count() == started
        runtime.resume_agent_type("email")
        assert runtime.wait(execution_id, timeout=20)
        assert app.get_execution(execution_id).status is ExecutionStatus.COMPLETED
    finally:
        runtime.stop()
