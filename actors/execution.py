"""One ExecutionActor per live execution: the only writer of its Execution aggregate.

Each turn of the actor applies the messages waiting in its inbox to the aggregate, assigns
whatever became ready, saves once (group commit), and only then acts: hands the new attempts
to their agents, schedules retries on the clock, tells the health monitor. A reply to an
agent about an attempt that is no longer live (late, duplicated, or from before a pause or a
cancel) is dropped: the aggregate already moved on.

A turn is bounded (`TURN_SIZE` messages, `TURN_SIZE` assignments): a save's events reach the
read models and the live streams together, so an unbounded turn (1,000 ready tasks at the
start of a wide DAG) would hold its first event back for as long as the whole turn takes.
What a turn leaves ready it assigns in the next, which it asks for with `AssignReadyTasks`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka

from stratexec.actors.clock import Clock
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
    ReturnTask,
    RunTask,
    TrackExecution,
    Transition,
    WithdrawTasks,
)
from stratexec.domain.application import StratexecApp
from stratexec.domain.errors import DomainError
from stratexec.domain.execution import Execution, TaskState

logger = logging.getLogger(__name__)

COMMANDS = (RecordTaskStarted, RecordTaskProgress, RecordTaskSuccess, RecordTaskFailure,
            ReturnTask, DispatchDueTasks, AssignReadyTasks, Pause, Resume, Cancel)
TURN_SIZE = 32
# The clock converts a wall-clock time to a monotonic delay; a retry that wakes a few
# milliseconds early must still count as due, or it would wait for the next wake-up.
DUE_TOLERANCE = timedelta(milliseconds=20)
INTERRUPTED_BY_RESTART = "interrupted: the process stopped while the attempt was under way"


@dataclass
class _Effects:
    """What a turn decided to do once its events are saved."""

    retries: list[datetime] = field(default_factory=list)
    withdraw: WithdrawTasks | None = None
    look_for_next_retry: bool = False


class ExecutionActor(pykka.ThreadingActor):
    def __init__(
        self,
        execution: Execution,
        app: StratexecApp,
        agents: Mapping[str, pykka.ActorRef[Any]],
        clock: Clock,
        monitor: pykka.ActorRef[Any] | None = None,
        on_finished: Callable[[Execution], None] | None = None,
        on_crashed: Callable[[Execution, BaseException], None] | None = None,
        recovering: bool = False,
        rng: random.Random | None = None,
        pace: Callable[[int], None] | None = None,
        saved_at: int = 0,
    ) -> None:
        super().__init__()
        self.execution = execution
        self._app = app
        self._agents = agents
        self._clock = clock
        self._monitor = monitor
        self._on_finished = on_finished
        self._on_crashed = on_crashed
        self._recovering = recovering
        self._rng = rng or random.Random()
        self._pace = pace
        self._saved_up_to = saved_at  # the log position of this actor's last save
        self._effects = _Effects()
        self._broken = False

    def on_start(self) -> None:
        if self._recovering:
            self.execution.interrupt_active_tasks(INTERRUPTED_BY_RESTART)
            self._effects.look_for_next_retry = True
        self._keep_pace()
        self._commit_and_act()

    def on_receive(self, message: Any) -> Any:
        if self._broken or not isinstance(message, COMMANDS):
            return super().on_receive(message)
        self._keep_pace()
        batch: list[tuple[Any, pykka.Future[Any] | None]] = [(message, None)]
        leftover = None
        while (leftover is None and len(batch) < TURN_SIZE
               and not self.actor_inbox.empty()):
            envelope = self.actor_inbox.get()
            if isinstance(envelope.message, COMMANDS):
                batch.append((envelope.message, envelope.reply_to))
            else:
                leftover = envelope  # a stop or a proxy call: handled after this turn
        outcomes = [self._apply(command) for command, _ in batch]
        try:
            self._commit_and_act()
        except Exception as save_error:
            for _, reply_to in batch[1:]:
                _reply(reply_to, None, save_error)
            raise
        outcomes = [(None if status is None else Transition(status, self._saved_up_to), refusal)
                    for status, refusal in outcomes]
        for (_, reply_to), (value, refusal) in zip(batch[1:], outcomes[1:], strict=True):
            _reply(reply_to, value, refusal)
        if leftover is not None:
            self._handle_leftover(leftover)
        first_value, first_refusal = outcomes[0]
        if first_refusal is not None:
            raise first_refusal
        return first_value

    def on_failure(self, *exc_info: Any) -> None:
        self._broken = True
        if self._on_crashed is not None:
            self._on_crashed(self.execution, exc_info[1])

    # ------------------------------------------------------------------ turns

    def _apply(self, command: Any) -> tuple[Any, DomainError | None]:
        """Apply one command to the aggregate; (reply, domain error) for whoever asked."""
        execution = self.execution
        try:
            match command:
                case Pause():
                    execution.pause()
                    self._effects.withdraw = WithdrawTasks(execution.id, cancel_running=False)
                case Resume():
                    execution.resume()
                case Cancel():
                    execution.cancel()
                    self._effects.withdraw = WithdrawTasks(execution.id, cancel_running=True)
                case DispatchDueTasks():
                    self._effects.look_for_next_retry = True
                case AssignReadyTasks():
                    pass  # the turn assigns what is ready
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
                        task_id, attempt, kind, message, duration_ms, now=datetime.now(UTC),
                        retryable=retryable, random_unit=self._rng.random())
                    if retry_at is not None:
                        self._effects.retries.append(retry_at)
                case ReturnTask(task_id, attempt, reason):
                    execution.interrupt_task(task_id, attempt, reason)
        except DomainError as error:
            return None, error
        return str(execution.status), None

    def _commit_and_act(self) -> None:
        execution = self.execution
        effects, self._effects = self._effects, _Effects()
        assigned = execution.assign_ready_tasks(datetime.now(UTC) + DUE_TOLERANCE, TURN_SIZE)
        execution.finish_if_done()
        finished = execution.is_finished  # completed, failed, or cancelled in this turn
        if execution.pending_events:
            try:
                recordings = self._app.save(execution)
            except Exception:
                self._broken = True  # the aggregate holds events the store does not
                raise
            self._saved_up_to = recordings[-1].notification.id
        elif not effects.look_for_next_retry:
            return
        # Recorded: now act on it.
        for task in assigned:
            self._dispatch(task)
        if len(assigned) == TURN_SIZE:
            self.actor_ref.tell(AssignReadyTasks())
        for retry_at in effects.retries:
            self._clock.tell_at(retry_at, self.actor_ref, DispatchDueTasks())
        if effects.look_for_next_retry and not finished:
            next_retry = execution.next_retry_at()
            if next_retry is not None:
                self._clock.tell_at(next_retry, self.actor_ref, DispatchDueTasks())
        if effects.withdraw is not None:
            for agent in self._agents.values():
                agent.tell(effects.withdraw)
        if self._monitor is not None:
            self._monitor.tell(TrackExecution(
                execution.id, execution.workspace_id, execution.health_inputs(),
                execution.agent_metrics(), finished=finished))
        if finished:
            if self._on_finished is not None:
                self._on_finished(execution)
            self.stop()

    def _keep_pace(self) -> None:
        """Before a turn makes events: wait while the readers are behind our last save.

        Waiting here, rather than right after a save, lets the agents work on what the
        save dispatched meanwhile, and the messages they send back make the next turn."""
        if self._pace is not None and self._saved_up_to:
            self._pace(self._saved_up_to)

    def _dispatch(self, task: TaskState) -> None:
        planned = task.plan
        inputs = {dependency: self.execution.tasks[dependency].result
                  for dependency in planned.depends_on}
        work = AgentTask(
            execution_id=self.execution.id, workspace_id=self.execution.workspace_id,
            task_id=planned.id, item_id=planned.item_id, title=planned.title,
            agent=planned.agent, priority=planned.priority, order=planned.order,
            attempt=task.attempt, inputs=inputs)
        self._agents[planned.agent].tell(RunTask(work, self.actor_ref))

    def _handle_leftover(self, envelope: Any) -> None:
        """Handle a non-command message drained from the inbox as pykka's own loop would."""
        try:
            response = self._handle_receive(envelope.message)
        except Exception:
            if envelope.reply_to is None:
                raise
            envelope.reply_to.set_exception()
        else:
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)


def _reply(reply_to: pykka.Future[Any] | None, value: Any, error: Exception | None) -> None:
    if reply_to is None:
        return
    if error is None:
        reply_to.set(value)
    else:
        reply_to.set_exception(exc_info=(type(error), error, error.__traceback__))
