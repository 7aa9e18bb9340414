"""Every wire shape of the HTTP API, declared once as a pydantic model.

A model checks a request body (`api.validation.read_json`), serialises an answer
(`api.validation.answer`), and is a schema of `/api/openapi.json` under its class name
(`api.openapi`). The strategy document itself is the domain's (`domain.strategy`): it is
read from files and events too. Stream events and the WebSocket's command are declared here
for their schemas only: the stream's hot path encodes each frame once, by hand, and reads a
command by hand (api/streams.py, whose `COMMANDS` this uses).

Answers are the read models' rows, checked against their model as they go out: a key the
model does not declare is dropped, a missing or mistyped one is a bug (500). So the schemas
list every key as required, with null where a value may be missing; and timestamps stay the
strings the read models hold (`format: date-time`), so that they go out unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict, create_model
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from stratexec.api.streams import COMMANDS
from stratexec.domain.circuit import PAUSED, CircuitState
from stratexec.domain.execution import FINISHED_EXECUTION, ExecutionStatus, TaskStatus
from stratexec.domain.shapes import NonEmpty, OneOf
from stratexec.domain.strategy import PRIORITIES, AgentType, StrategyDocument
from stratexec.projections.feed import AGENT_TYPE_MAPPERS, MAPPERS

EXECUTION_STATUSES = tuple(str(status) for status in ExecutionStatus)
FINISHED_STATUSES = tuple(str(status) for status in ExecutionStatus
                          if status in FINISHED_EXECUTION)
TASK_STATUSES = tuple(str(status) for status in TaskStatus)
HEALTH_STATUSES = ("Excellent", "Good", "Degraded", "Critical")
FEED_EVENT_TYPES = tuple(dict.fromkeys(kind for kind, _ in MAPPERS.values()))
AGENT_TYPE_EVENT_TYPES = tuple(kind for kind, _ in AGENT_TYPE_MAPPERS.values())
CIRCUIT_STATES = tuple(str(state) for state in CircuitState)
PAUSED_STATES = tuple(str(state) for state in CircuitState if state in PAUSED)

Count = Annotated[int, Field(ge=0)]
Position = Annotated[int, Field(ge=1)]
Version = Annotated[int, Field(ge=1)]
Rate = Annotated[float, Field(ge=0, le=1)]
Duration = Annotated[float, Field(ge=0)]
Cost = Annotated[float, Field(ge=0, description=(
    "In the currency of the llm handler's `price_per_1k_tokens`; 0 when it is not set"))]
Score = Annotated[int, Field(ge=0, le=100)]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Object = dict[str, Any]
Agent = AgentType  # any name: the engine's configuration may add types to the built-in six
Priority = Annotated[str, OneOf(PRIORITIES)]
Status = Annotated[str, OneOf(EXECUTION_STATUSES)]
TaskState = Annotated[str, OneOf(TASK_STATUSES)]
HealthStatus = Annotated[str, OneOf(HEALTH_STATUSES)]
Command = Annotated[str, OneOf(COMMANDS)]
StoreKind = Annotated[str, OneOf(("sqlite", "postgres"))]
JsonText = Annotated[str, Strict()]  # a request's string: never a number or null


def _absent(value: Any) -> bool:
    return value is None


class Wire(BaseModel):
    """camelCase keys, and no key the model does not declare."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_alias=True,
                              validate_by_name=True, serialize_by_alias=True, extra="forbid")


# --------------------------------------------------------------------- requests

class StartExecution(Wire):
    strategy_id: JsonText
    workspace_id: JsonText


class WebSocketCommand(Wire):
    command: Command


# ------------------------------------------------------------------ read models

class Execution(Wire):
    """An execution of a strategy, as the read models hold it."""

    id: UUID
    workspace_id: str
    strategy_id: UUID
    strategy_name: str
    status: Status
    total_tasks: Count
    pending_tasks: Count
    assigned_tasks: Count = Field(description="The same as queuedTasks.")
    queued_tasks: Count = Field(description=(
        "Handed to their agent, waiting for one of its slots: not started."))
    in_progress_tasks: Count = Field(description="Started: their attempt is under way.")
    finished_tasks: Count = Field(description=(
        "Completed, failed, skipped or cancelled: progress is finishedTasks / totalTasks."))
    completed_tasks: Count
    failed_tasks: Count
    skipped_tasks: Count
    cancelled_tasks: Count
    retries: Count
    started_at: Timestamp
    finished_at: Timestamp | None
    updated_at: Timestamp
    version: Version
    health_score: Score | None
    health_status: HealthStatus | None
    interrupted_at: Timestamp | None = Field(description=(
        "Since when the execution is interrupted: the engine stopped gracefully while it was "
        "unfinished (its attempts under way were handed back) and no engine has taken it up "
        "since; null otherwise. The next start takes it up, as after a crash."))


