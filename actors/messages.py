"""The messages actors exchange: immutable, named as commands in the imperative.

Agents tell an ExecutionActor what happened to an attempt (`RecordTask*`, `ReturnTask`); the
runtime asks it to `Pause`, `Resume`, `Cancel` or `Retry`; the clock tells it to
`DispatchDueTasks`; it tells itself to `AssignReadyTasks` when one turn could not assign them
all. An ExecutionActor tells an AgentActor to `RunTask` or `WithdrawTasks`, and tells the
HealthMonitorActor to `TrackExecution` after every save; the runtime asks an AgentActor to
`ResumeAgentType` when an operator resumes a type its circuit breaker paused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pykka

from stratexec.domain.health import HealthInputs


@dataclass(frozen=True)
class AgentTask:
    """What an agent is asked to do: one attempt at one task of one execution.

    `inputs` is the strategy item's own `inputs` object (every task of the item gets it);
    `upstream` holds the result of each task this one depends on, by task id: this is how a
    content task's draft reaches the email task that sends it."""

    execution_id: UUID
    workspace_id: str
    task_id: str
    item_id: str
    title: str
    agent: str
    priority: str
    order: int
    attempt: int
    description: str = ""  # the strategy item's
    inputs: dict[str, Any] = field(default_factory=dict)  # the item's `inputs`
    upstream: dict[str, Any] = field(default_factory=dict)  # task id -> result, per dependency

    @property
    def idempotency_key(self) -> str:
        """The same for every delivery of this attempt, so that at-least-once is safe."""
        return f"{self.execution_id}:{self.task_id}:{self.attempt}"


# --- to an ExecutionActor, from agents ------------------------------------------------

@dataclass(frozen=True)
class RecordTaskStarted:
    task_id: str
    attempt: int


@dataclass(frozen=True)
class RecordTaskProgress:
    task_id: str
    attempt: int
    progress: float
    message: str


@dataclass(frozen=True)
class RecordTaskSuccess:
    task_id: str
    attempt: int
    result: dict[str, Any]
    duration_ms: float


@dataclass(frozen=True)
class RecordTaskFailure:
    task_id: str
    attempt: int
    error_kind: str
    error_message: str
    retryable: bool
    duration_ms: float


@dataclass(frozen=True)
class ReturnTask:
    """An agent hands back an attempt it never started (the execution was paused)."""

    task_id: str
    attempt: int
    reason: str


# --- to an ExecutionActor, from the runtime and the clock -------------------------------

@dataclass(frozen=True)
class DispatchDueTasks:
    """A scheduled retry is due: assign what is ready now."""


@dataclass(frozen=True)
class AssignReadyTasks:
    """The last turn assigned as many tasks as one turn may: assign the rest."""


@dataclass(frozen=True)
class Transition:
    """The reply to `Pause`, `Resume`, `Cancel` and `Retry`: the new status, and the log
    position of the save that recorded it."""

    status: str
    position: int


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class Retry:
    """Try again the tasks that failed for good: these, or all of them (None)."""

    task_ids: tuple[str, ...] | None = None


# --- to an AgentActor --------------------------------------------------------------------

@dataclass(frozen=True)
class RunTask:
    task: AgentTask
    reply_to: pykka.ActorRef[Any]  # an ExecutionActor, or any actor that takes the reports


@dataclass(frozen=True)
class WithdrawTasks:
    """Hand back the execution's queued attempts; with `cancel_running`, also cancel the
    running ones (their handlers see `context.cancelled` and should stop early)."""

    execution_id: UUID
    cancel_running: bool = False


@dataclass(frozen=True)
class ResumeAgentType:
    """By hand: close the agent type's circuit breaker, so that its attempts start again."""


@dataclass(frozen=True)
class AgentTypeState:
    """The reply to `ResumeAgentType`: the breaker's state, and the log position of the
    save that recorded it."""

    agent_type: str
    state: str
    position: int


# --- to the HealthMonitorActor -------------------------------------------------------------

@dataclass(frozen=True)
class TrackExecution:
    execution_id: UUID
    workspace_id: str
    inputs: HealthInputs
    metrics: dict[str, dict[str, int]]
    finished: bool = False


@dataclass(frozen=True)
class AssessExecutions:
    """The monitor's timer tick: assess every live execution that changed."""
