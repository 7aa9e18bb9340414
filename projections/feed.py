"""The event feed: the rows of the live streams (SSE, WebSocket), one per mapped event.

Each row sits at its event's log position, so a stream's `id` is that position and a
client resuming from `Last-Event-ID` misses nothing. `data` is JSON text with camelCase
keys (`executionId` first), computed once here rather than per subscriber; the keys that
are an event's own fields are named by `projections.wire`. Task rows read the task's agent
and title from the tasks view, and every row its workspace from the executions view.

A `metrics-update` row carries the sampled per-agent metrics, each type's utilisation
(`metrics.utilisation`) and the execution's latest completion estimate (`eta`, null unless
it is running): the health monitor saves its assessment before its metrics sample, so the
estimate is the one recorded with them.

An agent type's circuit breaker concerns every workspace: its rows (`agent-type-paused`,
`agent-type-resumed`) have the workspace `EVERY_WORKSPACE` and, for execution, the agent
circuit's own id. Workspace streams deliver them besides their own workspace's rows;
execution streams do not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch, Row
from stratexec.projections.executions import execution_of, running_eta
from stratexec.projections.metrics import Occupancy, utilisation
from stratexec.projections.tasks import task
from stratexec.projections.values import iso, to_json
from stratexec.projections.wire import camel_case, payload, pick

Data = Callable[[Batch, Any, str], dict[str, Any]]  # (batch, event, execution id) -> data
# The workspace of the rows that concern every workspace: no workspace has this name (a
# strategy's workspace and a token's are never blank), so no workspace's rows can pass for it.
EVERY_WORKSPACE = ""


def _started(batch: Batch, e: Any, execution_id: str) -> dict[str, Any]:
    return {"executionId": execution_id,
            **pick(e, "workspace_id", "strategy_id", "strategy_name"), "status": "pending",
            "totalTasks": len(e.tasks), "startedAt": batch.at}


# The wire names of the task events' fields, named once: a call per event would slow a
# rebuild by a twentieth, and these rows are most of the feed.
TASK_ID, ATTEMPT, PROGRESS, MESSAGE, RESULT, DURATION_MS, ERROR_KIND, RETRY_AT = map(
    camel_case, ("task_id", "attempt", "progress", "message", "result", "duration_ms",
                 "error_kind", "retry_at"))


def _task(batch: Batch, e: Any, execution_id: str) -> dict[str, Any]:
    return {"executionId": execution_id, TASK_ID: e.task_id,
            "agent": task(batch, e)["agent"], ATTEMPT: e.attempt}


def _assigned(batch: Batch, e: Any, execution_id: str) -> dict[str, Any]:
    row = task(batch, e)
    return {"executionId": execution_id, TASK_ID: e.task_id, "agent": row["agent"],
            ATTEMPT: e.attempt, "itemId": row["item_id"], "title": row["title"]}


def _failed(batch: Batch, e: Any, execution_id: str) -> dict[str, Any]:
    return {**_task(batch, e, execution_id), ERROR_KIND: e.error_kind,
            "error": e.error_message, "willRetry": e.retry_at is not None,
            RETRY_AT: iso(e.retry_at), DURATION_MS: e.duration_ms}


def _status(batch: Batch, execution_id: str) -> str:
    status: str = batch.tables["executions"][(execution_id,)]["status"]
    return status


def _finished(batch: Batch, e: Any, execution_id: str) -> dict[str, Any]:
    row = batch.tables["executions"][(execution_id,)]  # with this event's counts (see catalog)
    return {"executionId": execution_id, "status": row["status"],
            "completedTasks": row["completed"], "failedTasks": row["failed"],
            "skippedTasks": row["skipped"], "totalTasks": row["total_tasks"],
            "finishedAt": batch.at}


def _metrics(batch: Batch, e: Any, execution_id: str) -> dict[str, Any]:
    agents = {agent: counts | utilisation(
        Occupancy(counts.get("in_progress", 0), counts.get("assigned", 0)),
        counts.get("concurrency")) for agent, counts in e.metrics.items()}
    return {"executionId": execution_id, "agents": agents,
            "eta": running_eta(batch.tables["executions"][(execution_id,)])}


MAPPERS: dict[type, tuple[str, Data]] = {  # event class -> the row's type and data
    ev.STARTED: ("execution-started", _started),
    ev.TASK_ASSIGNED: ("task-assigned", _assigned),
    ev.TASK_STARTED: ("task-progress", lambda batch, e, x: {
        **_task(batch, e, x), "progress": 0.0, "status": "in_progress"}),
    ev.TASK_PROGRESSED: ("task-progress", lambda batch, e, x: {
        **_task(batch, e, x), PROGRESS: e.progress, MESSAGE: e.message,
        "status": "in_progress"}),
    ev.TASK_SUCCEEDED: ("task-completed", lambda batch, e, x: {
        **_task(batch, e, x), DURATION_MS: e.duration_ms, RESULT: e.result}),
    ev.TASK_FAILED: ("task-failed", _failed),
    ev.TASK_INTERRUPTED: ("task-failed", lambda batch, e, x: {
        **_task(batch, e, x), ERROR_KIND: "interrupted", "error": e.reason,
        "willRetry": True, RETRY_AT: None, DURATION_MS: None}),
    ev.TASKS_SKIPPED: ("task-skipped", lambda batch, e, x: {"executionId": x, **payload(e)}),
    ev.PAUSED: ("execution-paused", lambda batch, e, x: {"executionId": x, "status": "paused"}),
    ev.RESUMED: ("execution-resumed", lambda batch, e, x: {
        "executionId": x, "status": "running"}),
    ev.TASKS_RETRIED: ("execution-resumed", lambda batch, e, x: {  # taskIds, unskippedTaskIds
        "executionId": x, "status": "running", **payload(e)}),
    ev.INTERRUPTED: ("execution-interrupted", lambda batch, e, x: {
        "executionId": x, "status": _status(batch, x), "reason": e.reason,
        "interruptedAt": batch.at}),
    ev.RECOVERED: ("execution-recovered", lambda batch, e, x: {
        "executionId": x, "status": _status(batch, x)}),
    ev.CANCELLED: ("execution-cancelled", lambda batch, e, x: {
        "executionId": x, "status": "cancelled", "cancelledTasks": len(e.task_ids)}),
    ev.COMPLETED: ("execution-completed", _finished),
    ev.FAILED: ("execution-completed", _finished),
    ev.HEALTH_ASSESSED: ("health-update", lambda batch, e, x: {"executionId": x, **payload(e)}),
    ev.METRICS_SAMPLED: ("metrics-update", _metrics),
}


class FeedView(View):
    name: ClassVar[str] = "feed"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"event_feed": ("position",)}
    # INTEGER, not BIGINT, PRIMARY KEY: SQLite makes the position the row's rowid instead
    # of keeping a separate index of it, one B-tree fewer to write per event.
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS event_feed (
            position INTEGER PRIMARY KEY, execution_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,
            recorded_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS feed_by_execution ON event_feed (execution_id, position)",
        "CREATE INDEX IF NOT EXISTS feed_by_workspace ON event_feed (workspace_id, position)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {**{event_class: partial(_record, kind, data)
                   for event_class, (kind, data) in MAPPERS.items()},
                **{event_class: partial(_record_for_everyone, kind, data)
                   for event_class, (kind, data) in AGENT_TYPE_MAPPERS.items()}}


def _record(kind: str, data: Data, batch: Batch, event: Any) -> None:
    execution = execution_of(batch, event)
    execution_id = execution["id"]
    batch.tables["event_feed"].append({
        "position": batch.position, "execution_id": execution_id,
        "workspace_id": execution["workspace_id"], "type": kind,
        "data": to_json(data(batch, event, execution_id)), "recorded_at": batch.at})


def _agent_type(batch: Batch) -> str:
    agent_type: str = batch.tables["agent_circuits"][(batch.origin,)]["agent_type"]
    return agent_type


AGENT_TYPE_MAPPERS: dict[type, tuple[str, Callable[[Batch, Any], dict[str, Any]]]] = {
    ev.CIRCUIT_PAUSED: ("agent-type-paused", lambda batch, e: {
        "agentType": _agent_type(batch), **payload(e)}),  # failureRate, window, attempts ...
    ev.CIRCUIT_RESUMED: ("agent-type-resumed", lambda batch, e: {
        "agentType": _agent_type(batch), **payload(e)}),  # by, attempt
}


def _record_for_everyone(kind: str, data: Callable[[Batch, Any], dict[str, Any]],
                         batch: Batch, event: Any) -> None:
    batch.tables["event_feed"].append({
        "position": batch.position, "execution_id": batch.origin,
        "workspace_id": EVERY_WORKSPACE, "type": kind, "data": to_json(data(batch, event)),
        "recorded_at": batch.at})


FEED_COLUMNS = "position, execution_id, workspace_id, type, data, recorded_at"


def feed_row(row: Any) -> dict[str, Any]:
    """A selected event_feed row (columns FEED_COLUMNS) as the streams' dict."""
    return {"position": row[0], "executionId": row[1], "workspaceId": row[2], "type": row[3],
            "data": row[4], "recordedAt": row[5]}


def stream_row(row: Row) -> dict[str, Any]:
    """An event_feed row of the batch as the streams' dict (as `feed_row`)."""
    return {"position": row["position"], "executionId": row["execution_id"],
            "workspaceId": row["workspace_id"], "type": row["type"], "data": row["data"],
            "recordedAt": row["recorded_at"]}
