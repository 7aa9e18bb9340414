"""Token usage and cost, summed from successful attempts' results into the metrics view:
per agent type, per execution, per workspace; malformed usage counts nothing; a rebuild from
position 0 gives the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from projection_scenarios import R1, R2, S1, S2, T0, start_execution

from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution
from stratexec.projections import queries
from stratexec.projections.metrics import token_usage, usage_total
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.projections.verify import compare, rebuild


def llm_result(prompt: int, completion: int, cost: float | None = None) -> dict[str, object]:
    result: dict[str, object] = {"text": "t", "model": "tiny-1", "usage": {
        "prompt_tokens": prompt, "completion_tokens": completion}}
    if cost is not None:
        result["cost"] = cost
    return result


def run(app: StratexecApp, workspace: str = "demo") -> Execution:
    """R1 (research) and R2 (analysis) report usage; S1's is malformed, S2 has none."""
    e = start_execution(app, workspace)
    e.assign_ready_tasks(T0)  # S1, R1
    e.start_task(R1, 1)
    e.succeed_task(R1, 1, llm_result(100, 40, 0.0125), 10.0)
    e.start_task(S1, 1)
    e.succeed_task(S1, 1, {"usage": {"prompt_tokens": "many", "completion_tokens": -1},
                           "cost": float("nan")}, 10.0)
    app.save(e)
    e.assign_ready_tasks(T0)  # S2, R2
    e.start_task(R2, 1)
    e.succeed_task(R2, 1, llm_result(7, 3), 10.0)
    e.start_task(S2, 1)
    e.succeed_task(S2, 1, {"sent": 1}, 10.0)
    app.save(e)
    return e


@pytest.mark.parametrize(("result", "expected"), [
    (llm_result(5, 2, 0.5), (5, 2, 0.5)),
    (llm_result(5, 2), (5, 2, 0.0)),
    ({"usage": {"prompt_tokens": True, "completion_tokens": 2.5}, "cost": "1"}, (0, 0, 0.0)),
    ({"usage": [1, 2], "cost": -1}, (0, 0, 0.0)),
    ({"cost": 3}, (0, 0, 3.0)),
    ({}, (0, 0, 0.0)),
])
def test_token_usage_of_a_result(result: dict[str, object],
                                 expected: tuple[int, int, float]) -> None:
    assert token_usage(result) == expected


def test_usage_is_summed_per_agent_execution_and_workspace(
        sqlite_app: StratexecApp, store: ViewStore, tmp_path: Path) -> None:
    with ProjectionRunner(sqlite_app, store, batch_size=3, poll_interval=60) as runner:
        first, second = run(sqlite_app), run(sqlite_app, "other")
        assert runner.wait_for(sqlite_app.recorder.max_notification_id() or 0, timeout=10)
    agents = {m["agent"]: m for m in queries.agent_metrics(store, first.id)}
    assert {agent: (m["promptTokens"], m["completionTokens"], m["cost"])
            for agent, m in agents.items()} == {
        "research": (100, 40, 0.0125), "analysis": (7, 3, 0.0),
        "scheduling": (0, 0, 0.0), "email": (0, 0, 0.0), "content": (0, 0, 0.0)}
    assert usage_total(list(agents.values())) == {
        "promptTokens": 107, "completionTokens": 43, "cost": 0.0125}
    assert queries.token_usage(store, ["demo"]) == {
        "analysis": (7, 3, 0.0), "research": (100, 40, 0.0125)}
    assert queries.token_usage(store, ["demo", "other"])["research"] == (200, 80, 0.025)
    assert queries.token_usage(store, ["nobody"]) == {}
    assert second.id != first.id

    with ViewStore(str(tmp_path / "rebuilt.sqlite")) as rebuilt:
        assert rebuild(sqlite_app, rebuilt) == runner.position
        assert compare(store, rebuilt) == []
