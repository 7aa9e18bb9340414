"""The executions view: one row per execution, its status and task counts, its latest health.

Task counts mirror the aggregate's `counts`. A task's previous status is read from the tasks
view, so this view must be applied before the tasks view changes it (see the catalog).
"""

from __future__ import annotations

from collections.abc import Mapping
from sqlite3 import Cursor
from typing import Any, ClassVar

from domain.health import health_id
from projections import events as ev
from projections.base import Handler, View, iso
from projections.tasks import counts_by, task_info

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
            health_id TEXT NOT NULL, health_score INTEGER, health_status TEXT)""",
        "CREATE INDEX IF NOT EXISTS executions_by_workspace"
        " ON executions (workspace_id, started_at)",
        "CREATE INDEX IF NOT EXISTS executions_by_strategy ON executions (strategy_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS executions_by_health ON executions (health_id)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {
            ev.STARTED: self._started,
            ev.TASK_ASSIGNED: self._assigned,
            ev.TASK_STARTED: lambda cur, _, e: self._move_one(cur, e, "in_progress"),
            ev.TASK_PROGRESSED: lambda cur, _, e: self._touch(cur, e),
            ev.TASK_SUCCEEDED: lambda cur, _, e: self._move_one(cur, e, "completed"),
            ev.TASK_FAILED: self._failed,
            ev.TASK_INTERRUPTED: lambda cur, _, e: self._move_one(cur, e, "pending"),
            ev.TASKS_SKIPPED: lambda cur, _, e: self._move_many(cur, e, "skipped"),
            ev.PAUSED: lambda cur, _, e: self._touch(cur, e, status="paused"),
            ev.RESUMED: lambda cur, _, e: self._touch(cur, e, status="running"),
            ev.CANCELLED: self._cancelled,
            ev.COMPLETED: lambda cur, _, e: self._finish(cur, e, "completed"),
            ev.FAILED: lambda cur, _, e: self._finish(cur, e, "failed"),
            ev.HEALTH_ASSESSED: self._assessed,
        }

    def _started(self, cur: Cursor, position: int, event: Any) -> None:
        started = iso(event.timestamp)
        cur.execute(
            "INSERT INTO executions (id, workspace_id, strategy_id, strategy_name, status,"
            " total_tasks, pending, assigned, in_progress, completed, failed, skipped,"
            " cancelled, retries, started_at, updated_at, version, health_id)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?, 0, 0, 0, 0, 0, 0, 0, ?, ?, ?, ?)",
            (str(event.originator_id), event.workspace_id, str(event.strategy_id),
             event.strategy_name, len(event.tasks), len(event.tasks), started, started,
             event.originator_version, str(health_id(event.originator_id))))

    def _touch(self, cur: Cursor, event: Any, deltas: Mapping[str, int] | None = None,
               **values: Any) -> None:
        """Apply count `deltas` and set `values`, with the event's time and version."""
        sets = [f"{column} = {column} + ?" for column in deltas or {}]
        sets += [f"{column} = ?" for column in values]
        sets += ["updated_at = ?", "version = ?"]
        params = [*(deltas or {}).values(), *values.values(), iso(event.timestamp),
                  event.originator_version, str(event.originator_id)]
        cur.execute(f"UPDATE executions SET {', '.join(sets)} WHERE id = ?", params)

    def _move(self, cur: Cursor, event: Any, before: Mapping[str, int], to: str,
              **values: Any) -> None:
        deltas = dict.fromkeys(STATUSES, 0)
        for old, count in before.items():
            deltas[old] -= count
            deltas[to] += count
        self._touch(cur, event, {s: n for s, n in deltas.items() if n}, **values)

    def _move_one(self, cur: Cursor, event: Any, to: str, **values: Any) -> None:
        old = task_info(cur, str(event.originator_id), event.task_id)["status"]
        self._move(cur, event, {old: 1}, to, **values)

    def _move_many(self, cur: Cursor, event: Any, to: str, **values: Any) -> None:
        before = counts_by(cur, "status", str(event.originator_id), list(event.task_ids))
        self._move(cur, event, before, to, **values)

    def _assigned(self, cur: Cursor, position: int, event: Any) -> None:
        self._move_one(cur, event, "assigned")
        cur.execute("UPDATE executions SET status = 'running' WHERE id = ? AND status = 'pending'",
                    (str(event.originator_id),))

    def _failed(self, cur: Cursor, position: int, event: Any) -> None:
        if event.retry_at is None:
            self._move_one(cur, event, "failed")
        else:
            self._move_one(cur, event, "pending")
            cur.execute("UPDATE executions SET retries = retries + 1 WHERE id = ?",
                        (str(event.originator_id),))

    def _cancelled(self, cur: Cursor, position: int, event: Any) -> None:
        self._move_many(cur, event, "cancelled", status="cancelled",
                        finished_at=iso(event.timestamp))

    def _finish(self, cur: Cursor, event: Any, status: str) -> None:
        self._touch(cur, event, status=status, finished_at=iso(event.timestamp))

    def _assessed(self, cur: Cursor, position: int, event: Any) -> None:
        cur.execute("UPDATE executions SET health_score = ?, health_status = ?"
                    " WHERE health_id = ?", (event.score, event.status, str(event.originator_id)))


def execution_of_health(cur: Cursor, health_aggregate_id: str) -> tuple[str, str]:
    """(execution id, workspace id) of an ExecutionHealth aggregate."""
    cur.execute("SELECT id, workspace_id FROM executions WHERE health_id = ?",
                (health_aggregate_id,))
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"no execution in the executions view has health {health_aggregate_id}")
    return row[0], row[1]


def workspace_of(cur: Cursor, execution_id: str) -> str:
    cur.execute("SELECT workspace_id FROM executions WHERE id = ?", (execution_id,))
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"no execution {execution_id} in the executions view")
    return str(row[0])
