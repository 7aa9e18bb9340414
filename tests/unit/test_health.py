"""The health score: deductions from each target, bands, issues; and recording on change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from itertools import product
from uuid import uuid4

import pytest

from stratexec.domain.eta import Eta
from stratexec.domain.health import (
    ExecutionHealth,
    HealthAssessment,
    HealthInputs,
    assess,
    band,
    health_id,
)

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def inputs(
    *, completed: int = 0, failed: int = 0, skipped: int = 0, cancelled: int = 0,
    attempts: int = 0, failed_attempts: int = 0, mean: float = 0.0,
    failed_ids: tuple[str, ...] = (),
) -> HealthInputs:
    return HealthInputs(
        total=completed + failed + skipped + cancelled, completed=completed, failed=failed,
        skipped=skipped, cancelled=cancelled, attempts=attempts,
        failed_attempts=failed_attempts, mean_duration_ms=mean, failed_task_ids=failed_ids,
    )


def issues_starting(assessment: HealthAssessment, prefix: str) -> list[str]:
    return [issue for issue in assessment.issues if issue.startswith(prefix)]


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (100, "Excellent"), (80, "Excellent"), (79, "Good"), (60, "Good"),
        (59, "Degraded"), (40, "Degraded"), (39, "Critical"), (0, "Critical"),
    ],
)
def test_bands_at_their_edges(score: int, status: str) -> None:
    assert band(score) == status


def test_nothing_settled_is_perfect_health() -> None:
    assessment = assess(inputs(cancelled=3))

    assert (assessment.score, assessment.status) == (100, "Excellent")
    assert (assessment.completion_rate, assessment.error_rate) == (1.0, 0.0)
    assert assessment.issues == ()
    assert assessment.healthy


def test_cancelled_tasks_do_not_lower_the_completion_rate() -> None:
    assert assess(inputs(completed=2, cancelled=5, attempts=2)).completion_rate == 1.0


# ------------------------------------------------------------------- completion rate


def test_completion_at_its_target_deducts_nothing() -> None:
    assessment = assess(inputs(completed=4, failed=1, attempts=5, failed_attempts=1))

    assert assessment.completion_rate == 0.8
    assert assessment.score == 100
    assert issues_starting(assessment, "Completion rate") == []


def test_completion_just_below_its_target_is_an_issue() -> None:
    assessment = assess(inputs(completed=79, skipped=21))

    assert assessment.score == 99
    assert issues_starting(assessment, "Completion rate") == [
        "Completion rate 79% is below the 80% target"]


def test_completion_halfway_to_zero_deducts_half() -> None:
    assert assess(inputs(completed=2, skipped=3)).score == 75


def test_no_completion_deducts_fifty() -> None:
    assessment = assess(inputs(skipped=4))

    assert assessment.completion_rate == 0.0
    assert (assessment.score, assessment.status) == (50, "Degraded")
    assert issues_starting(assessment, "Completion rate") == [
        "Completion rate 0% is below the 80% target"]


# ------------------------------------------------------------------------ error rate


def test_errors_at_their_threshold_deduct_nothing() -> None:
    assessment = assess(inputs(completed=5, attempts=10, failed_attempts=2))

    assert assessment.error_rate == 0.2
    assert assessment.score == 100
    assert issues_starting(assessment, "Error rate") == []


def test_errors_between_threshold_and_one_deduct_linearly() -> None:
    assert assess(inputs(completed=5, attempts=25, failed_attempts=9)).score == 95


def test_every_attempt_failing_deducts_twenty_five() -> None:
    assessment = assess(inputs(completed=4, attempts=8, failed_attempts=8))

    assert assessment.error_rate == 1.0
    assert assessment.score == 75
    assert issues_starting(assessment, "Error rate") == [
        "Error rate 100% is above the 20% threshold"]


# ---------------------------------------------------------------------- mean duration


def test_a_mean_at_its_target_deducts_nothing() -> None:
    assessment = assess(inputs(completed=1, attempts=1, mean=30_000.0))

    assert assessment.score == 100
    assert issues_starting(assessment, "Average task duration") == []


def test_a_mean_between_target_and_double_deducts_linearly() -> None:
    assert assess(inputs(completed=1, attempts=1, mean=36_000.0)).score == 97


@pytest.mark.parametrize("mean", [60_000.0, 90_000.0, 3_600_000.0])
def test_a_mean_of_a_minute_or_more_deducts_fifteen(mean: float) -> None:
    assessment = assess(inputs(completed=1, attempts=1, mean=mean))

    assert assessment.score == 85
    assert issues_starting(assessment, "Average task duration") == [
        f"Average task duration {mean / 1000:.1f} s is above the 30 s target"]


# -------------------------------------------------------------------- the whole score


def test_every_maximum_together_leaves_ten() -> None:
    assessment = assess(inputs(failed=3, attempts=3, failed_attempts=3, mean=60_000.0,
                               failed_ids=("a", "b", "c")))

    assert (assessment.score, assessment.status) == (10, "Critical")
    assert not assessment.healthy
    assert assessment.issues == (
        "Completion rate 0% is below the 80% target",
        "Error rate 100% is above the 20% threshold",
        "Average task duration 60.0 s is above the 30 s target",
        "3 task(s) failed for good: a, b, c",
        "Health score 10 is below 50: unhealthy",
    )


def test_the_score_stays_within_bounds() -> None:
    for completed, failed, attempts, failed_attempts, mean in product(
        (0, 1, 7), (0, 1, 9), (0, 5, 20), (0, 3, 5), (0.0, 29_999.0, 45_000.0, 10**9),
    ):
        assessment = assess(inputs(completed=completed, failed=failed, attempts=attempts,
                                   failed_attempts=min(failed_attempts, attempts), mean=mean))
        assert 0 <= assessment.score <= 100
        assert assessment.status == band(assessment.score)


def test_failed_tasks_are_named_up_to_five() -> None:
    ids = tuple(f"t{n}" for n in range(7))

    assessment = assess(inputs(completed=93, failed=7, attempts=100, failed_attempts=7,
                               failed_ids=ids))

    assert assessment.issues == ("7 task(s) failed for good: t0, t1, t2, t3, t4 and 2 more",)


def test_skipped_tasks_are_an_issue() -> None:
    assessment = assess(inputs(completed=10, skipped=2, attempts=10))

    assert assessment.issues == ("2 task(s) skipped because a dependency failed",)


def test_a_score_of_fifty_is_still_healthy() -> None:
    assessment = assess(inputs(skipped=4))

    assert assessment.score == 50
    assert assessment.healthy
    assert issues_starting(assessment, "Health score") == []


def test_a_score_of_forty_nine_is_unhealthy() -> None:
    assessment = assess(inputs(skipped=4, attempts=1, mean=32_000.0))

    assert assessment.score == 49
    assert not assessment.healthy
    assert issues_starting(assessment, "Health score") == [
        "Health score 49 is below 50: unhealthy"]


def test_the_event_fields_are_snake_case_and_rounded() -> None:
    assessment = assess(inputs(completed=2, skipped=1, attempts=3, failed_attempts=1,
                               mean=1234.5678))

    assert assessment.as_event() == {
        "score": assessment.score, "status": assessment.status,
        "completion_rate": 0.6667, "error_rate": 0.3333, "avg_task_duration_ms": 1234.6,
        "issues": list(assessment.issues), "eta": None,
    }


def test_an_assessment_is_recorded_rounded() -> None:
    health = ExecutionHealth(execution_id=uuid4(), workspace_id="w")
    assessment = assess(inputs(completed=2, skipped=1, attempts=3, failed_attempts=1,
                               mean=1234.5678))

    health.record(assessment)

    assert health.last == assessment.rounded()
    assert health.last.completion_rate == 0.6667


def test_a_version_1_assessment_is_upcast_to_the_snake_case_fields() -> None:
    assert ExecutionHealth.Assessed.class_version == 3
    state = {"timestamp": "t", "score": 61, "status": "Good", "completionRate": 0.3333,
             "errorRate": 0.5, "avgTaskDurationMs": 100.0, "issues": ["x"]}

    ExecutionHealth.Assessed.upcast_v1_v2(state)

    assert state == {"timestamp": "t", "score": 61, "status": "Good", "completion_rate": 0.3333,
                     "error_rate": 0.5, "avg_task_duration_ms": 100.0, "issues": ["x"]}


def test_a_version_2_assessment_is_read_as_made_without_an_estimate() -> None:
    state = {"timestamp": "t", "score": 61, "status": "Good", "completion_rate": 0.3333,
             "error_rate": 0.5, "avg_task_duration_ms": 100.0, "issues": ["x"]}

    ExecutionHealth.Assessed.upcast_v2_v3(state)

    assert state["eta"] is None


def test_the_estimate_is_recorded_with_the_assessment_and_read_back() -> None:
    health = ExecutionHealth(execution_id=uuid4(), workspace_id="w")
    eta = Eta(12.5, 20.0, NOW, 3, ("a", "b"))

    assert health.record(replace(assess(inputs(completed=1, attempts=1)), eta=eta))

    [_, assessed] = health.collect_events()
    assert assessed.eta == {  # type: ignore[attr-defined]
        "seconds": 12.5, "p90Seconds": 20.0, "estimatedAt": NOW.isoformat(),
        "remainingTasks": 3, "criticalPath": ["a", "b"]}
    assert health.last is not None
    assert health.last.eta == eta


# ---------------------------------------------------------------- the health aggregate


def test_the_health_aggregate_id_derives_from_the_execution() -> None:
    execution_id = uuid4()

    health = ExecutionHealth(execution_id=execution_id, workspace_id="w")

    assert health.id == health_id(execution_id)
    assert health_id(execution_id) != health_id(uuid4())
    assert health.last is None


def test_an_assessment_is_recorded_only_when_it_changes() -> None:
    health = ExecutionHealth(execution_id=uuid4(), workspace_id="w")
    good = assess(inputs(completed=3, attempts=3))
    worse = assess(inputs(completed=3, skipped=1, attempts=3))
    same_score_other_issue = assess(inputs(completed=3, attempts=3, failed_ids=("x",)))

    assert health.record(good)
    assert not health.record(good)
    assert not health.record(assess(inputs(completed=30, attempts=31)))
    assert health.record(same_score_other_issue)
    assert health.record(worse)
    assert health.last is not None
    assert (health.last.score, health.last.status, health.last.issues) == (
        worse.score, worse.status, worse.issues)
    assert [type(e).__name__ for e in health.collect_events()] == [
        "Watched", "Assessed", "Assessed", "Assessed"]


def test_an_estimate_that_appears_goes_or_moves_is_recorded() -> None:
    health = ExecutionHealth(execution_id=uuid4(), workspace_id="w")
    good = assess(inputs(completed=3, attempts=3))

    assert health.record(good)
    assert health.record(replace(good, eta=Eta(100.0, 150.0, NOW, 10)))  # appeared
    assert not health.record(replace(good, eta=Eta(95.0, 140.0, NOW, 10)))  # time passed
    assert health.record(replace(good, eta=Eta(95.0, 140.0, NOW, 9)))  # a task finished
    assert health.record(replace(good, eta=Eta(60.0, 140.0, NOW, 9)))  # moved by a tenth+
    assert health.record(good)  # went: the execution stopped running
    assert not health.record(good)


def test_metrics_are_sampled_only_when_they_change() -> None:
    health = ExecutionHealth(execution_id=uuid4(), workspace_id="w")

    assert health.sample_metrics({"email": {"tasks": 2}})
    assert not health.sample_metrics({"email": {"tasks": 2}})
    assert health.sample_metrics({"email": {"tasks": 3}})
    assert health.metrics == {"email": {"tasks": 3}}
