"""What remains of an execution, read from the views, its completion estimate, and the
estimate, utilisation and honest counts as the views hold and show them (every store)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from projection_scenarios import R1, R2, S1, S2, T0, start_execution

from stratexec.actors.health import with_concurrency
from stratexec.domain.application import StratexecApp
from stratexec.domain.eta import AgentSpeed, Eta, RemainingTask
from stratexec.domain.execution import Execution
from stratexec.domain.health import ExecutionHealth, assess
from stratexec.projections import queries
from stratexec.projections.remaining import estimate_completion, remaining_work
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.projections.verify import compare, rebuild
from stratexec.usecases import execution_status

W1, W2 = "l4-write-newsletter:content", "l4-write-newsletter:analysis"
SLOW = AgentSpeed(10.0, 20.0, 1)
PRIORS = {agent: SLOW for agent in ("research", "analysis", "content", "scheduling", "email")}
ETA = Eta(42.5, 60.0, datetime(2026, 12, 2, 1, 0, tzinfo=UTC), 4, (R1, R2, W1, W2))


def under_way(app: StratexecApp) -> Execution:
    """S1 completed in 2 s, S2 running, R1 failed and retrying in about 31 s (its
    dependents waiting on it)."""
    e = start_execution(app)
    e.assign_ready_tasks(T0)  # S1 and R1
    e.start_task(S1, 1)
    e.succeed_task(S1, 1, {}, 2000.0)
    e.start_task(R1, 1)
    e.fail_task(R1, 1, "timeout", "slow", 50.0,
                now=datetime.now(UTC) + timedelta(seconds=30), random_unit=0.5)
    e.assign_ready_tasks(T0)  # S2; R1 is not due
    e.start_task(S2, 1)
    app.save(e)
    return e


def record_health(app: StratexecApp, execution: Execution, eta: Eta | None) -> None:
    """As the health monitor records: the assessment with its estimate, then the metrics
    with each type's concurrency."""
    health = app.get_health(execution.id) or ExecutionHealth(
        execution_id=execution.id, workspace_id=execution.workspace_id)
    health.record(replace(assess(execution.health_inputs()), eta=eta))
    health.sample_metrics(with_concurrency(execution.agent_metrics(), PRIORS))
    app.save(health)


def project(app: StratexecApp, store: ViewStore) -> None:
    ProjectionRunner(app, store).catch_up()


def test_the_remaining_work_as_the_views_hold_it(app: StratexecApp, store: ViewStore) -> None:
    execution = under_way(app)
    project(app, store)
    now = datetime.now(UTC)

    work = remaining_work(store, execution.id, now)

    assert work is not None
    by_id = {task.id: task for task in work.tasks}
    assert set(by_id) == {R1, R2, W1, W2, S2}
    running = by_id[S2]
    assert running.running_for is not None
    assert 0 <= running.running_for < 60
    retry_at = execution.tasks[R1].retry_at
    assert retry_at is not None
    assert by_id[R1].ready_in == pytest.approx((retry_at - now).total_seconds(), abs=0.01)
    assert by_id[R1].running_for is None
    assert by_id[R2] == RemainingTask(R2, "analysis", (R1,), None, 0.0, (1, 1))
    assert by_id[W1].rank == (0, 2)  # high priority first
    assert work.durations == {"scheduling": [2.0]}


def test_the_estimate_uses_priors_then_observed_speeds(app: StratexecApp,
                                                        store: ViewStore) -> None:
    execution = under_way(app)
    project(app, store)
    now = datetime.now(UTC)
    retry_at = execution.tasks[R1].retry_at
    assert retry_at is not None
    wait = (retry_at - now).total_seconds()

    eta = estimate_completion(store, execution.id, PRIORS, now)

    # R1 waits for its retry, then the chain R1, R2, W1, W2 runs at the prior's 10 s each
    # (20 s at its p90), while S2 ends beside it.
    assert eta is not None
    assert wait > 20
    assert eta.seconds == pytest.approx(wait + 40.0, abs=0.01)
    assert eta.p90_seconds == pytest.approx(wait + 80.0, abs=0.01)
    assert (eta.remaining_tasks, eta.critical_path) == (5, (R1, R2, W1, W2))
    assert eta.estimated_at == now