class Task(Wire):
    """One task of an execution: an item of the strategy for one agent type."""

    execution_id: UUID
    task_id: str
    item_id: str
    title: str
    agent: Agent
    priority: Priority
    depends_on: list[str]
    order: Count
    status: TaskState
    attempt: Count
    failures: Count
    progress: Rate
    error_kind: str | None
    error_message: str | None
    retry_at: Timestamp | None
    result: Object | None
    duration_ms: Duration | None
    assigned_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None


class AgentMetrics(Wire):
    """Counters and rates of one agent type in one execution; a rate with nothing to divide
    by is null."""

    agent: Agent
    tasks: Count
    completed: Count
    failed: Count
    skipped: Count
    cancelled: Count
    attempts: Count
    failed_attempts: Count
    retries: Count
    success_rate: Rate | None
    failure_rate: Rate | None
    retry_rate: Rate | None
    mean_duration_ms: Duration | None
    p50_duration_ms: Duration | None
    p90_duration_ms: Duration | None
    p95_duration_ms: Duration | None
    prompt_tokens: Count = Field(description="Summed from successful attempts' results"
                                             " (`usage.prompt_tokens`: the llm handler's)")
    completion_tokens: Count
    cost: Cost
    running: Count = Field(description="This execution's attempts of the type under way.")
    queued: Count = Field(description=(
        "This execution's attempts handed to the type's agent, waiting for a slot."))
    concurrency: Position | None = Field(description=(
        "The type's limit of attempts at once (shared by every execution), as the health "
        "monitor recorded it; null before its first sample."))
    utilisation: Rate | None = Field(description=(
        "running / concurrency: this execution's share of the type's slots."))


class TokenUsage(Wire):
    """An execution's tokens and cost: the sum of its agent types'."""

    prompt_tokens: Count
    completion_tokens: Count
    cost: Cost


class Eta(Wire):
    """When a running execution is expected to finish: a list-scheduling simulation of its
    remaining tasks, each agent type at its observed p50 duration (p90 for `p90Seconds`)
    and within its concurrency."""

    seconds: Duration = Field(description="From estimatedAt to the end, at the p50 speeds.")
    p90_seconds: Duration = Field(description="The same with every task at its type's p90.")
    estimated_at: Timestamp
    remaining_tasks: Count
    critical_path: list[str] = Field(description=(
        "The task ids that decide the end, in order; at most the first 50."))


class Assessment(Wire):
    score: Score
    status: HealthStatus
    completion_rate: Rate
    error_rate: Rate
    avg_task_duration_ms: Duration
    issues: list[str]


class Health(Assessment):
    """The latest health assessment (computed from the read models, with recordedAt null,
    before the first one is recorded)."""

    healthy: bool
    recorded_at: Timestamp | None
    outcome: Annotated[str, OneOf(FINISHED_STATUSES)] | None = Field(description=(
        "How the execution ended; null while it runs. The score rates how its tasks went: "
        "a cancelled or failed execution did not succeed, whatever its score."))


class HealthSnapshot(Assessment):
    """One recorded health assessment, at its log position, with the completion estimate
    made beside it."""

    position: Position
    execution_id: UUID
    workspace_id: str
    recorded_at: Timestamp
    eta: Eta | None


class StrategySummary(Wire):
    """A strategy without its document."""

    id: UUID
    workspace_id: str
    name: str
    item_count: Count
    leaf_count: Count
    task_count: Count | None
    defined_at: Timestamp


class PlannedTask(Wire):
    """A task of the plan; the item's description and inputs only when it has them."""

    id: str
    item_id: str
    title: str
    agent: Agent
    priority: Priority
    depends_on: list[str]
    order: Count
    description: str | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_absent, description="The item's description, if any.")
    inputs: Object | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_absent,
        description="The item's inputs, handed to the task, if it has them.")


class PropagationDecision(Wire):
    """Why an item became the tasks it did."""

    item_id: str
    rule: str
    keyword: str | None
    priority: Priority
    task_ids: list[str]


class Plan(Wire):
    tasks: list[PlannedTask]
    decisions: list[PropagationDecision]


class StrategyDetail(StrategySummary):
    """A strategy with its document and the plan propagated from it."""

    document: StrategyDocument
    plan: Plan


class HistoryEvent(Wire):
    """One recorded event of an execution or of its health, by log position."""

    position: Position
    version: Version
    timestamp: Timestamp
    type: str = Field(pattern=r"^[A-Z][A-Za-z]*\.[A-Z][A-Za-z]*$",
                      examples=["Execution.TaskAssigned", "ExecutionHealth.Assessed"])
    data: Object = Field(description="The event's own fields, named in camelCase.")


