"""One AgentActor per agent type: runs that type's handler with a concurrency limit.

The actor never starts more than `concurrency` attempts at once: the rest wait in
`AttemptSlots`, ordered by priority, then plan order, then arrival. Where an attempt runs is
its `AttemptRunner`'s business, independent of which handler runs it: by default a
`LocalRunner`, a thread pool of `concurrency` threads of this process; with `--agents-on
celery`, `stratexec.workers.dispatch.CeleryRunner`, Celery workers. Either way the attempt's
reports go to its execution directly (started, progress, success or failure), and when it
ends the runner tells the actor, which frees the slot and starts the next queued attempt.
Replies to an execution that has stopped are dropped.

The runner gets every attempt a message lets the actor start in one call (the slots it freed,
the tasks it brought), so that a runner sending them to a broker sends them together.

With a `timeout` or a `heartbeat_timeout` in its limits (see `actors.deadline`), the actor
watches each running attempt on a clock of its own. An attempt past its deadline is
cancelled (its handler sees `context.cancelled`) and recorded at once as a failed, retryable
attempt of kind `timeout` or `heartbeat_timeout`; whatever the handler reports afterwards is
about an attempt that is no longer live, and its execution drops it. A Python thread cannot
be stopped from outside, so a timed-out attempt keeps its slot until its handler returns:
the agent type never runs more than `concurrency` handlers at once, and a handler that
ignores cancellation holds its slot (a warning says so) while the next attempts wait.

Given the store and the clock, the actor also holds the type's `CircuitBreaker`: it tells it
every attempt's outcome and asks it before starting one, and it is the only writer of the
type's `AgentCircuit`, where each change of the breaker is recorded before it is acted on
(a probe is recorded, then started). A change that cannot be recorded is logged and acted on
anyway: after a restart the recorded state wins, and that is never less careful (a type
paused unrecorded trips again; a recorded pause comes back paused and probes again).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol
from uuid import UUID

import pykka

from stratexec.actors import results
from stratexec.actors.agents.base import AgentError, AgentHandler, AgentLimits, TaskContext
from stratexec.actors.circuit import CircuitBreaker, Closed, Opened
from stratexec.actors.clock import Cancel, Clock
from stratexec.actors.deadline import Deadline, check_limits, watched
from stratexec.actors.messages import (
    AgentTask,
    AgentTypeState,
    RecordTaskFailure,
    RecordTaskProgress,
    RecordTaskStarted,
    RecordTaskSuccess,
    ResumeAgentType,
    ReturnTask,
    RunTask,
    WithdrawTasks,
)
from stratexec.circuit_settings import CircuitSettings
from stratexec.domain.application import StratexecApp
from stratexec.domain.circuit import BY_OPERATOR, BY_PROBE, AgentCircuit, CircuitState
from stratexec.domain.errors import InvalidTransition
from stratexec.domain.propagation import PRIORITY_RANK

logger = logging.getLogger(__name__)

_UNKNOWN_PRIORITY_RANK = len(PRIORITY_RANK)


@dataclass(frozen=True)
class AgentStats:
    agent_type: str
    concurrency: int
    running: int
    queued: int
    max_running_seen: int
    started: int
    finished: int


Outcome = RecordTaskSuccess | RecordTaskFailure


@dataclass(frozen=True)
class _AttemptFinished:
    seq: int
    outcome: Outcome | None = None  # None: it ended without one


@dataclass(frozen=True)
class _ProbeDue:
    """From the clock: the cool-down of the circuit opened to probe at `probe_at` is over."""

    probe_at: datetime


@dataclass(frozen=True)
class _CheckDeadline:
    """From the actor's clock: the running attempt `seq` may be past its deadline."""

    seq: int


@dataclass(eq=False)
class _Attempt:
    seq: int
    run: RunTask
    cancel_event: threading.Event = field(default_factory=threading.Event)
    deadline: Deadline | None = None  # when the agent type has timeouts
    stop_watching: Cancel | None = None  # cancels the next _CheckDeadline
    timed_out_at: float | None = None  # monotonic

    withdrawn: bool = False  # cancelled with its execution, or by the actor stopping

    @property
    def key(self) -> str:
        return self.run.task.idempotency_key

    def beat(self) -> None:
        if self.deadline is not None:
            self.deadline.beat()


