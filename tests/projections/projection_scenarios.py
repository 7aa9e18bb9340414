"""Executions driven by calling the aggregate's commands and saving, as the actors would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution
from stratexec.domain.health import ExecutionHealth, assess
from stratexec.domain.strategy import parse_strategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
R1, R2 = "l4-research-topics:research", "l4-research-topics:analysis"
S1, S2 = "l4-schedule-review:scheduling", "l4-schedule-review:email"

FEED_TYPES = {  # every event's stream type; Strategy.Defined and Watched have none
    "Execution.Started": "execution-started", "Execution.TaskAssigned": "task-assigned",
    "Execution.TaskStarted": "task-progress", "Execution.TaskProgressed": "task-progress",
    "Execution.TaskSucceeded": "task-completed", "Execution.TaskFailed": "task-failed",
    "Execution.TaskInterrupted": "task-failed", "Execution.TasksSkipped": "task-skipped",
    "Execution.Paused": "execution-paused", "Execution.Resumed": "execution-resumed",
    "Execution.Cancelled": "execution-cancelled", "Execution.Completed": "execution-completed",
    "Execution.Failed": "execution-completed", "Execution.TasksRetried": "execution-resumed",
    "ExecutionHealth.Assessed": "health-update",
    "ExecutionHealth.MetricsSampled": "metrics-update",
}


def start_execution(app: StratexecApp, workspace: str = "demo") -> Execution:
    document = json.loads((EXAMPLES / "small-demo.json").read_text())
    strategy, _ = app.define_strategy(parse_strategy({**document, "workspaceId": workspace}))
    return app.create_execution(strategy)[0]


def record_health(app: StratexecApp, execution: Execution) -> None:
    health = app.get_health(execution.id) or ExecutionHealth(
        execution_id=execution.id, workspace_id=execution.workspace_id)
    health.record(assess(execution.health_inputs()))
    health.sample_metrics(execution.agent_metrics())
    app.save(health)


def drive_to_failure(app: StratexecApp, execution: Execution) -> Execution:
    """Every kind of task event: progress, success, retry, pause, interruption, skip."""
    e = execution
    e.assign_ready_tasks(T0)  # S1 and R1, attempt 1
    app.save(e)
    record_health(app, e)
    e.start_task(S1, 1)
    e.report_progress(S1, 1, 0.5, "half way")
    e.succeed_task(S1, 1, {"sent": 3, "at": T0}, 120.0)
    e.start_task(R1, 1)
    e.fail_task(R1, 1, "timeout", "too slow", 50.0, now=T0)  # retried about 1 s later
    app.save(e)
    e.pause()
    app.save(e)
    e.resume()
    app.save(e)
    e.assign_ready_tasks(T0)  # S2 only: R1's retry is not due
    e.assign_ready_tasks(T0 + timedelta(seconds=10))  # R1, attempt 2
    e.start_task(S2, 1)
    e.interrupt_active_tasks("worker lost")
    app.save(e)
    e.assign_ready_tasks(T0 + timedelta(seconds=20))  # S2 attempt 2, R1 attempt 3
    e.start_task(R1, 3)
    e.fail_task(R1, 3, "bad_input", "cannot parse", 30.0, now=T0, retryable=False)
    e.start_task(S2, 2)
    e.succeed_task(S2, 2, {"ok": True}, 80.0)
    app.save(e)
    record_health(app, e)
    assert e.finish_if_done()
    app.save(e)
    record_health(app, e)
    return e


def start_and_cancel(app: StratexecApp, workspace: str = "other") -> Execution:
    e = start_execution(app, workspace)
    e.assign_ready_tasks(T0)
    e.start_task(S1, 1)
    app.save(e)
    e.cancel()
    app.save(e)
    return e
