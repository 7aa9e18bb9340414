"""The workers' one Celery task, `stratexec.attempt`: one delivery of one attempt.

A delivery first takes a lease in its type's concurrency limit (`workers.leases`): a type at
its limit sends the message again a moment later (the worker's slot is free meanwhile), and a
second delivery of an attempt that is running elsewhere is dropped (that one reports; if its
worker dies, its own message comes back). Then, if the result backend holds the attempt's
outcome already (a delivery before it finished), that outcome is reported again and nothing
runs: an attempt is never done twice. Otherwise it reports `started`, runs the type's handler
(each progress report goes on the stream, and is the attempt's heartbeat), stores the outcome
under its key, reports it, and gives the lease back.

The message is acknowledged only once the task returned (`acks_late`). Storing the outcome
and re-sending both go through Celery's backend and `apply_async`; `Ignore` keeps Celery from
writing a state over the stored outcome.
"""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Mapping
from typing import Any

from celery import signals
from celery.exceptions import Ignore

from stratexec.actors.agent import handler_outcome
from stratexec.actors.agents.base import AgentHandler, TaskContext
from stratexec.workers import wire
from stratexec.workers.connection import TASK_NAME, CelerySettings
from stratexec.workers.leases import BUSY, FULL, Leases

logger = logging.getLogger(__name__)

FULL_RETRY_SECONDS = 0.2  # a type at its limit: when its attempt asks again
REPORTS_MAX_LENGTH = 100_000  # the stream is trimmed to about this many entries


class Reports:
    """What a worker tells the engines, on the reports stream."""

    def __init__(self, redis: Any, stream: str) -> None:
        self._redis = redis
        self._stream = stream

    def send(self, key: str, kind: str, body: dict[str, Any]) -> None:
        self._redis.xadd(self._stream, wire.report(key, kind, body),
                         maxlen=REPORTS_MAX_LENGTH, approximate=True)


class AttemptDeliveries:
    """Runs the deliveries of one worker process's agent types."""

    def __init__(self, handlers: Mapping[str, AgentHandler], settings: CelerySettings,
                 redis: Any) -> None:
        self.handlers = handlers
        self.settings = settings
        self.leases = Leases(redis)
        self.reports = Reports(redis, settings.reports_key)

    def deliver(self, task: Any, fields: dict[str, Any], limit: int) -> dict[str, Any]:
        """`task` is the bound Celery task; raises `Ignore` when nothing is to be stored."""
        attempt = wire.task_from(fields)
        key = task.request.id
        claim = self.leases.take(self.settings.leases_key(attempt.agent), key, limit)
        if claim == BUSY:
            logger.info("attempt %s runs elsewhere already: this delivery is dropped", key)
            raise Ignore()
        if claim == FULL:
            task.apply_async((fields, limit), task_id=key, queue=self.settings.queue(
                attempt.agent), countdown=FULL_RETRY_SECONDS, ignore_result=True)
            raise Ignore()
        try:
            stored = wire.outcome_from(task.backend.get_task_meta(key).get("result"))
            if stored is not None:
                encoded = wire.outcome_to(stored)
            else:
                encoded = self._run(attempt, key, task.request.hostname or socket.gethostname())
                task.backend.store_result(key, encoded, "SUCCESS", request=task.request)
            self.reports.send(key, wire.OUTCOME, encoded)
        finally:
            self.leases.give_back(key)
        raise Ignore()  # stored above

    def _run(self, attempt: Any, key: str, hostname: str) -> dict[str, Any]:
        self.reports.send(key, wire.STARTED, {"worker": hostname})
        context = TaskContext(functools.partial(self._progress, key))
        return wire.outcome_to(handler_outcome(self.handlers[attempt.agent], attempt, context))

    def _progress(self, key: str, fraction: float, message: str) -> None:
        self.reports.send(key, wire.PROGRESS, {"progress": fraction, "message": message})


def register(app: Any, deliveries: AttemptDeliveries) -> Any:
    """Register `stratexec.attempt` on the worker's Celery app, and give back the lease of
    an attempt a revoke terminated (in the main process: the child died holding it)."""
    def revoked(request: Any = None, terminated: bool = False, **_: Any) -> None:
        if terminated and request is not None and request.args:
            agent = request.args[0].get("agent", "")
            deliveries.leases.drop(deliveries.settings.leases_key(agent), request.id)

    signals.task_revoked.connect(revoked, weak=False)

    @app.task(name=TASK_NAME, bind=True)  # type: ignore[untyped-decorator]
    def attempt(self: Any, fields: dict[str, Any], limit: int) -> dict[str, Any]:
        return deliveries.deliver(self, fields, limit)

    return attempt
