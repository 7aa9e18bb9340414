"""Audit reads that go to the event log on purpose: an execution's history, and its state
as of any version. Shared by `stratexec history`/`replay` and the audit endpoints. The
per-store SQL is in `projections.log`, not in domain/, which does no I/O of its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution
from stratexec.domain.health import health_id
from stratexec.projections.log import postgres_rows, sqlite_rows
from stratexec.projections.wire import payload


def history(app: StratexecApp, execution_id: UUID, after: int = 0, limit: int | None = None
            ) -> list[dict[str, Any]]:
    """The execution's events and its health assessments, by log position."""
    notifications = aggregate_notifications(
        app, [execution_id, health_id(execution_id)], after, limit)
    return [history_event(app, notification) for notification in notifications]


def aggregate_notifications(
    app: StratexecApp, originator_ids: Sequence[UUID], after: int = 0, limit: int | None = None
) -> list[Notification]:
    """The notifications of some aggregates after log position `after`, by position.

    eventsourcing reads an aggregate's events without their log positions, and the log
    without filtering by aggregate, so this asks each store for both in one query."""
    recorder = app.recorder
    ids = list(originator_ids)
    if isinstance(recorder, SQLiteApplicationRecorder):
        rows = sqlite_rows(recorder, f"WHERE originator_id IN ({','.join('?' * len(ids))})"
                           " AND rowid > ? ORDER BY rowid LIMIT ?",
                           [*(i.hex for i in ids), after, limit or -1])
    elif isinstance(recorder, PostgresApplicationRecorder):
        rows = postgres_rows(recorder, "WHERE originator_id = ANY(%s) AND notification_id > %s"
                             " ORDER BY notification_id LIMIT %s", [ids, after, limit])
    else:  # the in-memory store: scan the log
        found = [n for n in app.read_notifications(after=after) if n.originator_id in ids]
        return found[:limit]
    return [Notification(id=position, originator_id=UUID(str(originator_id)),
                         originator_version=version, topic=topic, state=state)
            for position, originator_id, version, topic, state in rows]


def history_event(app: StratexecApp, notification: Notification) -> dict[str, Any]:
    """One event as the audit shows it; `data` is its own fields, named as on the wire."""
    event = app.mapper.to_domain_event(notification)
    return {
        "position": notification.id,
        "version": notification.originator_version,
        "timestamp": vars(event)["timestamp"].isoformat(),
        "type": notification.topic.removeprefix("stratexec:"),
        "data": payload(event),
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
