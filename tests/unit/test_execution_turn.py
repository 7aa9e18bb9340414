"""ExecutionTurn: what an execution's turns decide, with no threads and no store.

A test plays the actor: it applies commands, ends the turn, and takes the turn's events as
saved (`end`); the effects say what the actor would then do.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from helpers import chain_strategy

from stratexec.actors.messages import (
    AgentTask,
    AssignReadyTasks,
    Cancel,
    DispatchDueTasks,
    Pause,
    RecordTaskFailure,
    RecordTaskStarted,
    RecordTaskSuccess,
    Resume,
    ReturnTask,
    WithdrawTasks,
)
from stratexec.actors.turn import (
    DUE_TOLERANCE,
    NOTHING,
    TURN_SIZE,
    ContinueActiveTasks,
    ExecutionTurn,
    InterruptActiveTasks,
    TurnEffects,
)
from stratexec.domain.errors import InvalidTransition
from stratexec.domain.execution import Execution, TaskStatus
from stratexec.domain.propagation import propagate
from stratexec.domain.retry import RetryPolicy

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
RETRIES = RetryPolicy(maximum_attempts=3, initial_interval=10.0, jitter=0.0)


def turn_for(*chains: list[str], policy: RetryPolicy = RETRIES) -> ExecutionTurn:
    """A turn over a new execution of the chains, whose Started event is saved."""
    definition = chain_strategy(*chains)
    execution = Execution.start(uuid4(), "w", "chains", propagate(definition.items), policy)
    execution.collect_events()
    return ExecutionTurn(execution, random.Random(1))


def end(turn: ExecutionTurn, now: datetime = NOW) -> TurnEffects:
    """End the turn and take its events as saved, as the actor does before it acts."""
    effects = turn.end(now)
    assert effects.save == bool(turn.execution.pending_events)
    turn.execution.collect_events()
    return effects


def ids(effects: TurnEffects) -> list[tuple[str, int]]:
    return [(work.task_id, work.attempt) for work in effects.dispatch]


def succeed(turn: ExecutionTurn, work: AgentTask, now: datetime = NOW) -> None:
    assert turn.apply(RecordTaskStarted(work.task_id, work.attempt), now) == "running"
    result = {"done": work.task_id}
    assert turn.apply(RecordTaskSuccess(work.task_id, work.attempt, result, 5.0), now) == "running"


def fail(turn: ExecutionTurn, work: AgentTask, retryable: bool = True) -> str | Exception:
    turn.apply(RecordTaskStarted(work.task_id, work.attempt), NOW)
    return turn.apply(RecordTaskFailure(
        work.task_id, work.attempt, "timeout", "no answer", retryable, 5.0), NOW)


def test_a_chain_dispatches_in_order_and_finishes() -> None:
    turn = turn_for(["a", "b", "c"])
    first = end(turn)
    assert (first.save, ids(first), first.finished) == (True, [("a:research", 1)], False)
    assert first.track is not None
    assert first.track.inputs.total == 3

    succeed(turn, first.dispatch[0])
    second = end(turn)
    assert ids(second) == [("b:research", 1)]
    assert second.dispatch[0].upstream == {"a:research": {"done": "a:research"}}

    succeed(turn, second.dispatch[0])
    succeed(turn, end(turn).dispatch[0])
    last = end(turn)
    assert (last.save, last.dispatch, last.finished) == (True, (), True)
    assert last.track is not None
    assert last.track.finished
    assert turn.execution.status == "completed"


def test_a_failure_schedules_a_retry_at_the_recorded_time() -> None:
    turn = turn_for(["a"])
    (work,) = end(turn).dispatch
    assert fail(turn, work) == "running"
    failed = end(turn)
    retry_at = turn.execution.tasks["a:research"].retry_at
    assert retry_at == NOW + timedelta(seconds=10)
    assert (failed.dispatch, failed.wake_at) == ((), (retry_at,))

    turn.apply(DispatchDueTasks(), retry_at)  # the clock wakes the actor a little early
    assert ids(end(turn, now=retry_at - DUE_TOLERANCE / 2)) == [("a:research", 2)]


def test_a_dispatch_that_finds_nothing_due_looks_for_the_next_retry() -> None:
    turn = turn_for(["a"])
    fail(turn, end(turn).dispatch[0])
    retry_at = end(turn).wake_at[0]
    turn.apply(DispatchDueTasks(), NOW)
    early = end(turn)  # a wake-up too early, or one for a retry already taken
    assert (early.save, early.dispatch, early.wake_at) == (False, (), (retry_at,))
    assert early.track is not None


def test_a_final_failure_skips_the_dependents_and_finishes_failed() -> None:
    turn = turn_for(["a", "b", "c"], ["d"])
    started = end(turn)
    a, d = started.dispatch
    succeed(turn, d)
    fail(turn, a, retryable=False)
    effects = end(turn)
    statuses = {task_id: task.status for task_id, task in turn.execution.tasks.items()}
    assert statuses == {"a:research": TaskStatus.FAILED, "b:research": TaskStatus.SKIPPED,
                        "c:research": TaskStatus.SKIPPED, "d:research": TaskStatus.COMPLETED}
    assert (effects.dispatch, effects.wake_at, effects.finished) == ((), (), True)
    assert turn.execution.status == "failed"


def test_pause_withdraws_and_resume_dispatches_again() -> None:
    turn = turn_for(["a", "b"])
    (a,) = end(turn).dispatch
    assert turn.apply(Pause(), NOW) == "paused"
    paused = end(turn)
    assert paused.withdraw == WithdrawTasks(turn.execution.id, cancel_running=False)

    assert turn.apply(RecordTaskStarted(a.task_id, 1), NOW) == "paused"
    assert turn.apply(RecordTaskSuccess(a.task_id, 1, {}, 1.0), NOW) == "paused"
    assert end(turn).dispatch == ()  # b is ready, but nothing new starts
    assert isinstance(turn.apply(Pause(), NOW), InvalidTransition)

    assert turn.apply(Resume(), NOW) == "running"
    resumed = end(turn)
    assert (ids(resumed), resumed.withdraw) == ([("b:research", 1)], None)


def test_an_attempt_handed_back_on_pause_runs_again_after_resume() -> None:
    turn = turn_for(["a"])
    (a,) = end(turn).dispatch
    turn.apply(Pause(), NOW)
    end(turn)
    turn.apply(ReturnTask(a.task_id, a.attempt, "withdrawn: execution paused"), NOW)
    assert end(turn).dispatch == ()
    turn.apply(Resume(), NOW)
    assert ids(end(turn)) == [("a:research", 2)]
    assert turn.execution.tasks["a:research"].failures == 0


def test_cancel_finishes_cancelled_and_withdraws_the_running_attempts() -> None:
    turn = turn_for(["a", "b"], ["c"])
    end(turn)
    assert turn.apply(Cancel(), NOW) == "cancelled"
    effects = end(turn)
    assert effects.withdraw == WithdrawTasks(turn.execution.id, cancel_running=True)
    assert (effects.save, effects.dispatch, effects.finished) == (True, (), True)
    assert effects.track is not None
    assert effects.track.finished
    assert {task.status for task in turn.execution.tasks.values()} == {TaskStatus.CANCELLED}
    assert isinstance(turn.apply(Cancel(), NOW), InvalidTransition)


def test_a_late_reply_for_a_stale_attempt_is_dropped() -> None:
    turn = turn_for(["a"])
    (first,) = end(turn).dispatch
    fail(turn, first)
    retry_at = end(turn).wake_at[0]
    turn.apply(DispatchDueTasks(), retry_at)
    (second,) = end(turn, now=retry_at).dispatch

    late = RecordTaskSuccess(first.task_id, first.attempt, {"late": True}, 1.0)
    assert turn.apply(late, NOW) == "running"
    assert not turn.execution.pending_events
    assert end(turn) is NOTHING
    task = turn.execution.tasks["a:research"]
    assert (task.attempt, task.status, task.result) == (second.attempt, TaskStatus.ASSIGNED, None)


def test_a_wide_dag_assigns_at_most_turn_size_per_turn_and_asks_for_more() -> None:
    turn = turn_for(*([f"item-{k}"] for k in range(TURN_SIZE + 5)))
    first = end(turn)
    assert (len(first.dispatch), first.more_ready) == (TURN_SIZE, True)
    turn.apply(AssignReadyTasks(), NOW)
    rest = end(turn)
    assert (len(rest.dispatch), rest.more_ready) == (5, False)
    assert {work.task_id for work in first.dispatch + rest.dispatch} == set(turn.execution.tasks)


def test_a_turn_is_full_after_turn_size_commands() -> None:
    turn = turn_for(["a"])
    end(turn)
    assert not turn.is_open
    for count in range(1, TURN_SIZE + 1):
        assert not turn.is_full
        turn.apply(DispatchDueTasks(), NOW)
        assert (turn.is_open, turn.size) == (True, count)
    assert turn.is_full
    end(turn)
    assert (turn.is_open, turn.is_full) == (False, False)


def test_recovery_interrupts_the_active_attempts_and_dispatches_them_again() -> None:
    turn = turn_for(["a"], ["b"])
    a, _ = end(turn).dispatch
    turn.apply(RecordTaskStarted(a.task_id, a.attempt), NOW)
    end(turn)  # what the crashed process had recorded: a in progress, b assigned

    assert turn.apply(InterruptActiveTasks(), NOW) == "running"
    recovered = end(turn)
    assert ids(recovered) == [("a:research", 2), ("b:research", 2)]
    assert [turn.execution.tasks[t].failures for t in ("a:research", "b:research")] == [0, 0]


def test_recovery_on_workers_records_the_finished_and_sends_the_others_again() -> None:
    """Attempts on Celery workers outlive the engine: one that finished meanwhile is
    recorded with its outcome as the attempt it was; the other is sent again, unchanged."""
    turn = turn_for(["a", "c"], ["b"])
    a, b = end(turn).dispatch
    turn.apply(RecordTaskStarted(a.task_id, a.attempt), NOW)
    end(turn)  # what the crashed engine had recorded: a in progress, b assigned

    assert [w.idempotency_key for w in turn.active_work()] == [
        a.idempotency_key, b.idempotency_key]
    finished = RecordTaskSuccess(a.task_id, a.attempt, {"done": "on a worker"}, 5.0)
    assert turn.apply(ContinueActiveTasks({a.idempotency_key: finished}), NOW) == "running"
    recovered = end(turn)
    assert ids(recovered) == [("b:research", 1), ("c:research", 1)]  # b as it was; a's next
    assert recovered.dispatch[0] == b
    task = turn.execution.tasks["a:research"]
    assert (task.status, task.attempt, task.result) == (
        TaskStatus.COMPLETED, 1, {"done": "on a worker"})


def test_a_turn_with_nothing_to_record_does_nothing() -> None:
    turn = turn_for(["a"])
    end(turn)
    turn.apply(AssignReadyTasks(), NOW)
    assert end(turn) is NOTHING
