"""What remains of a running execution, read from the views, and its completion estimate.

The health monitor asks for the estimate of each live execution it assesses (the engine
hands it `estimate_completion` on its view store). One read gives every task of the
execution: the unfinished ones become the remaining plan (`domain.eta.RemainingTask`: a
running attempt with the time since its start, a retry with the time until it is due, the
engine's dispatch order as its rank), and the completed ones' durations give each agent
type's observed speed (its p50 and p90, by nearest rank, as `metrics.agent_rates` shows
them); a type with none yet has its prior.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from stratexec.domain.eta import AgentSpeed, Eta, RemainingTask, estimate
from stratexec.domain.propagation import PRIORITY_RANK
from stratexec.projections.store import ViewStore
from stratexec.projections.tasks import TERMINAL
from stratexec.projections.values import uuid_text

_UNKNOWN_PRIORITY_RANK = len(PRIORITY_RANK)


@dataclass(frozen=True)
class RemainingWork:
    tasks: list[RemainingTask]
    durations: Mapping[str, list[float]] = field(default_factory=dict)  # seconds, by agent


def remaining_work(store: ViewStore, execution_id: UUID | str, now: datetime
                   ) -> RemainingWork | None:
    """The unfinished tasks of a running execution, and the durations of its completed
    ones by agent type; None when the execution is not running (or not in the views)."""
    key = uuid_text(execution_id)
    with store.read() as cur:
        row = cur.execute("SELECT status FROM executions WHERE id = ?", (key,)).fetchone()
        if row is None or row[0] != "running":
            return None
        rows = cur.execute(
            "SELECT task_id, agent, status, depends_on, priority, plan_order, started_at,"
            " retry_at, duration_ms FROM tasks WHERE execution_id = ?", (key,)).fetchall()
    tasks = []
    durations: dict[str, list[float]] = defaultdict(list)
    for task_id, agent, status, depends_on, priority, order, started, retry_at, ms in rows:
        if status == "completed":
            if ms is not None:
                durations[agent].append(ms / 1000)
        elif status not in TERMINAL:
            tasks.append(RemainingTask(
                task_id, agent, tuple(json.loads(depends_on)),
                _since(started, now) if status == "in_progress" else None,
                _until(retry_at, now) if status == "pending" else 0.0,
                (PRIORITY_RANK.get(priority, _UNKNOWN_PRIORITY_RANK), order)))
    return RemainingWork(tasks, durations)


def estimate_completion(store: ViewStore, execution_id: UUID | str,
                        priors: Mapping[str, AgentSpeed], now: datetime | None = None,
                        ) -> Eta | None:
    """When the execution will finish, if it is running: each agent type at its observed
    speed (its prior before any), with its prior's concurrency. A type without a prior
    (the engine does not run it) gets the slowest prior's speed."""
    now = now or datetime.now(UTC)
    work = remaining_work(store, execution_id, now)
    if work is None:
        return None
    fallback = max(priors.values(), key=lambda speed: speed.p90,
                   default=AgentSpeed(1.0, 1.0, 1))
    agents = {task.agent for task in work.tasks}  # each type's durations sorted once
    speeds = {agent: AgentSpeed.observed(work.durations.get(agent, []),
                                         priors.get(agent, fallback)) for agent in agents}
    return estimate(work.tasks, speeds, now)


def _since(at: str | None, now: datetime) -> float:
    return 0.0 if at is None else max(0.0, (now - datetime.fromisoformat(at)).total_seconds())


def _until(at: str | None, now: datetime) -> float:
    return 0.0 if at is None else max(0.0, (datetime.fromisoformat(at) - now).total_seconds())
