"""What one execution does, turn by turn: a plain object that takes commands and returns
effects, with no threads and no store (its ExecutionActor receives, saves and sends).

A turn applies commands to the Execution aggregate as they come (`apply`: each answers the
new status, or the domain error that refused it). When the turn ends (`end`), whatever became
ready is assigned, the execution finishes if no task can run any more, and the effects come
back as data, to carry out once the turn's events are saved: the attempts to dispatch, when
to look for due retries, what to withdraw from the agents, what to tell the health monitor.

A reply about an attempt that is no longer live (late, duplicated, or from before a pause or
a cancel) is dropped: the aggregate already moved on.

A turn is bounded (`TURN_SIZE` commands, `TURN_SIZE` assignments): a save's events reach the
read models and the live streams together, so an unbounded turn (1,000 ready tasks at the
start of a wide DAG) would hold its first event back for as long as the whole turn takes.
What a turn leaves ready it assigns in the next, which `more_ready` asks for.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from stratexec.actors.messages import (
    AgentTask,
    AssignReadyTasks,
    Cancel,
    DispatchDueTasks,
    Pause,
    RecordTaskFailure,
    RecordTaskProgress,
    RecordTaskStarted,
    RecordTaskSuccess,
    Resume,
    Retry,
    ReturnTask,
    TrackExecution,
    WithdrawTasks,
)
from stratexec.domain.errors import DomainError
from stratexec.domain.execution import ACTIVE_TASK, Execution, TaskState

logger = logging.getLogger(__name__)

TURN_SIZE = 32
# The clock converts a wall-clock time to a monotonic delay; a retry that wakes a few
# milliseconds early must still count as due, or it would wait for the next wake-up.
DUE_TOLERANCE = timedelta(milliseconds=20)
INTERRUPTED_BY_RESTART = "interrupted: the process stopped while the attempt was under way"
INTERRUPTED_BY_STOP = ("interrupted: the engine stopped while the attempt was under way; it "
                       "runs again when an engine takes the execution up")


@dataclass(frozen=True)
class InterruptActiveTasks:
    """After a restart: every attempt that was under way is lost; its task goes back to
    pending, or fails for good when that was its last attempt. (The execution is taken up
    again, if a graceful stop had marked it interrupted.)"""

    reason: str = INTERRUPTED_BY_RESTART


@dataclass(frozen=True)
class InterruptForStop:
    """The engine stops: hand back the attempts under way (not counted) and mark the
    execution interrupted, so that it does not read as running while no engine runs it."""

    reason: str = INTERRUPTED_BY_STOP


@dataclass(frozen=True)
class ContinueActiveTasks:
    """After a restart, with attempts that run outside the process (Celery workers): those
    that finished meanwhile are recorded with the outcome found under their key (`outcomes`,
    by idempotency key); the others were not lost, and are sent again as the same attempt
    (a worker never runs one twice: see `stratexec.workers.task`)."""

    outcomes: Mapping[str, RecordTaskSuccess | RecordTaskFailure]


Command = (RecordTaskStarted | RecordTaskProgress | RecordTaskSuccess | RecordTaskFailure
           | ReturnTask | DispatchDueTasks | AssignReadyTasks | Pause | Resume | Cancel
           | Retry | InterruptActiveTasks | InterruptForStop | ContinueActiveTasks)


@dataclass(frozen=True)
class TurnEffects:
    """What to do once a turn is over: save first (if `save`), then act."""

    save: bool  # the aggregate holds events the store does not
    dispatch: tuple[AgentTask, ...] = ()
    more_ready: bool = False  # the turn assigned all it may: another turn should follow
    wake_at: tuple[datetime, ...] = ()  # when to look for due retries
    withdraw: WithdrawTasks | None = None  # for every agent
    track: TrackExecution | None = None  # for the health monitor
    finished: bool = False


NOTHING = TurnEffects(save=False)


class ExecutionTurn:
    """The open turn of one execution (there is always one: it ends, and the next begins)."""

    def __init__(self, execution: Execution, rng: random.Random) -> None:
        self.execution = execution
        self._rng = rng
        self.size = 0  # the commands applied in this turn
        self._retries: list[datetime] = []
        self._withdraw: WithdrawTasks | None = None
        self._look_for_next_retry = False
        self._continued: list[TaskState] = []  # active attempts to send again, as they are

    @property
    def is_open(self) -> bool:
        """True once a command was applied in this turn."""
        return self.size > 0

    @property
    def is_full(self) -> bool:
        return self.size >= TURN_SIZE

    def apply(self, command: Command, now: datetime) -> str | DomainError:
        """Apply one command: the execution's status, or the domain error that refused it
        (nothing changed then)."""
        self.size += 1
        execution = self.execution
        try:
            match command:
                case Pause():
                    execution.pause()
                    self._withdraw = WithdrawTasks(execution.id, cancel_running=False)
                case Resume():
                    execution.resume()
                case Cancel():
                    execution.cancel()
                    self._withdraw = WithdrawTasks(execution.id, cancel_running=True)
                case Retry(task_ids):
                    execution.retry_failed(task_ids)
                case DispatchDueTasks():
                    self._look_for_next_retry = True
                case AssignReadyTasks():
                    pass  # the end of the turn assigns what is ready
                case InterruptActiveTasks(reason):
                    execution.recover()
                    execution.interrupt_active_tasks(reason)
                    self._look_for_next_retry = True
                case InterruptForStop(reason):
                    execution.interrupt(reason)
                case ContinueActiveTasks(outcomes):
                    execution.recover()
                    self._continue_active(outcomes, now)
                case _ if not execution.is_current_attempt(command.task_id, command.attempt):
                    logger.debug("dropping %s: the attempt is no longer live", command)
                case RecordTaskStarted(task_id, attempt):
                    execution.start_task(task_id, attempt)
                case RecordTaskProgress(task_id, attempt, progress, message):
                    execution.report_progress(task_id, attempt, progress, message)
                case RecordTaskSuccess(task_id, attempt, result, duration_ms):
                    execution.succeed_task(task_id, attempt, result, duration_ms)
                case RecordTaskFailure(task_id, attempt, kind, message, retryable, duration_ms):
                    retry_at = execution.fail_task(
                        task_id, attempt, kind, message, duration_ms, now=now,
                        retryable=retryable, random_unit=self._rng.random())
                    if retry_at is not None:
                        self._retries.append(retry_at)
                case ReturnTask(task_id, attempt, reason):
                    execution.interrupt_task(task_id, attempt, reason)
        except DomainError as error:
            return error
        return str(execution.status)

    def active_work(self) -> list[AgentTask]:
        """The attempts under way, as their agents were given them."""
        return [self._work(t) for t in self.execution.tasks.values()
                if t.status in ACTIVE_TASK]

    def _continue_active(self, outcomes: Mapping[str, RecordTaskSuccess | RecordTaskFailure],
                         now: datetime) -> None:
        for work in self.active_work():
            outcome = outcomes.get(work.idempotency_key)
            if outcome is None:
                self._continued.append(self.execution.tasks[work.task_id])
            else:
                self.apply(outcome, now)
        self._look_for_next_retry = True

    def end(self, now: datetime) -> TurnEffects:
        """End the turn: assign what is ready (due by `now`), finish if nothing can run
        any more, and say what to save and do. The next turn begins empty."""
        execution = self.execution
        retries, withdraw = self._retries, self._withdraw
        look_for_next_retry = self._look_for_next_retry
        continued, self._continued = self._continued, []
        self.size, self._retries, self._withdraw = 0, [], None
        self._look_for_next_retry = False

        assigned = execution.assign_ready_tasks(now + DUE_TOLERANCE, TURN_SIZE)
        execution.finish_if_done()
        finished = execution.is_finished  # completed, failed, or cancelled by now
        save = bool(execution.pending_events)
        if not save and not look_for_next_retry:
            return NOTHING
        if look_for_next_retry and not finished:
            next_retry = execution.next_retry_at()
            if next_retry is not None:
                retries.append(next_retry)
        return TurnEffects(
            save=save,
            dispatch=tuple(self._work(task) for task in continued + assigned),
            more_ready=len(assigned) == TURN_SIZE,
            wake_at=tuple(retries),
            withdraw=withdraw,
            track=TrackExecution(
                execution.id, execution.workspace_id, execution.health_inputs(),
                execution.agent_metrics(), finished=finished),
            finished=finished,
        )

    def _work(self, task: TaskState) -> AgentTask:
        planned, execution = task.plan, self.execution
        return AgentTask(
            execution_id=execution.id, workspace_id=execution.workspace_id,
            task_id=planned.id, item_id=planned.item_id, title=planned.title,
            agent=planned.agent, priority=planned.priority, order=planned.order,
            attempt=task.attempt, description=planned.description,
            inputs=dict(planned.inputs or {}),
            upstream={dependency: execution.tasks[dependency].result
                      for dependency in planned.depends_on})
