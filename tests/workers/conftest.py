"""Fixtures of the worker tests: real Redis (and RabbitMQ), real `stratexec worker` processes.

Each test gets its own `STRATEXEC_QUEUE_PREFIX`, so that its queues and keys are its own and
parallel runs on one Redis never collide; its keys and workers are gone after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import redis
from worker_support import RABBITMQ_URL, RECORDING_AGENT_DIR, REDIS_URL, CeleryEnv

from stratexec.workers.connection import celery_app


def _answering(client: redis.Redis) -> None:
    try:
        client.ping()
    except redis.ConnectionError as error:  # never skipped: scripts/test starts it
        raise AssertionError(f"Redis is not answering on {REDIS_URL}: {error}") from None


@pytest.fixture
def celery_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CeleryEnv]:
    yield from _environment(monkeypatch, tmp_path, REDIS_URL)


@pytest.fixture
def rabbitmq_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CeleryEnv]:
    yield from _environment(monkeypatch, tmp_path, RABBITMQ_URL)


def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, broker: str
                 ) -> Iterator[CeleryEnv]:
    client = redis.Redis.from_url(REDIS_URL)
    _answering(client)
    prefix = f"test{uuid4().hex[:10]}"
    monkeypatch.setenv("STRATEXEC_QUEUE_PREFIX", prefix)
    monkeypatch.setenv("CELERY_BROKER_URL", broker)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", REDIS_URL)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(RECORDING_AGENT_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env = CeleryEnv(prefix, broker, tmp_path, client)
    try:
        yield env
    finally:
        for worker in env.workers:
            worker.stop()
        _forget(env)


def _forget(env: CeleryEnv) -> None:
    """Delete the test's keys and queues (on RabbitMQ, its queues and exchanges)."""
    names = [f"celery-task-meta-{key}" for key in env.runs()]  # the stored outcomes
    names += [k.decode() for k in env.redis.scan_iter(f"{env.prefix}*", count=1000)]
    if names:
        env.redis.delete(*names)
    if env.broker_url.startswith("amqp://"):
        app = celery_app(env.settings)
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for agent_type in ("research", "analysis", "email", "content", "scheduling",
                               "coordination", "default"):
                channel.queue_delete(env.settings.queue(agent_type))
                channel.exchange_delete(env.settings.queue(agent_type))
