"""Audit reads that go to the event log on purpose: an execution's history, and its state
as of any version. Shared by `stratexec history`/`replay` and the audit endpoints."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from domain.application import StratexecApp
from domain.execution import Execution
from domain.health import health_id

_ENVELOPE = ("originator_id", "originator_version", "timestamp", "originator_topic")


def history(app: StratexecApp, execution_id: UUID, after: int = 0, limit: int | None = None
            ) -> list[dict[str, Any]]:
    """The execution's events and its health assessments, by log position."""
    notifications = app.aggregate_history([execution_id, health_id(execution_id)], after, limit)
    return [history_event(app, notification) for notification in notifications]


def history_event(app: StratexecApp, notification: Notification) -> dict[str, Any]:
    event = vars(app.mapper.to_domain_event(notification))
    return {
        "position": notification.id,
        "version": notification.originator_version,
        "timestamp": event["timestamp"].isoformat(),
        "type": notification.topic.removeprefix("stratexec:"),
        "data": {key: value for key, value in event.items() if key not in _ENVELOPE},
    }


def execution_state(execution: Execution) -> dict[str, Any]:
    """What an execution looked like at its version: status, counts and every task."""
    return {
        "executionId": str(execution.id), "version": execution.version,
        "status": str(execution.status), "strategyId": str(execution.strategy_id),
        "workspaceId": execution.workspace_id, "strategyName": execution.strategy_name,
        "counts": {str(status): n for status, n in execution.counts.items()},
        "tasks": [
            {"id": task.id, "agent": task.plan.agent, "status": str(task.status),
             "attempt": task.attempt, "failures": task.failures,
             "error": task.error_message, "result": task.result}
            for task in execution.tasks.values()
        ],
    }
