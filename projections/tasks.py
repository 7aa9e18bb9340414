"""The tasks view: one row per planned task, mirroring the Execution aggregate's TaskState.

`assigned_at` and `started_at` belong to the latest attempt; `finished_at` is set when the
task reaches a terminal state (a failure that will be retried is not one). The helpers at
the bottom let other views read a task's agent or status inside the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from sqlite3 import Cursor
from typing import Any, ClassVar

from projections import events as ev
from projections.base import Handler, View, chunks, iso, to_json

TERMINAL = ("completed", "failed", "skipped", "cancelled")


class TasksView(View):
    name: ClassVar[str] = "tasks"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"tasks": ("execution_id", "task_id")}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS tasks (
            execution_id TEXT NOT NULL, task_id TEXT NOT NULL, item_id TEXT NOT NULL,
            title TEXT NOT NULL, agent TEXT NOT NULL, priority TEXT NOT NULL,
            depends_on TEXT NOT NULL, plan_order INTEGER NOT NULL, status TEXT NOT NULL,
            attempt INTEGER NOT NULL, failures INTEGER NOT NULL,
            progress DOUBLE PRECISION NOT NULL, error_kind TEXT, error_message TEXT,
            retry_at TEXT, result TEXT, duration_ms DOUBLE PRECISION, assigned_at TEXT,
            started_at TEXT, finished_at TEXT,
            PRIMARY KEY (execution_id, task_id))""",
        "CREATE INDEX IF NOT EXISTS tasks_by_agent ON tasks (execution_id, agent, status)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {
            ev.STARTED: self._started, ev.TASK_ASSIGNED: self._assigned,
            ev.TASK_STARTED: self._task_started, ev.TASK_PROGRESSED: self._progressed,
            ev.TASK_SUCCEEDED: self._succeeded, ev.TASK_FAILED: self._failed,
            ev.TASKS_SKIPPED: self._skipped, ev.TASK_INTERRUPTED: self._interrupted,
            ev.CANCELLED: self._cancelled,
        }

    def _started(self, cur: Cursor, position: int, event: Any) -> None:
        cur.executemany(
            "INSERT INTO tasks (execution_id, task_id, item_id, title, agent, priority,"
            " depends_on, plan_order, status, attempt, failures, progress)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, 0.0)",
            [(str(event.originator_id), t["id"], t["itemId"], t["title"], t["agent"],
              t["priority"], to_json(t["dependsOn"]), t["order"]) for t in event.tasks])

    def _update(self, cur: Cursor, event: Any, assignments: str, *values: Any) -> None:
        cur.execute(f"UPDATE tasks SET {assignments} WHERE execution_id = ? AND task_id = ?",
                    (*values, str(event.originator_id), event.task_id))

    def _assigned(self, cur: Cursor, position: int, event: Any) -> None:
        self._update(cur, event, "status = 'assigned', attempt = ?, retry_at = NULL,"
                     " progress = 0.0, assigned_at = ?, started_at = NULL",
                     event.attempt, iso(event.timestamp))

    def _task_started(self, cur: Cursor, position: int, event: Any) -> None:
        self._update(cur, event, "status = 'in_progress', started_at = ?", iso(event.timestamp))

    def _progressed(self, cur: Cursor, position: int, event: Any) -> None:
        self._update(cur, event, "progress = ?", event.progress)

    def _succeeded(self, cur: Cursor, position: int, event: Any) -> None:
        self._update(cur, event, "status = 'completed', result = ?, duration_ms = ?,"
                     " progress = 1.0, finished_at = ?",
                     to_json(event.result), event.duration_ms, iso(event.timestamp))

    def _failed(self, cur: Cursor, position: int, event: Any) -> None:
        for_good = event.retry_at is None
        self._update(cur, event, "status = ?, failures = failures + 1, error_kind = ?,"
                     " error_message = ?, duration_ms = ?, retry_at = ?, finished_at = ?",
                     "failed" if for_good else "pending", event.error_kind,
                     event.error_message, event.duration_ms, iso(event.retry_at),
                     iso(event.timestamp) if for_good else None)

    def _interrupted(self, cur: Cursor, position: int, event: Any) -> None:
        self._update(cur, event, "status = 'pending'")

    def _skipped(self, cur: Cursor, position: int, event: Any) -> None:
        _finish(cur, event, event.task_ids, "skipped")

    def _cancelled(self, cur: Cursor, position: int, event: Any) -> None:
        _finish(cur, event, event.task_ids, "cancelled")


def _finish(cur: Cursor, event: Any, task_ids: list[str], status: str) -> None:
    cur.executemany(
        "UPDATE tasks SET status = ?, finished_at = ? WHERE execution_id = ? AND task_id = ?",
        [(status, iso(event.timestamp), str(event.originator_id), t) for t in task_ids])


def task_info(cur: Cursor, execution_id: str, task_id: str) -> dict[str, Any]:
    cur.execute("SELECT agent, item_id, title, status FROM tasks"
                " WHERE execution_id = ? AND task_id = ?", (execution_id, task_id))
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"no task {task_id!r} in execution {execution_id} in the tasks view")
    return {"agent": row[0], "item_id": row[1], "title": row[2], "status": row[3]}


def counts_by(cur: Cursor, column: str, execution_id: str, task_ids: list[str]) -> Counter[str]:
    """How many of `task_ids` have each value of `column` ("agent" or "status")."""
    assert column in ("agent", "status")
    counts: Counter[str] = Counter()
    for chunk in chunks(task_ids):
        marks = ", ".join("?" * len(chunk))
        cur.execute(f"SELECT {column}, COUNT(*) FROM tasks WHERE execution_id = ?"
                    f" AND task_id IN ({marks}) GROUP BY {column}", (execution_id, *chunk))
        counts.update({value: count for value, count in cur.fetchall()})
    return counts
