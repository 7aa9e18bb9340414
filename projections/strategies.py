"""The strategies view: one row per defined strategy, with its document and plan size."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from stratexec.domain.errors import DomainError
from stratexec.domain.propagation import propagate
from stratexec.domain.strategy import LEAF_LEVEL, parse_strategy
from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch
from stratexec.projections.values import to_json


class StrategiesView(View):
    name: ClassVar[str] = "strategies"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"strategies": ("id",)}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS strategies (
            id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, name TEXT NOT NULL,
            item_count INTEGER NOT NULL, leaf_count INTEGER NOT NULL, task_count INTEGER,
            document TEXT NOT NULL, defined_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS strategies_by_workspace ON strategies (workspace_id, name)",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {ev.STRATEGY_DEFINED: self._defined}

    def _defined(self, batch: Batch, event: Any) -> None:
        document = {"name": event.name, "workspaceId": event.workspace_id, "items": event.items}
        batch.tables["strategies"].append({
            "id": batch.origin, "workspace_id": event.workspace_id, "name": event.name,
            "item_count": len(event.items),
            "leaf_count": sum(1 for item in event.items if item.get("level") == LEAF_LEVEL),
            "task_count": _task_count(event, document), "document": to_json(document),
            "defined_at": batch.at})


def _task_count(event: Any, document: dict[str, Any]) -> int | None:
    """Tasks under the default rules when the strategy was defined. Events from before
    the event carried it: under today's rules (None if they reject the strategy)."""
    recorded = getattr(event, "task_count", None)
    if recorded is not None:
        return int(recorded)
    try:
        return len(propagate(parse_strategy(document).items).tasks)
    except DomainError:
        return None
