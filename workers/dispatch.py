"""The engine's side of `--agents-on celery`: attempts go to the workers, reports come back.

`CeleryPlacement` is the runtime's `Placement`: one `CeleryRunner` per agent type replaces
the local thread pool, and the agent actors keep doing all they do with local attempts (the
concurrency slots in priority order, deadlines, the circuit breaker, recording every state
change through the execution). A runner sends each attempt as a `stratexec.attempt` message to
its type's queue, with the attempt's idempotency key as the Celery task id and the type's
concurrency as the limit the workers hold between them; the attempts an agent actor starts in
one turn are sent together (`workers.publish`: with Redis as the broker, in one round trip).
One `ReportReader` thread follows the
reports stream and turns the entries about attempts this engine follows into the messages a
local attempt sends: started, progress, then the outcome, once. It frees an ended attempt's
slot as soon as it reads the outcome, and sends the executions what it read within
`READ_LINGER` together, in the order read.

Cancel (and a timeout) revokes the attempt on the workers: a queued message is discarded, a
running one terminated (the workers run the prefork pool, where that works). Pause sends
nothing new; what was sent runs on and is recorded. After a crash, `collect` reads each
interrupted attempt's stored outcome under its key (one MGET): those are recorded, the
others are sent again as the same attempt. `health` is what `/healthz` shows of the workers:
asked with Celery's inspect on a thread of its own every `HEALTH_INTERVAL` seconds, never
on the caller's.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stratexec.actors.agent import AttemptRunner, AttemptStart, OnFinished, tell_live
from stratexec.actors.agents.base import AgentHandler, AgentLimits
from stratexec.actors.execution import Collect
from stratexec.actors.messages import (
    AgentTask,
    RecordTaskFailure,
    RecordTaskProgress,
    RecordTaskStarted,
    RunTask,
)
from stratexec.workers import wire
from stratexec.workers.connection import (
    CelerySettings,
    celery_app,
    redis_client,
)
from stratexec.workers.leases import result_key
from stratexec.workers.publish import Message, Unsent, sender

logger = logging.getLogger(__name__)

READ_BLOCK_MS = 500
READ_COUNT = 1000
# After the first report of a lull, what else comes within this many seconds is read with it:
# the executions then record them in one save each (group commit), not one save a report.
# 15 ms, not 5: twice the events per save and a third less engine CPU a task, measured at
# N = 5,000 with 16 attempts in flight (enough queued that the workers do not wait for it).
# The slots of the attempts that ended are freed as soon as their outcome is read, before
# the linger: it delays the recording, never the next attempt's send.
READ_LINGER = 0.015
HEALTH_INTERVAL = 5.0
INSPECT_TIMEOUT = 1.0
BROKER_UNAVAILABLE = "broker_unavailable"


# The messages for the executions that one read of the reports makes, in the order read:
# (the execution's actor, the message), sent together once the read's linger is over.
Told = list[tuple[Any, Any]]


@dataclass(frozen=True)
class _Following:
    run: RunTask
    on_finished: OnFinished
    on_progress: Callable[[], None]


class ReportReader:
    """Follows the reports stream from where it ended when the reader was made."""

    def __init__(self, redis: Any, stream: str) -> None:
        self._redis = redis
        self._stream = stream
        last = redis.xrevrange(stream, count=1)
        self._last_id: bytes | str = last[0][0] if last else "0-0"
        self._following: dict[str, _Following] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._read, name="celery-reports", daemon=True)
        self._thread.start()

    def follow(self, key: str, following: _Following) -> None:
        """Follow the attempt's reports; an attempt sent again (its execution's actor was
        rebuilt) is followed by its new slot, and the old one is freed."""
        with self._lock:
            previous = self._following.get(key)
            self._following[key] = following
        if previous is not None:
            previous.on_finished(None)

    def finish(self, key: str, outcome: wire.Outcome | None,
               told: Told | None = None) -> None:
        """The attempt ended: `on_finished` frees its slot at once, and its outcome (if any)
        goes to its execution, or on `told` to go with the other reports read with it;
        only the first call for a key does anything."""
        with self._lock:
            following = self._following.pop(key, None)
        if following is None:
            return
        following.on_finished(outcome)
        if outcome is None:
            return
        if told is None:
            tell_live(following.run.reply_to, outcome)
        else:
            told.append((following.run.reply_to, outcome))

    def in_flight(self) -> Counter[str]:
        with self._lock:
            return Counter(f.run.task.agent for f in self._following.values())

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _read(self) -> None:
        while not self._stopped.is_set():
            told: Told = []
            try:
                entries = self._take(self._redis.xread(
                    {self._stream: self._last_id}, count=READ_COUNT, block=READ_BLOCK_MS), told)
                if 0 < entries < READ_COUNT:
                    self._stopped.wait(READ_LINGER)
                    self._take(self._redis.xread({self._stream: self._last_id},
                                                 count=READ_COUNT), told)
            except Exception:
                logger.exception("cannot read the workers' reports; trying again")
                self._stopped.wait(1.0)
            for ref, message in told:
                tell_live(ref, message)

    def _take(self, answer: Any, told: Told) -> int:
        """Dispatch the entries read; the messages for the executions go on `told`, to be
        sent together after the linger. Returns how many entries there were."""
        entries = answer[0][1] if answer else []
        for entry_id, fields in entries:
            self._last_id = entry_id
            try:
                self._dispatch(*wire.parse_report(fields), told)
            except (KeyError, ValueError, TypeError):  # not a report of ours
                logger.warning("dropping a malformed report %s: %r", entry_id, fields)
        return len(entries)

    def _dispatch(self, key: str, kind: str, body: dict[str, Any],
                  told: Told) -> None:
        with self._lock:
            following = self._following.get(key)
        if following is None:
            return  # another engine's, or an attempt that is no longer followed
        task = following.run.task
        if kind == wire.STARTED:
            told.append((following.run.reply_to,
                         RecordTaskStarted(task.task_id, task.attempt)))
        elif kind == wire.PROGRESS:
            following.on_progress()
            told.append((following.run.reply_to, RecordTaskProgress(
                task.task_id, task.attempt, float(body["progress"]), str(body["message"]))))
        elif kind == wire.OUTCOME:
            outcome = wire.outcome_from(body)
            if outcome is None:  # the attempt stays followed: its deadline, if any, ends it
                logger.warning("attempt %s: the worker reported no outcome of ours: %r",
                               key, body)
            else:
                self.finish(key, outcome, told)


class CeleryRunner:
    """One agent type's attempts, on the workers that serve its queue."""

    def __init__(self, placement: CeleryPlacement, agent_type: str, limits: AgentLimits
                 ) -> None:
        self._placement = placement
        self._queue = placement.settings.queue(agent_type)
        self._limit = limits.concurrency

    def start(self, starts: Sequence[AttemptStart]) -> None:
        """Send the attempts of the agent actor's turn together. Those the broker does not
        hold (it cannot be reached) are failed, retryable attempts."""
        reader = self._placement.reader
        for start in starts:
            reader.follow(start.run.task.idempotency_key,
                          _Following(start.run, start.on_finished, start.on_progress))
        try:
            self._placement.sender.send(self._queue, [
                Message(s.run.task.idempotency_key, (wire.task_to(s.run.task), self._limit))
                for s in starts])
        except Unsent as unsent:
            for start in starts[unsent.sent:]:
                self._unsent(start.run, unsent.__cause__)

    def _unsent(self, run: RunTask, error: BaseException | None) -> None:
        key = run.task.idempotency_key
        logger.warning("could not send attempt %s to %s: %s", key, self._queue, error)
        self._placement.reader.finish(key, RecordTaskFailure(
            run.task.task_id, run.task.attempt, BROKER_UNAVAILABLE,
            f"could not send the attempt to queue {self._queue}: {error}", True, 0.0))

    def stop(self, run: RunTask) -> None:
        key = run.task.idempotency_key
        try:
            self._placement.app.control.revoke(key, terminate=True, signal="SIGTERM")
        except Exception:
            logger.exception("could not revoke attempt %s on the workers", key)
        self._placement.reader.finish(key, None)

    def shutdown(self) -> None:
        """What was sent runs on: the next start collects it."""


