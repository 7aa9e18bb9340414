"""The propagation log: which rule turned each L4 item into which tasks (from Started)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch
from stratexec.projections.values import to_json


class PropagationView(View):
    name: ClassVar[str] = "propagation"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "propagation_log": ("execution_id", "item_id")}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS propagation_log (
            execution_id TEXT NOT NULL, item_id TEXT NOT NULL, rule TEXT NOT NULL,
            keyword TEXT, priority TEXT NOT NULL, task_ids TEXT NOT NULL,
            recorded_at TEXT NOT NULL, PRIMARY KEY (execution_id, item_id))""",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {ev.STARTED: self._started}

    def _started(self, batch: Batch, event: Any) -> None:
        for d in event.decisions:
            batch.tables["propagation_log"].append({
                "execution_id": batch.origin, "item_id": d["itemId"], "rule": d["rule"],
                "keyword": d["keyword"], "priority": d["priority"],
                "task_ids": to_json(d["taskIds"]), "recorded_at": batch.at})