class AttemptSlots:
    """Which attempts run and which wait: plain bookkeeping, no threads (the actor holds it)."""

    def __init__(self, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.max_running_seen = 0
        self.started = 0
        self.finished = 0
        self._queue: list[tuple[int, int, int, _Attempt]] = []
        self._running: dict[int, _Attempt] = {}
        self._seq = itertools.count()

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def enqueue(self, run: RunTask) -> None:
        seq = next(self._seq)
        rank = PRIORITY_RANK.get(run.task.priority, _UNKNOWN_PRIORITY_RANK)
        heapq.heappush(self._queue, (rank, run.task.order, seq, _Attempt(seq, run)))

    def start_next(self) -> _Attempt | None:
        """Take the next queued attempt if a slot is free, and count it as running."""
        if not self._queue or len(self._running) >= self.concurrency:
            return None
        attempt = heapq.heappop(self._queue)[-1]
        self._running[attempt.seq] = attempt
        self.started += 1
        self.max_running_seen = max(self.max_running_seen, len(self._running))
        return attempt

    def running_attempt(self, seq: int) -> _Attempt | None:
        return self._running.get(seq)

    def finish(self, seq: int) -> _Attempt | None:
        attempt = self._running.pop(seq, None)
        if attempt is not None:
            self.finished += 1
        return attempt

    def withdraw(self, execution_id: UUID) -> list[RunTask]:
        """Remove and return the execution's queued attempts."""
        mine = [e for e in sorted(self._queue) if e[-1].run.task.execution_id == execution_id]
        if mine:
            self._queue = [e for e in self._queue if e[-1].run.task.execution_id != execution_id]
            heapq.heapify(self._queue)
        return [e[-1].run for e in mine]

    def cancel_running(self, execution_id: UUID | None = None) -> list[_Attempt]:
        """Ask the running attempts (of one execution, or all) to stop; returns them."""
        cancelled = []
        for attempt in self._running.values():
            if execution_id is None or attempt.run.task.execution_id == execution_id:
                attempt.withdrawn = True
                attempt.cancel_event.set()
                cancelled.append(attempt)
        return cancelled

    def drop_queue(self) -> None:
        self._queue.clear()


OnFinished = Callable[[Outcome | None], None]


@dataclass(frozen=True)
class AttemptStart:
    """One attempt for a runner to start: the run, the event a cancel sets, and the calls
    the runner makes on each progress report (`on_progress`) and once at the end."""

    run: RunTask
    cancel_event: threading.Event
    on_finished: OnFinished
    on_progress: Callable[[], None]


class AttemptRunner(Protocol):
    """Where an agent type's attempts run, whichever handler runs them: on the engine's
    threads (`LocalRunner`) or elsewhere (`stratexec.workers.dispatch.CeleryRunner`). A
    runner reports to the attempt's execution (started, progress, outcome), calls
    `on_progress` on each progress report and `on_finished` once when the attempt ends."""

    def start(self, starts: Sequence[AttemptStart]) -> None:
        """Start the attempts, in the order given (priority)."""

    def stop(self, run: RunTask) -> None:
        """The attempt was cancelled or timed out (its `cancel_event` is set): stop it
        wherever it runs. It still ends with `on_finished`."""

    def shutdown(self) -> None: ...


class LocalRunner:
    """Attempts on a thread pool of the engine's own, one thread per concurrency slot."""

    def __init__(self, handler: AgentHandler, concurrency: int) -> None:
        self.handler = handler
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix=f"agent-{handler.agent_type}")

    def start(self, starts: Sequence[AttemptStart]) -> None:
        for start in starts:
            self._executor.submit(run_attempt, self.handler, start.run, start.cancel_event,
                                  start.on_finished, start.on_progress)

    def stop(self, run: RunTask) -> None:
        """The handler sees `context.cancelled`: a thread cannot be stopped from outside."""

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class AgentActor(pykka.ThreadingActor):
    def __init__(
        self, handler: AgentHandler, limits: AgentLimits | int = 4,
        circuit: CircuitSettings | None = None, app: StratexecApp | None = None,
        clock: Clock | None = None, runner: AttemptRunner | None = None,
    ) -> None:
        """`limits` may be a bare concurrency. With `app` and `clock` the type has a circuit
        breaker (with the `circuit` settings, or the defaults). Attempts run on `runner`,
        by default a `LocalRunner` of `handler`."""
        super().__init__()
        self.handler = handler
        self.agent_type = handler.agent_type
        self.limits = limits if isinstance(limits, AgentLimits) else AgentLimits(limits)
        check_limits(self.limits)
        concurrency = self.limits.concurrency
        self._slots = AttemptSlots(concurrency)
        self._runner = runner or LocalRunner(handler, concurrency)
        # Deadlines on a clock of the actor's own; circuit probes on the runtime's.
        self._deadlines = (Clock(f"agent-{handler.agent_type}-deadlines")
                           if watched(self.limits) else None)
        self._app, self._clock = app, clock
        self._breaker = (CircuitBreaker(circuit or CircuitSettings())
                         if app is not None and clock is not None else None)
        self._circuit: AgentCircuit | None = None  # loaded when first needed

    def stats(self) -> AgentStats:
        slots = self._slots
        return AgentStats(
            self.agent_type, slots.concurrency, slots.running, slots.queued,
            slots.max_running_seen, slots.started, slots.finished,
        )

    def on_receive(self, message: Any) -> Any:
        match message:
            case RunTask():
                self._slots.enqueue(message)
                self._start_ready()
            case _AttemptFinished(seq=seq, outcome=outcome):
                self._unwatch(seq)
                attempt = self._slots.finish(seq)
                if attempt is not None and attempt.timed_out_at is None:
                    self._observe(attempt, outcome)  # a timed-out one was observed then
                self._start_ready()
            case _CheckDeadline(seq=seq):
                self._check_deadline(seq)
            case WithdrawTasks():
                self._withdraw(message)
            case _ProbeDue(probe_at=probe_at):
                if self._breaker is not None and self._breaker.probe_due(probe_at):
                    self._start_ready()
            case ResumeAgentType():
                return self._resume_by_hand()
            case _:
                return super().on_receive(message)
        return None

    def on_start(self) -> None:
        if self._deadlines is not None:
            self._deadlines.start()
        self._restore_circuit()

    def on_stop(self) -> None:
        self._shut_down()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._shut_down()

    def _shut_down(self) -> None:
        if self._deadlines is not None:
            self._deadlines.stop()
        self._slots.drop_queue()
        self._slots.cancel_running()  # not stopped on the runner: a restart recovers them
        self._runner.shutdown()

    def _start_ready(self) -> None:
        breaker = self._breaker
        starts = []
        while ((breaker is None or breaker.may_start())
               and (attempt := self._slots.start_next()) is not None):
            if breaker is not None and breaker.starting(attempt.key):
                self._record_circuit(functools.partial(AgentCircuit.start_probe,
                                                       attempt=attempt.key))
            self._watch(attempt)
            starts.append(AttemptStart(
                attempt.run, attempt.cancel_event,
                functools.partial(_attempt_finished, self.actor_ref, attempt.seq),
                attempt.beat))
        if starts:
            self._runner.start(starts)

    # -------------------------------------------------------------- deadlines

    def _watch(self, attempt: _Attempt) -> None:
        """Start the attempt's deadline, if the agent type has one, and check it when due."""
        if self._deadlines is None:
            return
        attempt.deadline = Deadline(self.limits)
        self._check_at(attempt, attempt.deadline.due())

    def _check_at(self, attempt: _Attempt, due: float) -> None:
        assert self._deadlines is not None
        attempt.stop_watching = self._deadlines.tell_later(
            due - time.monotonic(), self.actor_ref, _CheckDeadline(attempt.seq))

    def _check_deadline(self, seq: int) -> None:
        attempt = self._slots.running_attempt(seq)
        if attempt is None or attempt.deadline is None or attempt.timed_out_at is not None:
            return  # it ended meanwhile
        now = time.monotonic()
        kind = attempt.deadline.expired(now)
        if kind is None:  # a heartbeat came since the check was scheduled
            self._check_at(attempt, attempt.deadline.due())
            return
        attempt.timed_out_at = now
        task, message = attempt.run.task, attempt.deadline.describe(kind, now)
        logger.warning("%s attempt %s: %s; its slot is taken until the handler returns",
                       self.agent_type, task.idempotency_key, message)
        # Recorded before the handler is cancelled, so that its execution hears of the
        # timeout before anything the handler reports once it notices.
        failure = RecordTaskFailure(task.task_id, task.attempt, kind, message, True,
                                    (now - attempt.deadline.began) * 1000.0)
        tell_live(attempt.run.reply_to, failure)
        attempt.cancel_event.set()
        self._runner.stop(attempt.run)
        self._observe(attempt, failure)  # what the handler says later is not the outcome

    def _unwatch(self, seq: int) -> None:
        attempt = self._slots.running_attempt(seq)
        if attempt is None:
            return
        if attempt.stop_watching is not None:
            attempt.stop_watching()
        if attempt.timed_out_at is not None:
            logger.info("%s attempt %s returned %.3g s after it timed out; its slot is free",
                        self.agent_type, attempt.run.task.idempotency_key,
                        time.monotonic() - attempt.timed_out_at)

    def _withdraw(self, message: WithdrawTasks) -> None:
        why = "cancelled" if message.cancel_running else "paused"
        for run in self._slots.withdraw(message.execution_id):
            tell_live(run.reply_to, ReturnTask(
                run.task.task_id, run.task.attempt, f"withdrawn: execution {why}"))
        if message.cancel_running:
            for attempt in self._slots.cancel_running(message.execution_id):
                self._runner.stop(attempt.run)

    # ---------------------------------------------------------------- circuit breaker

    def _restore_circuit(self) -> None:
        """After a restart, a paused type stays paused until its probe is due."""
        if self._breaker is None or self._app is None or self._clock is None:
            return
        try:
            circuit = self._circuit = self._app.get_agent_circuit(self.agent_type)
        except Exception:  # the store is down: the type starts closed, and says so
            logger.exception("could not read the circuit of agent type %s", self.agent_type)
            return
        if circuit is not None and circuit.is_paused and circuit.probe_at is not None:
            self._breaker.restore(circuit.probe_at)
            self._clock.tell_at(circuit.probe_at, self.actor_ref, _ProbeDue(circuit.probe_at))
            logger.warning("agent type %s is paused by its circuit breaker; it probes at %s",
                           self.agent_type, circuit.probe_at.isoformat())

    def _observe(self, attempt: _Attempt, outcome: Outcome | None) -> None:
        """Tell the breaker how the attempt ended; record, then act on what it decides."""
        if self._breaker is None or self._clock is None:
            return
        failed = (None if attempt.withdrawn or outcome is None
                  else isinstance(outcome, RecordTaskFailure))
        match self._breaker.finished(attempt.key, failed, datetime.now(UTC)):
            case Opened(failure_rate, window, attempts, probe_at):
                logger.warning("agent type %s paused: %d of its last %d attempts failed; it "
                               "probes at %s", self.agent_type, len(attempts), window,
                               probe_at.isoformat())
                self._record_circuit(functools.partial(
                    AgentCircuit.pause, failure_rate=failure_rate, window=window,
                    attempts=list(attempts), probe_at=probe_at))
                self._clock.tell_at(probe_at, self.actor_ref, _ProbeDue(probe_at))
            case Closed(attempt=key):
                logger.warning("agent type %s resumed: its probe %s succeeded",
                               self.agent_type, key)
                self._record_circuit(functools.partial(AgentCircuit.resume, by=BY_PROBE,
                                                       attempt=key))

    def _resume_by_hand(self) -> AgentTypeState:
        """Close a paused type's breaker; `InvalidTransition` (to the asker) if not paused."""
        circuit = self._circuit_record()
        if circuit is None:
            raise InvalidTransition(
                f"cannot resume agent type {self.agent_type!r}: it is not paused",
                {"agentType": self.agent_type, "state": str(CircuitState.CLOSED)})
        circuit.resume(BY_OPERATOR)
        position = self._save_circuit(circuit)
        if self._breaker is not None:
            self._breaker.reset()
        self._start_ready()
        return AgentTypeState(self.agent_type, str(circuit.state), position)

    def _record_circuit(self, change: Callable[[AgentCircuit], None]) -> None:
        """Apply a change the breaker decided to the type's AgentCircuit and save it; if
        that fails, log it (the breaker acts on its decision all the same)."""
        try:
            circuit = self._circuit_record() or AgentCircuit(self.agent_type)
            self._circuit = circuit
            change(circuit)
            self._save_circuit(circuit)
        except Exception:
            logger.exception("could not record the circuit breaker of agent type %s",
                             self.agent_type)

    def _circuit_record(self) -> AgentCircuit | None:
        if self._circuit is None and self._app is not None:
            self._circuit = self._app.get_agent_circuit(self.agent_type)
        return self._circuit

    def _save_circuit(self, circuit: AgentCircuit) -> int:
        assert self._app is not None
        try:
            return self._app.record(circuit)
        except Exception:
            self._circuit = None  # its events are lost: read it again from the store
            raise


