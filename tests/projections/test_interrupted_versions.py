"""Execution.TaskInterrupted version 1 (no `counted`: every interruption was free) beside
version 2, in one stored log, read by today's aggregate, views and audit (every store).

The version 1 events are today's, stored without the fields version 2 added: that is what
the code before it wrote (the same event, `task_id`, `attempt` and `reason`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from helpers import chain_strategy

from stratexec.actors.turn import INTERRUPTED_BY_RESTART
from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution, TaskStatus
from stratexec.domain.propagation import propagate
from stratexec.domain.retry import RetryPolicy
from stratexec.projections import audit, queries
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.projections.verify import compare, rebuild

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
INTERRUPTED = "stratexec:Execution.TaskInterrupted"


def as_version_1(app: StratexecApp, events: list[Any]) -> list[StoredEvent]:
    stored = []
    for event in events:
        record = app.mapper.to_stored_event(event)
        if record.topic == INTERRUPTED:
            state = app.mapper.transcoder.decode(record.state)
            del state["counted"], state["class_version"]
            record = StoredEvent(record.originator_id, record.originator_version, record.topic,
                                 app.mapper.transcoder.encode(state))
        stored.append(record)
    return stored


def lost_three_times_before(app: StratexecApp) -> UUID:
    """A log of the code before `counted`: a:research lost in three crashes, each free then,
    although its retry policy allows two attempts."""
    strategy, _ = app.define_strategy(chain_strategy(["a", "b"]))
    execution = Execution.start(strategy.id, "w", "chains", propagate(strategy.definition.items),
                                RetryPolicy(maximum_attempts=2, initial_interval=0.0))
    for _ in range(3):
        execution.assign_ready_tasks(NOW)
        execution.start_task("a:research", execution.task("a:research").attempt)
        execution.interrupt_task("a:research", execution.task("a:research").attempt,
                                 INTERRUPTED_BY_RESTART)
    app.recorder.insert_events(as_version_1(app, list(execution.collect_events())))
    return execution.id


def crash_during_next_attempt(app: StratexecApp, execution_id: UUID) -> Execution:
    execution = app.get_execution(execution_id)
    execution.assign_ready_tasks(NOW)
    execution.start_task("a:research", execution.task("a:research").attempt)
    execution.interrupt_active_tasks(INTERRUPTED_BY_RESTART)
    execution.finish_if_done()
    app.save(execution)
    return execution


def task_row(store: ViewStore, execution_id: UUID, task_id: str) -> dict[str, Any]:
    return next(t for t in queries.list_tasks(store, execution_id) if t["taskId"] == task_id)


def test_the_fixture_holds_version_1_interruptions(app: StratexecApp) -> None:
    lost_three_times_before(app)
    states = [app.mapper.transcoder.decode(n.state)
              for n in app.read_notifications(topics=[INTERRUPTED])]
    assert [sorted(s) for s in states] == [["attempt", "reason", "task_id", "timestamp"]] * 3


def test_an_old_log_replays_as_before_and_counts_from_the_next_crash(
        app: StratexecApp, store: ViewStore, tmp_path: Path) -> None:
    execution_id = lost_three_times_before(app)
    before = app.get_execution(execution_id).task("a:research")
    assert (before.status, before.attempt, before.interruptions) == (TaskStatus.PENDING, 3, 0)
    runner = ProjectionRunner(app, store)
    runner.catch_up()
    assert task_row(store, execution_id, "a:research")["status"] == "pending"

    first = crash_during_next_attempt(app, execution_id)  # 1 of 2 attempts used
    assert first.task("a:research").status is TaskStatus.PENDING
    last = crash_during_next_attempt(app, execution_id)
    task = last.task("a:research")
    assert (task.status, task.attempt, task.failures, task.interruptions) == (
        TaskStatus.FAILED, 5, 1, 1)
    assert last.status == "failed"
    runner.catch_up()

    row = task_row(store, execution_id, "a:research")
    assert (row["status"], row["errorKind"], row["failures"], row["durationMs"]) == (
        "failed", "interrupted", 1, None)
    assert task_row(store, execution_id, "b:research")["status"] == "skipped"
    execution = queries.get_execution(store, execution_id)
    assert execution is not None
    assert (execution["status"], execution["failedTasks"], execution["skippedTasks"]) == (
        "failed", 1, 1)
    feed = [json.loads(r["data"]) for r in queries.feed_since(store, 0, execution_id)
            if r["type"] == "task-failed"]
    assert [(f["attempt"], f["errorKind"], f["willRetry"]) for f in feed] == [
        (1, "interrupted", True), (2, "interrupted", True), (3, "interrupted", True),
        (4, "interrupted", True), (5, "interrupted", False)]
    history = [(e["data"]["attempt"], e["data"]["counted"]) for e in audit.history(
        app, execution_id) if e["type"] == "Execution.TaskInterrupted"]
    assert history == [(1, False), (2, False), (3, False), (4, True)]

    with ViewStore(str(tmp_path / "rebuilt.sqlite")) as rebuilt:
        assert rebuild(app, rebuilt) == runner.position
        assert compare(store, rebuilt) == []