def test_no_estimate_unless_running(app: StratexecApp, store: ViewStore) -> None:
    execution = under_way(app)
    execution.pause()
    app.save(execution)
    project(app, store)

    assert estimate_completion(store, execution.id, PRIORS) is None
    assert estimate_completion(store, "not-an-execution", PRIORS) is None


def test_the_views_show_the_estimate_the_utilisation_and_honest_counts(
        app: StratexecApp, store: ViewStore) -> None:
    execution = under_way(app)
    record_health(app, execution, ETA)
    project(app, store)

    status = execution_status(store, execution.id)

    assert status is not None
    assert status["eta"] == ETA.as_record()
    counts = status["execution"]
    assert (counts["queuedTasks"], counts["inProgressTasks"], counts["finishedTasks"],
            counts["pendingTasks"]) == (0, 1, 1, 4)
    assert status["health"]["outcome"] is None
    agents = {a["agent"]: a for a in status["metrics"]["agents"]}
    assert {k: agents["email"][k] for k in ("running", "queued", "concurrency",
                                            "utilisation")} == {
        "running": 1, "queued": 0, "concurrency": 1, "utilisation": 1.0}
    assert (agents["scheduling"]["p50DurationMs"], agents["scheduling"]["p90DurationMs"]) == (
        2000.0, 2000.0)
    assert agents["research"]["p50DurationMs"] is None
    snapshots = queries.health_snapshots(store, execution.id)
    assert [s["eta"] for s in snapshots] == [ETA.as_record()]
    feed = {row["type"]: json.loads(row["data"]) for row in queries.feed_since(
        store, 0, execution.id)}
    assert feed["health-update"]["eta"] == ETA.as_record()
    update = feed["metrics-update"]
    assert update["eta"] == ETA.as_record()
    assert {k: update["agents"]["email"][k] for k in (
        "assigned", "in_progress", "running", "queued", "concurrency", "utilisation")} == {
        "assigned": 0, "in_progress": 1, "running": 1, "queued": 0, "concurrency": 1,
        "utilisation": 1.0}


def test_a_queued_attempt_is_not_counted_in_progress(app: StratexecApp,
                                                     store: ViewStore) -> None:
    execution = start_execution(app)
    execution.assign_ready_tasks(T0)  # S1 and R1, handed to their agents
    execution.start_task(S1, 1)  # only S1's agent began
    app.save(execution)
    project(app, store)

    status = execution_status(store, execution.id)

    assert status is not None
    counts = status["execution"]
    assert (counts["queuedTasks"], counts["assignedTasks"], counts["inProgressTasks"]) == (
        1, 1, 1)
    agents = {a["agent"]: a for a in status["metrics"]["agents"]}
    assert (agents["research"]["running"], agents["research"]["queued"]) == (0, 1)
    assert (agents["scheduling"]["running"], agents["scheduling"]["queued"]) == (1, 0)
    assert agents["research"]["concurrency"] is None  # no metrics sampled yet
    assert agents["research"]["utilisation"] is None


@pytest.mark.parametrize("ending", ["cancel", "pause"])
def test_a_stopped_execution_shows_no_estimate(app: StratexecApp, store: ViewStore,
                                               ending: str) -> None:
    execution = under_way(app)
    record_health(app, execution, ETA)
    getattr(execution, ending)()
    app.save(execution)
    project(app, store)

    status = execution_status(store, execution.id)

    assert status is not None
    assert status["eta"] is None
    outcome = {"cancel": "cancelled", "pause": None}[ending]
    assert status["health"]["outcome"] == outcome
    assert status["health"]["status"] == "Excellent"  # the score, beside the outcome


def test_a_rebuild_gives_the_same_estimates(app: StratexecApp, store: ViewStore,
                                            tmp_path: Path) -> None:
    execution = under_way(app)
    record_health(app, execution, ETA)
    execution.succeed_task(S2, 1, {}, 10.0)
    app.save(execution)
    record_health(app, execution, Eta(30.0, 50.0, ETA.estimated_at, 4, (R1,)))
    runner = ProjectionRunner(app, store)
    runner.catch_up()

    with ViewStore(str(tmp_path / "rebuilt.sqlite")) as rebuilt:
        assert rebuild(app, rebuilt) == runner.position
        assert compare(store, rebuilt) == []
        etas: list[Any] = [s["eta"]["seconds"] for s in queries.health_snapshots(
            rebuilt, execution.id)]
    assert etas == [42.5, 30.0]
