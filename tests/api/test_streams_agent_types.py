"""An agent type's circuit breaker on the streams: its rows concern every workspace, so every
workspace subscription gets them, in log order among its own, live and replayed; execution
subscriptions do not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import chain_strategy

from stratexec.api.streams import StreamHub, Subscription
from stratexec.domain.application import StratexecApp
from stratexec.domain.circuit import AgentCircuit
from stratexec.domain.execution import Execution
from stratexec.projections.feed import EVERY_WORKSPACE
from stratexec.projections.queries import feed_since, paused_agent_types
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.projections.verify import compare, rebuild

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
WAIT = 10.0


@pytest.fixture
def app(tmp_path: Path) -> Iterator[StratexecApp]:
    application = StratexecApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                    "SQLITE_DBNAME": str(tmp_path / "events.sqlite")})
    yield application
    application.close()


@pytest.fixture
def views(tmp_path: Path) -> Iterator[ViewStore]:
    with ViewStore(str(tmp_path / "views.sqlite")) as store:
        yield store


def begin(app: StratexecApp, workspace: str) -> Execution:
    strategy, _ = app.define_strategy(chain_strategy(["a"], workspace=workspace))
    execution, _ = app.create_execution(strategy)
    execution.assign_ready_tasks(T0)
    app.save(execution)
    return execution


def pause_and_resume(app: StratexecApp, agent_type: str = "research") -> AgentCircuit:
    circuit = AgentCircuit(agent_type)
    circuit.pause(0.6, 5, ["x:a:1", "x:a:2", "x:a:3"], T0 + timedelta(seconds=30))
    app.save(circuit)
    circuit.start_probe("x:a:4")
    app.save(circuit)
    circuit.resume("probe", "x:a:4")
    app.save(circuit)
    return circuit


async def taken(subscription: Subscription) -> list[tuple[int, str, str]]:
    chunks = await asyncio.wait_for(subscription.take(), WAIT)
    assert chunks is not None
    return [(item.position, item.type, item.workspace_id)
            for chunk in chunks for item in chunk.items]


def test_the_feed_rows_of_an_agent_type_belong_to_every_workspace(
        app: StratexecApp, views: ViewStore, tmp_path: Path) -> None:
    execution = begin(app, "w")
    circuit = pause_and_resume(app)
    ProjectionRunner(app, views).catch_up()

    rows = feed_since(views, 0, workspace_ids=["w"])
    assert [row["type"] for row in rows] == [
        "execution-started", "task-assigned", "agent-type-paused", "agent-type-resumed"]
    paused, resumed = (json.loads(row["data"]) for row in rows[2:])
    assert paused == {"agentType": "research", "failureRate": 0.6, "window": 5,
                      "attempts": ["x:a:1", "x:a:2", "x:a:3"],
                      "probeAt": (T0 + timedelta(seconds=30)).isoformat()}
    assert resumed == {"agentType": "research", "by": "probe", "attempt": "x:a:4"}
    assert {row["workspaceId"] for row in rows[2:]} == {EVERY_WORKSPACE}
    assert {row["executionId"] for row in rows[2:]} == {str(circuit.id)}
    assert [r["type"] for r in feed_since(views, 0, workspace_ids=["elsewhere"])] == [
        "agent-type-paused", "agent-type-resumed"]
    assert all(r["executionId"] == str(execution.id)
               for r in feed_since(views, 0, execution_id=execution.id))
    assert paused_agent_types(views) == []

    with ViewStore(str(tmp_path / "rebuilt.sqlite")) as rebuilt:
        rebuild(app, rebuilt)
        assert compare(views, rebuilt) == []


def test_paused_agent_types_are_listed_until_resumed(app: StratexecApp, views: ViewStore
                                                     ) -> None:
    circuit = AgentCircuit("email")
    probe_at = T0 + timedelta(seconds=30)
    circuit.pause(0.5, 4, ["x:e:1", "x:e:2"], probe_at)
    app.save(circuit)
    runner = ProjectionRunner(app, views)
    runner.catch_up()
    listed: list[dict[str, Any]] = paused_agent_types(views)
    assert listed == [{"agentType": "email", "state": "open", "failureRate": 0.5,
                       "window": 4, "attempts": ["x:e:1", "x:e:2"],
                       "pausedAt": listed[0]["pausedAt"], "probeAt": probe_at.isoformat()}]
    circuit.start_probe("x:e:3")
    app.save(circuit)
    runner.catch_up()
    assert [p["state"] for p in paused_agent_types(views)] == ["half_open"]
    circuit.resume("operator")
    app.save(circuit)
    runner.catch_up()
    assert paused_agent_types(views) == []


async def test_live_rows_reach_every_workspace_subscription_and_no_execution_one(
        app: StratexecApp, views: ViewStore) -> None:
    runner = ProjectionRunner(app, views, poll_interval=0.05)
    runner.start()
    hub = StreamHub(runner, views)
    await hub.start()
    try:
        execution = await asyncio.to_thread(begin, app, "w")
        assert await asyncio.to_thread(
            runner.wait_for, app.recorder.max_notification_id() or 0, WAIT)
        one = hub.subscribe(None, frozenset({"w"}))
        several = hub.subscribe(None, frozenset({"w", "v"}))
        other = hub.subscribe(None, frozenset({"v"}))
        of_execution = hub.subscribe(str(execution.id), frozenset({"w"}))

        def both() -> None:
            execution.start_task("a:research", 1)
            circuit = AgentCircuit("email")
            circuit.pause(1.0, 3, ["k1", "k2", "k3"], T0)
            app.save(execution, circuit)  # one save: the rows arrive in one batch

        await asyncio.to_thread(both)

        mine = await taken(one)
        assert [(kind, workspace) for _, kind, workspace in mine] == [
            ("task-progress", "w"), ("agent-type-paused", EVERY_WORKSPACE)]
        assert mine == sorted(mine)
        assert await taken(several) == mine  # once, though it follows two workspaces
        assert [kind for _, kind, _ in await taken(other)] == ["agent-type-paused"]
        assert [kind for _, kind, _ in await taken(of_execution)] == ["task-progress"]
    finally:
        await hub.stop()
        runner.stop()
