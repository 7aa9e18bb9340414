"""Starts and stops the actor system, and recovers unfinished executions at start-up.

`Runtime` is what the CLI and the server talk to: it spawns one AgentActor per agent type,
the HealthMonitorActor and the clock, spawns an ExecutionActor for each execution it starts
or recovers, and routes pause/resume/cancel/retry to the live actor. It holds no execution
state of its own beyond which actors are alive. A retry of an execution that has finished
spawns its actor again, with the retry as that actor's first command (`Opening`): there is
never a second writer of an execution, and nothing saves it from outside its actor.

With several processes on one database (`cluster.ownership`), the runtime spawns an
execution's actor only once it has claimed the execution (`Ownership.claim`), lets go when
it has finished, and stops, never restarts, an actor whose save the event store refused as
a conflicting version: another process owns that execution now (fencing).

A finished execution is forgotten once its actor's thread has ended (the actor, and with it
the aggregate, lives until then); the memory glibc then holds free is handed back to the
operating system, so that a long-running engine does not keep the size of the largest
execution it ran.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import pykka
from eventsourcing.persistence import RecordConflictError

from stratexec.actors.agent import AgentActor
from stratexec.actors.agents.base import AgentHandler, AgentLimits
from stratexec.actors.clock import Clock
from stratexec.actors.execution import ExecutionActor, Opening
from stratexec.actors.health import Estimate, HealthMonitorActor, prior_speed
from stratexec.actors.memory import release_memory
from stratexec.actors.messages import (
    AgentTypeState,
    Cancel,
    Pause,
    Resume,
    ResumeAgentType,
    Retry,
    Transition,
)
from stratexec.actors.placement import LocalPlacement, Placement
from stratexec.circuit_settings import CircuitSettings
from stratexec.domain.application import StratexecApp
from stratexec.domain.errors import InvalidTransition, NotFound
from stratexec.domain.execution import Execution
from stratexec.domain.propagation import Plan
from stratexec.domain.strategy import AGENT_TYPES, Strategy
from stratexec.settings import EngineOptions

logger = logging.getLogger(__name__)

ASK_TIMEOUT = 30.0
RESTART_DELAY = 1.0
RETRY_ROUNDS = 3  # a retry finds the actor finishing, or the execution unowned, this often


class Ownership(Protocol):
    """Which executions this process may run (`cluster.ownership.AdvisoryOwnership`)."""

    def claim(self, execution_id: UUID) -> bool:
        """Own it (or keep owning it); False while another live process owns it."""
        ...

    def release(self, execution_id: UUID) -> None: ...


class OwnedElsewhere(Exception):
    """The execution is unfinished and another live process owns it."""


@dataclass(frozen=True)
class StartedExecution:
    """What a caller learns when an execution starts (the aggregate itself is the actor's)."""

    id: UUID
    strategy_id: UUID
    workspace_id: str
    status: str
    total_tasks: int
    started_at: datetime
    position: int  # the log position of the Started event (0: not known, as for a replay)
    replayed: bool = False  # an idempotent start that answers the execution it started before

    @classmethod
    def of(cls, execution: Execution, position: int = 0, replayed: bool = False
           ) -> StartedExecution:
        return cls(execution.id, execution.strategy_id, execution.workspace_id,
                   str(execution.status), execution.total_tasks, execution.created_on,
                   position, replayed)


class Runtime:
    def __init__(
        self, app: StratexecApp, handlers: Mapping[str, AgentHandler],
        options: EngineOptions | None = None, pace: Callable[[int], None] | None = None,
        limits: Mapping[str, AgentLimits] | None = None,
        circuits: Mapping[str, CircuitSettings] | None = None,
        ownership: Ownership | None = None,
        estimate: Estimate | None = None,
        placement: Placement | None = None,
    ) -> None:
        """`pace(position)` is called by an execution actor before each turn, with the
        position of its last save: it may block to keep the engine from running ahead of
        its readers (backpressure). `limits` are per agent type; a type without them runs
        `options.concurrency` attempts at once, with no timeout. `circuits` say when each
        type's circuit breaker pauses it; a type without them has `options.circuit`.
        `ownership`: claimed before an execution's actor starts (None: one process, which
        owns everything). `estimate` makes the completion estimates the health monitor
        records (none without it). `placement` says where attempts run (by default on this
        process's threads); the runtime closes it when it stops."""
        missing = set(AGENT_TYPES) - set(handlers)
        if missing:
            raise ValueError(f"no agent handler for {', '.join(sorted(missing))}")
        self.app = app
        self.options = options or EngineOptions()
        self._handlers = handlers
        self._limits = dict(limits or {})
        self._circuits = dict(circuits or {})
        self._clock = Clock()
        self._rng = random.Random(self.options.seed)
        self._lock = threading.Lock()
        self._live: dict[UUID, pykka.ActorRef[ExecutionActor]] = {}
        self._done: dict[UUID, threading.Event] = {}
        self._agents: dict[str, pykka.ActorRef[AgentActor]] = {}
        self._monitor: pykka.ActorRef[HealthMonitorActor] | None = None
        self._stopping = False  # no execution starts any more
        self._stopped = False
        self._pace = pace
        self._ownership = ownership
        self._estimate = estimate
        self.placement = placement or LocalPlacement()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Runtime:
        self._clock.start()
        self._agents = {
            agent_type: self._start_agent(agent_type, handler)
            for agent_type, handler in self._handlers.items()
        }
        priors = {agent_type: prior_speed(handler, self._limits_of(agent_type))
                  for agent_type, handler in self._handlers.items()}
        self._monitor = HealthMonitorActor.start(
            self.app, self._clock, self.options.health_interval, priors, self._estimate)
        return self

    def _start_agent(self, agent_type: str, handler: AgentHandler
                     ) -> pykka.ActorRef[AgentActor]:
        limits = self._limits_of(agent_type)
        return AgentActor.start(
            handler, limits, circuit=self._circuits.get(agent_type, self.options.circuit),
            app=self.app, clock=self._clock, runner=self.placement.runner(handler, limits))

    def _limits_of(self, agent_type: str) -> AgentLimits:
        return self._limits.get(agent_type, AgentLimits(self.options.concurrency))

    def stop_executions(self) -> None:
        """Stop every execution's actor, and start no more: each records that the engine
        stopped (`Execution.interrupt`: its attempts under way are handed back, and run
        again at the next start), unless its attempts run on Celery workers: they run on,
        and the next start collects them."""
        with self._lock:
            self._stopping = True
            live = list(self._live.values())
        for ref in live:
            ref.stop()

    def stop(self) -> None:
        """Stop every actor (the executions first, as `stop_executions`)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.stop_executions()
        for agent in self._agents.values():
            agent.stop()
        if self._monitor is not None:
            self._monitor.stop()
        self._clock.stop()
        self.placement.close()

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --------------------------------------------------------------- executions

    def start_execution(self, strategy: Strategy, plan: Plan | None = None,
                        request: tuple[str, str] | None = None, run_here: bool = True
                        ) -> StartedExecution:
        """Record a new execution of the strategy (with its plan, when the caller computed
        it already) and start running it (unless not `run_here`: another process is to
        take it over). `request`: see `StratexecApp.create_execution`."""
        execution, position = self.app.create_execution(
            strategy, plan, self.options.retry, self.options.agent_retry, request)
        started = StartedExecution.of(execution, position)
        if run_here:
            self._spawn(execution, recovering=False, saved_at=position)
        return started

    def recover(self, execution_ids: list[UUID] | None = None) -> list[UUID]:
        """Continue unfinished executions (all of them by default) after a stop or a crash.

        One whose tasks need an agent type this engine does not run (the configuration
        changed since it started) is left as it is, with an error in the log: it continues
        once an engine runs that type again."""
        wanted = (self.app.unfinished_execution_ids() if execution_ids is None
                  else list(execution_ids))  # each is checked below: finished, it is skipped
        recovered = []
        for execution_id in wanted:
            with self._lock:
                if execution_id in self._live:
                    continue
            if self._ownership is not None and not self._ownership.claim(execution_id):
                continue  # another live process runs it
            execution = self.app.get_execution(execution_id)
            missing = sorted(set(execution.agent_counts) - set(self._handlers))
            if missing or execution.is_finished:
                self._release(execution_id)
            if execution.is_finished:
                continue
            if missing:
                logger.error("execution %s needs agent types this engine does not run (%s); "
                             "it stays unfinished until one does", execution_id,
                             ", ".join(missing))
                continue
            if self._spawn(execution, recovering=True, saved_at=0):
                recovered.append(execution_id)
        return recovered

    def pause(self, execution_id: UUID) -> Transition:
        return self._command(execution_id, Pause())

    def resume(self, execution_id: UUID) -> Transition:
        return self._command(execution_id, Resume())

    def cancel(self, execution_id: UUID) -> Transition:
        return self._command(execution_id, Cancel())

    def retry(self, execution_id: UUID, task_id: str | None = None) -> Transition:
        """Retry the execution's tasks that failed for good (all, or `task_id`): its live
        actor applies it; an execution that has finished gets its actor back, with the
        retry as its first command. Raises the domain error that refused it."""
        command = Retry(None if task_id is None else (task_id,))
        for _ in range(RETRY_ROUNDS):
            transition = self._ask_live(execution_id, command)
            if transition is not None:
                return transition
            execution = self.app.get_execution(execution_id)
            if not execution.is_finished:
                if not self.recover([execution_id]) and not self.is_live(execution_id):
                    raise OwnedElsewhere(f"execution {execution_id} runs in another process")
                continue  # unfinished, without an actor: taken up
            answer: pykka.ThreadingFuture[Transition] = pykka.ThreadingFuture()
            if self._spawn(execution, recovering=False, saved_at=0,
                           opening=Opening(command, answer)):
                opened: Transition = answer.get(timeout=ASK_TIMEOUT)
                return opened
        raise RuntimeError(f"execution {execution_id} changed hands {RETRY_ROUNDS} times "
                           "during the retry; try again")

    def is_live(self, execution_id: UUID) -> bool:
        with self._lock:
            return execution_id in self._live

    def live_execution_ids(self) -> list[UUID]:
        with self._lock:
            return list(self._live)

    def wait(self, execution_id: UUID, timeout: float | None = None) -> bool:
        """Block until the execution has finished and its actor has ended, so that the
        runtime holds nothing of it (True), or until the timeout passed (False)."""
        with self._lock:
            done = self._done.get(execution_id)
        if done is None:
            return not self.is_live(execution_id)
        return done.wait(timeout)

    def resume_agent_type(self, agent_type: str) -> AgentTypeState:
        """Close the circuit breaker of a paused agent type by hand. `NotFound` for a type
        the engine does not run; `InvalidTransition` when it is not paused."""
        ref = self._agents.get(agent_type)
        if ref is None:
            raise NotFound(f"no agent type {agent_type!r}")
        state: AgentTypeState = ref.ask(ResumeAgentType(), block=True, timeout=ASK_TIMEOUT)
        return state

    def agent_refs(self) -> Mapping[str, pykka.ActorRef[AgentActor]]:
        return dict(self._agents)

    # ------------------------------------------------------------------ helpers

    def _ask_live(self, execution_id: UUID, command: Pause | Resume | Cancel | Retry
                  ) -> Transition | None:
        """The live actor's answer to `command`; None when the execution has no live actor,
        or its actor ended before answering (the stored state then decides)."""
        with self._lock:
            ref = self._live.get(execution_id)
        if ref is None:
            return None
        try:
            transition: Transition = ref.ask(command, block=True, timeout=ASK_TIMEOUT)
        except pykka.ActorDeadError:
            self._until_forgotten(execution_id, ref)  # it finished meanwhile
            return None
        return transition

    def _command(self, execution_id: UUID, command: Pause | Resume | Cancel) -> Transition:
        transition = self._ask_live(execution_id, command)
        if transition is not None:
            return transition
        execution = self.app.get_execution(execution_id)
        if not execution.is_finished:
            if not self.recover([execution_id]) and not self.is_live(execution_id):
                raise OwnedElsewhere(f"execution {execution_id} runs in another process")
            return self._command(execution_id, command)
        raise InvalidTransition(
            f"cannot {type(command).__name__.lower()} an execution that is {execution.status}",
            {"status": str(execution.status), "command": type(command).__name__.lower()})

    def _spawn(self, execution: Execution, recovering: bool, saved_at: int,
               opening: Opening | None = None) -> bool:
        """Start the execution's actor, unless it has one (False); `saved_at` is the
        position of its last save when the caller knows it (0 otherwise: its first turn
        then does not wait for readers)."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the runtime is stopping")
            if execution.id in self._live:
                return False
        if self._ownership is not None and not self._ownership.claim(execution.id):
            return False
        with self._lock:
            if execution.id in self._live:
                return False
            self._done.setdefault(execution.id, threading.Event())
            self._live[execution.id] = ExecutionActor.start(
                execution, self.app, self._agents, self._clock, self._monitor,
                on_finished=self._finished, on_crashed=self._crashed, recovering=recovering,
                rng=random.Random(self._rng.random()), pace=self._pace, saved_at=saved_at,
                opening=opening, collect=self.placement.collect)
            return True

    def _until_forgotten(self, execution_id: UUID, ref: pykka.ActorRef[ExecutionActor]
                         ) -> None:
        """Wait until a finished actor is forgotten (its thread has ended); a crashed one
        is forgotten at once."""
        with self._lock:
            done = self._done.get(execution_id) if self._live.get(execution_id) is ref else None
        if done is not None:
            done.wait(ASK_TIMEOUT)

    def _finished(self, execution: Execution) -> None:
        """Called by the actor on its own thread, just before it stops: the execution is
        forgotten by another thread, once this one has ended and let go of the aggregate."""
        threading.Thread(
            target=self._forget, args=(execution.id, threading.current_thread()),
            name=f"forget-execution-{execution.id}", daemon=True).start()

    def _forget(self, execution_id: UUID, actor_thread: threading.Thread) -> None:
        actor_thread.join()
        with self._lock:
            self._live.pop(execution_id, None)
            done = self._done.pop(execution_id, None)
        self._release(execution_id)
        release_memory()
        if done is not None:
            done.set()

    def _crashed(self, execution: Execution, error: BaseException) -> None:
        """Rebuild a crashed execution's actor from the store, after a pause."""
        execution_id = execution.id  # not the aggregate: the restart rebuilds its own
        if isinstance(error, RecordConflictError):
            logger.error("execution %s was saved by another process: it is no longer this "
                         "one's, and its actor stops", execution_id)
            self._stop_lost(execution_id)
            return
        logger.error("execution %s crashed (%s); restarting it from its events in %.0f s",
                     execution_id, error, RESTART_DELAY)
        with self._lock:
            self._live.pop(execution_id, None)
            if self._stopping:
                return

        def restart() -> None:
            try:
                self.recover([execution_id])
            except Exception:
                logger.exception("could not restart execution %s", execution_id)
                _later(restart)

        _later(restart)


    def abandon(self, execution_ids: list[UUID]) -> None:
        """Stop the actors of executions this process no longer owns (its ownership
        connection was lost): they record nothing more; their new owner continues them."""
        for execution_id in execution_ids:
            self._stop_lost(execution_id)

    def _stop_lost(self, execution_id: UUID) -> None:
        with self._lock:
            ref = self._live.pop(execution_id, None)
            done = self._done.pop(execution_id, None)
        if self._ownership is not None:
            self._ownership.release(execution_id)
        if ref is not None:
            ref.stop(block=False)
        if done is not None:
            done.set()

    def _release(self, execution_id: UUID) -> None:
        if self._ownership is not None:
            self._ownership.release(execution_id)


def _later(function: Callable[[], None]) -> None:
    timer = threading.Timer(RESTART_DELAY, function)
    timer.daemon = True
    timer.start()
