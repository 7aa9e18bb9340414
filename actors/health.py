"""The HealthMonitorActor: assesses every live execution on a timer.

Execution actors tell it their latest figures after every save (`TrackExecution`); on each
tick it scores the executions whose figures changed and records an assessment (and the
per-agent metrics) only when something visible changed. It is the only writer of the
ExecutionHealth aggregates. A finished execution is assessed at once, one last time, and
then forgotten, so finished executions leave memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pykka

from stratexec.actors.clock import Clock
from stratexec.actors.messages import AssessExecutions, TrackExecution
from stratexec.domain.application import StratexecApp
from stratexec.domain.health import ExecutionHealth, HealthAssessment, assess

logger = logging.getLogger(__name__)


class HealthMonitorActor(pykka.ThreadingActor):
    def __init__(self, app: StratexecApp, clock: Clock, interval: float = 5.0) -> None:
        super().__init__()
        self._app = app
        self._clock = clock
        self._interval = interval
        self._latest: dict[UUID, TrackExecution] = {}
        self._changed: set[UUID] = set()
        self._healths: dict[UUID, ExecutionHealth] = {}
        self._cancel_ticks: Callable[[], None] | None = None

    def on_start(self) -> None:
        self._cancel_ticks = self._clock.tell_every(
            self._interval, self.actor_ref, AssessExecutions())

    def on_stop(self) -> None:
        if self._cancel_ticks is not None:
            self._cancel_ticks()
        self._assess(set(self._changed))

    def on_receive(self, message: Any) -> Any:
        match message:
            case TrackExecution(execution_id=execution_id, finished=finished):
                self._latest[execution_id] = message
                self._changed.add(execution_id)
                if finished:
                    self._assess({execution_id})
                    self._forget(execution_id)
            case AssessExecutions():
                self._assess(set(self._changed))
            case _:
                return super().on_receive(message)
        return None

    def latest(self, execution_id: UUID) -> HealthAssessment | None:
        """The last recorded assessment of a live execution (a proxy call)."""
        health = self._healths.get(execution_id)
        return None if health is None else health.last

    def _assess(self, execution_ids: set[UUID]) -> None:
        changed = []
        for execution_id in execution_ids:
            tracked = self._latest[execution_id]
            health = self._health_of(tracked)
            recorded = health.record(assess(tracked.inputs))
            sampled = health.sample_metrics(tracked.metrics)
            if recorded or sampled:
                changed.append(health)
        self._changed -= execution_ids
        if changed:
            self._app.save(*changed)

    def _health_of(self, tracked: TrackExecution) -> ExecutionHealth:
        health = self._healths.get(tracked.execution_id)
        if health is None:
            health = (self._app.get_health(tracked.execution_id)
                      or ExecutionHealth(tracked.execution_id, tracked.workspace_id))
            self._healths[tracked.execution_id] = health
        return health

    def _forget(self, execution_id: UUID) -> None:
        self._latest.pop(execution_id, None)
        self._healths.pop(execution_id, None)
        self._changed.discard(execution_id)
