"""Read models are disposable: a rebuild from position 0 gives the same rows (every store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from projection_scenarios import drive_to_failure, start_and_cancel, start_execution

from stratexec.domain.application import StratexecApp
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.projections.verify import compare, rebuild


@pytest.fixture
def live(tmp_path: Path) -> Iterator[ViewStore]:
    with ViewStore(str(tmp_path / "views.sqlite")) as views:
        yield views


@pytest.fixture
def rebuilt(tmp_path: Path) -> Iterator[ViewStore]:
    with ViewStore(str(tmp_path / "rebuilt.sqlite")) as views:
        yield views


def test_rebuild_of_live_views_is_identical(
        app: StratexecApp, live: ViewStore, rebuilt: ViewStore) -> None:
    with ProjectionRunner(app, live, batch_size=7, poll_interval=60) as runner:
        drive_to_failure(app, start_execution(app))
        start_and_cancel(app)
        assert runner.wait_for(app.recorder.max_notification_id() or 0, timeout=10)
    assert rebuild(app, rebuilt) == runner.position
    assert compare(live, rebuilt) == []


def test_compare_names_each_altered_row(
        app: StratexecApp, live: ViewStore, rebuilt: ViewStore) -> None:
    execution = drive_to_failure(app, start_execution(app))
    ProjectionRunner(app, live).catch_up()
    rebuild(app, rebuilt)
    with live.write() as cur:
        cur.execute("UPDATE tasks SET status = 'completed' WHERE task_id LIKE '%:research'")
        cur.execute("DELETE FROM event_feed WHERE position = 3")
        cur.execute("UPDATE tracking SET position = 1 WHERE view = 'metrics'")
    assert compare(live, rebuilt) == [
        f"tracking (view='metrics'): position 1 != {app.recorder.max_notification_id()}",
        f"tasks (execution_id='{execution.id}', task_id='l4-research-topics:research'):"
        " status 'completed' != 'failed'",
        f"event_feed (position=3): only in {rebuilt.path}",
    ]


def test_rebuild_needs_an_empty_store(app: StratexecApp, live: ViewStore) -> None:
    start_execution(app)
    ProjectionRunner(app, live).catch_up()
    with pytest.raises(ValueError, match="already holds views"):
        rebuild(app, live)
