"""Read functions for the CLI and the server: plain dicts with camelCase keys.

Every function takes ids as UUID or text; text that is not a UUID finds nothing. A
`workspace_ids` of None means every workspace (for the CLI); the server always passes one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection
from typing import Any
from uuid import UUID

from stratexec.domain.execution import FINISHED_EXECUTION
from stratexec.domain.health import UNHEALTHY_BELOW, HealthInputs, assess
from stratexec.projections.executions import running_eta
from stratexec.projections.feed import EVERY_WORKSPACE, FEED_COLUMNS, feed_row
from stratexec.projections.metrics import Occupancy, agent_rates
from stratexec.projections.store import ViewStore
from stratexec.projections.tasks import TERMINAL
from stratexec.projections.values import chunks, uuid_text
from stratexec.projections.wire import camel

Id = UUID | str


def _execution(row: Any) -> dict[str, Any]:
    """`queuedTasks` (the same as `assignedTasks`) wait at their agent for a slot;
    `inProgressTasks` have started; `finishedTasks` reached an outcome."""
    return {
        "id": row["id"], "workspaceId": row["workspace_id"], "strategyId": row["strategy_id"],
        "strategyName": row["strategy_name"], "status": row["status"],
        "totalTasks": row["total_tasks"], "pendingTasks": row["pending"],
        "assignedTasks": row["assigned"], "queuedTasks": row["assigned"],
        "inProgressTasks": row["in_progress"],
        "finishedTasks": sum(row[status] for status in TERMINAL),
        "completedTasks": row["completed"], "failedTasks": row["failed"],
        "skippedTasks": row["skipped"], "cancelledTasks": row["cancelled"],
        "retries": row["retries"], "startedAt": row["started_at"],
        "finishedAt": row["finished_at"], "updatedAt": row["updated_at"],
        "version": row["version"], "healthScore": row["health_score"],
        "healthStatus": row["health_status"], "interruptedAt": row["interrupted_at"],
    }


def _where_workspaces(workspace_ids: Collection[str] | None, column: str = "workspace_id",
                      ) -> tuple[str, list[Any]]:
    if workspace_ids is None:
        return "1 = 1", []
    return f"{column} IN ({', '.join('?' * len(workspace_ids)) or 'NULL'})", list(workspace_ids)


def count_executions(store: ViewStore, execution_ids: Collection[Id],
                     workspace_ids: Collection[str]) -> int:
    """How many of these executions are in these workspaces."""
    where, params = _where_workspaces(workspace_ids)
    ids = [uuid_text(i) for i in execution_ids]
    total = 0
    with store.read() as cur:
        for chunk in chunks(ids):
            marks = ", ".join("?" * len(chunk))
            (count,) = cur.execute(f"SELECT COUNT(*) FROM executions WHERE {where} "
                                   f"AND id IN ({marks})", [*params, *chunk]).fetchone()
            total += count
    return total


def get_execution(store: ViewStore, execution_id: Id) -> dict[str, Any] | None:
    with store.read() as cur:
        row = cur.execute("SELECT * FROM executions WHERE id = ?",
                          (uuid_text(execution_id),)).fetchone()
    return None if row is None else _execution(row)


def list_executions(store: ViewStore, workspace_ids: Collection[str] | None, *,
                    status: str | None = None, strategy_id: Id | None = None,
                    limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Newest first."""
    where, params = _where_workspaces(workspace_ids)
    if status is not None:
        where, params = f"{where} AND status = ?", [*params, status]
    if strategy_id is not None:
        where, params = f"{where} AND strategy_id = ?", [*params, uuid_text(strategy_id)]
    with store.read() as cur:
        rows = cur.execute(f"SELECT * FROM executions WHERE {where}"
                           " ORDER BY started_at DESC, id LIMIT ? OFFSET ?",
                           (*params, limit, offset)).fetchall()
    return [_execution(row) for row in rows]


def execution_count(store: ViewStore, workspace_ids: Collection[str]) -> int:
    where, params = _where_workspaces(workspace_ids)
    with store.read() as cur:
        (count,) = cur.execute(f"SELECT COUNT(*) FROM executions WHERE {where}",
                               params).fetchone()
    return int(count)


def list_tasks(store: ViewStore, execution_id: Id) -> list[dict[str, Any]]:
    """In plan order."""
    with store.read() as cur:
        rows = cur.execute("SELECT * FROM tasks WHERE execution_id = ? ORDER BY plan_order",
                           (uuid_text(execution_id),)).fetchall()
    return [{
        "executionId": r["execution_id"], "taskId": r["task_id"], "itemId": r["item_id"],
        "title": r["title"], "agent": r["agent"], "priority": r["priority"],
        "dependsOn": json.loads(r["depends_on"]), "order": r["plan_order"],
        "status": r["status"], "attempt": r["attempt"], "failures": r["failures"],
        "progress": r["progress"], "errorKind": r["error_kind"],
        "errorMessage": r["error_message"], "retryAt": r["retry_at"],
        "result": None if r["result"] is None else json.loads(r["result"]),
        "durationMs": r["duration_ms"], "assignedAt": r["assigned_at"],
        "startedAt": r["started_at"], "finishedAt": r["finished_at"],
    } for r in rows]


