"""The use cases: everything the HTTP handlers, the WebSocket commands and the CLI ask of
stratexec, as plain functions with their dependencies passed in (Cosmic Python's service
layer).

Commands record what they change and return the log position their save reached, so that a
caller that must read its own writes waits for exactly that position (`reads_reach`).
Queries read the read models; the audit queries read the event log on purpose. Nothing here
knows HTTP or the terminal. Every call blocks: the server makes them from worker threads.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from stratexec.actors.messages import AgentTypeState, Transition
from stratexec.actors.runtime import OwnedElsewhere, StartedExecution
from stratexec.cluster.node import node_name
from stratexec.domain import idempotency
from stratexec.domain.access import AccessToken
from stratexec.domain.application import StratexecApp
from stratexec.domain.errors import DomainError, NotFound
from stratexec.domain.execution import Execution
from stratexec.domain.idempotency import IdempotentRequest
from stratexec.domain.propagation import Plan, PropagationRules, check_agent_types, propagate
from stratexec.domain.strategy import StrategyDefinition, parse_strategy
from stratexec.engine import Engine
from stratexec.projections import audit, queries
from stratexec.projections.metrics import usage_total
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore, read_tracking
from stratexec.projections.verify import compare, rebuild

MAX_SNAPSHOT_EXECUTIONS = 1000


@dataclass(frozen=True)
class StrategyDefined:
    strategy_id: UUID
    workspace_id: str
    plan: Plan
    position: int


# ------------------------------------------------------------------- commands

def define_strategy(app: StratexecApp, definition: StrategyDefinition,
                    rules: PropagationRules | None = None) -> StrategyDefined:
    """Record a strategy; `InvalidStrategy` (nothing recorded) when it has no plan or names
    an agent type the engine does not run."""
    check_agent_types(definition.items, rules)
    plan = propagate(definition.items, rules)
    strategy, position = app.define_strategy(definition, plan)
    return StrategyDefined(strategy.id, strategy.workspace_id, plan, position)


def start_execution(engine: Engine, strategy_id: UUID, workspace_id: str,
                    request: IdempotentRequest | None = None, spread: bool = True
                    ) -> StartedExecution:
    """Start an execution of the workspace's strategy: the strategy is read once, from the
    log, and planned once. `NotFound` when the workspace holds no such strategy;
    `InvalidStrategy` when it names an agent type this engine does not run (it was defined
    on an engine configured otherwise). With several processes and `spread`, a process
    that owns two executions more than another offers the new one to the less loaded
    (`cluster.ownership`); without `spread` (`stratexec run`, which follows it) it runs
    here.

    Made under an Idempotency-Key (`request`), it answers the execution the same request
    started under that key within the window (`replayed`) instead of starting another, even
    when both race; `IdempotencyKeyReused` when another request holds the key."""
    if request is None:
        return _start(engine, strategy_id, workspace_id, None, spread)
    generation = 0  # which use of the key: one more each time the window ran out
    while True:
        scoped_key = request.scoped_key(generation)
        first = _started_under(engine.app, scoped_key)
        if first is None:
            try:
                return _start(engine, strategy_id, workspace_id,
                              (scoped_key, request.fingerprint), spread)
            except IntegrityError:  # a request with the same key started it meanwhile
                first = _started_under(engine.app, scoped_key)
                assert first is not None, "the store refused a start it does not hold"
        if idempotency.answers(request, first.request_fingerprint, first.created_on,
                               datetime.now(UTC)):
            return StartedExecution.of(first, replayed=True)
        generation += 1


def _start(engine: Engine, strategy_id: UUID, workspace_id: str,
           request: tuple[str, str] | None, spread: bool) -> StartedExecution:
    strategy = engine.app.get_strategy(strategy_id)
    if strategy.workspace_id != workspace_id:
        raise NotFound(f"no strategy {strategy_id}")
    items = strategy.definition.items
    check_agent_types(items, engine.rules)
    plan = propagate(items, engine.rules)
    node = engine.node
    if node is None or not spread or node.ownership.least_loaded():
        return engine.runtime.start_execution(strategy, plan, request)
    started = engine.runtime.start_execution(strategy, plan, request, run_here=False)
    node.offer(started.id)  # a less loaded node takes it (or this one's takeover, later)
    return started


def _routed(engine: Engine, command: str, execution_id: UUID, task_id: str | None,
            here: Callable[[], Transition]) -> Transition:
    """`here()` when this process may run the execution; else, with several processes,
    the answer of the process that owns it (`cluster.commands`)."""
    try:
        return here()
    except OwnedElsewhere:
        if engine.node is None or engine.node.commands is None:
            raise
        return engine.node.commands.send(execution_id, command, task_id)


def _started_under(app: StratexecApp, scoped_key: str) -> Execution | None:
    """The execution an idempotent start made under this key, as it started; or None."""
    try:
        return app.get_execution(idempotency.execution_id(scoped_key), version=1)
    except NotFound:
        return None


def pause(engine: Engine, execution_id: UUID) -> Transition:
    return _routed(engine, "pause", execution_id, None,
                   lambda: engine.runtime.pause(execution_id))


def resume(engine: Engine, execution_id: UUID) -> Transition:
    return _routed(engine, "resume", execution_id, None,
                   lambda: engine.runtime.resume(execution_id))


def cancel(engine: Engine, execution_id: UUID) -> Transition:
    return _routed(engine, "cancel", execution_id, None,
                   lambda: engine.runtime.cancel(execution_id))


def retry_execution(engine: Engine, execution_id: UUID, task_id: str | None = None
                    ) -> Transition:
    """Try again the execution's tasks that failed for good (all of them, or `task_id`): a
    failed execution reopens as running. `InvalidTransition` when nothing (or not that
    task) failed or the execution is neither failed nor running; `UnknownTask`."""
    return _routed(engine, "retry", execution_id, task_id,
                   lambda: engine.runtime.retry(execution_id, task_id))


COMMANDS = {"pause": pause, "resume": resume, "cancel": cancel, "retry": retry_execution}


def resume_agent_type(engine: Engine, agent_type: str) -> AgentTypeState:
    """Close the circuit breaker of an agent type it paused. `NotFound` for a type the
    engine does not run; `InvalidTransition` when it is not paused."""
    return engine.runtime.resume_agent_type(agent_type)


def recover_executions(engine: Engine, execution_ids: list[UUID] | None = None
                       ) -> list[UUID]:
    """Take up unfinished executions again (all of them by default) after a stop or a
    crash, from their events; a paused one stays paused. The ids taken up. With several
    processes, "all" is those no live process owns, up to this one's fair share."""
    if execution_ids is None and engine.node is not None and engine.node.takeover is not None:
        return engine.node.takeover.scan()
    return engine.runtime.recover(execution_ids)


