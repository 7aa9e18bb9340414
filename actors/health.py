"""The HealthMonitorActor: assesses every live execution on a timer.

Execution actors tell it their latest figures after every save (`TrackExecution`); on each
tick it scores the executions whose figures changed and records an assessment (and the
per-agent metrics) only when something visible changed. It is the only writer of the
ExecutionHealth aggregates. A finished execution is assessed at once, one last time, and
then forgotten, so finished executions leave memory.

Beside each assessment it records a completion estimate (`domain.eta`), made by the
`estimate` it is given (the engine reads the remaining plan from the read models) with the
agent types' `priors`: their speed before any of their attempts completed, and their
concurrency, which it records with the per-agent metrics too. A large plan costs its
estimate more: an execution is estimated again only once `ESTIMATE_COST_RATIO` times the
time its last estimate took has passed, so that estimates take at most a small share of the
monitor's thread (an estimate of 10,000 remaining tasks takes about 0.1 s). The last
assessments, made as the monitor stops, keep the last estimates instead of making new ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from uuid import UUID

import pykka

from stratexec.actors.agents.base import AgentHandler, AgentLimits
from stratexec.actors.agents.demo import DemoAgent
from stratexec.actors.clock import Clock
from stratexec.actors.messages import AssessExecutions, TrackExecution
from stratexec.domain.application import StratexecApp
from stratexec.domain.eta import AgentSpeed, Eta
from stratexec.domain.health import DURATION_TARGET_MS, ExecutionHealth, HealthAssessment, assess

logger = logging.getLogger(__name__)

# (execution, the agent types' priors) -> the estimate, None when there is none to make
Estimate = Callable[[UUID, Mapping[str, AgentSpeed]], Eta | None]
ESTIMATE_COST_RATIO = 20  # an estimate that took t seconds is made again t * this later


def prior_speed(handler: AgentHandler, limits: AgentLimits) -> AgentSpeed:
    """An agent type's speed before any of its attempts completed: a demo agent's duration
    range (p50 its middle, p90 nine tenths of the way up); else the type's timeout (an
    attempt takes at most that); else the health score's 30 s duration target."""
    if isinstance(handler, DemoAgent):
        low, high = handler.duration
        return AgentSpeed((low + high) / 2, low + 0.9 * (high - low), limits.concurrency)
    typical = limits.timeout if limits.timeout is not None else DURATION_TARGET_MS / 1000
    return AgentSpeed(typical, typical, limits.concurrency)


class Estimates:
    """The completion estimates of the live executions, each made no more often than its
    cost allows (`ESTIMATE_COST_RATIO`): in between, the last one stands."""

    def __init__(self, estimate: Estimate | None, priors: Mapping[str, AgentSpeed],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._estimate = estimate
        self._priors = priors
        self._clock = clock
        self._last: dict[UUID, tuple[float, Eta | None]] = {}  # (when due again, estimate)

    def of(self, execution_id: UUID, fresh: bool = True) -> Eta | None:
        """The execution's estimate: a new one if its cost allows and `fresh`, else the
        last one made (None before any)."""
        if self._estimate is None:
            return None
        began = self._clock()
        due, last = self._last.get(execution_id, (began, None))
        if began < due or not fresh:
            return last
        try:
            eta = self._estimate(execution_id, self._priors)
        except Exception:  # an estimate is an extra: never a reason to stop assessing
            logger.exception("could not estimate when execution %s finishes", execution_id)
            eta = None
        ended = self._clock()
        self._last[execution_id] = (ended + ESTIMATE_COST_RATIO * (ended - began), eta)
        return eta

    def forget(self, execution_id: UUID) -> None:
        self._last.pop(execution_id, None)


def with_concurrency(metrics: dict[str, dict[str, int]], priors: Mapping[str, AgentSpeed],
                     ) -> dict[str, dict[str, int]]:
    """The per-agent metrics with each type's concurrency, as they are recorded."""
    return {agent: counts | {"concurrency": priors[agent].concurrency} if agent in priors
            else counts for agent, counts in metrics.items()}


class HealthMonitorActor(pykka.ThreadingActor):
    def __init__(self, app: StratexecApp, clock: Clock, interval: float = 5.0,
                 priors: Mapping[str, AgentSpeed] | None = None,
                 estimate: Estimate | None = None) -> None:
        super().__init__()
        self._app = app
        self._clock = clock
        self._interval = interval
        self._priors = dict(priors or {})
        self._estimates = Estimates(estimate, self._priors)
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
        self._assess(set(self._changed), estimate=False)  # stopping: no time for new ones

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

    def _assess(self, execution_ids: set[UUID], estimate: bool = True) -> None:
        changed = []
        for execution_id in execution_ids:
            tracked = self._latest[execution_id]
            health = self._health_of(tracked)
            eta = None if tracked.finished else self._estimates.of(execution_id, estimate)
            recorded = health.record(replace(assess(tracked.inputs), eta=eta))
            sampled = health.sample_metrics(with_concurrency(tracked.metrics, self._priors))
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
        self._estimates.forget(execution_id)
