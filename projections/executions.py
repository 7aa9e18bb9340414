"""The executions view: one row per execution, its status and task counts, its latest health
and the completion estimate recorded with it (`eta`, the JSON of `Eta.as_record`, or null),
and since when it is interrupted (`interrupted_at`: a graceful stop of the engine left it
unfinished, and no engine has taken it up since).

Task counts mirror the aggregate's `counts`: `assigned` tasks are queued at their agent,
`in_progress` ones have started (their agent recorded the start). A task's previous status
is read from its tasks row, so this view must be applied before the tasks view changes it
(see the catalog).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from stratexec.domain.health import health_id
from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch, Row
from stratexec.projections.values import to_json

STATUSES = ("pending", "assigned", "in_progress", "completed", "failed", "skipped", "cancelled")


class ExecutionsView(View):
    name: ClassVar[str] = "executions"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"executions": ("id",)}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS executions (
            id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, strategy_id TEXT NOT NULL,
            strategy_name TEXT NOT NULL, status TEXT NOT NULL, total_tasks INTEGER NOT NULL,
            pending INTEGER NOT NULL, assigned INTEGER NOT NULL, in_progress INTEGER NOT NULL,
            completed INTEGER NOT NULL, failed INTEGER NOT NULL, skipped INTEGER NOT NULL,
            cancelled INTEGER NOT NULL, retries INTEGER NOT NULL, started_at TEXT NOT NULL,
            finished_at TEXT, updated_at TEXT NOT NULL, version INTEGER NOT NULL,
            health_id TEXT NOT NULL, health_score INTEGER, health_status TEXT, eta TEXT,
            interrupted_at TEXT)""",
        "CREATE INDEX IF NOT EXISTS executions_by_workspace"
        " ON executions (workspace_id, started_at)",
        "CREATE INDEX IF NOT EXISTS executions_by_strategy ON executions (strategy_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS executions_by_health ON executions (health_id)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {
            ev.STARTED: self._started,
            ev.TASK_ASSIGNED: self._assigned,
            ev.TASK_STARTED: lambda batch, e: _move_one(batch, e, "in_progress"),
            ev.TASK_PROGRESSED: _touch,
            ev.TASK_SUCCEEDED: lambda batch, e: _move_one(batch, e, "completed"),
            ev.TASK_FAILED: self._failed,
            ev.TASK_INTERRUPTED: lambda batch, e: _move_one(batch, e, "pending"),
            ev.TASKS_SKIPPED: lambda batch, e: _move_many(batch, e, "skipped"),
            ev.PAUSED: lambda batch, e: _set(batch, e, status="paused"),
            ev.RESUMED: lambda batch, e: _set(batch, e, status="running"),
            ev.CANCELLED: self._cancelled,
            ev.COMPLETED: lambda batch, e: _set(
                batch, e, status="completed", finished_at=batch.at),
            ev.FAILED: lambda batch, e: _set(batch, e, status="failed", finished_at=batch.at),
            ev.HEALTH_ASSESSED: self._assessed,
            ev.TASKS_RETRIED: self._retried,
            ev.INTERRUPTED: lambda batch, e: _set(batch, e, interrupted_at=batch.at),
            ev.RECOVERED: lambda batch, e: _set(batch, e, interrupted_at=None),
        }

    def _started(self, batch: Batch, event: Any) -> None:
        health = str(health_id(event.originator_id))
        batch.tables["executions"].add({
            "id": batch.origin, "workspace_id": event.workspace_id,
            "strategy_id": str(event.strategy_id), "strategy_name": event.strategy_name,
            "status": "pending", "total_tasks": len(event.tasks), **dict.fromkeys(STATUSES, 0),
            "pending": len(event.tasks), "retries": 0, "started_at": batch.at,
            "updated_at": batch.at, "version": event.originator_version, "health_id": health,
            "interrupted_at": None})
        batch.memo[HEALTH, health] = batch.origin

    def _assigned(self, batch: Batch, event: Any) -> None:
        row = _move_one(batch, event, "assigned")
        if row["status"] == "pending":
            row["status"] = "running"

    def _failed(self, batch: Batch, event: Any) -> None:
        if event.retry_at is None:
            _move_one(batch, event, "failed")
        else:
            _move_one(batch, event, "pending")["retries"] += 1

    def _cancelled(self, batch: Batch, event: Any) -> None:
        _move_many(batch, event, "cancelled").update(status="cancelled", finished_at=batch.at)

    def _retried(self, batch: Batch, event: Any) -> None:
        row = _touch(batch, event)
        tasks = batch.tables["tasks"]
        for task_id in (*event.task_ids, *event.unskipped_task_ids):
            row[tasks[batch.origin, task_id]["status"]] -= 1
            row["pending"] += 1
        row.update(status="running", finished_at=None)

    def _assessed(self, batch: Batch, event: Any) -> None:
        row = execution_of_health(batch, batch.origin)
        if row is not None:
            row["health_score"], row["health_status"] = event.score, event.status
            row["eta"] = None if event.eta is None else to_json(event.eta)


def _touch(batch: Batch, event: Any) -> Row:
    """The execution's row, stamped with the event's time and version."""
    row = batch.tables["executions"][(batch.origin,)]
    row["updated_at"], row["version"] = batch.at, event.originator_version
    return row


def _set(batch: Batch, event: Any, **values: Any) -> None:
    _touch(batch, event).update(values)


def _move_one(batch: Batch, event: Any, to: str) -> Row:
    row = _touch(batch, event)
    row[batch.tables["tasks"][batch.origin, event.task_id]["status"]] -= 1
    row[to] += 1
    return row


def _move_many(batch: Batch, event: Any, to: str) -> Row:
    row = _touch(batch, event)
    for task_id in event.task_ids:
        row[batch.tables["tasks"][batch.origin, task_id]["status"]] -= 1
        row[to] += 1
    return row


def running_eta(row: Any) -> dict[str, Any] | None:
    """The completion estimate of an executions row, if the execution is running."""
    if row["status"] != "running" or row["eta"] is None:
        return None
    eta: dict[str, Any] = json.loads(row["eta"])
    return eta


HEALTH = "execution of health"  # memo: health aggregate id -> execution id


def execution_of_health(batch: Batch, health_aggregate_id: str) -> Row | None:
    """The executions row of an ExecutionHealth aggregate, None if there is none."""
    execution_id = batch.memo.get((HEALTH, health_aggregate_id))
    if execution_id is None:
        found = batch.cur.execute("SELECT id FROM executions WHERE health_id = ?",
                                  (health_aggregate_id,)).fetchone()
        if found is None:
            return None
        execution_id = batch.memo[HEALTH, health_aggregate_id] = found[0]
    return batch.tables["executions"].find((execution_id,))


def execution_of(batch: Batch, event: Any) -> Row:
    """The executions row of an event of an Execution or of its ExecutionHealth."""
    if type(event) not in ev.HEALTH_EVENTS:
        return batch.tables["executions"][(batch.origin,)]
    row = execution_of_health(batch, batch.origin)
    if row is None:
        raise LookupError(f"no execution in the executions view has health {batch.origin}")
    return row