def continue_executions(engine: Engine, execution_ids: list[UUID] | None = None
                        ) -> list[UUID]:
    """As `recover_executions`, and a paused one is resumed (`stratexec resume`)."""
    recovered = recover_executions(engine, execution_ids)
    for execution_id in recovered:
        if engine.app.get_execution(execution_id).status == "paused":
            engine.runtime.resume(execution_id)
    return recovered


def stop_executions(engine: Engine) -> None:
    """A graceful stop's first step: every running execution records that the engine
    stopped (its attempts under way are handed back, uncounted), and none starts any more.
    The next start recovers them (`recover_executions`)."""
    engine.runtime.stop_executions()


def wait_finished(engine: Engine, execution_id: UUID, timeout: float | None = None) -> bool:
    """Block until the execution has finished and the engine holds nothing of it (True),
    or until `timeout` passed (False)."""
    return engine.runtime.wait(execution_id, timeout)


def pause_all(engine: Engine, execution_ids: list[UUID]) -> list[UUID]:
    """Pause the executions that can still be paused (Ctrl-C); the ids paused."""
    paused = []
    for execution_id in execution_ids:
        try:
            pause(engine, execution_id)
        except DomainError:
            continue  # it finished or was cancelled meanwhile
        paused.append(execution_id)
    return paused


def issue_token(app: StratexecApp, user: str, workspaces: list[str], label: str = ""
                ) -> tuple[AccessToken, str]:
    """A new token and its secret, shown once. `ValueError` for a bad user or workspace."""
    return app.issue_token(user, workspaces, label)