def run_attempt(
    handler: AgentHandler,
    run: RunTask,
    cancel_event: threading.Event,
    on_finished: Callable[[Outcome | None], None],
    on_progress: Callable[[], None] = lambda: None,
) -> None:
    """Run one attempt on the calling (worker) thread and report its outcome to `reply_to`;
    `on_finished` gets the outcome too, and `on_progress` is called on each progress report
    (a heartbeat)."""
    task, reply_to = run.task, run.reply_to
    outcome = None
    try:
        tell_live(reply_to, RecordTaskStarted(task.task_id, task.attempt))
        context = TaskContext(functools.partial(_report, reply_to, task, on_progress),
                              cancel_event)
        outcome = handler_outcome(handler, task, context)
        tell_live(reply_to, outcome)
    finally:
        on_finished(outcome)


def _attempt_finished(actor: pykka.ActorRef[Any], seq: int, outcome: Outcome | None) -> None:
    tell_live(actor, _AttemptFinished(seq, outcome))


def handler_outcome(handler: AgentHandler, task: AgentTask, context: TaskContext) -> Outcome:
    """Run the handler on the calling thread: its checked result, or the failure it raised
    (wherever the attempt runs, on an engine thread or on a worker)."""
    began = time.perf_counter()
    try:
        result = results.checked(handler.run(task, context))
    except AgentError as e:
        kind, message, retryable = e.kind, e.message, e.retryable
    except Exception as e:
        logger.info("%s attempt %s raised", handler.agent_type, task.idempotency_key,
                    exc_info=True)
        kind, message, retryable = "exception", f"{type(e).__name__}: {e}", True
    else:
        return RecordTaskSuccess(task.task_id, task.attempt, result, _ms_since(began))
    return RecordTaskFailure(
        task.task_id, task.attempt, kind, message, retryable, _ms_since(began))


def _report(reply_to: pykka.ActorRef[Any], task: AgentTask, on_progress: Callable[[], None],
            fraction: float, text: str) -> None:
    on_progress()
    tell_live(reply_to, RecordTaskProgress(task.task_id, task.attempt, fraction, text))


def _ms_since(began: float) -> float:
    return (time.perf_counter() - began) * 1000.0


def tell_live(ref: pykka.ActorRef[Any], message: Any) -> None:
    """Tell an actor that may have stopped (an execution that finished drops its replies)."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
