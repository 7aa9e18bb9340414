"""The workers' one Celery task, `stratexec.attempt`: one delivery of one attempt.

A delivery begins with one round trip to Redis (`workers.leases`): if the result backend holds
the attempt's outcome already (a delivery before this one finished it), that outcome is
reported again and nothing runs, so an attempt is never done twice. A delivery of an attempt
that holds a lease elsewhere, or of a type at its concurrency limit, sends the message again
a moment later (the worker's slot is free meanwhile): the one elsewhere either finishes (the
copy then finds its outcome) or its worker died, and its lease runs out before the copy asks
again for long. Otherwise the delivery holds a lease and has reported
`started`: it runs the type's handler (each progress report goes on the stream, and is the
attempt's heartbeat), then stores the outcome under its key, reports it and gives the lease
back, in one transaction.

The message is acknowledged once the task returned (`acks_late`). The task ignores its
result (`ignore_result`): Celery writes no state of its own over the stored outcome.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from celery import signals

from stratexec.actors.agent import handler_outcome
from stratexec.actors.agents.base import AgentHandler, TaskContext
from stratexec.workers import wire
from stratexec.workers.connection import RESULT_EXPIRES, TASK_NAME, CelerySettings
from stratexec.workers.leases import BUSY, FULL, LEASE_SECONDS, STORED, Leases

FULL_RETRY_SECONDS = 0.2  # a type at its limit: when its attempt asks again
BUSY_RETRY_SECONDS = LEASE_SECONDS / 3  # the attempt runs elsewhere: when the copy looks again


class AttemptDeliveries:
    """Runs the deliveries of one worker process's agent types."""

    def __init__(self, handlers: Mapping[str, AgentHandler], settings: CelerySettings,
                 redis: Any) -> None:
        self.handlers = handlers
        self.settings = settings
        self.leases = Leases(redis, settings.reports_key, RESULT_EXPIRES)

    def deliver(self, task: Any, fields: dict[str, Any], limit: int) -> None:
        """`task` is the bound Celery task."""
        attempt = wire.task_from(fields)
        key = task.request.id
        code, stored = self.leases.begin(self.settings.leases_key(attempt.agent), key, limit,
                                         {"worker": task.request.hostname})
        if code in (BUSY, FULL):
            task.apply_async((fields, limit), task_id=key, queue=self.settings.queue(
                attempt.agent), countdown=BUSY_RETRY_SECONDS if code == BUSY
                else FULL_RETRY_SECONDS, ignore_result=True)
        elif code == STORED:
            self.leases.finish(key, stored, store=False)
        else:
            self._run(attempt, key)

    def _run(self, attempt: Any, key: str) -> None:
        try:
            context = TaskContext(functools.partial(self._progress, key))
            outcome = handler_outcome(self.handlers[attempt.agent], attempt, context)
        except BaseException:
            self.leases.give_back(key)
            raise
        self.leases.finish(key, wire.outcome_to(outcome), store=True)

    def _progress(self, key: str, fraction: float, message: str) -> None:
        self.leases.report(key, wire.PROGRESS, {"progress": fraction, "message": message})


def register(app: Any, deliveries: AttemptDeliveries) -> Any:
    """Register `stratexec.attempt` on the worker's Celery app, and give back the lease of
    an attempt a revoke terminated (in the main process: the child died holding it)."""

    def revoked(request: Any = None, terminated: bool = False, **_: Any) -> None:
        if terminated and request is not None and request.args:
            agent = request.args[0].get("agent", "")
            deliveries.leases.drop(deliveries.settings.leases_key(agent), request.id)

    signals.task_revoked.connect(revoked, weak=False)

    @app.task(name=TASK_NAME, bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def attempt(self: Any, fields: dict[str, Any], limit: int) -> None:
        deliveries.deliver(self, fields, limit)

    return attempt
