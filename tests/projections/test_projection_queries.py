"""The read functions the CLI and the server use: camelCase dicts, filtered by workspace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from projection_scenarios import (
    R1,
    S1,
    S2,
    T0,
    drive_to_failure,
    record_health,
    start_and_cancel,
    start_execution,
)

from stratexec.domain.application import StratexecApp
from stratexec.domain.eta import nearest_rank
from stratexec.domain.execution import Execution
from stratexec.domain.health import HealthAssessment, HealthInputs, assess
from stratexec.projections import queries
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore


@pytest.fixture
def app(sqlite_app: StratexecApp) -> StratexecApp:
    return sqlite_app  # these tests need no second store: SQLite only


@pytest.fixture
def runs(app: StratexecApp, store: ViewStore) -> tuple[Execution, Execution]:
    failed = drive_to_failure(app, start_execution(app))
    cancelled = start_and_cancel(app)
    ProjectionRunner(app, store).catch_up()
    return failed, cancelled


def test_get_and_list_executions(store: ViewStore, runs: tuple[Execution, Execution]) -> None:
    failed, cancelled = runs
    execution = queries.get_execution(store, failed.id)
    assert execution is not None
    assert {k: execution[k] for k in ("id", "workspaceId", "status", "completedTasks",
                                      "failedTasks", "skippedTasks", "totalTasks")} == {
        "id": str(failed.id), "workspaceId": "demo", "status": "failed", "completedTasks": 2,
        "failedTasks": 1, "skippedTasks": 3, "totalTasks": 6}
    assert execution["healthStatus"] is not None
    assert queries.get_execution(store, "not-a-uuid") is None
    listed = queries.list_executions(store, ["demo", "other"])
    assert [e["id"] for e in listed] == [str(cancelled.id), str(failed.id)]
    assert [e["id"] for e in queries.list_executions(store, ["other"])] == [str(cancelled.id)]
    assert queries.list_executions(store, []) == []
    assert queries.list_executions(store, None, status="running") == []
    assert len(queries.list_executions(store, None, strategy_id=failed.strategy_id)) == 1
    assert len(queries.list_executions(store, None, limit=1, offset=1)) == 1


def test_list_tasks_in_plan_order(store: ViewStore, runs: tuple[Execution, Execution]) -> None:
    tasks = queries.list_tasks(store, runs[0].id)
    assert [t["taskId"] for t in tasks] == list(runs[0].tasks)
    by_id = {t["taskId"]: t for t in tasks}
    assert by_id[S2]["dependsOn"] == [S1]
    assert by_id[S2]["result"] == {"ok": True}
    assert (by_id[R1]["status"], by_id[R1]["attempt"], by_id[R1]["failures"]) == (
        "failed", 3, 2)


def test_agent_metrics_rates(store: ViewStore, runs: tuple[Execution, Execution]) -> None:
    metrics = {m["agent"]: m for m in queries.agent_metrics(store, runs[0].id)}
    assert list(metrics) == ["analysis", "content", "email", "research", "scheduling"]
    research = metrics["research"]
    assert (research["successRate"], research["failureRate"], research["retryRate"]) == (
        0.0, 1.0, 0.5)
    assert research["meanDurationMs"] is None
    scheduling = metrics["scheduling"]
    assert (scheduling["successRate"], scheduling["meanDurationMs"],
            scheduling["p95DurationMs"]) == (1.0, 120.0, 120.0)


def test_health_snapshots_and_latest(store: ViewStore, runs: tuple[Execution, Execution],
                                     app: StratexecApp) -> None:
    snapshots = queries.health_snapshots(store, runs[0].id)
    assert len(snapshots) >= 2
    assert [s["position"] for s in snapshots] == sorted(s["position"] for s in snapshots)
    latest = queries.latest_health(store, runs[0].id)
    assert latest == snapshots[-1]
    health = app.get_health(runs[0].id)
    assert health is not None
    assert health.last is not None
    assert (latest["score"], latest["issues"]) == (health.last.score, list(health.last.issues))
    assert queries.latest_health(store, runs[1].id) is None


def health_shape(assessment: HealthAssessment, recorded_at: str | None) -> dict[str, Any]:
    """The Health of /status: camelCase, rounded as recorded."""
    rounded = assessment.rounded()
    return {"score": rounded.score, "status": rounded.status,
            "completionRate": rounded.completion_rate, "errorRate": rounded.error_rate,
            "avgTaskDurationMs": rounded.avg_task_duration_ms, "issues": list(rounded.issues),
            "recordedAt": recorded_at, "healthy": rounded.healthy, "outcome": None}


def test_health_inputs_from_the_views_are_the_aggregates(app: StratexecApp,
                                                         store: ViewStore) -> None:
    """After every save, the views give the health monitor's inputs: one score for both."""
    compared: list[tuple[HealthInputs, HealthInputs]] = []
    runner = ProjectionRunner(app, store)
    executions: list[Execution] = []

    def compare(position: int) -> None:
        runner.catch_up()
        for execution in executions:
            row = queries.get_execution(store, execution.id)
            assert row is not None
            compared.append((queries.health_inputs(store, row),
                             app.get_execution(execution.id).health_inputs()))

    app.add_listener(compare)
    executions.append(start_execution(app))
    drive_to_failure(app, executions[0])
    executions.append(start_and_cancel(app))
    app.remove_listener(compare)
    assert len(compared) > 10
    assert [views for views, _ in compared] == [aggregate for _, aggregate in compared]
    assert compared[-2][0].failed_task_ids == (R1,)


