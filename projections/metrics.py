"""Per-agent metrics of each execution, and the rates read from them.

Durations are those of successful attempts (as in the aggregate's mean task duration);
the p95 is taken over completed tasks' durations in the tasks view, by nearest rank.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from sqlite3 import Cursor
from typing import Any, ClassVar

from projections import events as ev
from projections.base import Handler, View
from projections.tasks import counts_by, task_info

COUNTERS = ("tasks", "completed", "failed", "skipped", "cancelled", "attempts",
            "failed_attempts", "retries", "duration_sum_ms", "duration_count")


class MetricsView(View):
    name: ClassVar[str] = "metrics"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "agent_metrics": ("execution_id", "agent")}
    schema: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS agent_metrics (
            execution_id TEXT NOT NULL, agent TEXT NOT NULL, tasks INTEGER NOT NULL,
            completed INTEGER NOT NULL, failed INTEGER NOT NULL, skipped INTEGER NOT NULL,
            cancelled INTEGER NOT NULL, attempts INTEGER NOT NULL,
            failed_attempts INTEGER NOT NULL, retries INTEGER NOT NULL,
            duration_sum_ms DOUBLE PRECISION NOT NULL, duration_count INTEGER NOT NULL,
            PRIMARY KEY (execution_id, agent))""",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {
            ev.STARTED: self._started,
            ev.TASK_ASSIGNED: lambda cur, _, e: self._add(cur, e, attempts=1),
            ev.TASK_SUCCEEDED: lambda cur, _, e: self._add(
                cur, e, completed=1, duration_sum_ms=e.duration_ms, duration_count=1),
            ev.TASK_FAILED: lambda cur, _, e: self._add(
                cur, e, failed_attempts=1, **({"failed": 1} if e.retry_at is None
                                               else {"retries": 1})),
            ev.TASKS_SKIPPED: lambda cur, _, e: self._add_many(cur, e, "skipped"),
            ev.CANCELLED: lambda cur, _, e: self._add_many(cur, e, "cancelled"),
        }

    def _started(self, cur: Cursor, position: int, event: Any) -> None:
        per_agent = Counter(task["agent"] for task in event.tasks)
        cur.executemany(
            "INSERT INTO agent_metrics (execution_id, agent, tasks, completed, failed, skipped,"
            " cancelled, attempts, failed_attempts, retries, duration_sum_ms, duration_count)"
            " VALUES (?, ?, ?, 0, 0, 0, 0, 0, 0, 0, 0.0, 0)",
            [(str(event.originator_id), agent, n) for agent, n in sorted(per_agent.items())])

    def _add(self, cur: Cursor, event: Any, **deltas: float) -> None:
        execution_id = str(event.originator_id)
        agent = task_info(cur, execution_id, event.task_id)["agent"]
        _increment(cur, execution_id, agent, deltas)

    def _add_many(self, cur: Cursor, event: Any, column: str) -> None:
        execution_id = str(event.originator_id)
        for agent, count in counts_by(cur, "agent", execution_id, list(event.task_ids)).items():
            _increment(cur, execution_id, agent, {column: count})


def _increment(cur: Cursor, execution_id: str, agent: str, deltas: Mapping[str, float]) -> None:
    assert set(deltas) <= set(COUNTERS)
    sets = ", ".join(f"{column} = {column} + ?" for column in deltas)
    cur.execute(f"UPDATE agent_metrics SET {sets} WHERE execution_id = ? AND agent = ?",
                (*deltas.values(), execution_id, agent))


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def nearest_rank(values: list[float], percentile: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percentile / 100 * len(ordered))) - 1]


def agent_rates(row: Mapping[str, Any], completed_durations: list[float]) -> dict[str, Any]:
    """One agent's counters and rates, camelCase. A rate with nothing to divide is None.

    success rate = completed / (completed + failed for good) tasks; failure rate = failed
    attempts / finished attempts; retry rate = retries / finished attempts.
    """
    finished_attempts = row["duration_count"] + row["failed_attempts"]
    return {
        "agent": row["agent"], "tasks": row["tasks"], "completed": row["completed"],
        "failed": row["failed"], "skipped": row["skipped"], "cancelled": row["cancelled"],
        "attempts": row["attempts"], "failedAttempts": row["failed_attempts"],
        "retries": row["retries"],
        "successRate": _ratio(row["completed"], row["completed"] + row["failed"]),
        "failureRate": _ratio(row["failed_attempts"], finished_attempts),
        "retryRate": _ratio(row["retries"], finished_attempts),
        "meanDurationMs": _ratio(row["duration_sum_ms"], row["duration_count"]),
        "p95DurationMs": nearest_rank(completed_durations, 95),
    }
