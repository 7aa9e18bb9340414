"""Health snapshots: every recorded assessment of an execution, at its log position, with
the completion estimate recorded beside it (`eta`: JSON, or null)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch
from stratexec.projections.executions import execution_of
from stratexec.projections.values import to_json


class HealthView(View):
    name: ClassVar[str] = "health"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"health_snapshots": ("position",)}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS health_snapshots (
            position INTEGER PRIMARY KEY, execution_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL, score INTEGER NOT NULL, status TEXT NOT NULL,
            completion_rate DOUBLE PRECISION NOT NULL, error_rate DOUBLE PRECISION NOT NULL,
            avg_task_duration_ms DOUBLE PRECISION NOT NULL, issues TEXT NOT NULL,
            recorded_at TEXT NOT NULL, eta TEXT)""",
        "CREATE INDEX IF NOT EXISTS health_by_execution"
        " ON health_snapshots (execution_id, position)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {ev.HEALTH_ASSESSED: self._assessed}

    def _assessed(self, batch: Batch, event: Any) -> None:
        execution = execution_of(batch, event)
        batch.tables["health_snapshots"].append({
            "position": batch.position, "execution_id": execution["id"],
            "workspace_id": execution["workspace_id"], "score": event.score, "status": event.status,
            "completion_rate": event.completion_rate, "error_rate": event.error_rate,
            "avg_task_duration_ms": event.avg_task_duration_ms, "issues": to_json(event.issues),
            "recorded_at": batch.at, "eta": None if event.eta is None else to_json(event.eta)})
