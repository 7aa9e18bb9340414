"""The health of an execution: a pure score, and the aggregate that records assessments.

The seed gives the targets (completion rate above 80%, error rate below 20%, mean task
duration below 30 s), the maximum deductions (50, 25 and 15 points) and the bands, but its
formula would deduct nothing until far past a target and could go negative. We read it as:

    completion rate = completed / settled, where settled tasks are those that reached an
                      outcome (completed, failed for good, or skipped). Before any task has
                      settled the rate is 1.0: nothing has gone wrong yet.
    error rate      = failed attempts / finished attempts (a retried failure counts, so a
                      flaky agent shows up even when its retries succeed); 0.0 before any.
    completion deduction = 50 * (0.80 - rate) / 0.80   when rate < 0.80, else 0
    error deduction      = 25 * (rate - 0.20) / 0.80   when rate > 0.20, else 0
    duration deduction   = 15 * min(1, (mean - 30 s) / 30 s)   when mean > 30 s, else 0

Each deduction is 0 at its target and grows linearly to its maximum (completion rate 0,
error rate 1, mean duration 60 s or more). score = round(100 - deductions), so it stays in
10..100. Bands: 80-100 Excellent, 60-79 Good, 40-59 Degraded, 0-39 Critical; an execution
scoring below 50 is unhealthy. Cancelled tasks are not settled: cancelling is not an error.

Beside each assessment the monitor records its estimate of when the execution will finish
(`domain.eta`), None when it is not running or nothing could be estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from stratexec.domain.eta import Eta

COMPLETION_TARGET = 0.80
ERROR_THRESHOLD = 0.20
DURATION_TARGET_MS = 30_000.0
MAX_COMPLETION_DEDUCTION = 50
MAX_ERROR_DEDUCTION = 25
MAX_DURATION_DEDUCTION = 15
UNHEALTHY_BELOW = 50
MAX_FAILED_TASKS_NAMED = 5


@dataclass(frozen=True)
class HealthInputs:
    total: int
    completed: int
    failed: int
    skipped: int
    cancelled: int
    attempts: int
    failed_attempts: int
    mean_duration_ms: float
    failed_task_ids: tuple[str, ...] = field(default=())

    @property
    def settled(self) -> int:
        return self.completed + self.failed + self.skipped


@dataclass(frozen=True)
class HealthAssessment:
    score: int
    status: str
    completion_rate: float
    error_rate: float
    avg_task_duration_ms: float
    issues: tuple[str, ...]
    eta: Eta | None = None  # the completion estimate made beside it

    @property
    def healthy(self) -> bool:
        return self.score >= UNHEALTHY_BELOW

    def rounded(self) -> HealthAssessment:
        """As recorded and shown: rates to 4 places, the mean duration to 0.1 ms."""
        return replace(
            self, completion_rate=round(self.completion_rate, 4),
            error_rate=round(self.error_rate, 4),
            avg_task_duration_ms=round(self.avg_task_duration_ms, 1))

    def as_event(self) -> dict[str, Any]:
        """The fields of an `ExecutionHealth.Assessed` event (snake_case, rounded)."""
        rounded = self.rounded()
        return {"score": rounded.score, "status": rounded.status,
                "completion_rate": rounded.completion_rate, "error_rate": rounded.error_rate,
                "avg_task_duration_ms": rounded.avg_task_duration_ms,
                "issues": list(rounded.issues),
                "eta": None if self.eta is None else self.eta.as_record()}

    def worth_recording_after(self, last: HealthAssessment | None) -> bool:
        """True when something visible changed since `last`: the score, the band, the
        issues, or the estimate (appeared, went, or moved: `Eta.moved_from`)."""
        if last is None or (last.score, last.status, last.issues) != (
                self.score, self.status, self.issues):
            return True
        if self.eta is None:
            return last.eta is not None
        return self.eta.moved_from(last.eta)


def band(score: int) -> str:
    if score >= 80:
        return "Excellent"
    if score >= 60:
        return "Good"
    if score >= 40:
        return "Degraded"
    return "Critical"


def assess(inputs: HealthInputs) -> HealthAssessment:
    completion_rate = inputs.completed / inputs.settled if inputs.settled else 1.0
    error_rate = inputs.failed_attempts / inputs.attempts if inputs.attempts else 0.0
    mean = inputs.mean_duration_ms
    deductions = 0.0
    issues: list[str] = []
    if completion_rate < COMPLETION_TARGET:
        deductions += MAX_COMPLETION_DEDUCTION * (COMPLETION_TARGET - completion_rate) / (
            COMPLETION_TARGET)
        issues.append(f"Completion rate {completion_rate:.0%} is below the "
                      f"{COMPLETION_TARGET:.0%} target")
    if error_rate > ERROR_THRESHOLD:
        deductions += MAX_ERROR_DEDUCTION * (error_rate - ERROR_THRESHOLD) / (1 - ERROR_THRESHOLD)
        issues.append(f"Error rate {error_rate:.0%} is above the {ERROR_THRESHOLD:.0%} threshold")
    if mean > DURATION_TARGET_MS:
        deductions += MAX_DURATION_DEDUCTION * min(1.0, (mean - DURATION_TARGET_MS) / (
            DURATION_TARGET_MS))
        issues.append(f"Average task duration {mean / 1000:.1f} s is above the "
                      f"{DURATION_TARGET_MS / 1000:.0f} s target")
    if inputs.failed_task_ids:
        named = ", ".join(inputs.failed_task_ids[:MAX_FAILED_TASKS_NAMED])
        more = len(inputs.failed_task_ids) - MAX_FAILED_TASKS_NAMED
        issues.append(f"{len(inputs.failed_task_ids)} task(s) failed for good: {named}"
                      + (f" and {more} more" if more > 0 else ""))
    if inputs.skipped:
        issues.append(f"{inputs.skipped} task(s) skipped because a dependency failed")
    score = max(0, min(100, round(100 - deductions)))
    if score < UNHEALTHY_BELOW:
        issues.append(f"Health score {score} is below {UNHEALTHY_BELOW}: unhealthy")
    return HealthAssessment(
        score, band(score), completion_rate, error_rate, mean, tuple(issues))


# ExecutionHealth.Assessed version 1 field -> version 2 field.
V1_ASSESSED_FIELDS = {"completionRate": "completion_rate", "errorRate": "error_rate",
                      "avgTaskDurationMs": "avg_task_duration_ms"}


def health_id(execution_id: UUID) -> UUID:
    """The ExecutionHealth aggregate of an execution has an id derived from the execution's."""
    return uuid5(NAMESPACE_URL, f"stratexec:health:{execution_id}")