def find_token(app: StratexecApp, secret: str) -> AccessToken | None:
    """The live token with this secret, or None (unknown or revoked)."""
    return app.find_token(secret)


def revoke_token(app: StratexecApp, token_or_secret: str) -> AccessToken:
    return app.revoke_token(token_or_secret)


def list_tokens(app: StratexecApp) -> list[dict[str, Any]]:
    """Every token issued, oldest first: never its secret (only a hash of it is kept)."""
    return [{"id": str(token.id), "user": token.user, "workspaces": token.workspaces,
             "label": token.label, "createdAt": token.created_on.isoformat(),
             "revoked": token.revoked,
             "revokedAt": token.modified_on.isoformat() if token.revoked else None}
            for token in app.list_tokens()]


# ---------------------------------------------------------------- read models

def list_strategies(views: ViewStore, workspaces: Collection[str], limit: int, offset: int
                    ) -> list[dict[str, Any]]:
    return queries.list_strategies(views, workspaces, limit, offset)


def strategy_detail(views: ViewStore, strategy_id: UUID | str, plan: Plan | None = None,
                    rules: PropagationRules | None = None) -> dict[str, Any] | None:
    """The strategy with its propagated plan (tasks and the rule decisions); `plan` when
    the caller has it already (it has just defined the strategy)."""
    row = queries.get_strategy(views, strategy_id)
    if row is None:
        return None
    if plan is None:
        plan = propagate(parse_strategy(row["document"]).items, rules)
    return {**row, "plan": plan_answer(plan)}


def plan_answer(plan: Plan) -> dict[str, Any]:
    """A plan as the strategy answers show it: its tasks (with their item's description
    and inputs when it has them) and the rule decisions."""
    return {"tasks": [task.as_record() for task in plan.tasks],
            "decisions": [decision.as_record() for decision in plan.decisions]}


def find_execution(views: ViewStore, execution_id: UUID | str) -> dict[str, Any] | None:
    return queries.get_execution(views, execution_id)


def list_executions(views: ViewStore, workspaces: Collection[str], *, status: str | None,
                    strategy_id: str | None, limit: int, offset: int
                    ) -> list[dict[str, Any]]:
    return queries.list_executions(views, workspaces, status=status,
                                   strategy_id=strategy_id, limit=limit, offset=offset)


def execution_status(views: ViewStore, execution_id: UUID | str) -> dict[str, Any] | None:
    """The execution, its health, its completion estimate, tasks and per-agent metrics,
    and the log position they all reflect (one read, so that the rows agree with the
    position)."""
    with views.read() as cursor:
        execution = queries.get_execution(views, execution_id)
        if execution is None:
            return None
        metrics = queries.agent_metrics(views, execution_id)
        return {
            "execution": execution,
            "health": queries.current_health(views, execution),
            "eta": queries.current_eta(views, execution_id),
            "tasks": queries.list_tasks(views, execution_id),
            "metrics": {"agents": metrics, "usage": usage_total(metrics)},
            "position": views_position(cursor),
        }


def execution_snapshot(views: ViewStore, execution_id: str) -> tuple[dict[str, Any], int]:
    """A stream's first event: the execution as the views hold it, and their position."""
    status = execution_status(views, execution_id)
    assert status is not None, "a stream is opened only for an execution that exists"
    return {"position": status["position"], "type": "snapshot",
            "execution": status["execution"], "tasks": status["tasks"],
            "health": status["health"]}, status["position"]


def workspace_snapshot(views: ViewStore, workspace_id: str) -> tuple[dict[str, Any], int]:
    """A workspace stream's first event: its newest executions (at most
    `MAX_SNAPSHOT_EXECUTIONS`), how many it has in all, and the views' position."""
    with views.read() as cursor:
        position = views_position(cursor)
        executions = queries.list_executions(views, {workspace_id},
                                             limit=MAX_SNAPSHOT_EXECUTIONS)
        total = queries.execution_count(views, {workspace_id})
    return {"position": position, "type": "snapshot", "executions": executions,
            "totalExecutions": total, "truncated": total > len(executions)}, position


def health_snapshots(views: ViewStore, execution_id: str, limit: int
                     ) -> list[dict[str, Any]]:
    return queries.health_snapshots(views, execution_id, limit)


