"""The event feed: the rows of the live streams (SSE, WebSocket), one per mapped event.

Each row sits at its event's log position, so a stream's `id` is that position and a
client resuming from `Last-Event-ID` misses nothing. `data` is JSON text with camelCase
keys, computed once here rather than per subscriber. Task rows read the task's agent and
title from the tasks view, and every row its workspace from the executions view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from sqlite3 import Cursor
from typing import Any, ClassVar

from projections import events as ev
from projections.base import Handler, View, iso, to_json
from projections.executions import execution_of_health, workspace_of
from projections.tasks import task_info

Mapper = Callable[[Cursor, str, Any], tuple[str, dict[str, Any]]]


def _started(cur: Cursor, execution_id: str, e: Any) -> tuple[str, dict[str, Any]]:
    return "execution-started", {
        "workspaceId": e.workspace_id, "strategyId": str(e.strategy_id),
        "strategyName": e.strategy_name, "status": "pending", "totalTasks": len(e.tasks),
        "startedAt": iso(e.timestamp)}


def _task(cur: Cursor, execution_id: str, e: Any, **data: Any) -> dict[str, Any]:
    agent = task_info(cur, execution_id, e.task_id)["agent"]
    return {"taskId": e.task_id, "agent": agent, "attempt": e.attempt, **data}


def _assigned(cur: Cursor, execution_id: str, e: Any) -> tuple[str, dict[str, Any]]:
    info = task_info(cur, execution_id, e.task_id)
    return "task-assigned", {"taskId": e.task_id, "agent": info["agent"],
                             "attempt": e.attempt, "itemId": info["item_id"],
                             "title": info["title"]}


def _failed(cur: Cursor, execution_id: str, e: Any) -> tuple[str, dict[str, Any]]:
    return "task-failed", _task(
        cur, execution_id, e, errorKind=e.error_kind, error=e.error_message,
        willRetry=e.retry_at is not None, retryAt=iso(e.retry_at), durationMs=e.duration_ms)


def _finished(cur: Cursor, execution_id: str, e: Any) -> tuple[str, dict[str, Any]]:
    cur.execute("SELECT status, completed, failed, skipped, total_tasks FROM executions"
                " WHERE id = ?", (execution_id,))
    status, completed, failed, skipped, total = cur.fetchone()
    return "execution-completed", {
        "status": status, "completedTasks": completed, "failedTasks": failed,
        "skippedTasks": skipped, "totalTasks": total, "finishedAt": iso(e.timestamp)}


MAPPERS: dict[type, Mapper] = {
    ev.STARTED: _started,
    ev.TASK_ASSIGNED: _assigned,
    ev.TASK_STARTED: lambda cur, x, e: ("task-progress", _task(
        cur, x, e, progress=0.0, status="in_progress")),
    ev.TASK_PROGRESSED: lambda cur, x, e: ("task-progress", _task(
        cur, x, e, progress=e.progress, message=e.message, status="in_progress")),
    ev.TASK_SUCCEEDED: lambda cur, x, e: ("task-completed", _task(
        cur, x, e, durationMs=e.duration_ms, result=e.result)),
    ev.TASK_FAILED: _failed,
    ev.TASK_INTERRUPTED: lambda cur, x, e: ("task-failed", _task(
        cur, x, e, errorKind="interrupted", error=e.reason, willRetry=True, retryAt=None,
        durationMs=None)),
    ev.TASKS_SKIPPED: lambda cur, x, e: ("task-skipped", {
        "taskIds": list(e.task_ids), "failedTaskId": e.failed_task_id}),
    ev.PAUSED: lambda cur, x, e: ("execution-paused", {"status": "paused"}),
    ev.RESUMED: lambda cur, x, e: ("execution-resumed", {"status": "running"}),
    ev.CANCELLED: lambda cur, x, e: ("execution-cancelled", {
        "status": "cancelled", "cancelledTasks": len(e.task_ids)}),
    ev.COMPLETED: _finished,
    ev.FAILED: _finished,
    ev.HEALTH_ASSESSED: lambda cur, x, e: ("health-update", {
        "score": e.score, "status": e.status, "completionRate": e.completionRate,
        "errorRate": e.errorRate, "avgTaskDurationMs": e.avgTaskDurationMs,
        "issues": list(e.issues)}),
    ev.METRICS_SAMPLED: lambda cur, x, e: ("metrics-update", {"agents": e.metrics}),
}
HEALTH_EVENTS = (ev.HEALTH_ASSESSED, ev.METRICS_SAMPLED)


class FeedView(View):
    name: ClassVar[str] = "feed"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"event_feed": ("position",)}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS event_feed (
            position BIGINT PRIMARY KEY, execution_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,
            recorded_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS feed_by_execution ON event_feed (execution_id, position)",
        "CREATE INDEX IF NOT EXISTS feed_by_workspace ON event_feed (workspace_id, position)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return dict.fromkeys(MAPPERS, self._record)

    def _record(self, cur: Cursor, position: int, event: Any) -> None:
        if type(event) in HEALTH_EVENTS:
            execution_id, workspace_id = execution_of_health(cur, str(event.originator_id))
        else:
            execution_id = str(event.originator_id)
            workspace_id = workspace_of(cur, execution_id)
        kind, data = MAPPERS[type(event)](cur, execution_id, event)
        cur.execute(
            "INSERT INTO event_feed (position, execution_id, workspace_id, type, data,"
            " recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
            (position, execution_id, workspace_id, kind,
             to_json({"executionId": execution_id, **data}), iso(event.timestamp)))


FEED_COLUMNS = "position, execution_id, workspace_id, type, data, recorded_at"


def feed_row(row: Any) -> dict[str, Any]:
    """A selected event_feed row (columns FEED_COLUMNS) as the streams' dict."""
    return {"position": row[0], "executionId": row[1], "workspaceId": row[2], "type": row[3],
            "data": row[4], "recordedAt": row[5]}
