"""ExecutionHealth.Assessed version 1, as commit 495cb3a wrote it, read by today's code
(which reads it as made without a completion estimate: `eta` null, as version 2 too).

`fixtures/health-v1-events.json` holds the stored events of one execution driven by
`projection_scenarios.drive_to_failure` on that code (`write_health_fixture.py`), with two
assessments in camelCase and without `class_version`. They are inserted as they were
stored, then read through today's StratexecApp and projected (every store).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from stratexec.domain.application import MsgpackTranscoder, StratexecApp
from stratexec.domain.health import HealthAssessment, health_id
from stratexec.projections import audit, queries
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.projections.verify import compare, rebuild

FIXTURE = Path(__file__).parent / "fixtures" / "health-v1-events.json"
ASSESSED = "stratexec:ExecutionHealth.Assessed"
FIRST = HealthAssessment(100, "Excellent", 1.0, 0.0, 0.0, ())
SECOND = HealthAssessment(61, "Good", 0.3333, 0.5, 100.0, (
    "Completion rate 33% is below the 80% target", "Error rate 50% is above the 20% threshold",
    "1 task(s) failed for good: l4-research-topics:research",
    "3 task(s) skipped because a dependency failed"))
LATER = HealthAssessment(45, "Degraded", 0.123456, 0.654321, 31_234.56, ("later",))


def fixture_events() -> list[StoredEvent]:
    return [StoredEvent(originator_id=UUID(e["originator_id"]),
                        originator_version=e["originator_version"], topic=e["topic"],
                        state=base64.b64decode(e["state"]))
            for e in json.loads(FIXTURE.read_text())["events"]]


@pytest.fixture
def execution_id(app: StratexecApp) -> UUID:
    """The fixture's execution, its events stored as commit 495cb3a stored them."""
    app.recorder.insert_events(fixture_events())
    return UUID(json.loads(FIXTURE.read_text())["execution_id"])


def stored_assessments(app: StratexecApp) -> list[dict[str, Any]]:
    decode = MsgpackTranscoder().decode
    return [decode(n.state) for n in app.read_notifications(topics=[ASSESSED])]


def wire(assessment: HealthAssessment) -> dict[str, Any]:
    """An assessment as the HTTP answers and the streams show it."""
    return {"score": assessment.score, "status": assessment.status,
            "completionRate": assessment.completion_rate, "errorRate": assessment.error_rate,
            "avgTaskDurationMs": assessment.avg_task_duration_ms,
            "issues": list(assessment.issues)}


def test_the_fixture_holds_version_1_assessments() -> None:
    decode = MsgpackTranscoder().decode
    states = [decode(e.state) for e in fixture_events() if e.topic == ASSESSED]
    assert [sorted(s) for s in states] == [sorted([
        "timestamp", "score", "status", "completionRate", "errorRate", "avgTaskDurationMs",
        "issues"])] * 2


def test_the_aggregate_reads_version_1_assessments(app: StratexecApp, execution_id: UUID,
                                                   ) -> None:
    health = app.get_health(execution_id)
    assert health is not None
    assert health.last == SECOND
    assert app.repository.get(health_id(execution_id), version=2).last == FIRST
    events = [app.mapper.to_domain_event(n) for n in app.read_notifications(topics=[ASSESSED])]
    assert [(e.completion_rate, e.error_rate, e.avg_task_duration_ms)  # type: ignore[attr-defined]
            for e in events] == [(1.0, 0.0, 0.0), (0.3333, 0.5, 100.0)]


def test_the_views_show_version_1_assessments(app: StratexecApp, store: ViewStore,
                                              execution_id: UUID) -> None:
    ProjectionRunner(app, store).catch_up()
    snapshots = queries.health_snapshots(store, execution_id)
    assert [{k: s[k] for k in wire(FIRST)} for s in snapshots] == [wire(FIRST), wire(SECOND)]
    execution = queries.get_execution(store, execution_id)
    assert execution is not None
    assert (execution["healthScore"], execution["healthStatus"]) == (61, "Good")
    assert [s["eta"] for s in snapshots] == [None, None]
    assert queries.current_health(store, execution) == wire(SECOND) | {
        "healthy": True, "recordedAt": snapshots[-1]["recordedAt"], "outcome": "failed"}
    feed = [json.loads(row["data"]) for row in queries.feed_since(store, 0, execution_id)
            if row["type"] == "health-update"]
    assert feed == [{"executionId": str(execution_id), **wire(a), "eta": None}
                    for a in (FIRST, SECOND)]
    history = [e["data"] for e in audit.history(app, execution_id)
               if e["type"] == "ExecutionHealth.Assessed"]
    assert history == [wire(FIRST) | {"eta": None}, wire(SECOND) | {"eta": None}]


def test_views_rebuilt_from_both_versions(app: StratexecApp, store: ViewStore,
                                          execution_id: UUID, tmp_path: Path) -> None:
    runner = ProjectionRunner(app, store)
    runner.catch_up()  # the version 1 events, then a version 2 one on top
    health = app.get_health(execution_id)
    assert health is not None
    assert health.record(LATER)
    app.save(health)
    runner.catch_up()

    stored = stored_assessments(app)
    assert [s.get("class_version") for s in stored] == [None, None, 3]
    assert {"completion_rate", "error_rate", "avg_task_duration_ms"} <= stored[-1].keys()
    later = LATER.rounded()
    assert (later.completion_rate, later.error_rate, later.avg_task_duration_ms) == (
        0.1235, 0.6543, 31_234.6)
    again = app.get_health(execution_id)
    assert again is not None
    assert again.last == later
    with ViewStore(str(tmp_path / "rebuilt.sqlite")) as rebuilt:
        assert rebuild(app, rebuilt) == runner.position
        assert compare(store, rebuilt) == []
        snapshots = queries.health_snapshots(rebuilt, execution_id)
        assert [{k: s[k] for k in wire(FIRST)} for s in snapshots] == [
            wire(FIRST), wire(SECOND), wire(later)]
    history = [e["data"] for e in audit.history(app, execution_id)
               if e["type"] == "ExecutionHealth.Assessed"]
    assert history == [wire(a) | {"eta": None} for a in (FIRST, SECOND, later)]
