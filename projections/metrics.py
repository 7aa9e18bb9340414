"""Per-agent metrics of each execution, and the rates read from them.

Durations are those of successful attempts (as in the aggregate's mean task duration);
the p50, p90 and p95 are taken over completed tasks' durations in the tasks view, by
nearest rank (the p50 and p90 are the speeds the completion estimate uses).

Utilisation: `running` counts the type's attempts of the execution really under way (their
start recorded), `queued` those handed to the agent and waiting for a slot; `concurrency` is
the type's limit as the health monitor records it with the metrics it samples (null until
its first sample), and `utilisation` is running / concurrency. Several executions share a
type's slots, so each execution's utilisation is its own share.

These are not the aggregate's `agent_metrics()`, on purpose: that is a gauge of where each
agent's tasks are now (pending, assigned, in progress ...), which the health monitor samples
into the log (MetricsSampled) at its own pace; these count attempts, failed attempts and
durations, which the rates need and the aggregate does not keep per agent. The counters
both have (tasks, completed, failed, skipped, cancelled, retries) agree (a test checks).

Token usage and cost are summed from successful attempts' results (`token_usage`): the llm
handler's, or any agent's that reports them the same way.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from stratexec.domain.eta import nearest_rank
from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch
from stratexec.projections.executions import execution_of
from stratexec.projections.tasks import task

COUNTERS = ("tasks", "completed", "failed", "skipped", "cancelled", "attempts",
            "failed_attempts", "retries", "duration_sum_ms", "duration_count",
            "prompt_tokens", "completion_tokens", "cost")


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
            prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
            cost DOUBLE PRECISION NOT NULL, concurrency INTEGER,
            PRIMARY KEY (execution_id, agent))""",
    )

    def handlers(self) -> Mapping[type, Handler]:
        return {
            ev.STARTED: self._started,
            ev.TASK_ASSIGNED: lambda batch, e: _count(batch, e, "attempts"),
            ev.TASK_SUCCEEDED: self._succeeded,
            ev.TASK_FAILED: lambda batch, e: _count(
                batch, e, "failed_attempts", "failed" if e.retry_at is None else "retries"),
            ev.TASKS_SKIPPED: lambda batch, e: _add_many(batch, e, "skipped"),
            ev.CANCELLED: lambda batch, e: _add_many(batch, e, "cancelled"),
            ev.TASKS_RETRIED: self._retried,
            ev.METRICS_SAMPLED: self._sampled,
        }

    def _started(self, batch: Batch, event: Any) -> None:
        per_agent = Counter(planned["agent"] for planned in event.tasks)
        for agent, n in sorted(per_agent.items()):
            batch.tables["agent_metrics"].add({
                "execution_id": batch.origin, "agent": agent, "tasks": n,
                **dict.fromkeys(COUNTERS[1:], 0), "duration_sum_ms": 0.0, "cost": 0.0,
                "concurrency": None})

    def _succeeded(self, batch: Batch, event: Any) -> None:
        row = _row(batch, task(batch, event)["agent"])
        row["completed"] += 1
        row["duration_sum_ms"] += event.duration_ms
        row["duration_count"] += 1
        prompt, completion, cost = token_usage(event.result)
        if prompt or completion or cost:
            row["prompt_tokens"] += prompt
            row["completion_tokens"] += completion
            row["cost"] += cost

    def _retried(self, batch: Batch, event: Any) -> None:
        """Tasks counts are where tasks are now: retried ones leave `failed`, returned
        ones `skipped` (the attempts they made stay counted)."""
        tasks = batch.tables["tasks"]
        for column, task_ids in (("failed", event.task_ids),
                                 ("skipped", event.unskipped_task_ids)):
            for task_id in task_ids:
                _row(batch, tasks[batch.origin, task_id]["agent"])[column] -= 1

    def _sampled(self, batch: Batch, event: Any) -> None:
        """Each type's concurrency, from the metrics the health monitor sampled (those it
        sampled before it recorded concurrencies leave it null)."""
        execution_id = execution_of(batch, event)["id"]
        metrics = batch.tables["agent_metrics"]
        for agent, counts in event.metrics.items():
            row = metrics.find((execution_id, agent))
            if row is not None and counts.get("concurrency") is not None:
                row["concurrency"] = counts["concurrency"]


def token_usage(result: Any) -> tuple[int, int, float]:
    """The tokens a successful attempt's result says it used, and what they cost: its
    `usage.prompt_tokens` and `usage.completion_tokens` and its `cost`, as the llm handler
    writes them (any agent's result may carry them). A missing or malformed value counts 0:
    a result is whatever an agent returned, and must never make the event unprojectable."""
    if not isinstance(result, Mapping):
        return 0, 0, 0.0
    usage = result.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}
    return (_tokens(usage.get("prompt_tokens")), _tokens(usage.get("completion_tokens")),
            _cost(result.get("cost")))


def _tokens(value: Any) -> int:
    return value if type(value) is int and 0 <= value < 2 ** 53 else 0


def _cost(value: Any) -> float:
    if type(value) not in (int, float) or not 0 <= value < 1e15:  # NaN is not within
        return 0.0
    return float(value)


def _row(batch: Batch, agent: str) -> dict[str, Any]:
    return batch.tables["agent_metrics"][(batch.origin, agent)]


def _count(batch: Batch, event: Any, *columns: str) -> None:
    """One more in each of `columns`, for the agent of the event's task."""
    row = _row(batch, task(batch, event)["agent"])
    for column in columns:
        row[column] += 1


def _add_many(batch: Batch, event: Any, column: str) -> None:
    for task_id in event.task_ids:
        _row(batch, batch.tables["tasks"][batch.origin, task_id]["agent"])[column] += 1


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Occupancy:
    """An agent type's tasks of one execution under way now (from the tasks view)."""

    running: int  # started
    queued: int  # assigned, waiting for a slot


def utilisation(occupancy: Occupancy, concurrency: int | None) -> dict[str, Any]:
    """`running`, `queued`, `concurrency` and `utilisation` (null without a concurrency)."""
    return {"running": occupancy.running, "queued": occupancy.queued,
            "concurrency": concurrency,
            "utilisation": min(1.0, occupancy.running / concurrency) if concurrency else None}


def agent_rates(row: Mapping[str, Any], completed_durations: list[float],
                occupancy: Occupancy) -> dict[str, Any]:
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
        "p50DurationMs": nearest_rank(completed_durations, 50),
        "p90DurationMs": nearest_rank(completed_durations, 90),
        "p95DurationMs": nearest_rank(completed_durations, 95),
        "promptTokens": row["prompt_tokens"], "completionTokens": row["completion_tokens"],
        "cost": row["cost"], **utilisation(occupancy, row["concurrency"]),
    }


def usage_total(agents: list[dict[str, Any]]) -> dict[str, Any]:
    """An execution's token usage and cost: the sum of its agents' (`agent_rates`)."""
    return {"promptTokens": sum(a["promptTokens"] for a in agents),
            "completionTokens": sum(a["completionTokens"] for a in agents),
            "cost": math.fsum(a["cost"] for a in agents)}
