"""Health snapshots: every recorded assessment of an execution, at its log position."""

from __future__ import annotations

from collections.abc import Mapping
from sqlite3 import Cursor
from typing import Any, ClassVar

from projections import events as ev
from projections.base import Handler, View, iso, to_json
from projections.executions import execution_of_health


class HealthView(View):
    name: ClassVar[str] = "health"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"health_snapshots": ("position",)}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS health_snapshots (
            position BIGINT PRIMARY KEY, execution_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL, score INTEGER NOT NULL, status TEXT NOT NULL,
            completion_rate DOUBLE PRECISION NOT NULL, error_rate DOUBLE PRECISION NOT NULL,
            avg_task_duration_ms DOUBLE PRECISION NOT NULL, issues TEXT NOT NULL,
            recorded_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS health_by_execution"
        " ON health_snapshots (execution_id, position)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {ev.HEALTH_ASSESSED: self._assessed}

    def _assessed(self, cur: Cursor, position: int, event: Any) -> None:
        execution_id, workspace_id = execution_of_health(cur, str(event.originator_id))
        cur.execute(
            "INSERT INTO health_snapshots (position, execution_id, workspace_id, score, status,"
            " completion_rate, error_rate, avg_task_duration_ms, issues, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (position, execution_id, workspace_id, event.score, event.status,
             event.completionRate, event.errorRate, event.avgTaskDurationMs,
             to_json(event.issues), iso(event.timestamp)))
