"""The Execution aggregate: one run of a strategy's plan, every task's state and attempts.

Execution states: pending -> running <-> paused -> completed | failed | cancelled.
An execution is pending until its first task is assigned. It completes once no task can run
any more: `completed` when every task completed, `failed` when some task failed for good.

Task states: pending -> assigned (handed to its agent, a new attempt) -> in_progress (the
agent began) -> completed | failed (for good) ; skipped (a dependency failed for good) ;
cancelled (the execution was cancelled first). A failed attempt with retries left goes back
to pending with `retry_at` set; an interrupted attempt goes back to pending at once, with no
backoff. One handed back unstarted by its agent (on pause) costs nothing; one lost because
the process stopped while it was under way uses up one of the task's attempts (see
`interrupt_active_tasks`), so that a task that kills the process every time ends.

A graceful stop of the engine (`interrupt`) hands back every attempt under way without
counting it (the stop was not the task's doing) and marks the execution interrupted, so that
nobody reads it as live while no engine runs it; it assigns nothing until an engine takes it
up again (`recover`, at the next start). A `kill -9` records nothing: the next start counts
the lost attempts as above.

Retry by hand (dead-letter): `retry_failed` puts tasks that failed for good back to pending
with a fresh retry budget (their attempt numbers go on upward, so no idempotency key is ever
used twice), returns to pending the skipped tasks that no failed task holds back any more,
and reopens a failed execution as running.

Public commands check the state and raise domain errors; the `@event` methods only apply.
The dependency bookkeeping (`_waiting`, `_dependents`, `_ready`) is derived: it is rebuilt
by replaying the events and never stored.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from stratexec.domain import idempotency
from stratexec.domain.errors import InvalidTransition, UnknownTask
from stratexec.domain.health import HealthInputs
from stratexec.domain.propagation import PRIORITY_RANK, Plan, PlannedTask
from stratexec.domain.retry import RetryPolicy


class ExecutionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


FINISHED_EXECUTION = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
TERMINAL_TASK = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})
ACTIVE_TASK = frozenset({TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS})
INTERRUPTED = "interrupted"  # the kind of a task's failure when its last attempt was lost


@dataclass(slots=True)  # an execution holds one per task: 100,000 at N = 50,000
class TaskState:
    plan: PlannedTask
    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0
    failures: int = 0
    interruptions: int = 0  # attempts lost in a crash: they use up attempts too
    retry_at: datetime | None = None
    progress: float = 0.0
    error_kind: str | None = None
    error_message: str | None = None
    duration_ms: float | None = None
    result: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.plan.id

    @property
    def rank(self) -> tuple[int, int]:
        return PRIORITY_RANK.get(self.plan.priority, 9), self.plan.order


class Execution(Aggregate):
    TOPIC = "stratexec:Execution"

    class Created(Aggregate.Created):
        TOPIC = "stratexec:Execution.Created"

    @event("Started", topic="stratexec:Execution.Started")
    def __init__(
        self,
        strategy_id: UUID,
        workspace_id: str,
        strategy_name: str,
        tasks: list[dict[str, Any]],
        decisions: list[dict[str, Any]],
        retry_policy: dict[str, Any],
        agent_retry_policies: dict[str, dict[str, Any]] | None = None,
        request_key: str | None = None,
        request_fingerprint: str | None = None,
    ) -> None:
        self.strategy_id = strategy_id
        self.workspace_id = workspace_id
        self.strategy_name = strategy_name
        self.retry_policy = RetryPolicy.from_record(retry_policy)
        # Per agent type, where the configuration overrides the engine's policy (events
        # recorded before there were any lack the field).
        self.agent_retry_policies = {agent: RetryPolicy.from_record(record)
                                     for agent, record in (agent_retry_policies or {}).items()}
        # Started under an Idempotency-Key (domain.idempotency): which, and by what request.
        self.request_key = request_key
        self.request_fingerprint = request_fingerprint
        self.interrupted = False  # a graceful stop left it; no engine has taken it up since
        self.status = ExecutionStatus.PENDING
        self.tasks: dict[str, TaskState] = {}
        self.counts = dict.fromkeys(TaskStatus, 0)
        self.agent_counts: dict[str, dict[TaskStatus, int]] = {}
        self.agent_retries: dict[str, int] = {}
        self.failed_task_ids: list[str] = []
        self.attempts_finished = 0
        self.attempts_failed = 0
        self.duration_total_ms = 0.0
        self._waiting: dict[str, int] = {}
        self._dependents: dict[str, list[str]] = {}
        self._ready: list[tuple[tuple[int, int], str]] = []
        for record in tasks:
            planned = PlannedTask.from_record(record)
            self.tasks[planned.id] = TaskState(planned)
            if planned.agent not in self.agent_counts:
                self.agent_counts[planned.agent] = dict.fromkeys(TaskStatus, 0)
                self.agent_retries[planned.agent] = 0
            self.agent_counts[planned.agent][TaskStatus.PENDING] += 1
            self._waiting[planned.id] = len(planned.depends_on)
            self._dependents[planned.id] = []
            for dependency in planned.depends_on:
                self._dependents[dependency].append(planned.id)
            if not planned.depends_on:
                self._ready.append((self.tasks[planned.id].rank, planned.id))
        heapq.heapify(self._ready)
        self.counts[TaskStatus.PENDING] = len(self.tasks)

    @staticmethod
    def create_id(request_key: str | None = None) -> UUID:
        """A random id; one derived from the key of an idempotent start, so that the store
        accepts a single execution per key (`domain.idempotency`)."""
        return uuid4() if request_key is None else idempotency.execution_id(request_key)

    @classmethod
    def start(
        cls, strategy_id: UUID, workspace_id: str, strategy_name: str, plan: Plan,
        retry_policy: RetryPolicy, agent_retry_policies: Mapping[str, RetryPolicy] | None = None,
        request_key: str | None = None, request_fingerprint: str | None = None,
    ) -> Execution:
        """`agent_retry_policies` replace `retry_policy` for the tasks of their agent types
        (only those of the plan's types are recorded). `request_key` and its fingerprint:
        an idempotent start's (`domain.idempotency`)."""
        agents = {task.agent for task in plan.tasks}
        return cls(
            strategy_id=strategy_id,
            workspace_id=workspace_id,
            strategy_name=strategy_name,
            tasks=[task.as_record() for task in plan.tasks],
            decisions=[decision.as_record() for decision in plan.decisions],
            retry_policy=retry_policy.as_record(),
            agent_retry_policies={agent: policy.as_record()
                                  for agent, policy in (agent_retry_policies or {}).items()
                                  if agent in agents} or None,
            request_key=request_key,
            request_fingerprint=request_fingerprint,
        )

    # ----------------------------------------------------------------- queries

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_EXECUTION

    @property
    def total_tasks(self) -> int:
        return len(self.tasks)

    def task(self, task_id: str) -> TaskState:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise UnknownTask(f"no task {task_id!r} in execution {self.id}") from None

    def retry_policy_for(self, agent: str) -> RetryPolicy:
        return self.agent_retry_policies.get(agent, self.retry_policy)

    def is_current_attempt(self, task_id: str, attempt: int) -> bool:
        """True when `attempt` is the task's live attempt (a late or stale reply is not)."""
        task = self.tasks.get(task_id)
        return task is not None and task.attempt == attempt and task.status in ACTIVE_TASK

    def next_retry_at(self) -> datetime | None:
        due = [t.retry_at for t in self.tasks.values()
               if t.status is TaskStatus.PENDING and t.retry_at is not None]
        return min(due, default=None)

    def health_inputs(self) -> HealthInputs:
        finished = self.attempts_finished - self.attempts_failed
        return HealthInputs(
            total=len(self.tasks),
            completed=self.counts[TaskStatus.COMPLETED],
            failed=self.counts[TaskStatus.FAILED],
            skipped=self.counts[TaskStatus.SKIPPED],
            cancelled=self.counts[TaskStatus.CANCELLED],
            attempts=self.attempts_finished,
            failed_attempts=self.attempts_failed,
            mean_duration_ms=self.duration_total_ms / finished if finished else 0.0,
            failed_task_ids=tuple(self.failed_task_ids),
        )

    def agent_metrics(self) -> dict[str, dict[str, int]]:
        """Per agent type: tasks in each state, and retries scheduled so far."""
        return {
            agent: {"tasks": sum(counts.values()), **{str(s): n for s, n in counts.items()},
                    "retries": self.agent_retries[agent]}
            for agent, counts in sorted(self.agent_counts.items())
        }

    # ---------------------------------------------------------------- commands

    def assign_ready_tasks(self, now: datetime, limit: int | None = None) -> list[TaskState]:
        """Assign the tasks whose dependencies completed and whose retry time has come, in
        priority order: all of them, or the first `limit`. Nothing while interrupted."""
        if self.interrupted or self.status not in (ExecutionStatus.PENDING,
                                                   ExecutionStatus.RUNNING):
            return []
        assigned: list[TaskState] = []
        not_yet: list[tuple[tuple[int, int], str]] = []
        while self._ready and (limit is None or len(assigned) < limit):
            entry = heapq.heappop(self._ready)
            task = self.tasks[entry[1]]
            if task.status is not TaskStatus.PENDING:
                continue  # a stale entry: the task was assigned since it was queued
            if task.retry_at is not None and task.retry_at > now:
                not_yet.append(entry)
                continue
            self._task_assigned(task_id=task.id, attempt=task.attempt + 1)
            assigned.append(task)
        for entry in not_yet:
            heapq.heappush(self._ready, entry)
        return assigned

    def start_task(self, task_id: str, attempt: int) -> None:
        self._check_attempt(task_id, attempt, {TaskStatus.ASSIGNED})
        self._task_started(task_id=task_id, attempt=attempt)

    def report_progress(self, task_id: str, attempt: int, progress: float, message: str) -> None:
        self._check_attempt(task_id, attempt, {TaskStatus.IN_PROGRESS})
        self._task_progressed(
            task_id=task_id, attempt=attempt, progress=min(max(progress, 0.0), 1.0),
            message=message)

    def succeed_task(
        self, task_id: str, attempt: int, result: dict[str, Any], duration_ms: float
    ) -> None:
        self._check_attempt(task_id, attempt, ACTIVE_TASK)
        self._task_succeeded(
            task_id=task_id, attempt=attempt, result=result, duration_ms=duration_ms)

    def fail_task(
        self, task_id: str, attempt: int, error_kind: str, error_message: str,
        duration_ms: float, now: datetime, retryable: bool = True, random_unit: float = 0.5,
    ) -> datetime | None:
        """Record a failed attempt; returns when the next attempt is due, None if for good."""
        task = self._check_attempt(task_id, attempt, ACTIVE_TASK)
        failures = task.failures + 1
        retry_at = None
        policy = self.retry_policy_for(task.plan.agent)
        if policy.should_retry(self._attempts_used(task) + 1, error_kind, retryable):
            retry_at = now + timedelta(seconds=policy.delay(failures, random_unit))
        self._task_failed(
            task_id=task_id, attempt=attempt, error_kind=error_kind,
            error_message=error_message, duration_ms=duration_ms, retry_at=retry_at)
        if retry_at is None:
            doomed = self._unfinished_dependents(task_id)
            if doomed:
                self._tasks_skipped(task_ids=doomed, failed_task_id=task_id)
        return retry_at

    def interrupt_task(self, task_id: str, attempt: int, reason: str) -> None:
        self._check_attempt(task_id, attempt, ACTIVE_TASK)
        self._task_interrupted(task_id=task_id, attempt=attempt, reason=reason)

    def interrupt_active_tasks(self, reason: str) -> list[str]:
        """After a crash: every attempt that was under way is lost, and goes back to
        pending. One that had started uses up one of its task's attempts (the retry
        policy's `maximum_attempts`, shared with the failed ones): if it was the last, the
        task fails for good (kind `interrupted`, its dependents skipped). One only assigned
        (queued at its agent: a wide plan has thousands of them) costs nothing, as it never
        ran; a handler that kills the process before its start is recorded (within a turn)
        escapes the budget."""
        active = [t for t in self.tasks.values() if t.status in ACTIVE_TASK]
        for task in active:
            started = task.status is TaskStatus.IN_PROGRESS
            budget = self.retry_policy_for(task.plan.agent).maximum_attempts
            if not started or self._attempts_used(task) + 1 < budget:
                self._task_interrupted(
                    task_id=task.id, attempt=task.attempt, reason=reason, counted=started)
            else:
                self._fail_lost_attempt(task, reason)
        return [task.id for task in active]

    def interrupt(self, reason: str) -> list[str]:
        """The engine stops gracefully while the execution is unfinished: every attempt
        under way goes back to pending, not counted against its task's attempts, and the
        execution is marked interrupted until `recover`. The tasks handed back."""
        if self.is_finished or self.interrupted:
            return []
        active = [t for t in self.tasks.values() if t.status in ACTIVE_TASK]
        for task in active:
            self._task_interrupted(
                task_id=task.id, attempt=task.attempt, reason=reason, counted=False)
        self._interrupted(reason=reason)
        return [task.id for task in active]

    def recover(self) -> None:
        """An engine takes the execution up again: a graceful stop's mark is lifted."""
        if self.interrupted:
            self._recovered()

    def pause(self) -> None:
        if self.status not in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING):
            raise InvalidTransition(f"cannot pause an execution that is {self.status}",
                                    {"status": str(self.status), "command": "pause"})
        self._paused()

    def resume(self) -> None:
        if self.status is not ExecutionStatus.PAUSED:
            raise InvalidTransition(f"cannot resume an execution that is {self.status}",
                                    {"status": str(self.status), "command": "resume"})
        self._resumed()

    def cancel(self) -> None:
        if self.is_finished:
            raise InvalidTransition(f"cannot cancel an execution that is {self.status}",
                                    {"status": str(self.status), "command": "cancel"})
        unfinished = [t.id for t in self.tasks.values() if t.status not in TERMINAL_TASK]
        self._cancelled(task_ids=unfinished)

    def retry_failed(self, task_ids: Iterable[str] | None = None) -> list[str]:
        """Try again the tasks that failed for good: all of them, or the ones named (each
        must have failed). The tasks retried; `UnknownTask`, or `InvalidTransition` when the
        execution is neither failed nor running, or no task (or a named one) has failed."""
        if self.status not in (ExecutionStatus.FAILED, ExecutionStatus.RUNNING):
            raise self._cannot_retry(f"cannot retry tasks of an execution that is {self.status}")
        if task_ids is None:
            retried = list(self.failed_task_ids)
            if not retried:
                raise self._cannot_retry("no task of this execution has failed")
        else:
            retried = list(dict.fromkeys(task_ids))
            for task_id in retried:
                task = self.task(task_id)
                if task.status is not TaskStatus.FAILED:
                    raise self._cannot_retry(
                        f"cannot retry task {task_id!r}: it is {task.status}, not failed")
            if not retried:
                raise self._cannot_retry("no task to retry was named")
        self._tasks_retried(task_ids=retried, unskipped_task_ids=self._unskipped_by(retried))
        return retried

    def finish_if_done(self) -> bool:
        """Complete (or fail) the execution once no task can run any more."""
        if self.is_finished:
            return False
        open_tasks = (self.counts[TaskStatus.PENDING] + self.counts[TaskStatus.ASSIGNED]
                      + self.counts[TaskStatus.IN_PROGRESS])
        if open_tasks:
            return False
        if self.counts[TaskStatus.FAILED]:
            self._failed()
        else:
            self._completed()
        return True

    # ------------------------------------------------------------------ events

    @event("TaskAssigned", topic="stratexec:Execution.TaskAssigned")
    def _task_assigned(self, task_id: str, attempt: int) -> None:
        task = self.tasks[task_id]
        self._move(task, TaskStatus.ASSIGNED)
        task.attempt = attempt
        task.retry_at = None
        task.progress = 0.0
        if self.status is ExecutionStatus.PENDING:
            self.status = ExecutionStatus.RUNNING

    @event("TaskStarted", topic="stratexec:Execution.TaskStarted")
    def _task_started(self, task_id: str, attempt: int) -> None:
        self._move(self.tasks[task_id], TaskStatus.IN_PROGRESS)

    @event("TaskProgressed", topic="stratexec:Execution.TaskProgressed")
    def _task_progressed(self, task_id: str, attempt: int, progress: float, message: str) -> None:
        self.tasks[task_id].progress = progress

    @event("TaskSucceeded", topic="stratexec:Execution.TaskSucceeded")
    def _task_succeeded(
        self, task_id: str, attempt: int, result: dict[str, Any], duration_ms: float
    ) -> None:
        task = self.tasks[task_id]
        self._move(task, TaskStatus.COMPLETED)
        task.result = result
        task.duration_ms = duration_ms
        task.progress = 1.0
        self.attempts_finished += 1
        self.duration_total_ms += duration_ms
        for dependent_id in self._dependents[task_id]:
            self._waiting[dependent_id] -= 1
            dependent = self.tasks[dependent_id]
            if self._waiting[dependent_id] == 0 and dependent.status is TaskStatus.PENDING:
                heapq.heappush(self._ready, (dependent.rank, dependent_id))

    @event("TaskFailed", topic="stratexec:Execution.TaskFailed")
    def _task_failed(
        self, task_id: str, attempt: int, error_kind: str, error_message: str,
        duration_ms: float | None, retry_at: datetime | None,
    ) -> None:
        task = self.tasks[task_id]
        task.failures += 1
        task.error_kind = error_kind
        task.error_message = error_message
        task.duration_ms = duration_ms
        task.retry_at = retry_at
        self.attempts_finished += 1
        self.attempts_failed += 1
        if retry_at is None:
            self._move(task, TaskStatus.FAILED)
            self.failed_task_ids.append(task_id)
        else:
            self._move(task, TaskStatus.PENDING)
            self.agent_retries[task.plan.agent] += 1
            heapq.heappush(self._ready, (task.rank, task_id))

    @event("TasksSkipped", topic="stratexec:Execution.TasksSkipped")
    def _tasks_skipped(self, task_ids: list[str], failed_task_id: str) -> None:
        for task_id in task_ids:
            self._move(self.tasks[task_id], TaskStatus.SKIPPED)

    class TaskInterrupted(Aggregate.Event):
        """An attempt ended with no outcome and its task went back to pending. `counted`:
        the attempt used up one of the task's attempts (it was lost in a crash); one
        handed back unstarted is not counted.

        Version 1 (up to commit d4b801b) had no `counted`: every interruption was free
        then, and `upcast_v1_v2` reads the stored ones as such."""

        TOPIC = "stratexec:Execution.TaskInterrupted"
        class_version = 2

        task_id: str
        attempt: int
        reason: str
        counted: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["counted"] = False

    @event(TaskInterrupted)
    def _task_interrupted(self, task_id: str, attempt: int, reason: str,
                          counted: bool = False) -> None:
        task = self.tasks[task_id]
        self._move(task, TaskStatus.PENDING)
        if counted:
            task.interruptions += 1
        if self._waiting[task_id] == 0:
            heapq.heappush(self._ready, (task.rank, task_id))

    @event("Interrupted", topic="stratexec:Execution.Interrupted")
    def _interrupted(self, reason: str) -> None:
        self.interrupted = True

    @event("Recovered", topic="stratexec:Execution.Recovered")
    def _recovered(self) -> None:
        self.interrupted = False

    @event("Paused", topic="stratexec:Execution.Paused")
    def _paused(self) -> None:
        self.status = ExecutionStatus.PAUSED

    @event("Resumed", topic="stratexec:Execution.Resumed")
    def _resumed(self) -> None:
        self.status = ExecutionStatus.RUNNING

    @event("Cancelled", topic="stratexec:Execution.Cancelled")
    def _cancelled(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            self._move(self.tasks[task_id], TaskStatus.CANCELLED)
        self.status = ExecutionStatus.CANCELLED

    @event("TasksRetried", topic="stratexec:Execution.TasksRetried")
    def _tasks_retried(self, task_ids: list[str], unskipped_task_ids: list[str]) -> None:
        for task_id in task_ids:
            task = self.tasks[task_id]
            self._move(task, TaskStatus.PENDING)
            task.failures = 0  # a fresh attempt budget: failed and lost attempts alike
            task.interruptions = 0
            task.retry_at = None
        retried = set(task_ids)
        self.failed_task_ids = [t for t in self.failed_task_ids if t not in retried]
        for task_id in unskipped_task_ids:
            self._move(self.tasks[task_id], TaskStatus.PENDING)
        for task_id in (*task_ids, *unskipped_task_ids):
            if self._waiting[task_id] == 0:
                heapq.heappush(self._ready, (self.tasks[task_id].rank, task_id))
        self.status = ExecutionStatus.RUNNING

    @event("Completed", topic="stratexec:Execution.Completed")
    def _completed(self) -> None:
        self.status = ExecutionStatus.COMPLETED

    @event("Failed", topic="stratexec:Execution.Failed")
    def _failed(self) -> None:
        self.status = ExecutionStatus.FAILED

    # ----------------------------------------------------------------- helpers

    def _move(self, task: TaskState, status: TaskStatus) -> None:
        self.counts[task.status] -= 1
        self.counts[status] += 1
        by_agent = self.agent_counts[task.plan.agent]
        by_agent[task.status] -= 1
        by_agent[status] += 1
        task.status = status

    def _check_attempt(
        self, task_id: str, attempt: int, allowed: Iterable[TaskStatus]
    ) -> TaskState:
        task = self.task(task_id)
        if task.attempt != attempt or task.status not in allowed:
            raise InvalidTransition(
                f"task {task_id!r} is {task.status} at attempt {task.attempt}; "
                f"cannot record attempt {attempt}",
                {"taskId": task_id, "status": str(task.status), "attempt": task.attempt})
        return task

    def _attempts_used(self, task: TaskState) -> int:
        """The task's attempts that count against its retry policy's `maximum_attempts`."""
        return task.failures + task.interruptions

    def _fail_lost_attempt(self, task: TaskState, reason: str) -> None:
        """The task's last attempt was lost in a crash: it fails for good, as a task that
        stops the process whenever it runs would otherwise run at every restart."""
        allowed = self.retry_policy_for(task.plan.agent).maximum_attempts
        self._task_failed(
            task_id=task.id, attempt=task.attempt, error_kind=INTERRUPTED,
            error_message=f"{reason}; that used up its last attempt ({allowed} allowed)",
            duration_ms=None, retry_at=None)
        doomed = self._unfinished_dependents(task.id)
        if doomed:
            self._tasks_skipped(task_ids=doomed, failed_task_id=task.id)

    def _cannot_retry(self, message: str) -> InvalidTransition:
        return InvalidTransition(message, {"status": str(self.status), "command": "retry"})

    def _unskipped_by(self, retried: list[str]) -> list[str]:
        """The skipped tasks downstream of `retried` that no task still failed holds back
        (once `retried` are pending again), in plan order."""
        retrying = set(retried)
        held_back = self._downstream(t for t in self.failed_task_ids if t not in retrying)
        freed = self._downstream(retried) - held_back
        return sorted((t for t in freed if self.tasks[t].status is TaskStatus.SKIPPED),
                      key=lambda t: self.tasks[t].plan.order)

    def _downstream(self, task_ids: Iterable[str]) -> set[str]:
        """Every task that depends, directly or not, on one of `task_ids`."""
        seen: set[str] = set()
        stack = [d for task_id in task_ids for d in self._dependents[task_id]]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self._dependents[current])
        return seen

    def _unfinished_dependents(self, task_id: str) -> list[str]:
        """Every task downstream of `task_id` that has not finished, in plan order."""
        doomed = [t for t in self._downstream([task_id])
                  if self.tasks[t].status not in TERMINAL_TASK]
        return sorted(doomed, key=lambda t: self.tasks[t].plan.order)
