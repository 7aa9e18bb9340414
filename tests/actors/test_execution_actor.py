"""ExecutionActor behaviour through the Runtime, on real stores, with scripted agents."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from uuid import UUID

import pykka
import pytest
from eventsourcing.persistence import Recording
from helpers import ScriptedAgent, chain_strategy, scripted_agents, wait_for_store

from stratexec.actors.execution import ExecutionActor
from stratexec.actors.runtime import Runtime
from stratexec.actors.turn import TURN_SIZE
from stratexec.domain.application import StratexecApp
from stratexec.domain.errors import InvalidTransition
from stratexec.domain.execution import Execution, TaskStatus
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import parse_strategy
from stratexec.projections.audit import aggregate_notifications
from stratexec.projections.events import TASK_ASSIGNED, TASK_STARTED
from stratexec.settings import EngineOptions

FAST_RETRIES = RetryPolicy(maximum_attempts=4, initial_interval=0.01, maximum_interval=0.05)


def make_runtime(app: StratexecApp, agents: dict[str, ScriptedAgent], concurrency: int = 4
                 ) -> Runtime:
    options = EngineOptions(concurrency=concurrency, health_interval=0.05,
                            retry=FAST_RETRIES, seed=1)
    return Runtime(app, agents, options).start()


@pytest.fixture
def agents() -> dict[str, ScriptedAgent]:
    return scripted_agents()


@pytest.fixture
def runtime(app: StratexecApp, agents: dict[str, ScriptedAgent]) -> Iterator[Runtime]:
    running = make_runtime(app, agents)
    yield running
    running.stop()


def start(app: StratexecApp, runtime: Runtime, *chains: list[str]) -> UUID:
    strategy, _ = app.define_strategy(chain_strategy(*chains))
    return runtime.start_execution(strategy).id


def finished(app: StratexecApp, runtime: Runtime, execution_id: UUID) -> Execution:
    assert runtime.wait(execution_id, timeout=20), "execution did not finish"
    return app.get_execution(execution_id)


def status_of(app: StratexecApp, execution_id: UUID, item: str) -> TaskStatus:
    return app.get_execution(execution_id).tasks[f"{item}:research"].status


def on_each_save(app: StratexecApp, monkeypatch: pytest.MonkeyPatch,
                 observe: Callable[[tuple[Any, ...], list[Recording[UUID]]], None]) -> None:
    """Call `observe(saved objects, recordings)` after each of the app's saves."""
    save = app.save

    def observed_save(*objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        recordings = save(*objs, **kwargs)
        observe(objs, recordings)
        return recordings

    monkeypatch.setattr(app, "save", observed_save)


class HeldPace:
    """A `pace` that lets its first call through (the actor's first turn) and holds every
    later one while the test holds it: the actor then waits before its next turn begins."""

    def __init__(self) -> None:
        self.calls = 0
        self.released = threading.Event()
        self.waiting = threading.Event()

    def __call__(self, _position: int) -> None:
        self.calls += 1
        if self.calls > 1 and not self.released.is_set():
            self.waiting.set()
            assert self.released.wait(10), "the test did not release the pace"


def start_three_held(app: StratexecApp, agents: dict[str, ScriptedAgent], pace: HeldPace
                     ) -> tuple[Runtime, UUID, list[threading.Event]]:
    """Three independent tasks whose attempts have all told their execution that they
    started, while the execution waits at the beginning of its next turn."""
    research = agents["research"]
    gates = [research.gate(f"{item}:research") for item in "abc"]
    options = EngineOptions(concurrency=4, retry=FAST_RETRIES, seed=1)
    runtime = Runtime(app, agents, options, pace=pace).start()
    strategy, _ = app.define_strategy(chain_strategy(["a"], ["b"], ["c"]))
    execution_id = runtime.start_execution(strategy).id
    for item in "abc":
        assert research.entered[f"{item}:research"].wait(10)
    assert pace.waiting.wait(10)
    return runtime, execution_id, gates


def test_runs_the_dag_in_dependency_order(app: StratexecApp, runtime: Runtime,
                                          agents: dict[str, ScriptedAgent]) -> None:
    execution_id = start(app, runtime, ["a", "b", "c"], ["d"])
    execution = finished(app, runtime, execution_id)
    assert execution.status == "completed"
    assert {t.status for t in execution.tasks.values()} == {TaskStatus.COMPLETED}
    order = [task_id for task_id, _ in agents["research"].attempts]
    assert order.index("a:research") < order.index("b:research") < order.index("c:research")
    assert execution.tasks["b:research"].result == {"task": "b:research", "attempt": 1}


def test_a_wide_dag_is_saved_in_bounded_turns(app: StratexecApp, runtime: Runtime,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """More ready tasks than one turn may assign: no save holds more than TURN_SIZE
    assignments, and every task still runs."""
    assigned_per_save: list[int] = []
    on_each_save(app, monkeypatch, lambda _, recordings: assigned_per_save.append(
        sum(isinstance(r.domain_event, TASK_ASSIGNED) for r in recordings)))
    width = 3 * TURN_SIZE + 5
    execution_id = start(app, runtime, *([f"item-{k}"] for k in range(width)))

    assert finished(app, runtime, execution_id).status == "completed"
    assert sum(assigned_per_save) == width
    assert max(assigned_per_save) == TURN_SIZE


def test_each_turn_waits_for_the_readers_to_reach_the_last_save(
        app: StratexecApp, agents: dict[str, ScriptedAgent],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Backpressure: before a turn records anything, the actor hands `pace` the position
    of its previous save (the runtime's readers block there while they are behind)."""
    strategy, _ = app.define_strategy(chain_strategy(*([f"item-{k}"] for k in range(40))))
    steps: list[tuple[str, int]] = []  # ("save" | "pace", position), in the actor's order

    def execution_saved(objs: tuple[Any, ...], recordings: list[Recording[UUID]]) -> None:
        if any(isinstance(obj, Execution) for obj in objs):
            steps.append(("save", recordings[-1].notification.id))

    on_each_save(app, monkeypatch, execution_saved)
    options = EngineOptions(concurrency=4, retry=FAST_RETRIES, seed=1)
    runtime = Runtime(app, agents, options, pace=lambda at: steps.append(("pace", at)))
    with runtime:
        execution_id = runtime.start_execution(strategy).id
        assert finished(app, runtime, execution_id).status == "completed"

    saves = [position for step, position in steps if step == "save"]
    assert len(saves) > 3
    started_at = steps[1][1]  # the creation's save, then the actor's first pace
    assert steps[:2] == [("save", started_at), ("pace", started_at)]
    for (step, position), (next_step, next_position) in pairwise(steps[1:]):
        if next_step == "save":  # every save of a turn follows a pace for the last one
            assert step == "pace", steps
            assert position == max(p for s, p in steps if s == "save" and p < next_position)


def test_retries_then_succeeds(app: StratexecApp, agents: dict[str, ScriptedAgent]) -> None:
    agents["research"].script["a:research"] = ["fail", "fail", "ok"]
    runtime = make_runtime(app, agents)
    try:
        execution = finished(app, runtime, start(app, runtime, ["a", "b"]))
    finally:
        runtime.stop()
    assert execution.status == "completed"
    task = execution.tasks["a:research"]
    assert (task.attempt, task.failures, task.status) == (3, 2, TaskStatus.COMPLETED)
    failed_events = [n for n in aggregate_notifications(app, [execution.id])
                     if n.topic.endswith("TaskFailed")]
    assert len(failed_events) == 2


def test_a_task_that_fails_for_good_skips_its_dependents_only(
        app: StratexecApp, agents: dict[str, ScriptedAgent]) -> None:
    agents["research"].script["a:research"] = ["fail"] * 4
    runtime = make_runtime(app, agents)
    try:
        execution = finished(app, runtime, start(app, runtime, ["a", "b", "c"], ["d", "e"]))
    finally:
        runtime.stop()
    statuses = {task_id: task.status for task_id, task in execution.tasks.items()}
    assert statuses == {
        "a:research": TaskStatus.FAILED, "b:research": TaskStatus.SKIPPED,
        "c:research": TaskStatus.SKIPPED, "d:research": TaskStatus.COMPLETED,
        "e:research": TaskStatus.COMPLETED,
    }
    assert execution.tasks["a:research"].attempt == 4
    assert execution.status == "failed"
    assert ("b:research", 1) not in agents["research"].attempts


def test_a_non_retryable_error_fails_at_once(
        app: StratexecApp, agents: dict[str, ScriptedAgent]) -> None:
    agents["research"].script["a:research"] = ["fatal"]
    runtime = make_runtime(app, agents)
    try:
        execution = finished(app, runtime, start(app, runtime, ["a"]))
    finally:
        runtime.stop()
    assert execution.tasks["a:research"].attempt == 1
    assert execution.tasks["a:research"].error_kind == "scripted_fatal"


def test_pause_holds_dispatch_until_resume(app: StratexecApp, runtime: Runtime,
                                           agents: dict[str, ScriptedAgent]) -> None:
    gate = agents["research"].gate("a:research")
    execution_id = start(app, runtime, ["a", "b"])
    assert agents["research"].entered["a:research"].wait(10)
    assert runtime.pause(execution_id).status == "paused"
    gate.set()  # the running attempt finishes and is recorded, but nothing new starts
    wait_for_store(app, lambda: status_of(app, execution_id, "a") == TaskStatus.COMPLETED)
    paused = app.get_execution(execution_id)
    assert paused.status == "paused"
    assert paused.tasks["b:research"].status == TaskStatus.PENDING
    with pytest.raises(InvalidTransition):
        runtime.pause(execution_id)
    assert runtime.resume(execution_id).status == "running"
    assert finished(app, runtime, execution_id).status == "completed"


def test_pause_hands_back_queued_attempts(app: StratexecApp,
                                          agents: dict[str, ScriptedAgent]) -> None:
    runtime = make_runtime(app, agents, concurrency=1)
    try:
        gate = agents["research"].gate("a:research")
        execution_id = start(app, runtime, ["a"], ["b"])
        assert agents["research"].entered["a:research"].wait(10)
        runtime.pause(execution_id)
        wait_for_store(app, lambda: status_of(app, execution_id, "b") == TaskStatus.PENDING)
        gate.set()
        runtime.resume(execution_id)
        execution = finished(app, runtime, execution_id)
    finally:
        runtime.stop()
    assert execution.status == "completed"
    assert execution.tasks["b:research"].attempt == 2  # handed back once, then run


def test_cancel_marks_every_unfinished_task_cancelled(
        app: StratexecApp, runtime: Runtime, agents: dict[str, ScriptedAgent]) -> None:
    agents["research"].gate("a:research")
    execution_id = start(app, runtime, ["a", "b"], ["c"])
    assert agents["research"].entered["a:research"].wait(10)
    wait_for_store(app, lambda: status_of(app, execution_id, "c") == TaskStatus.COMPLETED)
    assert runtime.cancel(execution_id).status == "cancelled"
    execution = finished(app, runtime, execution_id)
    assert execution.status == "cancelled"
    assert {k: v.status for k, v in execution.tasks.items()} == {
        "a:research": TaskStatus.CANCELLED, "b:research": TaskStatus.CANCELLED,
        "c:research": TaskStatus.COMPLETED}
    with pytest.raises(InvalidTransition):
        runtime.cancel(execution_id)
    with pytest.raises(InvalidTransition):
        runtime.resume(execution_id)


def test_concurrency_limit_is_never_exceeded(app: StratexecApp,
                                              agents: dict[str, ScriptedAgent]) -> None:
    items = [f"t{n}" for n in range(12)]
    research = agents["research"]
    gates = [research.gate(f"{item}:research") for item in items]
    runtime = make_runtime(app, agents, concurrency=3)
    try:
        execution_id = start(app, runtime, *[[item] for item in items])
        wait_for_store(app, lambda: app.get_execution(execution_id).counts[
            TaskStatus.IN_PROGRESS] == 3)
        stats = runtime.agent_refs()["research"].proxy().stats().get(timeout=5)
        assert (stats.running, stats.queued) == (3, 9)
        for gate in gates:
            gate.set()
        assert finished(app, runtime, execution_id).status == "completed"
    finally:
        runtime.stop()
    assert research.max_running == 3


def test_recovery_gives_interrupted_attempts_a_new_attempt(
        app: StratexecApp, agents: dict[str, ScriptedAgent]) -> None:
    # Record what a crashed process leaves behind: an attempt assigned and started.
    strategy, _ = app.define_strategy(chain_strategy(["a", "b"]))
    execution = app.create_execution(strategy, retry_policy=FAST_RETRIES)[0]
    (task,) = execution.assign_ready_tasks(datetime.now(UTC))
    execution.start_task(task.id, 1)
    app.save(execution)
    runtime = make_runtime(app, agents)
    try:
        assert runtime.recover() == [execution.id]
        recovered = finished(app, runtime, execution.id)
    finally:
        runtime.stop()
    assert recovered.status == "completed"
    assert recovered.tasks["a:research"].attempt == 2
    assert recovered.tasks["a:research"].failures == 0
    history = aggregate_notifications(app, [execution.id])
    assert any(n.topic.endswith("TaskInterrupted") for n in history)


def test_an_execution_needing_an_agent_type_the_engine_lacks_is_not_recovered(
        app: StratexecApp, runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    """The configuration changed since it started: recovering it would crash its actor on
    every dispatch, and restart it every second, for ever."""
    document = chain_strategy(["a"]).items[3].as_document() | {"agents": ["translation"]}
    definition = parse_strategy({"name": "custom", "workspaceId": "w", "items": [
        *(item.as_document() for item in chain_strategy(["a"]).items[:3]), document]})
    strategy, _ = app.define_strategy(definition)
    execution = app.create_execution(strategy, retry_policy=FAST_RETRIES)[0]
    assert runtime.recover() == []
    assert not runtime.is_live(execution.id)
    assert "needs agent types this engine does not run (translation)" in caplog.text
    assert app.get_execution(execution.id).status == "pending"


def test_health_is_recorded_for_a_finished_execution(app: StratexecApp, runtime: Runtime
                                                     ) -> None:
    execution_id = start(app, runtime, ["a"])
    finished(app, runtime, execution_id)
    health = wait_for_store(app, lambda: app.get_health(execution_id))
    assert health.last is not None
    assert (health.last.score, health.last.status) == (100, "Excellent")


def test_the_messages_waiting_when_a_turn_begins_are_saved_at_once(
        app: StratexecApp, agents: dict[str, ScriptedAgent],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: the reports that arrive while a turn waits for the readers are applied
    in that turn and saved together."""
    saves: list[list[type]] = []  # the events of each save of an execution
    saved = threading.Condition()

    def execution_saved(objs: tuple[Any, ...], recordings: list[Recording[UUID]]) -> None:
        if any(isinstance(obj, Execution) for obj in objs):
            with saved:
                saves.append([type(r.domain_event) for r in recordings])
                saved.notify_all()

    on_each_save(app, monkeypatch, execution_saved)
    pace = HeldPace()
    runtime, execution_id, gates = start_three_held(app, agents, pace)
    try:
        with saved:
            saved_before = len(saves)
        pace.released.set()
        with saved:
            assert saved.wait_for(lambda: len(saves) > saved_before, 10)
            assert saves[saved_before] == [TASK_STARTED] * 3
        for gate in gates:
            gate.set()
        assert finished(app, runtime, execution_id).status == "completed"
    finally:
        runtime.stop()


def test_what_a_turn_applied_is_saved_when_the_actor_stops_first(
        app: StratexecApp, agents: dict[str, ScriptedAgent]) -> None:
    """The stop arrives while a turn is open (before the message that would end it): the
    actor still records what the turn applied, and then, in the same save, that the engine
    stopped: the three attempts under way are handed back, without counting them."""
    pace = HeldPace()
    runtime, execution_id, gates = start_three_held(app, agents, pace)
    try:
        (actor,) = pykka.ActorRegistry.get_by_class(ExecutionActor)
        stopped = actor.stop(block=False)  # queued behind the three reports
        pace.released.set()
        assert stopped.get(timeout=10)
        execution = app.get_execution(execution_id)
        started = app.get_execution(execution_id, version=execution.version - 4)
        assert started.counts[TaskStatus.IN_PROGRESS] == 3  # the turn's three starts
        assert execution.interrupted
        assert execution.counts[TaskStatus.IN_PROGRESS] == 0
        assert all(task.interruptions == 0 for task in execution.tasks.values())
    finally:
        for gate in gates:
            gate.set()
        runtime.stop()


def test_a_transition_answers_once_recorded_with_the_position_of_its_save(
        app: StratexecApp, runtime: Runtime, agents: dict[str, ScriptedAgent]) -> None:
    agents["research"].gate("a:research")
    execution_id = start(app, runtime, ["a", "b"])
    assert agents["research"].entered["a:research"].wait(10)
    positions = {}
    for command, status in [(runtime.pause, "paused"), (runtime.resume, "running"),
                            (runtime.cancel, "cancelled")]:
        transition = command(execution_id)
        assert transition.status == status
        assert app.get_execution(execution_id).status == status  # recorded, then answered
        positions[status] = transition.position
    topics = {n.id: n.topic for n in aggregate_notifications(app, [execution_id])}
    assert {status: topics[position].rsplit(".", 1)[-1]
            for status, position in positions.items()} == {
        "paused": "Paused", "running": "Resumed", "cancelled": "Cancelled"}


def test_an_execution_whose_save_fails_during_a_pause_is_restarted(
        app: StratexecApp, runtime: Runtime, agents: dict[str, ScriptedAgent],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The asker gets the store's error, and the actor crashes as after any failed save:
    the runtime rebuilds it from its events, and the execution runs to the end."""
    gate = agents["research"].gate("a:research")
    execution_id = start(app, runtime, ["a", "b"])
    wait_for_store(app, lambda: status_of(app, execution_id, "a") == TaskStatus.IN_PROGRESS)
    save, failures = app.save, [RuntimeError("the store is down")]

    def failing_save(*objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        if failures and any(isinstance(obj, Execution) for obj in objs):
            raise failures.pop()
        return save(*objs, **kwargs)

    monkeypatch.setattr(app, "save", failing_save)
    with pytest.raises(RuntimeError, match="the store is down"):
        runtime.pause(execution_id)
    gate.set()
    execution = finished(app, runtime, execution_id)
    assert execution.status == "completed"
    assert execution.tasks["a:research"].attempt == 2  # interrupted by the restart
