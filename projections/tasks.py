"""The tasks view: one row per planned task, mirroring the Execution aggregate's TaskState.

`assigned_at` and `started_at` belong to the latest attempt; `finished_at` is set when the
task reaches a terminal state (a failure that will be retried is not one). Other views read
a task's agent, title or previous status from its row in the same batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from uuid import UUID

from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch, Row
from stratexec.projections.values import iso, to_json

TERMINAL = ("completed", "failed", "skipped", "cancelled")
ONE_TASK = (ev.TASK_ASSIGNED, ev.TASK_STARTED, ev.TASK_PROGRESSED, ev.TASK_SUCCEEDED,
            ev.TASK_FAILED, ev.TASK_INTERRUPTED)  # events with a `task_id`
MANY_TASKS = (ev.TASKS_SKIPPED, ev.CANCELLED)  # events with `task_ids`


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
        # Not by status as well: every task changes status three times or more, and each
        # change would move its entry in the index (a tenth of a rebuild's writes).
        "DROP INDEX IF EXISTS tasks_by_agent",
        "CREATE INDEX IF NOT EXISTS tasks_by_execution_agent ON tasks (execution_id, agent)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {
            ev.STARTED: self._started, ev.TASK_ASSIGNED: self._assigned,
            ev.TASK_STARTED: self._task_started, ev.TASK_PROGRESSED: self._progressed,
            ev.TASK_SUCCEEDED: self._succeeded, ev.TASK_FAILED: self._failed,
            ev.TASKS_SKIPPED: lambda batch, e: _finish(batch, e, "skipped"),
            ev.TASK_INTERRUPTED: lambda batch, e: task(batch, e).update(status="pending"),
            ev.CANCELLED: lambda batch, e: _finish(batch, e, "cancelled"),
            ev.TASKS_RETRIED: self._retried,
        }

    def preload(self, batch: Batch, events: Sequence[tuple[int, Any]]) -> None:
        """Every task row the batch's events name: the executions, metrics and feed views
        read them too."""
        named: dict[int, list[str]] = defaultdict(list)  # by UUID.int, hashed in C
        for _, event in events:
            if type(event) in ONE_TASK:
                named[event.originator_id.int].append(event.task_id)
            elif type(event) in MANY_TASKS:
                named[event.originator_id.int].extend(event.task_ids)
        for execution_id, task_ids in named.items():
            batch.tables["tasks"].preload((str(UUID(int=execution_id)),), task_ids)

    def _started(self, batch: Batch, event: Any) -> None:
        tasks = batch.tables["tasks"]
        for t in event.tasks:
            tasks.add({
                "execution_id": batch.origin, "task_id": t["id"], "item_id": t["itemId"],
                "title": t["title"], "agent": t["agent"], "priority": t["priority"],
                "depends_on": to_json(t["dependsOn"]), "plan_order": t["order"],
                "status": "pending", "attempt": 0, "failures": 0, "progress": 0.0})

    def _assigned(self, batch: Batch, event: Any) -> None:
        task(batch, event).update(
            status="assigned", attempt=event.attempt, retry_at=None, progress=0.0,
            assigned_at=batch.at, started_at=None)

    def _task_started(self, batch: Batch, event: Any) -> None:
        task(batch, event).update(status="in_progress", started_at=batch.at)

    def _progressed(self, batch: Batch, event: Any) -> None:
        task(batch, event)["progress"] = event.progress

    def _succeeded(self, batch: Batch, event: Any) -> None:
        task(batch, event).update(
            status="completed", result=to_json(event.result), duration_ms=event.duration_ms,
            progress=1.0, finished_at=batch.at)

    def _failed(self, batch: Batch, event: Any) -> None:
        for_good = event.retry_at is None
        row = task(batch, event)
        row["failures"] += 1
        row.update(status="failed" if for_good else "pending", error_kind=event.error_kind,
                   error_message=event.error_message, duration_ms=event.duration_ms,
                   retry_at=iso(event.retry_at), finished_at=batch.at if for_good else None)

    def _retried(self, batch: Batch, event: Any) -> None:
        tasks = batch.tables["tasks"]
        for task_id in event.task_ids:  # the last error stays, as in the aggregate
            tasks[batch.origin, task_id].update(
                status="pending", failures=0, retry_at=None, finished_at=None)
        for task_id in event.unskipped_task_ids:
            tasks[batch.origin, task_id].update(status="pending", finished_at=None)


def _finish(batch: Batch, event: Any, status: str) -> None:
    tasks = batch.tables["tasks"]
    for task_id in event.task_ids:
        tasks[batch.origin, task_id].update(status=status, finished_at=batch.at)


def task(batch: Batch, event: Any) -> Row:
    """The tasks row of an event with a `task_id`."""
    return batch.tables["tasks"][batch.origin, event.task_id]
