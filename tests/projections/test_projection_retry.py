"""A retry by hand in the read models: counts, task rows, metrics and the feed follow the
aggregate, and a rebuild from position 0 gives the same rows (every store)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from projection_scenarios import R1, T0, drive_to_failure, record_health, start_execution

from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.projections.verify import compare, rebuild


def retry_to_completion(app: StratexecApp, execution: Execution) -> tuple[int, Execution]:
    """Retry the failed execution of `drive_to_failure`, then run everything it reopened;
    the log position of the retry, and the execution as it ends."""
    e = app.get_execution(execution.id)
    e.retry_failed()
    retried_at = app.record(e)
    run_to_the_end(app, e)
    record_health(app, e)
    return retried_at, e


def run_to_the_end(app: StratexecApp, e: Execution) -> None:
    """Every attempt succeeds, a save after each round of assignments."""
    at = T0 + timedelta(minutes=1)
    while not e.finish_if_done():
        for task in e.assign_ready_tasks(at):
            e.start_task(task.id, task.attempt)
            e.succeed_task(task.id, task.attempt, {"again": True}, 40.0)
        app.save(e)
    app.save(e)


def rows(store: ViewStore, sql: str, *params: object) -> list[dict[str, object]]:
    with store.read() as cur:
        return [dict(row) for row in cur.execute(sql, params)]


def test_views_follow_a_retry_and_the_run_it_reopens(app: StratexecApp, store: ViewStore
                                                     ) -> None:
    failed = drive_to_failure(app, start_execution(app))
    skipped = sorted(t.id for t in failed.tasks.values() if t.status == "skipped")
    retried_at, _ = retry_to_completion(app, failed)
    runner = ProjectionRunner(app, store)
    runner.catch_up()

    feed = rows(store, "SELECT position, type, data FROM event_feed WHERE position = ?",
                retried_at)
    assert feed[0]["type"] == "execution-resumed"
    assert json.loads(str(feed[0]["data"])) == {
        "executionId": str(failed.id), "status": "running", "taskIds": [R1],
        "unskippedTaskIds": sorted(skipped, key=lambda t: failed.tasks[t].plan.order)}

    (execution,) = rows(store, "SELECT * FROM executions")
    assert (execution["status"], execution["completed"], execution["failed"],
            execution["skipped"]) == ("completed", 6, 0, 0)
    r1 = rows(store, "SELECT * FROM tasks WHERE task_id = ?", R1)[0]
    assert (r1["status"], r1["attempt"], r1["failures"]) == ("completed", 4, 0)
    metrics = {row["agent"]: row for row in rows(store, "SELECT * FROM agent_metrics")}
    assert sum(int(str(m["failed"])) + int(str(m["skipped"])) for m in metrics.values()) == 0
    assert metrics["research"]["attempts"] == 4  # three before the retry, one after


def test_views_mirror_the_aggregate_right_after_the_retry(app: StratexecApp, store: ViewStore
                                                          ) -> None:
    failed = drive_to_failure(app, start_execution(app))
    e = app.get_execution(failed.id)
    e.retry_failed()
    app.save(e)
    ProjectionRunner(app, store).catch_up()

    (execution,) = rows(store, "SELECT * FROM executions")
    assert execution["status"] == "running"
    assert execution["finished_at"] is None
    assert {str(s): execution[str(s)] for s in e.counts} == {
        str(s): n for s, n in e.counts.items()}
    tasks = {row["task_id"]: row for row in rows(store, "SELECT * FROM tasks")}
    assert {t: (r["status"], r["attempt"], r["failures"]) for t, r in tasks.items()} == {
        t.id: (t.status, t.attempt, t.failures) for t in e.tasks.values()}
    assert all(r["finished_at"] is None for r in tasks.values() if r["status"] == "pending")
    metrics = rows(store, "SELECT * FROM agent_metrics ORDER BY agent")
    expected = e.agent_metrics()
    for row in metrics:
        wanted = expected[str(row["agent"])]
        assert (row["completed"], row["failed"], row["skipped"], row["retries"]) == (
            wanted["completed"], wanted["failed"], wanted["skipped"], wanted["retries"])


def test_a_rebuild_after_a_retry_is_identical(app: StratexecApp, tmp_path: Path) -> None:
    with ViewStore(str(tmp_path / "live.sqlite")) as live, \
            ViewStore(str(tmp_path / "rebuilt.sqlite")) as rebuilt:
        with ProjectionRunner(app, live, batch_size=5, poll_interval=60) as runner:
            retry_to_completion(app, drive_to_failure(app, start_execution(app)))
            assert runner.wait_for(app.recorder.max_notification_id() or 0, timeout=10)
        assert rebuild(app, rebuilt) == runner.position
        assert compare(live, rebuilt) == []


def test_a_reopened_execution_counts_as_unfinished_until_it_ends_again(app: StratexecApp
                                                                       ) -> None:
    failed = drive_to_failure(app, start_execution(app))
    assert failed.id not in app.unfinished_execution_ids()
    e = app.get_execution(failed.id)
    e.retry_failed()
    app.save(e)
    assert app.unfinished_execution_ids() == [failed.id]
    run_to_the_end(app, e)
    assert app.unfinished_execution_ids() == []