TaskCounts = create_model(  # keyed by task status, as the domain spells them
    "TaskCounts", __base__=Wire,
    **{status: (Count, Field(alias=status)) for status in TASK_STATUSES})  # type: ignore[call-overload]


class StateTask(Wire):
    id: str
    agent: Agent
    status: TaskState
    attempt: Count
    failures: Count
    error: str | None
    result: Object | None


class ExecutionState(Wire):
    """An execution as it was at `version`, rebuilt from the event log."""

    execution_id: UUID
    version: Version
    latest_version: Version
    status: Status
    strategy_id: UUID
    workspace_id: str
    strategy_name: str
    counts: TaskCounts  # type: ignore[valid-type]
    tasks: list[StateTask]


# ----------------------------------------------------------------------- errors

class ErrorBody(Wire):
    code: str
    message: str
    details: Object


class Error(Wire):
    error: ErrorBody


class Problem(Wire):
    """Where the request was wrong (`body.items[3].level`, `query.limit`), and how."""

    path: str
    message: str


class BadRequestDetails(Wire):
    problems: Annotated[list[Problem], NonEmpty("lists every problem")]


class RuleProblem(Wire):
    """A broken rule of the domain: where (`items (l4-a).parentId`), what, which item."""

    path: str
    message: str
    item_id: str | None


class InvalidStrategyDetails(Wire):
    problems: Annotated[list[RuleProblem], NonEmpty("lists every broken rule")]
    cycle: Annotated[list[str], NonEmpty("names the items")] | SkipJsonSchema[None] = Field(
        default=None, description="The items of a dependency cycle, in order, back to the first.")


class IdempotencyKeyDetails(Wire):
    """An Idempotency-Key that started an execution with another request."""

    header: Literal["Idempotency-Key"]


class ConflictDetails(Wire):
    status: Status
    command: Command


class AgentTypeConflictDetails(Wire):
    agent_type: str
    state: Annotated[str, OneOf(CIRCUIT_STATES)]


class NoDetails(Wire):
    pass


# ---------------------------------------------------------------------- streams

class FeedEvent(Wire):
    """A change to an execution, at its log position."""

    position: Position
    type: Annotated[str, OneOf(FEED_EVENT_TYPES)]
    execution_id: UUID
    workspace_id: str
    recorded_at: Timestamp
    data: Object = Field(description="What changed; its keys depend on the type.")


class AgentTypePausedData(Wire):
    """What paused the agent type: `attempts` (the failed ones' idempotency keys) of its
    last `window` finished attempts failed, `failureRate` of them (1 of 1 when its probe
    failed). One attempt probes at `probeAt`."""

    agent_type: str
    failure_rate: Rate
    window: Position
    attempts: list[str]
    probe_at: Timestamp


class AgentTypeResumedData(Wire):
    """Resumed by its successful probe (`attempt`), or by an operator (`attempt` null)."""

    agent_type: str
    by: Annotated[str, OneOf(("probe", "operator"))]
    attempt: str | None


class AgentTypeEvent(Wire):
    """An agent type's circuit breaker paused or resumed it. It concerns every workspace,
    so every workspace stream sends it (execution streams do not)."""

    position: Position
    type: Annotated[str, OneOf(AGENT_TYPE_EVENT_TYPES)]
    execution_id: UUID = Field(description=(
        "The id of the agent type's circuit (its AgentCircuit aggregate): these events "
        "belong to no execution."))
    workspace_id: Literal[""] = Field(description="Empty: every workspace.")  # EVERY_WORKSPACE
    recorded_at: Timestamp
    data: AgentTypePausedData | AgentTypeResumedData


class WorkspaceSnapshot(Wire):
    """The first event of a workspace stream: its newest executions, at most 1,000
    (`truncated` says when there are more: `GET /api/executions` pages through them all)."""

    position: Count
    type: Literal["snapshot"]
    executions: list[Execution]
    total_executions: Count
    truncated: bool


class ExecutionSnapshot(Wire):
    """The first event of an execution stream: its whole state."""

    position: Count
    type: Literal["snapshot"]
    execution: Execution
    tasks: list[Task]
    health: Health


class StreamError(Wire):
    """Sent before the server closes the stream (a slow subscriber, or a revoked token)."""

    type: Literal["error"]
    error: ErrorBody


class CommandResult(Wire):
    type: Literal["command-result"]
    command: Command
    status: Status


# ------------------------------------------------------------------- operations

class StoreStatus(Wire):
    kind: StoreKind
    ok: Literal[True]
    position: Count | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_absent,
        description="The last log position recorded; only for a request with a valid token.")


class ProjectionStatus(Wire):
    position: Count | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_absent,
        description="The last position every read model applied; only with a valid token.")
    lag: Count
    error: str | None


