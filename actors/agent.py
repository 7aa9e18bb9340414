"""One AgentActor per agent type: runs that type's handler with a concurrency limit.

The actor owns a thread pool of `concurrency` workers and never submits more attempts than
that: the rest wait in `AttemptSlots`, ordered by priority, then plan order, then arrival.
An attempt runs on a worker thread and talks to its execution directly (started, progress,
success or failure); when it ends, the worker tells the actor, which frees the slot and starts
the next queued attempt. Replies to an execution that has stopped are dropped.

With a `timeout` or a `heartbeat_timeout` in its limits (see `actors.deadline`), the actor
watches each running attempt on a clock of its own. An attempt past its deadline is
cancelled (its handler sees `context.cancelled`) and recorded at once as a failed, retryable
attempt of kind `timeout` or `heartbeat_timeout`; whatever the handler reports afterwards is
about an attempt that is no longer live, and its execution drops it. A Python thread cannot
be stopped from outside, so a timed-out attempt keeps its slot until its handler returns:
the agent type never runs more than `concurrency` handlers at once, and a handler that
ignores cancellation holds its slot (a warning says so) while the next attempts wait.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from uuid import UUID

import pykka

from stratexec.actors import results
from stratexec.actors.agents.base import AgentError, AgentHandler, AgentLimits, TaskContext
from stratexec.actors.clock import Cancel, Clock
from stratexec.actors.deadline import Deadline, check_limits, watched
from stratexec.actors.messages import (
    AgentTask,
    RecordTaskFailure,
    RecordTaskProgress,
    RecordTaskStarted,
    RecordTaskSuccess,
    ReturnTask,
    RunTask,
    WithdrawTasks,
)
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


@dataclass(frozen=True)
class _AttemptFinished:
    seq: int


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

    def finish(self, seq: int) -> None:
        if self._running.pop(seq, None) is not None:
            self.finished += 1

    def withdraw(self, execution_id: UUID) -> list[RunTask]:
        """Remove and return the execution's queued attempts."""
        mine = [e for e in sorted(self._queue) if e[-1].run.task.execution_id == execution_id]
        if mine:
            self._queue = [e for e in self._queue if e[-1].run.task.execution_id != execution_id]
            heapq.heapify(self._queue)
        return [e[-1].run for e in mine]

    def cancel_running(self, execution_id: UUID | None = None) -> None:
        """Ask the running attempts (of one execution, or all) to stop."""
        for attempt in self._running.values():
            if execution_id is None or attempt.run.task.execution_id == execution_id:
                attempt.cancel_event.set()

    def drop_queue(self) -> None:
        self._queue.clear()


class AgentActor(pykka.ThreadingActor):
    def __init__(self, handler: AgentHandler, limits: AgentLimits | int = 4) -> None:
        """`limits` may be a bare concurrency."""
        super().__init__()
        self.handler = handler
        self.agent_type = handler.agent_type
        self.limits = limits if isinstance(limits, AgentLimits) else AgentLimits(limits)
        check_limits(self.limits)
        concurrency = self.limits.concurrency
        self._slots = AttemptSlots(concurrency)
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix=f"agent-{handler.agent_type}"
        )
        self._clock = (Clock(f"agent-{handler.agent_type}-deadlines")
                       if watched(self.limits) else None)

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
            case _AttemptFinished(seq=seq):
                self._unwatch(seq)
                self._slots.finish(seq)
                self._start_ready()
            case _CheckDeadline(seq=seq):
                self._check_deadline(seq)
            case WithdrawTasks():
                self._withdraw(message)
            case _:
                return super().on_receive(message)
        return None

    def on_start(self) -> None:
        if self._clock is not None:
            self._clock.start()

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
        if self._clock is not None:
            self._clock.stop()
        self._slots.drop_queue()
        self._slots.cancel_running()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _start_ready(self) -> None:
        while (attempt := self._slots.start_next()) is not None:
            self._watch(attempt)
            self._executor.submit(
                run_attempt, self.handler, attempt.run, attempt.cancel_event,
                functools.partial(_tell, self.actor_ref, _AttemptFinished(attempt.seq)),
                attempt.beat,
            )

    # -------------------------------------------------------------- deadlines

    def _watch(self, attempt: _Attempt) -> None:
        """Start the attempt's deadline, if the agent type has one, and check it when due."""
        if self._clock is None:
            return
        attempt.deadline = Deadline(self.limits)
        self._check_at(attempt, attempt.deadline.due())

    def _check_at(self, attempt: _Attempt, due: float) -> None:
        assert self._clock is not None
        attempt.stop_watching = self._clock.tell_later(
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
        _tell(attempt.run.reply_to, RecordTaskFailure(
            task.task_id, task.attempt, kind, message, True,
            (now - attempt.deadline.began) * 1000.0))
        attempt.cancel_event.set()

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
            _tell(run.reply_to, ReturnTask(
                run.task.task_id, run.task.attempt, f"withdrawn: execution {why}"))
        if message.cancel_running:
            self._slots.cancel_running(message.execution_id)


def run_attempt(
    handler: AgentHandler,
    run: RunTask,
    cancel_event: threading.Event,
    on_finished: Callable[[], None],
    on_progress: Callable[[], None] = lambda: None,
) -> None:
    """Run one attempt on the calling (worker) thread and report its outcome to `reply_to`;
    `on_progress` is called on each progress report (a heartbeat)."""
    task, reply_to = run.task, run.reply_to
    try:
        _tell(reply_to, RecordTaskStarted(task.task_id, task.attempt))
        context = TaskContext(functools.partial(_report, reply_to, task, on_progress),
                              cancel_event)
        _tell(reply_to, _outcome(handler, task, context))
    finally:
        on_finished()


def _outcome(
    handler: AgentHandler, task: AgentTask, context: TaskContext
) -> RecordTaskSuccess | RecordTaskFailure:
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
    _tell(reply_to, RecordTaskProgress(task.task_id, task.attempt, fraction, text))


def _ms_since(began: float) -> float:
    return (time.perf_counter() - began) * 1000.0


def _tell(ref: pykka.ActorRef[Any], message: Any) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
