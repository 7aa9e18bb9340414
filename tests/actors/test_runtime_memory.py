"""Finished executions leave memory: once the runtime has forgotten an execution, nothing
holds its aggregate any more (not its actor, the runtime, the clock, the agents, nor the
health monitor), so a long-running engine does not grow with every execution it ran."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import chain_strategy, scripted_agents

from stratexec.actors.runtime import Runtime
from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution
from stratexec.domain.retry import RetryPolicy
from stratexec.settings import EngineOptions

FAST_RETRIES = RetryPolicy(maximum_attempts=3, initial_interval=0.01, maximum_interval=0.05)


@pytest.fixture
def watched(app: StratexecApp, monkeypatch: pytest.MonkeyPatch
            ) -> list[weakref.ref[Execution]]:
    """Weak references to every Execution aggregate the application creates."""
    references: list[weakref.ref[Execution]] = []
    create_execution = app.create_execution

    def create_and_watch(*args: Any, **kwargs: Any) -> tuple[Execution, int]:
        execution, position = create_execution(*args, **kwargs)
        references.append(weakref.ref(execution))
        return execution, position

    monkeypatch.setattr(app, "create_execution", create_and_watch)
    return references


@pytest.fixture
def runtime(app: StratexecApp) -> Iterator[Runtime]:
    # One failure: its retry goes through the clock, and the health monitor tracks it.
    agents = scripted_agents({"b:research": ["fail"]})
    options = EngineOptions(health_interval=0.05, retry=FAST_RETRIES, seed=1)
    running = Runtime(app, agents, options).start()
    yield running
    running.stop()


def test_a_finished_execution_is_not_referenced_once_the_runtime_forgot_it(
        app: StratexecApp, runtime: Runtime, watched: list[weakref.ref[Execution]]) -> None:
    strategy, _ = app.define_strategy(chain_strategy(["a", "b", "c"], ["d"]))
    execution_id = runtime.start_execution(strategy).id
    assert runtime.wait(execution_id, timeout=20), "the execution did not finish"
    assert not runtime.is_live(execution_id)
    assert app.get_execution(execution_id).status == "completed"
    (aggregate,) = watched
    assert aggregate() is None, [type(r).__name__ for r in gc.get_referrers(aggregate())]


def test_executions_one_after_another_leave_none_behind(
        app: StratexecApp, runtime: Runtime, watched: list[weakref.ref[Execution]]) -> None:
    strategy, _ = app.define_strategy(chain_strategy(["a", "b"], ["c", "d"]))
    for _ in range(3):
        execution_id = runtime.start_execution(strategy).id
        assert runtime.wait(execution_id, timeout=20), "the execution did not finish"
    assert runtime.live_execution_ids() == []
    assert [aggregate() for aggregate in watched] == [None, None, None]
