"""The health monitor's completion estimates: the agent types' priors, the cost bound, a
failing estimate, and the estimate and concurrency recorded through the real Runtime."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from helpers import chain_strategy, scripted_agents, wait_for_store

from stratexec.actors.agents.base import AgentLimits
from stratexec.actors.agents.demo import DemoAgent
from stratexec.actors.health import ESTIMATE_COST_RATIO, Estimates, prior_speed
from stratexec.actors.runtime import Runtime
from stratexec.domain.application import StratexecApp
from stratexec.domain.eta import AgentSpeed, Eta
from stratexec.domain.health import ExecutionHealth
from stratexec.settings import EngineOptions

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def test_a_demo_agents_prior_is_its_duration_range() -> None:
    demo = DemoAgent("email", {"duration": [0.2, 1.2]})

    prior = prior_speed(demo, AgentLimits(concurrency=3))

    assert prior.p50 == pytest.approx(0.7)
    assert prior.p90 == pytest.approx(1.1)
    assert prior.concurrency == 3


def test_another_agents_prior_is_its_timeout_else_thirty_seconds() -> None:
    other = scripted_agents()["email"]

    assert prior_speed(other, AgentLimits(concurrency=2, timeout=12.0)) == AgentSpeed(
        12.0, 12.0, 2)
    assert prior_speed(other, AgentLimits(concurrency=2)) == AgentSpeed(30.0, 30.0, 2)


class Clock:
    """Time that passes only when the test (or an estimate) says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_estimate_is_made_again_once_its_cost_allows() -> None:
    clock = Clock()
    made: list[float] = []

    def estimate(execution_id: UUID, priors: Mapping[str, AgentSpeed]) -> Eta:
        made.append(clock.now)
        clock.now += 0.5  # it costs half a second
        return Eta(float(len(made)), 1.0, NOW, 1)

    estimates = Estimates(estimate, {}, clock)
    execution_id = uuid4()

    first = estimates.of(execution_id)
    clock.now += 0.5 * ESTIMATE_COST_RATIO - 0.1
    assert estimates.of(execution_id) is first  # not yet: the last one stands
    clock.now += 0.2
    assert estimates.of(execution_id) == Eta(2.0, 1.0, NOW, 1)
    assert made == [0.0, 0.5 + 0.5 * ESTIMATE_COST_RATIO + 0.1]
    other = estimates.of(uuid4())  # each execution on its own
    assert other is not None
    assert other.seconds == 3.0
    clock.now += 100
    assert estimates.of(execution_id, fresh=False) == Eta(2.0, 1.0, NOW, 1)  # the last one
    assert estimates.of(uuid4(), fresh=False) is None
    assert len(made) == 3


def test_a_failing_estimate_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    def broken(execution_id: UUID, priors: Mapping[str, AgentSpeed]) -> Eta:
        raise RuntimeError("the views are closed")

    with caplog.at_level(logging.ERROR):
        assert Estimates(broken, {}).of(uuid4()) is None
    assert "could not estimate" in caplog.text
    assert Estimates(None, {}).of(uuid4()) is None


def test_the_monitor_records_the_estimate_and_each_types_concurrency(
        app: StratexecApp) -> None:
    asked: list[Mapping[str, AgentSpeed]] = []

    def estimate(execution_id: UUID, priors: Mapping[str, AgentSpeed]) -> Eta:
        asked.append(priors)
        return Eta(5.0 - 0.5 * len(asked), 8.0, NOW, 10 - len(asked), ("a:research",))

    agents = scripted_agents()
    gate = agents["research"].gate("b:research")
    options = EngineOptions(concurrency=3, health_interval=0.05, seed=1)
    runtime = Runtime(app, agents, options, limits={"research": AgentLimits(2)},
                      estimate=estimate).start()
    try:
        strategy, _ = app.define_strategy(chain_strategy(["a", "b"]))
        execution_id = runtime.start_execution(strategy).id
        def estimated() -> ExecutionHealth | None:
            health = app.get_health(execution_id)
            recorded = health is not None and health.last is not None and health.last.eta
            return health if recorded else None

        health = wait_for_store(app, estimated)
        assert health.metrics is not None
        assert health.metrics["research"]["concurrency"] == 2
        gate.set()
        assert runtime.wait(execution_id, timeout=20)
    finally:
        runtime.stop()

    assert {agent: speed.concurrency for agent, speed in asked[0].items()} == {
        "research": 2, **{t: 3 for t in agents if t != "research"}}
    final = app.get_health(execution_id)
    assert final is not None
    assert final.last is not None
    assert final.last.eta is None  # assessed once finished: nothing left to estimate