def agent_metrics(store: ViewStore, execution_id: Id) -> list[dict[str, Any]]:
    """Per agent type (sorted): counters, rates, durations and utilisation; see
    `metrics.agent_rates`."""
    key = uuid_text(execution_id)
    with store.read() as cur:
        rows = cur.execute("SELECT * FROM agent_metrics WHERE execution_id = ? ORDER BY agent",
                           (key,)).fetchall()
        durations: dict[str, list[float]] = defaultdict(list)
        under_way: dict[tuple[str, str], int] = defaultdict(int)
        for agent, status, duration in cur.execute(
                "SELECT agent, status, duration_ms FROM tasks WHERE execution_id = ?"
                " AND status IN ('completed', 'assigned', 'in_progress')", (key,)):
            if status != "completed":
                under_way[agent, status] += 1
            elif duration is not None:
                durations[agent].append(duration)
    return [agent_rates(row, durations[row["agent"]], Occupancy(
        under_way[row["agent"], "in_progress"], under_way[row["agent"], "assigned"]))
        for row in rows]


def _snapshot(row: Any) -> dict[str, Any]:
    """A health_snapshots row: its columns are the Assessed event's fields, and more."""
    return camel(dict(row)) | {"issues": json.loads(row["issues"]),
                               "eta": _json_or_none(row["eta"])}


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def health_snapshots(store: ViewStore, execution_id: Id, limit: int = 1000,
                     ) -> list[dict[str, Any]]:
    """The most recent `limit` assessments, oldest first."""
    with store.read() as cur:
        rows = cur.execute("SELECT * FROM health_snapshots WHERE execution_id = ?"
                           " ORDER BY position DESC LIMIT ?",
                           (uuid_text(execution_id), limit)).fetchall()
    return [_snapshot(row) for row in reversed(rows)]


def latest_health(store: ViewStore, execution_id: Id) -> dict[str, Any] | None:
    snapshots = health_snapshots(store, execution_id, limit=1)
    return snapshots[0] if snapshots else None


SNAPSHOT_ONLY = frozenset({"position", "executionId", "workspaceId", "eta"})  # not in a Health


def current_health(store: ViewStore, execution: dict[str, Any]) -> dict[str, Any]:
    """The health of `execution` (a `get_execution` dict) as /status shows it.

    The latest recorded assessment; before the first, the one the health monitor would
    record now: `assess` of the same inputs (`health_inputs`), with `recordedAt` None.
    `outcome` is how the execution ended (`completed`, `failed` or `cancelled`), null while
    it has not: a score says how well the tasks went, not that the execution succeeded.
    """
    status = execution["status"]
    outcome = {"outcome": status if status in FINISHED_EXECUTION else None}
    with store.read():  # one snapshot (or the caller's)
        latest = latest_health(store, execution["id"])
        if latest is None:
            assessment = assess(health_inputs(store, execution))
            return {key: value for key, value in camel(assessment.as_event()).items()
                    if key not in SNAPSHOT_ONLY} | {
                "recordedAt": None, "healthy": assessment.healthy} | outcome
    return {key: value for key, value in latest.items() if key not in SNAPSHOT_ONLY} | {
        "healthy": latest["score"] >= UNHEALTHY_BELOW} | outcome


def current_eta(store: ViewStore, execution_id: Id) -> dict[str, Any] | None:
    """The completion estimate recorded last for a running execution; None for one that
    is not running, or has none (see `domain.eta`)."""
    with store.read() as cur:
        row = cur.execute("SELECT status, eta FROM executions WHERE id = ?",
                          (uuid_text(execution_id),)).fetchone()
    return None if row is None else running_eta(row)


def health_inputs(store: ViewStore, execution: dict[str, Any]) -> HealthInputs:
    """What `Execution.health_inputs` gives, read from the views: task counts from the
    execution's row; finished and failed attempts and the mean duration of successful ones
    from its agent metrics; the tasks that failed for good, in the order they failed (by
    time, then plan order: the tasks view keeps no log position)."""
    key = uuid_text(execution["id"])
    with store.read() as cur:
        succeeded, failed_attempts, duration_sum = cur.execute(
            "SELECT COALESCE(SUM(duration_count), 0), COALESCE(SUM(failed_attempts), 0),"
            " COALESCE(SUM(duration_sum_ms), 0.0) FROM agent_metrics WHERE execution_id = ?",
            (key,)).fetchone()
        failed_task_ids = tuple(row[0] for row in cur.execute(
            "SELECT task_id FROM tasks WHERE execution_id = ? AND status = 'failed'"
            " ORDER BY finished_at, plan_order", (key,)))
    return HealthInputs(
        total=execution["totalTasks"], completed=execution["completedTasks"],
        failed=execution["failedTasks"], skipped=execution["skippedTasks"],
        cancelled=execution["cancelledTasks"], attempts=succeeded + failed_attempts,
        failed_attempts=failed_attempts,
        mean_duration_ms=duration_sum / succeeded if succeeded else 0.0,
        failed_task_ids=failed_task_ids)


