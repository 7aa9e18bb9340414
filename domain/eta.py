"""When an execution will finish: a list-scheduling simulation of what remains of its plan.

The estimate is the time the remaining tasks take if the engine runs them as it does:
each agent type runs at most `concurrency` attempts at once, a task starts once every task
it depends on has finished, and ready tasks start in the engine's dispatch order (priority,
then plan order). Each task takes its agent type's typical duration: the p50 of the type's
observed durations gives the estimate, the p90 the pessimistic end of its range (the
makespan if every remaining task took its type's p90: a bound, not the p90 of the makespan).
So a fan-out of 100 tasks on a type with concurrency 4 takes 25 durations, not 1.

A running attempt is expected to take its type's duration in all, so it has that less its
elapsed time left; one already past it is expected to end soon, in a tenth of a duration.
A task waiting for a retry cannot start before its retry is due. Failures to come are not
foreseen: every remaining task is expected to succeed at its next attempt. Other executions
sharing an agent type are not seen either: this one is assumed to have the type's slots.

The critical path is the chain of tasks that decides the finish: from the task that ends
last, back through whatever let each start (the dependency that finished last, or, for a
task that waited for a slot, the task whose end freed it). Only its first
`CRITICAL_PATH_SHOWN` tasks are kept: the ones that matter next.

The simulation costs O((tasks + dependencies) log tasks): 10,000 tasks take a few tens of
milliseconds.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CRITICAL_PATH_SHOWN = 50
OVERRUN_FRACTION = 0.1  # of a duration: what an attempt past its duration has left
# The change that makes a new estimate worth recording (see `Eta.moved_from`).
SIGNIFICANT_CHANGE = 0.1


def nearest_rank(values: Iterable[float], percentile: float) -> float | None:
    """The `percentile` (0-100) of `values` by nearest rank; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(percentile / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class AgentSpeed:
    """How long an agent type's tasks take (seconds), and how many run at once."""

    p50: float
    p90: float
    concurrency: int

    @classmethod
    def observed(cls, durations: Sequence[float], prior: AgentSpeed) -> AgentSpeed:
        """From the type's observed durations (seconds); the prior's before any."""
        p50, p90 = nearest_rank(durations, 50), nearest_rank(durations, 90)
        if p50 is None or p90 is None:
            return prior
        return cls(p50, p90, prior.concurrency)


@dataclass(frozen=True)
class RemainingTask:
    """A task that has not finished. `depends_on` may name finished tasks (satisfied);
    `running_for` is the seconds its attempt has run, None when not started; `ready_in`
    the seconds until its retry is due; `rank` orders ready tasks as the engine does."""

    id: str
    agent: str
    depends_on: tuple[str, ...] = ()
    running_for: float | None = None
    ready_in: float = 0.0
    rank: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Eta:
    """An estimate, made at `estimated_at`, of the seconds until the execution finishes."""

    seconds: float
    p90_seconds: float
    estimated_at: datetime
    remaining_tasks: int
    critical_path: tuple[str, ...] = field(default=())

    def as_record(self) -> dict[str, Any]:
        """As recorded in an event, and shown on the wire: camelCase, as a plan's records."""
        return {"seconds": round(self.seconds, 3), "p90Seconds": round(self.p90_seconds, 3),
                "estimatedAt": self.estimated_at.isoformat(),
                "remainingTasks": self.remaining_tasks,
                "criticalPath": list(self.critical_path)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Eta:
        return cls(record["seconds"], record["p90Seconds"],
                   datetime.fromisoformat(record["estimatedAt"]), record["remainingTasks"],
                   tuple(record["criticalPath"]))

    def moved_from(self, earlier: Eta | None) -> bool:
        """Worth recording after `earlier`: other tasks remain, or the estimate moved by
        more than `SIGNIFICANT_CHANGE` of the earlier one (the time passing between two
        assessments moves every estimate a little)."""
        if earlier is None or earlier.remaining_tasks != self.remaining_tasks:
            return True
        return abs(self.seconds - earlier.seconds) > SIGNIFICANT_CHANGE * earlier.seconds


def estimate(tasks: Sequence[RemainingTask], speeds: Mapping[str, AgentSpeed],
             now: datetime) -> Eta:
    """The estimate for `tasks` (every unfinished task of one execution), with the speed of
    each of their agent types. `KeyError` for a task whose type has no speed."""
    p50 = _Schedule(tasks, {agent: s.p50 for agent, s in speeds.items()}, speeds)
    p90 = _Schedule(tasks, {agent: s.p90 for agent, s in speeds.items()}, speeds)
    return Eta(p50.makespan, max(p50.makespan, p90.makespan), now, len(tasks),
               tuple(p50.critical_path()[:CRITICAL_PATH_SHOWN]))


def time_left(duration: float, running_for: float | None) -> float:
    """What an attempt expected to take `duration` has left after `running_for` seconds."""
    if running_for is None:
        return duration
    if running_for < duration:
        return duration - running_for
    return duration * OVERRUN_FRACTION


class _Schedule:
    """One run of the simulation: every remaining task's end, and what let each start."""

    def __init__(self, tasks: Sequence[RemainingTask], durations: Mapping[str, float],
                 speeds: Mapping[str, AgentSpeed]) -> None:
        self._tasks = {task.id: task for task in tasks}
        self._durations = durations
        self._free = {task.agent: speeds[task.agent].concurrency for task in tasks}
        self._ready: dict[str, list[tuple[tuple[Any, ...], int, str]]] = {
            agent: [] for agent in self._free}
        self._events: list[tuple[float, int, bool, str]] = []  # (time, seq, ends?, task)
        self._seq = 0
        self.ends: dict[str, float] = {}
        self.cause: dict[str, str | None] = {}  # task -> what let it start
        self._became_ready: dict[str, tuple[float, str | None]] = {}
        self._waiting, self._dependents = self._dependencies(tasks)
        self.makespan = self._run(tasks)

    def _dependencies(self, tasks: Sequence[RemainingTask]
                      ) -> tuple[dict[str, int], dict[str, list[str]]]:
        waiting = {task.id: 0 for task in tasks}
        dependents: dict[str, list[str]] = {task.id: [] for task in tasks}
        for task in tasks:
            if task.running_for is not None:
                continue  # it started: what it depended on has finished
            for dependency in task.depends_on:
                if dependency in waiting:
                    waiting[task.id] += 1
                    dependents[dependency].append(task.id)
        return waiting, dependents

    def _push(self, at: float, ends: bool, task_id: str) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, self._seq, ends, task_id))

    def _run(self, tasks: Sequence[RemainingTask]) -> float:
        for task in tasks:
            if task.running_for is not None:
                self._free[task.agent] -= 1
                self.cause[task.id] = None
                self._push(time_left(self._durations[task.agent], task.running_for), True,
                           task.id)
            elif self._waiting[task.id] == 0:
                self._push(task.ready_in, False, task.id)
        now = 0.0
        while self._events:
            now = self._events[0][0]
            # Everything that happens at `now` first, then the starts: the ready tasks
            # then compete for the free slots by rank, as in the engine.
            touched: dict[str, str | None] = {}  # agent -> the task whose end freed a slot
            while self._events and self._events[0][0] == now:
                _, _, ends, task_id = heapq.heappop(self._events)
                agent = self._tasks[task_id].agent
                if ends:
                    self.ends[task_id] = now
                    self._free[agent] += 1
                    touched[agent] = task_id
                    self._release_dependents(task_id, now, touched)
                else:
                    self._enqueue(task_id, now, None)
                    touched.setdefault(agent, None)
            for agent, freed_by in touched.items():
                self._start_ready(agent, now, freed_by)
        return now

    def _enqueue(self, task_id: str, now: float, dependency: str | None) -> None:
        task = self._tasks[task_id]
        self._became_ready[task_id] = (now, dependency)
        heapq.heappush(self._ready[task.agent], (task.rank, self._seq, task_id))
        self._seq += 1

    def _release_dependents(self, task_id: str, now: float,
                            touched: dict[str, str | None]) -> None:
        for dependent_id in self._dependents[task_id]:
            self._waiting[dependent_id] -= 1
            if self._waiting[dependent_id] == 0:
                dependent = self._tasks[dependent_id]
                if dependent.ready_in > now:  # its retry is due later
                    self._push(dependent.ready_in, False, dependent_id)
                    continue
                self._enqueue(dependent_id, now, task_id)
                touched.setdefault(dependent.agent, None)

    def _start_ready(self, agent: str, now: float, freed_by: str | None) -> None:
        """Start what the free slots allow; a task that waited for its slot owes its start
        to the task whose end freed it, one that just became ready to its dependency."""
        ready = self._ready[agent]
        while ready and self._free[agent] > 0:
            _, _, task_id = heapq.heappop(ready)
            self._free[agent] -= 1
            ready_at, dependency = self._became_ready[task_id]
            self.cause[task_id] = (dependency if ready_at >= now or freed_by is None
                                   else freed_by)
            self._push(now + self._durations[agent], True, task_id)

    def critical_path(self) -> list[str]:
        if not self.ends:
            return []
        last = max(self.ends, key=lambda task_id: (self.ends[task_id], task_id))
        path: list[str] = []
        current: str | None = last
        while current is not None:
            path.append(current)
            current = self.cause[current]
        path.reverse()
        return path
