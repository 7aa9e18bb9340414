"""The propagation log: which rule turned each L4 item into which tasks (from Started)."""

from __future__ import annotations

from collections.abc import Mapping
from sqlite3 import Cursor
from typing import Any, ClassVar

from projections import events as ev
from projections.base import Handler, View, iso, to_json


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

    def _started(self, cur: Cursor, position: int, event: Any) -> None:
        cur.executemany(
            "INSERT INTO propagation_log (execution_id, item_id, rule, keyword, priority,"
            " task_ids, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(str(event.originator_id), d["itemId"], d["rule"], d["keyword"], d["priority"],
              to_json(d["taskIds"]), iso(event.timestamp)) for d in event.decisions])