def feed_since(store: ViewStore, after_position: int, execution_id: Id | None = None,
               workspace_ids: Collection[str] | None = None, limit: int = 1000,
               ) -> list[dict[str, Any]]:
    """Feed rows after a position, oldest first, as the runner hands them to subscribers:
    those of one execution, or of some workspaces and those for every workspace."""
    if execution_id is None and workspace_ids is not None:
        workspace_ids = [*workspace_ids, EVERY_WORKSPACE]
    where, params = _where_workspaces(workspace_ids)
    if execution_id is not None:
        where, params = f"{where} AND execution_id = ?", [*params, uuid_text(execution_id)]
    with store.read() as cur:
        rows = cur.execute(f"SELECT {FEED_COLUMNS} FROM event_feed WHERE position > ?"
                           f" AND {where} ORDER BY position LIMIT ?",
                           (after_position, *params, limit)).fetchall()
    return [feed_row(row) for row in rows]


def paused_agent_types(store: ViewStore) -> list[dict[str, Any]]:
    """The agent types whose circuit breaker is open or half-open, by name."""
    with store.read() as cur:
        rows = cur.execute("SELECT * FROM agent_circuits WHERE state != 'closed'"
                           " ORDER BY agent_type").fetchall()
    return [{"agentType": r["agent_type"], "state": r["state"],
             "failureRate": r["failure_rate"], "window": r["window_size"],
             "attempts": json.loads(r["attempts"]), "pausedAt": r["paused_at"],
             "probeAt": r["probe_at"]} for r in rows]


def _strategy(row: Any, with_document: bool) -> dict[str, Any]:
    strategy = {
        "id": row["id"], "workspaceId": row["workspace_id"], "name": row["name"],
        "itemCount": row["item_count"], "leafCount": row["leaf_count"],
        "taskCount": row["task_count"], "definedAt": row["defined_at"],
    }
    if with_document:
        strategy["document"] = json.loads(row["document"])
    return strategy


def list_strategies(store: ViewStore, workspace_ids: Collection[str] | None,
                    limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """By name, without their documents."""
    where, params = _where_workspaces(workspace_ids)
    with store.read() as cur:
        rows = cur.execute(f"SELECT * FROM strategies WHERE {where}"
                           " ORDER BY name, id LIMIT ? OFFSET ?",
                           (*params, limit, offset)).fetchall()
    return [_strategy(row, with_document=False) for row in rows]


def get_strategy(store: ViewStore, strategy_id: Id) -> dict[str, Any] | None:
    with store.read() as cur:
        row = cur.execute("SELECT * FROM strategies WHERE id = ?",
                          (uuid_text(strategy_id),)).fetchone()
    return None if row is None else _strategy(row, with_document=True)


def operational_counts(store: ViewStore, workspace_ids: Collection[str]
                       ) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Executions by status, and tasks by (agent, status), in some workspaces (/metrics)."""
    where, params = _where_workspaces(workspace_ids)
    with store.read() as cur:
        executions = {row[0]: row[1] for row in cur.execute(
            f"SELECT status, COUNT(*) FROM executions WHERE {where} GROUP BY status", params)}
        tasks = {(row[0], row[1]): row[2] for row in cur.execute(
            "SELECT t.agent, t.status, COUNT(*) FROM tasks t JOIN executions e ON "
            f"e.id = t.execution_id WHERE e.{where} GROUP BY t.agent, t.status", params)}
    return executions, tasks


def token_usage(store: ViewStore, workspace_ids: Collection[str]
                ) -> dict[str, tuple[int, int, float]]:
    """Per agent type, the prompt and completion tokens and the cost of every execution in
    some workspaces (/metrics); only agent types that reported any."""
    where, params = _where_workspaces(workspace_ids)
    with store.read() as cur:
        return {row[0]: (row[1], row[2], row[3]) for row in cur.execute(
            "SELECT m.agent, SUM(m.prompt_tokens), SUM(m.completion_tokens), SUM(m.cost)"
            " FROM agent_metrics m JOIN executions e ON e.id = m.execution_id"
            f" WHERE e.{where} GROUP BY m.agent"
            " HAVING SUM(m.prompt_tokens) + SUM(m.completion_tokens) > 0 OR SUM(m.cost) > 0"
            " ORDER BY m.agent", params)}