def test_current_health_before_and_after_the_first_assessment(app: StratexecApp,
                                                              store: ViewStore) -> None:
    execution = start_execution(app)
    execution.assign_ready_tasks(T0)
    execution.start_task(R1, 1)
    execution.fail_task(R1, 1, "bad_input", "cannot parse", 30.0, now=T0, retryable=False)
    execution.start_task(S1, 1)
    execution.succeed_task(S1, 1, {}, 120.04)
    app.save(execution)
    runner = ProjectionRunner(app, store)
    runner.catch_up()
    row = queries.get_execution(store, execution.id)
    assert row is not None
    monitor = assess(execution.health_inputs())  # what the health monitor will record
    assert R1 in monitor.issues[-2]
    assert queries.current_health(store, row) == health_shape(monitor, None)

    record_health(app, execution)
    runner.catch_up()
    latest = queries.latest_health(store, execution.id)
    assert latest is not None
    assert queries.current_health(store, row) == health_shape(monitor, latest["recordedAt"])


def test_feed_since_filters(store: ViewStore, runs: tuple[Execution, Execution]) -> None:
    everything = queries.feed_since(store, 0)
    positions = [row["position"] for row in everything]
    assert positions == sorted(positions)
    middle = positions[len(positions) // 2]
    assert queries.feed_since(store, middle) == [r for r in everything if r["position"] > middle]
    other = queries.feed_since(store, 0, workspace_ids=["other"])
    assert {r["executionId"] for r in other} == {str(runs[1].id)}
    one = queries.feed_since(store, 0, execution_id=runs[0].id, limit=3)
    assert [json.loads(r["data"])["executionId"] for r in one] == [str(runs[0].id)] * 3


def test_strategies(store: ViewStore, runs: tuple[Execution, Execution]) -> None:
    listed = queries.list_strategies(store, ["demo"])
    assert [(s["workspaceId"], s["taskCount"]) for s in listed] == [("demo", 6)]
    assert "document" not in listed[0]
    strategy = queries.get_strategy(store, runs[0].strategy_id)
    assert strategy is not None
    assert strategy["document"]["name"] == "Small demo: customer newsletter"
    assert queries.get_strategy(store, runs[0].id) is None


def test_nearest_rank_percentile() -> None:
    assert nearest_rank([], 95) is None
    assert nearest_rank([5.0], 95) == 5.0
    assert nearest_rank([float(n) for n in range(20, 0, -1)], 95) == 19.0
    assert nearest_rank([float(n) for n in range(1, 101)], 95) == 95.0