class ExecutionHealth(Aggregate):
    """The assessments of one execution, recorded by the health monitor only on change."""

    TOPIC = "stratexec:ExecutionHealth"

    class Created(Aggregate.Created):
        TOPIC = "stratexec:ExecutionHealth.Created"

    @staticmethod
    def create_id(execution_id: UUID) -> UUID:
        return health_id(execution_id)

    @event("Watched", topic="stratexec:ExecutionHealth.Watched")
    def __init__(self, execution_id: UUID, workspace_id: str) -> None:
        self.execution_id = execution_id
        self.workspace_id = workspace_id
        self.last: HealthAssessment | None = None
        self.metrics: dict[str, Any] | None = None

    def record(self, assessment: HealthAssessment) -> bool:
        """Record `assessment` if something visible changed (`worth_recording_after`);
        True if recorded."""
        if not assessment.worth_recording_after(self.last):
            return False
        self._assessed(**assessment.as_event())
        return True

    def sample_metrics(self, metrics: dict[str, Any]) -> bool:
        """Record the per-agent counters if they changed; True if recorded."""
        if metrics == self.metrics:
            return False
        self._metrics_sampled(metrics=metrics)
        return True

    class Assessed(Aggregate.Event):
        """An assessment, its rates and mean duration rounded as `HealthAssessment.rounded`.

        They stay rounded, as in version 1: the events already stored hold rounded values,
        so a read model rebuilt from a log of both versions has one precision throughout;
        the digits beyond are noise nobody reads (a float costs msgpack 9 bytes either way),
        and the snapshots, the stream and the computed fallback show the same numbers.

        Version 1 (up to commit 495cb3a) named its fields as the HTTP answers do:
        completionRate, errorRate, avgTaskDurationMs. Version 2 names them in snake_case,
        as every other event; `upcast_v1_v2` renames the stored version 1 fields on reading.
        Version 3 adds `eta`, the completion estimate (`Eta.as_record`, or None); the
        events stored before it made none, and `upcast_v2_v3` reads them so.
        """

        TOPIC = "stratexec:ExecutionHealth.Assessed"
        class_version = 3

        score: int
        status: str
        completion_rate: float
        error_rate: float
        avg_task_duration_ms: float
        issues: list[str]
        eta: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            for old, new in V1_ASSESSED_FIELDS.items():
                state[new] = state.pop(old)

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["eta"] = None

    @event(Assessed)
    def _assessed(
        self, score: int, status: str, completion_rate: float, error_rate: float,
        avg_task_duration_ms: float, issues: list[str], eta: dict[str, Any] | None = None,
    ) -> None:
        self.last = HealthAssessment(
            score, status, completion_rate, error_rate, avg_task_duration_ms, tuple(issues),
            None if eta is None else Eta.from_record(eta))

    @event("MetricsSampled", topic="stratexec:ExecutionHealth.MetricsSampled")
    def _metrics_sampled(self, metrics: dict[str, Any]) -> None:
        self.metrics = metrics
