"""The runner: exactly once, restartable, woken by saves, and never skipping a bad event."""

from __future__ import annotations

import queue
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from projection_scenarios import T0, drive_to_failure, start_execution

from stratexec.domain.application import StratexecApp
from stratexec.projections import events as ev
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch
from stratexec.projections.catalog import ALL
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore, read_tracking


@pytest.fixture
def app(sqlite_app: StratexecApp) -> StratexecApp:
    return sqlite_app  # these tests need no second store: SQLite only


def last_position(app: StratexecApp) -> int:
    return app.recorder.max_notification_id() or 0


def counts(store: ViewStore) -> list[tuple[Any, ...]]:
    with store.read() as cur:
        rows = cur.execute("SELECT id, pending, assigned, completed, failed, skipped, retries"
                           " FROM executions ORDER BY id").fetchall()
        feed = cur.execute("SELECT COUNT(*) FROM event_feed").fetchone()[0]
    return [*map(tuple, rows), (feed,)]


def test_catch_up_twice_applies_each_event_once(app: StratexecApp, store: ViewStore) -> None:
    drive_to_failure(app, start_execution(app))
    runner = ProjectionRunner(app, store, batch_size=4)
    assert runner.catch_up() == last_position(app)
    before = counts(store)
    assert runner.catch_up() == last_position(app)
    assert ProjectionRunner(app, store).catch_up() == last_position(app)
    assert counts(store) == before
    with store.read() as cur:
        assert read_tracking(cur) == dict.fromkeys((v.name for v in ALL), last_position(app))


def test_a_new_runner_continues_from_the_tracking_position(
        app: StratexecApp, store: ViewStore) -> None:
    execution = start_execution(app)
    first = ProjectionRunner(app, store)
    first.catch_up()
    drive_to_failure(app, execution)
    second = ProjectionRunner(app, store)
    assert second.position == first.position < last_position(app)
    second.catch_up()
    with store.read() as cur:
        row = cur.execute("SELECT status, completed, failed, skipped FROM executions").fetchone()
    assert tuple(row) == ("failed", 2, 1, 3)


def drain(received: queue.Queue[tuple[list[dict[str, Any]], int]],
          ) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    position = -1
    while not received.empty():
        batch, position = received.get_nowait()
        rows += batch
    return rows, position


def test_thread_wakes_on_save_and_hands_feed_rows_to_subscribers(
        app: StratexecApp, store: ViewStore) -> None:
    received: queue.Queue[tuple[list[dict[str, Any]], int]] = queue.Queue()
    with ProjectionRunner(app, store, poll_interval=60) as runner:
        runner.subscribe(lambda rows, position: received.put((rows, position)))
        execution = start_execution(app)
        assert runner.wait_for(last_position(app), timeout=10)
        rows, position = drain(received)
        assert position == last_position(app)
        assert [row["type"] for row in rows] == ["execution-started"]
        assert rows[0].keys() == {"position", "executionId", "workspaceId", "type", "data",
                                  "recordedAt"}
        assert (rows[0]["executionId"], rows[0]["workspaceId"]) == (str(execution.id), "demo")
        execution.assign_ready_tasks(T0)
        app.save(execution)
        assert runner.wait_for(last_position(app), timeout=10)
        rows, position = drain(received)
        assert [row["type"] for row in rows] == ["task-assigned", "task-assigned"]
        assert [row["position"] for row in rows] == [position - 1, position]
        with pytest.raises(RuntimeError):
            runner.catch_up()


class FlakyView(View):
    """Fails on its first Started event; records what the runner reported meanwhile."""

    name: ClassVar[str] = "flaky"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    schema: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.attempts = 0
        self.error_seen: Exception | None = None
        self.runner: ProjectionRunner | None = None

    def handlers(self) -> Mapping[type, Handler]:
        return {ev.STARTED: self._started}

    def _started(self, batch: Batch, event: Any) -> None:
        self.attempts += 1
        if self.attempts == 1:
            raise ValueError("cannot project this yet")
        assert self.runner is not None
        self.error_seen = self.runner.error


def test_a_failing_batch_is_retried_and_never_skipped(
        app: StratexecApp, store: ViewStore) -> None:
    flaky = FlakyView()
    runner = ProjectionRunner(app, store, projections=[*ALL, flaky], poll_interval=60)
    flaky.runner = runner
    with runner:
        start_execution(app)
        assert runner.wait_for(last_position(app), timeout=10)
    assert flaky.attempts == 2
    assert isinstance(flaky.error_seen, ValueError)
    assert runner.error is None
    with store.read() as cur:
        assert cur.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 1


def test_catch_up_raises_what_a_view_raises(app: StratexecApp, store: ViewStore) -> None:
    start_execution(app)
    runner = ProjectionRunner(app, store, projections=[*ALL, FlakyView()])
    with pytest.raises(ValueError, match="cannot project"):
        runner.catch_up()
    assert runner.position == 0
    with store.read() as cur:
        assert cur.execute("SELECT COUNT(*) FROM strategies").fetchone()[0] == 0


def test_wait_for_times_out_and_stop_removes_the_listener(
        app: StratexecApp, store: ViewStore) -> None:
    runner = ProjectionRunner(app, store)
    assert not runner.wait_for(1, timeout=0.01)
    runner.start()
    runner.stop()
    assert not app._listeners
    start_execution(app)
    assert runner.position == 0