class CeleryPlacement:
    name = "celery"

    def __init__(self, settings: CelerySettings) -> None:
        self.settings = settings
        self.app = celery_app(settings)
        self.sender = sender(self.app, settings.broker_url)
        self._redis = redis_client(settings)
        self.reader = ReportReader(self._redis, settings.reports_key)
        self._workers: dict[str, Any] = {"workers": [], "checkedAt": None, "error": None}
        self._queues: list[str] = []
        self._health_stopped = threading.Event()
        self._health_thread = threading.Thread(target=self._watch_workers,
                                               name="celery-inspect", daemon=True)
        self._health_thread.start()

    def runner(self, handler: AgentHandler, limits: AgentLimits) -> AttemptRunner:
        self._queues.append(self.settings.queue(handler.agent_type))
        return CeleryRunner(self, handler.agent_type, limits)

    @property
    def collect(self) -> Collect:
        return self._collect

    def _collect(self, tasks: list[AgentTask]) -> Mapping[str, wire.Outcome]:
        """The stored outcome of each attempt that has one (Celery's `celery-task-meta-<id>`
        keys in the result backend)."""
        if not tasks:
            return {}
        keys = [t.idempotency_key for t in tasks]
        found = {}
        for key, stored in zip(keys, self._redis.mget([result_key(k) for k in keys]),
                               strict=True):
            outcome = None if stored is None else wire.outcome_from(
                json.loads(stored).get("result"))
            if outcome is not None:
                found[key] = outcome
        logger.info("recovery: %d of %d attempts under way had finished on the workers",
                    len(found), len(keys))
        return found

    def health(self) -> dict[str, Any]:
        return {"agentsOn": self.name, **self._workers, "queues": list(self._queues),
                "inFlight": dict(sorted(self.reader.in_flight().items()))}

    def close(self) -> None:
        self._health_stopped.set()
        self.reader.stop()
        self._health_thread.join()

    def _watch_workers(self) -> None:
        while not self._health_stopped.is_set():
            try:
                queues = self.app.control.inspect(timeout=INSPECT_TIMEOUT).active_queues() or {}
                ours = f"{self.settings.prefix}."
                self._workers = {"workers": sorted(
                    ({"name": name, "queues": sorted(q["name"] for q in served
                                                     if q["name"].startswith(ours))}
                     for name, served in queues.items()), key=lambda w: w["name"]),
                    "checkedAt": datetime.now(UTC).isoformat(), "error": None}
            except Exception as error:
                self._workers = {**self._workers, "error": str(error)}
            self._health_stopped.wait(HEALTH_INTERVAL)