class PausedAgentType(Wire):
    """An agent type its circuit breaker paused: open (no attempt starts) until `probeAt`,
    then half-open (one attempt probes)."""

    agent_type: str
    state: Annotated[str, OneOf(PAUSED_STATES)]
    failure_rate: Rate | None
    window: Position | None
    attempts: list[str]
    paused_at: Timestamp | None
    probe_at: Timestamp | None


class NodeStatus(Wire):
    """This server process. With PostgreSQL several may share the database: each runs the
    executions it owns, and one of them the projections."""

    name: str = Field(description="host:pid")
    runs_projections: bool = Field(description="Whether this process applies the events to "
                                               "the read models (the others follow it).")
    owned_executions: Count | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_absent,
        description="Executions this process runs now; only with a valid token.")
    takeovers: Count | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_absent,
        description="Executions it took over from a process that died; only with a valid "
                    "token.")


class CeleryWorker(Wire):
    name: str
    queues: list[str] = Field(description="The queues it consumes (this deployment's only).")


class WorkerStatus(Wire):
    """With `--agents-on celery`: the workers Celery's inspect saw at `checkedAt` (asked
    every few seconds on a thread of the server's own), the queues this engine sends to, and
    the attempts it has in flight on the workers, per agent type."""

    agents_on: Literal["celery"]
    workers: list[CeleryWorker]
    queues: list[str]
    in_flight: dict[str, Count]
    checked_at: Timestamp | None = Field(description="None until the first answer.")
    error: str | None = Field(description="Why the last inspect failed, if it did.")


class ServiceStatus(Wire):
    """`degraded` when the projections stopped on an error. A paused agent type does not
    make the service degraded: the other types run on."""

    status: Annotated[str, OneOf(("ok", "degraded"))]
    node: NodeStatus
    store: StoreStatus
    projections: ProjectionStatus
    subscribers: Count
    paused_agent_types: list[PausedAgentType]
    workers: WorkerStatus | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_absent,
        description="Only when attempts run on Celery workers.")


class StoreFailure(Wire):
    kind: StoreKind
    ok: Literal[False]
    error: str


class ServiceUnavailable(Wire):
    """The event store cannot be read."""

    status: Literal["unavailable"]
    store: StoreFailure


class Me(Wire):
    """Who the token belongs to, and the workspaces it grants."""

    user: str
    workspaces: list[str]


# ---------------------------------------------------------------------- answers

class StrategyAnswer(Wire):
    strategy: StrategyDetail


class StrategyPage(Wire):
    strategies: list[StrategySummary]
    limit: Position
    offset: Count


class StartedExecution(Wire):
    id: UUID
    status: Status
    strategy_id: UUID
    total_tasks: Count
    started_at: Timestamp


class ExecutionStarted(Wire):
    success: Literal[True]
    execution_id: UUID
    execution: StartedExecution


class ExecutionPage(Wire):
    executions: list[Execution]
    limit: Position
    offset: Count


class ExecutionMetrics(Wire):
    agents: list[AgentMetrics]
    usage: TokenUsage


class ExecutionStatusAnswer(Wire):
    execution: Execution
    health: Health
    eta: Eta | None = Field(description=(
        "The completion estimate recorded with the latest assessment; null when the "
        "execution is not running or none was made."))
    tasks: list[Task]
    metrics: ExecutionMetrics
    position: Count = Field(description=(
        "The log position these read models reflect: stream from it (`?lastEventId=`) to "
        "follow on without a gap."))


class CommandedExecution(Wire):
    id: UUID
    status: Status


class CommandDone(Wire):
    success: Literal[True]
    execution: CommandedExecution


class CommandedAgentType(Wire):
    name: str
    state: Annotated[str, OneOf(CIRCUIT_STATES)]


class AgentTypeDone(Wire):
    success: Literal[True]
    agent_type: CommandedAgentType


class HistoryPage(Wire):
    events: list[HistoryEvent]
    next_after: Position | None


class StateAnswer(Wire):
    state: ExecutionState


class HealthSnapshots(Wire):
    snapshots: list[HealthSnapshot]


REQUESTS: tuple[type[BaseModel], ...] = (StrategyDocument, StartExecution, WebSocketCommand)
ANSWERS: tuple[type[BaseModel], ...] = (
    StrategyAnswer, StrategyPage, ExecutionStarted, ExecutionPage, ExecutionStatusAnswer,
    CommandDone, HistoryPage, StateAnswer, HealthSnapshots, Me, ServiceStatus,
    ServiceUnavailable, Error, BadRequestDetails, InvalidStrategyDetails, ConflictDetails,
    NoDetails, AgentTypeDone, AgentTypeConflictDetails, IdempotencyKeyDetails)
STREAM_EVENTS: tuple[type[BaseModel], ...] = (
    FeedEvent, AgentTypeEvent, WorkspaceSnapshot, ExecutionSnapshot, StreamError,
    CommandResult)
