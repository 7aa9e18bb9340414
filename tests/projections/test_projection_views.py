"""Each view mirrors the aggregates, on every event store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from helpers import chain_strategy
from projection_scenarios import FEED_TYPES, R1, R2, S1, S2, drive_to_failure, start_and_cancel
from projection_scenarios import start_execution as start

from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution
from stratexec.domain.strategy import Strategy
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore


def project(app: StratexecApp, store: ViewStore) -> int:
    return ProjectionRunner(app, store).catch_up()


def assert_mirrors(store: ViewStore, execution: Execution) -> None:
    with store.read() as cur:
        row = cur.execute("SELECT * FROM executions WHERE id = ?", (str(execution.id),)).fetchone()
        tasks = cur.execute("SELECT * FROM tasks WHERE execution_id = ?",
                            (str(execution.id),)).fetchall()
    assert row["status"] == execution.status
    assert row["version"] == execution.version
    assert row["total_tasks"] == execution.total_tasks
    assert {s: row[s] for s in map(str, execution.counts)} == {
        str(s): n for s, n in execution.counts.items()}
    assert row["retries"] == sum(execution.agent_retries.values())
    assert {t["task_id"]: (t["status"], t["attempt"], t["failures"], t["error_kind"])
            for t in tasks} == {
        t.id: (t.status, t.attempt, t.failures, t.error_kind) for t in execution.tasks.values()}


def test_executions_and_tasks_mirror_the_aggregate_at_every_step(
        app: StratexecApp, store: ViewStore) -> None:
    execution = start(app)
    project(app, store)
    assert_mirrors(store, execution)
    drive_to_failure(app, execution)
    project(app, store)
    assert_mirrors(store, app.get_execution(execution.id))
    cancelled = start_and_cancel(app)
    project(app, store)
    assert_mirrors(store, app.get_execution(cancelled.id))
    with store.read() as cur:
        finished = dict(cur.execute("SELECT status, finished_at IS NOT NULL FROM executions"
                                    " ORDER BY status").fetchall())
        health = cur.execute("SELECT health_score, health_status FROM executions WHERE id = ?",
                             (str(execution.id),)).fetchone()
    assert finished == {"cancelled": 1, "failed": 1}
    assert tuple(health) == (app.get_health(execution.id).last.score,  # type: ignore[union-attr]
                             app.get_health(execution.id).last.status)  # type: ignore[union-attr]


def test_task_rows_keep_results_errors_and_times(app: StratexecApp, store: ViewStore) -> None:
    execution = drive_to_failure(app, start(app))
    project(app, store)
    with store.read() as cur:
        rows = {r["task_id"]: r for r in cur.execute(
            "SELECT * FROM tasks WHERE execution_id = ?", (str(execution.id),))}
    assert json.loads(rows[S1]["result"]) == {"sent": 3, "at": "2026-01-01T12:00:00+00:00"}
    assert (rows[S1]["duration_ms"], rows[S1]["progress"]) == (120.0, 1.0)
    assert rows[R1]["error_message"] == "cannot parse"
    assert rows[R1]["finished_at"] is not None
    assert (rows[R2]["status"], rows[R2]["attempt"]) == ("skipped", 0)
    assert json.loads(rows[R2]["depends_on"]) == [R1]


def test_metrics_mirror_the_aggregate_per_agent(app: StratexecApp, store: ViewStore) -> None:
    execution = drive_to_failure(app, start(app))
    start_and_cancel(app)
    project(app, store)
    with store.read() as cur:
        rows = cur.execute("SELECT * FROM agent_metrics WHERE execution_id = ? ORDER BY agent",
                           (str(execution.id),)).fetchall()
    expected = execution.agent_metrics()
    assert [r["agent"] for r in rows] == list(expected)
    for row in rows:
        wanted = expected[row["agent"]]
        assert (row["tasks"], row["completed"], row["failed"], row["skipped"], row["cancelled"],
                row["retries"]) == (wanted["tasks"], wanted["completed"], wanted["failed"],
                                    wanted["skipped"], wanted["cancelled"], wanted["retries"])
    research = next(r for r in rows if r["agent"] == "research")
    assert (research["attempts"], research["failed_attempts"]) == (3, 2)


def test_feed_has_one_row_per_mapped_event_at_its_position(
        app: StratexecApp, store: ViewStore) -> None:
    drive_to_failure(app, start(app))
    cancelled = start_and_cancel(app)
    project(app, store)
    expected = {}
    for notification in app.read_notifications():
        name = notification.topic.split(":", 1)[1]
        if name in FEED_TYPES:
            expected[notification.id] = FEED_TYPES[name]
    with store.read() as cur:
        rows = cur.execute("SELECT position, type, workspace_id, data FROM event_feed"
                           " ORDER BY position").fetchall()
    assert {r["position"]: r["type"] for r in rows} == expected
    assert all(json.loads(r["data"])["executionId"] for r in rows)
    assert {r["workspace_id"] for r in rows} == {"demo", "other"}
    last = json.loads(rows[-1]["data"])
    assert last == {"executionId": str(cancelled.id), "status": "cancelled",
                    "cancelledTasks": 6}


def test_feed_data_of_each_type(app: StratexecApp, store: ViewStore) -> None:
    execution = drive_to_failure(app, start(app))
    project(app, store)
    with store.read() as cur:
        data = [(r["type"], json.loads(r["data"])) for r in cur.execute(
            "SELECT type, data FROM event_feed ORDER BY position")]
    first = {kind: payload for kind, payload in reversed(data)}
    assert first["execution-started"]["totalTasks"] == 6
    assert first["execution-started"]["status"] == "pending"
    assert first["task-assigned"].keys() == {
        "executionId", "taskId", "agent", "attempt", "itemId", "title"}
    failures = [payload for kind, payload in data if kind == "task-failed"]
    assert [(f["taskId"], f["errorKind"], f["willRetry"]) for f in failures] == [
        (R1, "timeout", True), (R1, "interrupted", True), (S2, "interrupted", True),
        (R1, "bad_input", False)]
    assert failures[0]["retryAt"].startswith("2026-01-01T12:00:0")
    assert first["task-skipped"]["failedTaskId"] == R1
    finished = first["execution-completed"]
    assert finished == {
        "executionId": str(execution.id), "status": "failed", "completedTasks": 2,
        "failedTasks": 1, "skippedTasks": 3, "totalTasks": 6,
        "finishedAt": finished["finishedAt"]}
    metrics = [payload for kind, payload in data if kind == "metrics-update"]
    assert metrics[-1]["agents"] == {  # sampled without a concurrency, as a monitor did once
        agent: {**counts, "running": counts["in_progress"], "queued": counts["assigned"],
                "concurrency": None, "utilisation": None}
        for agent, counts in execution.agent_metrics().items()}
    assert metrics[-1]["eta"] is None


def test_strategy_and_propagation_views(app: StratexecApp, store: ViewStore) -> None:
    execution = start(app)
    project(app, store)
    with store.read() as cur:
        strategy = cur.execute("SELECT * FROM strategies").fetchone()
        log = cur.execute("SELECT item_id, rule, keyword, task_ids FROM propagation_log"
                          " ORDER BY item_id").fetchall()
    assert (strategy["id"], strategy["item_count"], strategy["leaf_count"],
            strategy["task_count"]) == (str(execution.strategy_id), 6, 3, 6)
    assert json.loads(strategy["document"])["workspaceId"] == "demo"
    assert [(r[0], r[1], r[2], json.loads(r[3])) for r in log] == [
        ("l4-research-topics", "research", "research", [R1, R2]),
        ("l4-schedule-review", "scheduling", "schedule", [S1, S2]),
        ("l4-write-newsletter", "content", "write",
         ["l4-write-newsletter:content", "l4-write-newsletter:analysis"]),
    ]


def test_a_strategy_recorded_without_its_task_count_gets_it_computed(
        app: StratexecApp, store: ViewStore) -> None:
    """Strategy.Defined events from before they carried `task_count` still show one."""
    definition = chain_strategy(["a", "b"], ["c"])
    counted, _ = app.define_strategy(definition)
    older = Strategy.define(definition)  # as recorded before: no task count
    app.save(older)
    assert (counted.task_count, older.task_count) == (3, None)
    project(app, store)
    with store.read() as cur:
        counts = dict(cur.execute("SELECT id, task_count FROM strategies").fetchall())
    assert counts == {str(counted.id): 3, str(older.id): 3}
