"""The agent circuits view: one row per agent type whose circuit breaker ever opened, and
its state now (closed, open, half_open), with what paused it last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch, Row
from stratexec.projections.values import iso, to_json


class AgentCircuitsView(View):
    name: ClassVar[str] = "circuits"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"agent_circuits": ("id",)}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS agent_circuits (
            id TEXT PRIMARY KEY, agent_type TEXT NOT NULL, state TEXT NOT NULL,
            failure_rate DOUBLE PRECISION, window_size INTEGER, attempts TEXT NOT NULL,
            paused_at TEXT, probe_at TEXT, probe_attempt TEXT, resumed_at TEXT,
            resumed_by TEXT, updated_at TEXT NOT NULL, version INTEGER NOT NULL)""",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {
            ev.CIRCUIT_WATCHED: self._watched, ev.CIRCUIT_PAUSED: self._paused,
            ev.CIRCUIT_PROBING: self._probing, ev.CIRCUIT_RESUMED: self._resumed,
        }

    def _watched(self, batch: Batch, event: Any) -> None:
        batch.tables["agent_circuits"].add({
            "id": batch.origin, "agent_type": event.agent_type, "state": "closed",
            "attempts": "[]", "updated_at": batch.at, "version": event.originator_version})

    def _paused(self, batch: Batch, event: Any) -> None:
        circuit(batch, event).update(
            state="open", failure_rate=event.failure_rate, window_size=event.window,
            attempts=to_json(event.attempts), paused_at=batch.at, probe_at=iso(event.probe_at),
            probe_attempt=None)

    def _probing(self, batch: Batch, event: Any) -> None:
        circuit(batch, event).update(state="half_open", probe_attempt=event.attempt)

    def _resumed(self, batch: Batch, event: Any) -> None:
        circuit(batch, event).update(state="closed", probe_at=None, probe_attempt=None,
                                     resumed_at=batch.at, resumed_by=event.by)


def circuit(batch: Batch, event: Any) -> Row:
    """The agent type's row, stamped with the event's time and version."""
    row = batch.tables["agent_circuits"][(batch.origin,)]
    row["updated_at"], row["version"] = batch.at, event.originator_version
    return row
