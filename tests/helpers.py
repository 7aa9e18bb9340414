"""Test doubles that are real parts: scripted agent handlers and waits on real conditions."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import pykka

from stratexec.actors.agents.base import AgentError, TaskContext
from stratexec.actors.messages import AgentTask
from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution
from stratexec.domain.strategy import AGENT_TYPES, StrategyDefinition, parse_strategy

T = TypeVar("T")
TIMEOUT = 5.0


class ScriptedAgent:
    """An agent whose attempts do what the test says: succeed, fail, or wait at a gate.

    `script[task_id]` lists the outcome of each attempt ("ok", "fail", "fatal"); a task not
    scripted succeeds. `gates[task_id]` holds the attempt until the test sets the event;
    `entered[task_id]` is set when an attempt of that task begins.
    """

    def __init__(self, agent_type: str, script: dict[str, list[str]] | None = None) -> None:
        self.agent_type = agent_type
        self.script = script or {}
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.attempts: list[tuple[str, int]] = []
        self.running = 0
        self.max_running = 0

    def gate(self, task_id: str) -> threading.Event:
        self.entered.setdefault(task_id, threading.Event())
        return self.gates.setdefault(task_id, threading.Event())

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        with self.lock:
            self.attempts.append((task.task_id, task.attempt))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            outcomes = self.script.get(task.task_id, [])
            failures_so_far = sum(1 for t, _ in self.attempts if t == task.task_id) - 1
        try:
            if task.task_id in self.entered:
                self.entered[task.task_id].set()
            gate = self.gates.get(task.task_id)
            if gate is not None:
                while not gate.wait(0.05):
                    if context.cancelled:
                        raise AgentError("cancelled", "attempt cancelled", retryable=False)
            outcome = outcomes[failures_so_far] if failures_so_far < len(outcomes) else "ok"
            if outcome == "fail":
                raise AgentError("scripted", f"scripted failure of {task.task_id}")
            if outcome == "fatal":
                raise AgentError("scripted_fatal", "cannot succeed", retryable=False)
            return {"task": task.task_id, "attempt": task.attempt}
        finally:
            with self.lock:
                self.running -= 1


def scripted_agents(script: dict[str, list[str]] | None = None) -> dict[str, ScriptedAgent]:
    return {agent_type: ScriptedAgent(agent_type, script) for agent_type in AGENT_TYPES}


def wait_for_store(app: StratexecApp, check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Re-check `check()` after every save in this process until it returns a value."""
    changed = threading.Condition()

    def wake(_position: int) -> None:
        with changed:
            changed.notify_all()

    app.add_listener(wake)
    try:
        with changed:
            result = changed.wait_for(check, timeout)
    finally:
        app.remove_listener(wake)
    if not result:
        raise AssertionError(f"condition not met within {timeout} s")
    return result


def chain_strategy(*chains: list[str], workspace: str = "w") -> StrategyDefinition:
    """A strategy whose L4 items are explicit single-agent tasks in dependent chains:
    `chain_strategy(["a", "b"], ["c"])` makes b depend on a, and c independent."""
    items: list[dict[str, Any]] = [
        {"id": "goal", "level": 1, "parentId": None, "title": "Goal"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Area"},
        {"id": "plan", "level": 3, "parentId": "area", "title": "Plan"},
    ]
    for chain in chains:
        previous = None
        for item_id in chain:
            items.append({"id": item_id, "level": 4, "parentId": "plan", "title": item_id,
                          "agents": ["research"],
                          "dependsOn": [previous] if previous else []})
            previous = item_id
    return parse_strategy({"name": "chains", "workspaceId": workspace, "items": items})


class Inbox:
    """What a collector actor received, with a way to wait for it."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.cond = threading.Condition()

    def add(self, message: Any) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def wait_until(
        self, predicate: Callable[[list[Any]], bool], timeout: float = TIMEOUT
    ) -> list[Any]:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.messages), timeout), self.messages
            return list(self.messages)

    def of(self, kind: type[Any]) -> list[Any]:
        with self.cond:
            return [m for m in self.messages if isinstance(m, kind)]


class Collector(pykka.ThreadingActor):
    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox

    def on_receive(self, message: Any) -> None:
        self.inbox.add(message)


def replay(events: list[Any]) -> Execution:
    """The aggregate rebuilt from its events alone, as the repository would."""
    rebuilt: Execution | None = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


def terminal_events_per_task(events: list[dict[str, Any]]) -> Counter[str]:
    """How many times each task reached a terminal state, according to the log."""
    ends: Counter[str] = Counter()
    for event in events:
        data = event["data"]
        assert isinstance(data, dict)
        succeeded = event["type"] == "Execution.TaskSucceeded"
        failed_for_good = event["type"] == "Execution.TaskFailed" and data["retryAt"] is None
        if succeeded or failed_for_good:
            ends[data["taskId"]] += 1
        elif event["type"] in ("Execution.TasksSkipped", "Execution.Cancelled"):
            ends.update(data["taskIds"])
    return ends


def count_from_env(name: str, default: int) -> int:
    """A suite's bound (examples, kills) from the environment variable `name`, else
    `default`: the long suites are sized by counts, never by a clock."""
    value = int(os.environ.get(name, default))
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value
