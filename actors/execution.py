"""One ExecutionActor per live execution: the only writer of its Execution aggregate.

The actor holds an `ExecutionTurn`, which decides; the actor receives, saves and sends.
A turn groups the commands waiting in the inbox (group commit). Its first command is applied
and the actor tells itself `_EndTurn`, which arrives after every message already waiting;
the commands among them are applied as they come. When `_EndTurn` arrives, or the turn holds
`TURN_SIZE` commands, the turn's events are saved at once, and only then acted on: the new
attempts go to their agents, retries to the clock, the figures to the health monitor.
`Pause`, `Resume`, `Cancel` and `Retry` end the turn they join, so that their answer
(`Transition`) carries the log position of the save that recorded them.

An execution that has finished has no actor. A retry reopens it: the runtime spawns its actor
with the retry as its `Opening`, applied before any message; refused, the actor stops again.
Once finished, an actor answers no more asks (`ActorDeadError`): the runtime then decides
from the stored state, or spawns the actor anew.

Before a turn makes events, the actor hands `pace` the position of its last save
(backpressure: it may block while the readers are behind).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
    Retry,
    ReturnTask,
    RunTask,
    Transition,
)
from stratexec.actors.turn import (
    ContinueActiveTasks,
    ExecutionTurn,
    InterruptActiveTasks,
    InterruptForStop,
    TurnEffects,
)
from stratexec.domain.application import StratexecApp
from stratexec.domain.errors import DomainError
from stratexec.domain.execution import Execution

if TYPE_CHECKING:
    from stratexec.actors.agent import AgentActor
    from stratexec.actors.health import HealthMonitorActor

logger = logging.getLogger(__name__)

# After a restart: the outcome of each attempt under way that has one, by idempotency key.
Collect = Callable[[list[AgentTask]], Mapping[str, RecordTaskSuccess | RecordTaskFailure]]

# Told by agents, the clock and the actor itself: applied in the open turn.
TOLD = (RecordTaskStarted, RecordTaskProgress, RecordTaskSuccess, RecordTaskFailure,
        ReturnTask, DispatchDueTasks, AssignReadyTasks)
# Asked by the runtime: applied, then the turn ends and the answer is a Transition.
ASKED = (Pause, Resume, Cancel, Retry)


@dataclass(frozen=True)
class _EndTurn:
    """To itself: the messages that were waiting when the turn began have been handled."""


@dataclass(frozen=True)
class Opening:
    """The first command of an actor spawned for an execution that had finished (a retry
    reopens it), and where its answer goes: the Transition, or the error that refused it."""

    command: Retry
    answer: pykka.Future[Transition]


@dataclass(frozen=True)
class _Fail:
    """To itself: a turn failed while answering an ask, whose error went to the asker."""

    error: Exception


class ExecutionActor(pykka.ThreadingActor):
    def __init__(
        self,
        execution: Execution,
        app: StratexecApp,
        agents: Mapping[str, pykka.ActorRef[AgentActor]],
        clock: Clock,
        monitor: pykka.ActorRef[HealthMonitorActor] | None = None,
        on_finished: Callable[[Execution], None] | None = None,
        on_crashed: Callable[[Execution, BaseException], None] | None = None,
        recovering: bool = False,
        rng: random.Random | None = None,
        pace: Callable[[int], None] | None = None,
        saved_at: int = 0,
        opening: Opening | None = None,
        collect: Collect | None = None,
    ) -> None:
        """With `collect`, a recovering actor continues its attempts under way (they run
        outside this process) once the finished ones are recorded; without it they were
        lost with the process, and are interrupted."""
        super().__init__()
        self.execution = execution
        self._turn = ExecutionTurn(execution, rng or random.Random())
        self._app = app
        self._agents = agents
        self._clock = clock
        self._monitor = monitor
        self._on_finished = on_finished
        self._on_crashed = on_crashed
        self._recovering = recovering
        self._pace = pace
        self._saved_up_to = saved_at  # the log position of this actor's last save
        self._turn_began = datetime.now(UTC)  # the time of every command of the open turn
        self._end_turn_told = False
        self._broken = False  # a save failed: the aggregate holds events the store does not
        self._opening = opening
        self._finished = False  # the execution finished: the actor is stopping
        self._collect = collect

    def on_start(self) -> None:
        if self._opening is not None:
            self._open(self._opening)
            return
        self._begin_turn()
        if self._recovering:
            self._turn.apply(self._recovery(), self._turn_began)
        self._end_turn()

    def on_receive(self, message: Any) -> Any:
        if self._broken:
            if isinstance(message, _Fail):
                raise message.error  # fail as after a tell: on_failure, then a restart
            return super().on_receive(message)
        if isinstance(message, TOLD):
            self._record(message)
        elif isinstance(message, _EndTurn):
            self._end_turn_told = False
            if self._turn.is_open:
                self._end_turn()
        elif isinstance(message, ASKED):
            if self._finished:
                raise pykka.ActorDeadError(f"execution {self.execution.id} has finished")
            return self._transition(message)
        else:
            return super().on_receive(message)
        return None

    def on_stop(self) -> None:
        """Record what the open turn applied (its `_EndTurn` may be queued after the stop);
        stopped with the engine before the execution finished, record that too
        (`InterruptForStop`), in the same save. Not when its attempts run outside the
        process (`collect`): they run on while the engine is down, and the next start
        collects them; handed back, they would be done twice."""
        if self._broken:
            return
        if not self._finished and not self.execution.is_finished and self._collect is None:
            self._apply(InterruptForStop())
        if self._turn.is_open:
            self._end_turn()

    def on_failure(self, *exc_info: Any) -> None:
        self._broken = True
        if self._on_crashed is not None:
            self._on_crashed(self.execution, exc_info[1])

    def _recovery(self) -> InterruptActiveTasks | ContinueActiveTasks:
        if self._collect is None:
            return InterruptActiveTasks()
        return ContinueActiveTasks(self._collect(self._turn.active_work()))

    # ------------------------------------------------------------------ turns

    def _record(self, command: Any) -> None:
        outcome = self._apply(command)
        if isinstance(outcome, DomainError):
            logger.warning("execution %s refused %s: %s", self.execution.id, command, outcome)
        if self._turn.is_full:
            self._end_turn()
        elif not self._end_turn_told:
            self._end_turn_told = True
            self.actor_ref.tell(_EndTurn())

    def _open(self, opening: Opening) -> None:
        """Apply the opening command first; refused, the execution stays finished, and so
        this actor stops (a failed save crashes it, as in `_transition`)."""
        try:
            opening.answer.set(self._transition(opening.command))
        except Exception:
            opening.answer.set_exception()
            if not self._broken and self.execution.is_finished:
                self._finish()

    def _transition(self, command: Pause | Resume | Cancel | Retry) -> Transition:
        """Record, then act, then answer (or raise the domain error that refused it)."""
        outcome = self._apply(command)
        try:
            self._end_turn()
        except Exception as error:
            self._broken = True
            self.actor_ref.tell(_Fail(error))  # an error in an ask does not stop an actor
            raise
        if isinstance(outcome, DomainError):
            raise outcome
        return Transition(outcome, self._saved_up_to)

    def _apply(self, command: Any) -> str | DomainError:
        if not self._turn.is_open:
            self._begin_turn()
        return self._turn.apply(command, self._turn_began)

    def _begin_turn(self) -> None:
        """Before a turn makes events: wait while the readers are behind our last save.

        Waiting here, rather than right after a save, lets the agents work on what the
        save dispatched meanwhile, and the messages they send back make the next turn."""
        if self._pace is not None and self._saved_up_to:
            self._pace(self._saved_up_to)
        self._turn_began = datetime.now(UTC)

    def _end_turn(self) -> None:
        effects = self._turn.end(datetime.now(UTC))
        if effects.save:
            try:
                self._saved_up_to = self._app.record(self.execution)
            except Exception:
                self._broken = True
                raise
        self._act(effects)

    def _act(self, effects: TurnEffects) -> None:
        """Carry out a turn's effects, once its events are recorded."""
        me = self.actor_ref
        for work in effects.dispatch:
            self._agents[work.agent].tell(RunTask(work, me))
        if effects.more_ready:
            self._tell_self(AssignReadyTasks())
        for when in effects.wake_at:
            self._clock.tell_at(when, me, DispatchDueTasks())
        if effects.withdraw is not None:
            for agent in self._agents.values():
                agent.tell(effects.withdraw)
        if effects.track is not None and self._monitor is not None:
            self._monitor.tell(effects.track)
        if effects.finished:
            self._finish()

    def _finish(self) -> None:
        """The execution has finished: tell the runtime, and stop."""
        self._finished = True
        if self._on_finished is not None:
            self._on_finished(self.execution)
        with contextlib.suppress(pykka.ActorDeadError):  # stopping already
            self.stop()

    def _tell_self(self, message: Any) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # stopping: it would be dropped
            self.actor_ref.tell(message)
