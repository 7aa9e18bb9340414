"""The event classes the views project, resolved from their registered topics.

The `@event` decorator creates these classes at import time, so a type checker cannot see
them as attributes of the aggregates. Their topics are the stable names stored in the log
("events are forever"), which makes them the right handle for the projections too.
"""

from __future__ import annotations

from eventsourcing.utils import resolve_topic

from stratexec.domain.circuit import AgentCircuit
from stratexec.domain.execution import Execution
from stratexec.domain.health import ExecutionHealth
from stratexec.domain.strategy import Strategy

# Defining the aggregates registers their event topics; resolving needs them imported.
AGGREGATES = (Strategy, Execution, ExecutionHealth, AgentCircuit)


def _event(topic: str) -> type:
    cls = resolve_topic(topic)
    assert isinstance(cls, type), topic
    return cls


STRATEGY_DEFINED = _event("stratexec:Strategy.Defined")

STARTED = _event("stratexec:Execution.Started")
TASK_ASSIGNED = _event("stratexec:Execution.TaskAssigned")
TASK_STARTED = _event("stratexec:Execution.TaskStarted")
TASK_PROGRESSED = _event("stratexec:Execution.TaskProgressed")
TASK_SUCCEEDED = _event("stratexec:Execution.TaskSucceeded")
TASK_FAILED = _event("stratexec:Execution.TaskFailed")
TASKS_SKIPPED = _event("stratexec:Execution.TasksSkipped")
TASK_INTERRUPTED = _event("stratexec:Execution.TaskInterrupted")
PAUSED = _event("stratexec:Execution.Paused")
RESUMED = _event("stratexec:Execution.Resumed")
CANCELLED = _event("stratexec:Execution.Cancelled")
COMPLETED = _event("stratexec:Execution.Completed")
FAILED = _event("stratexec:Execution.Failed")
TASKS_RETRIED = _event("stratexec:Execution.TasksRetried")
INTERRUPTED = _event("stratexec:Execution.Interrupted")
RECOVERED = _event("stratexec:Execution.Recovered")

HEALTH_WATCHED = _event("stratexec:ExecutionHealth.Watched")
HEALTH_ASSESSED = _event("stratexec:ExecutionHealth.Assessed")
METRICS_SAMPLED = _event("stratexec:ExecutionHealth.MetricsSampled")

HEALTH_EVENTS = (HEALTH_WATCHED, HEALTH_ASSESSED, METRICS_SAMPLED)

CIRCUIT_WATCHED = _event("stratexec:AgentCircuit.Watched")
CIRCUIT_PAUSED = _event("stratexec:AgentCircuit.Paused")
CIRCUIT_PROBING = _event("stratexec:AgentCircuit.Probing")
CIRCUIT_RESUMED = _event("stratexec:AgentCircuit.Resumed")
