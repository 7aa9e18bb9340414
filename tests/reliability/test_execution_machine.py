"""The Execution aggregate as a state machine: hypothesis drives random sequences of
assign, start, succeed, fail, interrupt (one attempt, or every one as after a crash),
pause, resume, cancel, retry and the clock, on random task graphs, and after every step
checks what must always hold:

- the counts add up (overall and per agent type) and match the tasks' states;
- an execution that completed or was cancelled never changes again, and a failed one only
  reopens through a retry by hand; a task completes at most once and stays completed;
- every dependent of a task failed for good is skipped, and every skipped task has a
  failed task upstream; no task runs or completes before its dependencies completed;
- assigning hands out exactly the ready tasks (dependencies completed, retry time come),
  in priority order;
- a refused command raises a domain error and records nothing;
- the events recorded so far replay to the same state, ready tasks included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from helpers import replay
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from stratexec.domain.errors import InvalidTransition
from stratexec.domain.execution import (
    ACTIVE_TASK,
    FINISHED_EXECUTION,
    Execution,
    ExecutionStatus,
    TaskState,
    TaskStatus,
)
from stratexec.domain.propagation import Plan, propagate
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import StrategyItem

NOW = datetime(2026, 1, 1, tzinfo=UTC)
AGENTS = ("email", "research", "analysis")


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    """A plan of 1 to 6 items of 1 or 2 tasks each; an item depends on some earlier ones,
    so the graph is acyclic by construction."""
    count = draw(st.integers(1, 6))
    items = []
    for index in range(count):
        earlier = [f"i{j}" for j in range(index)]
        depends_on = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)
                          if earlier else st.just([]))
        agents = draw(st.lists(st.sampled_from(AGENTS), min_size=1, max_size=2, unique=True))
        items.append(StrategyItem(
            id=f"i{index}", level=4, parent_id="l3", title=f"Item {index}",
            depends_on=tuple(depends_on), agents=tuple(agents),
            priority=draw(st.sampled_from(["high", "medium", "low"]))))
    return propagate(items)


def snapshot(execution: Execution) -> dict[str, Any]:
    """Everything the events decide about an execution, for comparing two of them."""
    return {
        "version": execution.version, "status": execution.status,
        "tasks": {t.id: (t.status, t.attempt, t.failures, t.interruptions, t.retry_at,
                         t.result, t.error_kind) for t in execution.tasks.values()},
        "counts": dict(execution.counts), "agents": execution.agent_metrics(),
        "failed": list(execution.failed_task_ids),
        "attempts": (execution.attempts_finished, execution.attempts_failed),
    }


def upstream(execution: Execution, task: TaskState) -> set[str]:
    """Every task `task` depends on, directly or not."""
    seen: set[str] = set()
    stack = list(task.plan.depends_on)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(execution.tasks[current].plan.depends_on)
    return seen


class ExecutionMachine(RuleBasedStateMachine):
    """One execution under random commands; `self.events` holds every event it recorded."""

    execution: Execution

    @initialize(plan=plans(), attempts=st.integers(1, 3))
    def start_execution(self, plan: Plan, attempts: int) -> None:
        policy = RetryPolicy(maximum_attempts=attempts, initial_interval=1.0, jitter=0.0)
        self.execution = Execution.start(uuid4(), "w", "strategy", plan, policy)
        self.events: list[Any] = list(self.execution.collect_events())
        self.now = NOW
        self.seen_status = self.execution.status
        self.reopened = False
        self.ever_completed: set[str] = set()

    # ----------------------------------------------------------------- helpers

    def status(self) -> ExecutionStatus:
        """Read through a call, so that mypy keeps no narrowing across a command."""
        return self.execution.status

    def tasks_in(self, *statuses: TaskStatus) -> list[str]:
        return [t.id for t in self.execution.tasks.values() if t.status in statuses]

    def ready(self) -> list[TaskState]:
        """The tasks the model says may be assigned now."""
        tasks = self.execution.tasks
        return [t for t in tasks.values() if t.status is TaskStatus.PENDING
                and all(tasks[d].status is TaskStatus.COMPLETED for d in t.plan.depends_on)
                and (t.retry_at is None or t.retry_at <= self.now)]

    def record(self) -> None:
        self.events.extend(self.execution.collect_events())

    def refused(self, command: Callable[[], object]) -> None:
        """`command` must raise InvalidTransition and record nothing."""
        before = snapshot(self.execution)
        try:
            command()
        except InvalidTransition:
            assert not self.execution.collect_events()
            assert snapshot(self.execution) == before
        else:
            raise AssertionError("the command was not refused")

    def pick(self, data: st.DataObject, *statuses: TaskStatus) -> TaskState:
        task_id = data.draw(st.sampled_from(self.tasks_in(*statuses)))
        return self.execution.tasks[task_id]

    def has(self, *statuses: TaskStatus) -> bool:
        return bool(self.tasks_in(*statuses))

    # ------------------------------------------------------------------- rules

    @rule(limit=st.none() | st.integers(1, 3))
    def assign(self, limit: int | None) -> None:
        status, ready = self.execution.status, self.ready()
        assigned = self.execution.assign_ready_tasks(self.now, limit)
        self.record()
        if status not in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING):
            assert assigned == []
            return
        expected = len(ready) if limit is None else min(limit, len(ready))
        assert len(assigned) == expected
        assert {t.id for t in assigned} <= {t.id for t in ready}
        left = [t.rank for t in ready if t.status is TaskStatus.PENDING]
        assert all(t.rank <= rank for t in assigned for rank in left)  # priority first
        assert all(t.status is TaskStatus.ASSIGNED for t in assigned)

    @precondition(lambda self: self.has(TaskStatus.ASSIGNED))
    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        task = self.pick(data, TaskStatus.ASSIGNED)
        self.execution.start_task(task.id, task.attempt)
        self.record()
        assert task.status is TaskStatus.IN_PROGRESS

    @precondition(lambda self: self.has(*ACTIVE_TASK))
    @rule(data=st.data(), duration=st.floats(0, 90_000))
    def succeed(self, data: st.DataObject, duration: float) -> None:
        task = self.pick(data, *ACTIVE_TASK)
        self.execution.succeed_task(task.id, task.attempt, {"attempt": task.attempt}, duration)
        self.record()
        self.ever_completed.add(task.id)

    @precondition(lambda self: self.has(*ACTIVE_TASK))
    @rule(data=st.data(), retryable=st.booleans())
    def fail(self, data: st.DataObject, retryable: bool) -> None:
        task = self.pick(data, *ACTIVE_TASK)
        used = task.failures + task.interruptions + 1
        retry_at = self.execution.fail_task(task.id, task.attempt, "boom", "it broke", 10.0,
                                            self.now, retryable=retryable)
        self.record()
        budget = self.execution.retry_policy.maximum_attempts
        assert (retry_at is None) == (not retryable or used >= budget)
        assert task.status is (TaskStatus.FAILED if retry_at is None else TaskStatus.PENDING)

    @precondition(lambda self: self.has(*ACTIVE_TASK))
    @rule(data=st.data())
    def hand_back(self, data: st.DataObject) -> None:
        """An agent gives an attempt back unstarted or unfinished (on pause): it is free."""
        task = self.pick(data, *ACTIVE_TASK)
        failures, interruptions = task.failures, task.interruptions
        self.execution.interrupt_task(task.id, task.attempt, "handed back")
        self.record()
        assert task.status is TaskStatus.PENDING
        assert (task.failures, task.interruptions) == (failures, interruptions)

    @rule()
    def crash(self) -> None:
        """The process died: every attempt under way is lost."""
        active = set(self.tasks_in(*ACTIVE_TASK))
        lost = self.execution.interrupt_active_tasks("process stopped")
        self.record()
        assert set(lost) == active
        assert not self.has(*ACTIVE_TASK)

    @rule(data=st.data(), offset=st.integers(-1, 1))
    def stale_reply(self, data: st.DataObject, offset: int) -> None:
        """A reply for an attempt that is not the task's live one changes nothing."""
        task = self.pick(data, *TaskStatus)
        attempt = task.attempt + offset
        if offset == 0 and task.status in ACTIVE_TASK:
            attempt += 5
        self.refused(lambda: self.execution.succeed_task(task.id, attempt, {}, 1.0))
        self.refused(lambda: self.execution.fail_task(task.id, attempt, "late", "late", 1.0,
                                                      self.now))

    @rule()
    def pause(self) -> None:
        if self.execution.status in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING):
            self.execution.pause()
            self.record()
            assert self.status() is ExecutionStatus.PAUSED
        else:
            self.refused(self.execution.pause)

    @rule()
    def resume(self) -> None:
        if self.execution.status is ExecutionStatus.PAUSED:
            self.execution.resume()
            self.record()
            assert self.status() is ExecutionStatus.RUNNING
        else:
            self.refused(self.execution.resume)

    @rule()
    def cancel(self) -> None:
        if self.execution.is_finished:
            self.refused(self.execution.cancel)
            return
        self.execution.cancel()
        self.record()
        assert self.execution.status is ExecutionStatus.CANCELLED
        assert not self.has(TaskStatus.PENDING, *ACTIVE_TASK)

    @rule()
    def retry(self) -> None:
        status = self.execution.status
        failed = list(self.execution.failed_task_ids)
        if status not in (ExecutionStatus.FAILED, ExecutionStatus.RUNNING) or not failed:
            self.refused(self.execution.retry_failed)
            return
        assert self.execution.retry_failed() == failed
        self.record()
        self.reopened = status is ExecutionStatus.FAILED
        assert self.execution.status is ExecutionStatus.RUNNING
        assert all(self.execution.tasks[t].status is TaskStatus.PENDING for t in failed)

    @rule()
    def finish_if_done(self) -> None:
        open_tasks = self.has(TaskStatus.PENDING, *ACTIVE_TASK)
        finished = self.execution.is_finished
        assert self.execution.finish_if_done() == (not finished and not open_tasks)
        self.record()

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0]))
    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    # -------------------------------------------------------------- invariants

    @invariant()
    def counts_add_up(self) -> None:
        execution = self.execution
        by_status = {status: len(self.tasks_in(status)) for status in TaskStatus}
        assert execution.counts == by_status
        assert sum(execution.counts.values()) == execution.total_tasks
        for agent, metrics in execution.agent_metrics().items():
            mine = [t for t in execution.tasks.values() if t.plan.agent == agent]
            assert metrics["tasks"] == len(mine)
            assert all(metrics[str(s)] == sum(t.status is s for t in mine) for s in TaskStatus)
        finished = [e for e in self.events if type(e).__name__ in ("TaskSucceeded", "TaskFailed")]
        failed = [e for e in finished if type(e).__name__ == "TaskFailed"]
        assert (execution.attempts_finished, execution.attempts_failed) == (
            len(finished), len(failed))

    @invariant()
    def terminal_states_stay(self) -> None:
        status = self.execution.status
        if self.seen_status in (ExecutionStatus.COMPLETED, ExecutionStatus.CANCELLED):
            assert status is self.seen_status
        if self.seen_status is ExecutionStatus.FAILED and status is not ExecutionStatus.FAILED:
            assert self.reopened
            assert status is ExecutionStatus.RUNNING
        if status is ExecutionStatus.COMPLETED:
            assert self.tasks_in(TaskStatus.COMPLETED) == list(self.execution.tasks)
        if status is ExecutionStatus.FAILED:
            assert self.has(TaskStatus.FAILED)
        if status in FINISHED_EXECUTION:
            assert not self.has(TaskStatus.PENDING, *ACTIVE_TASK)
        assert set(self.tasks_in(TaskStatus.COMPLETED)) >= self.ever_completed
        self.seen_status, self.reopened = status, False

    @invariant()
    def failures_skip_their_dependents(self) -> None:
        execution = self.execution
        failed = set(self.tasks_in(TaskStatus.FAILED))
        assert set(execution.failed_task_ids) == failed
        for task in execution.tasks.values():
            above = upstream(execution, task)
            if above & failed:
                assert task.status is TaskStatus.SKIPPED, (task.id, task.status)
            if task.status is TaskStatus.SKIPPED:
                assert above & failed, task.id
            if task.status in (*ACTIVE_TASK, TaskStatus.COMPLETED):
                assert all(execution.tasks[d].status is TaskStatus.COMPLETED for d in above)

    @invariant()
    def events_replay_to_the_same_state(self) -> None:
        rebuilt = replay(self.events)
        assert snapshot(rebuilt) == snapshot(self.execution)
        if rebuilt.status in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING):
            # the derived ready queue is rebuilt too: the replay assigns what is ready now
            ready = {t.id for t in self.ready()}
            assert {t.id for t in rebuilt.assign_ready_tasks(self.now)} == ready


TestExecutionMachine = ExecutionMachine.TestCase