def execution_summary(views: ViewStore, execution_id: UUID) -> dict[str, Any]:
    """How an execution ended (or stands), as `stratexec run --json` prints it."""
    row = queries.get_execution(views, execution_id)
    if row is None:
        raise NotFound(f"no execution {execution_id} in the read models")
    health = queries.latest_health(views, execution_id) or {}
    return {
        "executionId": str(execution_id), "status": row["status"],
        "totalTasks": row["totalTasks"], "completedTasks": row["completedTasks"],
        "failedTasks": row["failedTasks"], "skippedTasks": row["skippedTasks"],
        "health": {"score": health.get("score"), "status": health.get("status")},
    }


def execution_progress(views: ViewStore, execution_id: UUID) -> dict[str, Any] | None:
    """What a progress line shows: the status answer's `execution`, `eta` and `metrics`,
    without its tasks (read at every redraw, they would cost more than the line is worth)."""
    row = queries.get_execution(views, execution_id)
    if row is None:
        return None
    return {"execution": row, "eta": queries.current_eta(views, execution_id),
            "metrics": {"agents": queries.agent_metrics(views, execution_id)}}


def paused_agent_types(views: ViewStore) -> list[dict[str, Any]]:
    return queries.paused_agent_types(views)


def operational_counts(views: ViewStore, workspaces: Collection[str]
                       ) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    return queries.operational_counts(views, workspaces)


def token_usage(views: ViewStore, workspaces: Collection[str]
                ) -> dict[str, tuple[int, int, float]]:
    return queries.token_usage(views, workspaces)


@dataclass(frozen=True)
class EngineState:
    store: str  # sqlite or postgres
    position: int  # the last log position recorded
    projected: int  # the last one every read model has applied
    projection_error: str | None

    @property
    def lag(self) -> int:
        return max(0, self.position - self.projected)


def worker_health(engine: Engine) -> dict[str, Any] | None:
    """With `--agents-on celery`: the workers last seen, with the queues they serve, and
    the attempts in flight per agent type (None when attempts run in-process)."""
    return engine.runtime.placement.health()


def engine_state(engine: Engine) -> EngineState:
    """How far the log and the read models are; raises when the store is unreachable."""
    position = engine.app.recorder.max_notification_id() or 0
    error = engine.runner.error
    return EngineState(engine.store.store, position, engine.runner.position,
                       None if error is None else str(error))


@dataclass(frozen=True)
class NodeState:
    """This process among the others on the database (SQLite: the only one)."""

    name: str
    runs_projections: bool
    owned_executions: int  # executions with a live actor in this process
    takeovers: int  # executions it took over from a process that died


def node_state(engine: Engine) -> NodeState:
    node = engine.node
    return NodeState(node_name() if node is None else node.name, engine.runner.leading,
                     len(engine.runtime.live_execution_ids()),
                     0 if node is None else node.ownership.takeovers)


def live_executions(engine: Engine, workspaces: Collection[str]) -> int:
    """How many executions of these workspaces have a live actor in this engine."""
    return queries.count_executions(engine.views, engine.runtime.live_execution_ids(),
                                    workspaces)


def views_position(cursor: Any) -> int:
    """The log position every read model has reached."""
    return min(read_tracking(cursor).values(), default=0)


# ----------------------------------------------------------------------- audit

def history(app: StratexecApp, execution_id: UUID, after: int = 0, limit: int | None = None
            ) -> list[dict[str, Any]]:
    return audit.history(app, execution_id, after, limit)


def execution_at(app: StratexecApp, execution_id: UUID, version: int | None = None
                 ) -> Execution:
    """The execution as it was at `version` (the latest by default); `NotFound`."""
    return app.get_execution(execution_id, version=version)


def execution_state(execution: Execution) -> dict[str, Any]:
    return audit.execution_state(execution)


def verify_read_models(app: StratexecApp, live: ViewStore, scratch: ViewStore) -> list[str]:
    """Rebuild every read model from position 0 into `scratch` and compare it row by row
    with `live` (brought up to date first); the differences."""
    ProjectionRunner(app, live).catch_up()
    rebuild(app, scratch)
    return compare(live, scratch)
