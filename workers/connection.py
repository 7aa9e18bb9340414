"""What the engine and the workers share: the broker, the result backend and the names.

The broker is `CELERY_BROKER_URL` and the result backend `CELERY_RESULT_BACKEND`, both
`redis://127.0.0.1:6379/0` by default (RabbitMQ works as the broker:
`amqp://guest:guest@127.0.0.1:5672//`). The result backend must be Redis: besides each
attempt's result, it holds the reports stream (started, progress, outcome) and the leases that
keep each agent type's concurrency limit across every worker. `STRATEXEC_QUEUE_PREFIX`
(default `stratexec`) names the queues, `<prefix>.<agent type>`, and prefixes those keys, so
that two deployments (or two test runs) on one broker never see each other's work.

Messages are acknowledged late and given back when a worker dies (`acks_late`,
`reject_on_worker_lost`); with Redis a message that was delivered but not acknowledged comes
back after the visibility timeout, which `visibility_timeout` sets above the longest attempt
`timeout` of the agent types served, and which kombu sweeps for every second (its default,
every 100 s, would make a dead worker's attempts wait that long). kombu's set of unacknowledged
messages is the deployment's own as well (`<prefix>:unacked`), so that a worker never gives
back another deployment's messages on its own visibility timeout.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "stratexec"
TASK_NAME = "stratexec.attempt"
# Without a timeout an attempt may run for as long as it needs: Celery's own default.
UNBOUNDED_VISIBILITY_TIMEOUT = 3600.0
VISIBILITY_FACTOR = 2.0  # the visibility timeout over the longest attempt timeout
RESULT_EXPIRES = 7 * 24 * 3600  # seconds: an engine down longer re-runs what finished


@dataclass(frozen=True)
class CelerySettings:
    broker_url: str = DEFAULT_URL
    backend_url: str = DEFAULT_URL
    prefix: str = DEFAULT_PREFIX

    @classmethod
    def from_environment(cls) -> CelerySettings:
        backend = os.environ.get("CELERY_RESULT_BACKEND") or DEFAULT_URL
        if not backend.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"CELERY_RESULT_BACKEND must be a Redis URL, got {backend!r}")
        return cls(os.environ.get("CELERY_BROKER_URL") or DEFAULT_URL, backend,
                   os.environ.get("STRATEXEC_QUEUE_PREFIX") or DEFAULT_PREFIX)

    def queue(self, agent_type: str) -> str:
        return f"{self.prefix}.{agent_type}"

    @property
    def reports_key(self) -> str:
        return f"{self.prefix}:reports"

    def leases_key(self, agent_type: str) -> str:
        return f"{self.prefix}:leases:{agent_type}"


def visibility_timeout(timeouts: Iterable[float | None]) -> float:
    """Longer than the longest attempt: `VISIBILITY_FACTOR` times the longest timeout, or
    `UNBOUNDED_VISIBILITY_TIMEOUT` when a type has none."""
    chosen = list(timeouts)
    if not chosen or any(timeout is None for timeout in chosen):
        return UNBOUNDED_VISIBILITY_TIMEOUT
    return VISIBILITY_FACTOR * max(t for t in chosen if t is not None)


def celery_app(settings: CelerySettings, visibility: float = UNBOUNDED_VISIBILITY_TIMEOUT
               ) -> Any:
    """The Celery application both sides use."""
    app = Celery("stratexec", broker=settings.broker_url, backend=settings.backend_url,
                 set_as_current=False)
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        result_expires=RESULT_EXPIRES,
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
            # kombu's own keys too: a worker restores only this deployment's messages.
            "unacked_key": f"{settings.prefix}:unacked",
            "unacked_index_key": f"{settings.prefix}:unacked_index",
            "unacked_mutex_key": f"{settings.prefix}:unacked_mutex"},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_default_queue=f"{settings.prefix}.default",
    )
    return app


def redis_client(settings: CelerySettings) -> Any:
    return redis.Redis.from_url(settings.backend_url)
