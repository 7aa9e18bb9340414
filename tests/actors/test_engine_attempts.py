"""What a handler receives and what becomes of a late attempt, through the real engine
(Runtime, ExecutionActor, AgentActor) on real stores."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from helpers import TIMEOUT, ScriptedAgent, chain_strategy, scripted_agents, wait_for_store

from stratexec.actors.agents.base import AgentHandler, AgentLimits, TaskContext
from stratexec.actors.messages import AgentTask
from stratexec.actors.runtime import Runtime
from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution, TaskStatus
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import parse_strategy
from stratexec.projections.audit import history
from stratexec.settings import EngineOptions

OPTIONS = EngineOptions(concurrency=2, health_interval=0.05, seed=1,
                        retry=RetryPolicy(maximum_attempts=3, initial_interval=0.01))
BRIEF = {"audience": "beta testers", "tone": "warm", "limits": {"words": 120}}


class RecordingAgent:
    """Returns a result made from what it was given, and keeps every task it was given."""

    def __init__(self, agent_type: str) -> None:
        self.agent_type = agent_type
        self.tasks: list[AgentTask] = []

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        self.tasks.append(task)
        return {"by": self.agent_type, "for": task.inputs.get("audience"),
                "words": [3, 4]}


def run_to_the_end(app: StratexecApp, handlers: Mapping[str, AgentHandler], definition: Any,
                   limits: Mapping[str, AgentLimits] | None = None) -> Execution:
    runtime = Runtime(app, handlers, OPTIONS, limits=limits).start()
    try:
        strategy, _ = app.define_strategy(definition)
        execution_id = runtime.start_execution(strategy).id
        assert runtime.wait(execution_id, timeout=20), "the execution did not finish"
    finally:
        runtime.stop()
    return app.get_execution(execution_id)


def test_an_items_inputs_and_the_upstream_results_reach_the_handlers(app: StratexecApp) -> None:
    definition = parse_strategy({"name": "Beta invite", "workspaceId": "w", "items": [
        {"id": "goal", "level": 1, "parentId": None, "title": "Launch the beta"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Outreach"},
        {"id": "plan", "level": 3, "parentId": "area", "title": "Invitations"},
        {"id": "draft", "level": 4, "parentId": "plan", "title": "Draft the invite",
         "description": "Two short paragraphs.", "agents": ["content"], "inputs": BRIEF},
        {"id": "send", "level": 4, "parentId": "plan", "title": "Send the invite",
         "agents": ["email"], "dependsOn": ["draft"], "inputs": {"list": "beta-2025"}},
    ]})
    handlers = {agent_type: RecordingAgent(agent_type) for agent_type in scripted_agents()}

    execution = run_to_the_end(app, handlers, definition)

    assert execution.status == "completed"
    [draft] = handlers["content"].tasks
    assert (draft.inputs, draft.upstream, draft.description) == (
        BRIEF, {}, "Two short paragraphs.")
    [send] = handlers["email"].tasks
    assert send.inputs == {"list": "beta-2025"}
    assert send.upstream == {"draft:content": {"by": "content", "for": "beta testers",
                                               "words": [3, 4]}}
    assert execution.tasks["send:email"].result == {"by": "email", "for": None,
                                                    "words": [3, 4]}


class StubbornFirstAttempt(ScriptedAgent):
    """The first attempt of `a:research` ignores cancellation: it returns when released."""

    def __init__(self) -> None:
        super().__init__("research")
        self.release = threading.Event()

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        if (task.task_id, task.attempt) == ("a:research", 1):
            assert self.release.wait(TIMEOUT)
            return {"late": True}
        return super().run(task, context)


def test_a_timed_out_attempts_late_success_is_dropped_and_its_retry_runs(
        app: StratexecApp) -> None:
    agents: dict[str, ScriptedAgent] = scripted_agents()
    stubborn = agents["research"] = StubbornFirstAttempt()
    runtime = Runtime(app, agents, OPTIONS,
                      limits={"research": AgentLimits(concurrency=1, timeout=0.2)}).start()
    try:
        strategy, _ = app.define_strategy(chain_strategy(["a", "b"]))
        execution_id: UUID = runtime.start_execution(strategy).id
        # The timeout is recorded and the retry sent while the first attempt holds the slot.
        wait_for_store(app, lambda: app.get_execution(execution_id).tasks[
            "a:research"].attempt == 2)
        assert stubborn.attempts == []  # the retry waits: the stubborn one holds the slot
        stubborn.release.set()  # its late success reaches the live execution first
        assert runtime.wait(execution_id, timeout=20)
    finally:
        runtime.stop()

    execution = app.get_execution(execution_id)
    a = execution.tasks["a:research"]
    assert (execution.status, a.status, a.attempt, a.failures) == (
        "completed", TaskStatus.COMPLETED, 2, 1)
    assert a.result == {"task": "a:research", "attempt": 2}
    outcomes = [(e["type"], e["data"]["attempt"], e["data"].get("errorKind"))
                for e in history(app, execution_id)
                if e["type"] in ("Execution.TaskSucceeded", "Execution.TaskFailed")
                and e["data"]["taskId"] == "a:research"]
    assert outcomes == [("Execution.TaskFailed", 1, "timeout"),
                        ("Execution.TaskSucceeded", 2, None)]
