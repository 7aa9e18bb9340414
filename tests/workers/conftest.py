"""Fixtures of the worker tests: real Redis (and RabbitMQ), real `stratexec worker` processes.

Each test gets its own `STRATEXEC_QUEUE_PREFIX`, so that its queues and keys are its own and
parallel runs on one Redis never collide; its keys and workers are gone after it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import redis

from stratexec.workers.connection import CelerySettings, celery_app

HERE = Path(__file__).resolve().parent
REDIS_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
READY_TIMEOUT = 60.0


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05
               ) -> Any:
    """Poll `check` until it returns something true, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class WorkerProcess:
    """`stratexec worker` in its own session, so that a kill takes its pool children too."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def name(self) -> str:
        return f"stratexec-{self.pid}@{socket.gethostname()}"

    def kill(self) -> None:
        """SIGKILL the worker and its pool: it acknowledges nothing more."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(30)


@dataclass
class CeleryEnv:
    prefix: str
    broker_url: str
    tmp: Path
    redis: redis.Redis
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def settings(self) -> CelerySettings:
        return CelerySettings(self.broker_url, REDIS_URL, self.prefix)

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def config(self, concurrency: int = 3, duration: float = 0.02,
               timeout: float | None = None, types: tuple[str, ...] = ("research", "analysis")
               ) -> Path:
        """A config file giving `types` the recording agent, with these limits."""
        lines = []
        for agent_type in types:
            lines += [f"[agents.{agent_type}]", 'handler = "recording_agent:RecordingAgent"',
                      f"concurrency = {concurrency}"]
            if timeout is not None:
                lines.append(f"timeout = {timeout}")
            lines += [f"[agents.{agent_type}.options]", f"duration = {duration}", ""]
        path = self.tmp / f"workers-{uuid4().hex[:6]}.toml"
        path.write_text("\n".join(lines))
        return path

    def start_worker(self, config: Path, concurrency: int = 2, *options: str
                     ) -> WorkerProcess:
        log = self.tmp / f"worker-{len(self.workers)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "stratexec", "worker", "--config", str(config),
                 "--concurrency", str(concurrency), *options],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        worker = WorkerProcess(process, log)
        self.workers.append(worker)
        return worker

    def wait_ready(self, *workers: WorkerProcess) -> None:
        """Until each worker answers a ping (its pool is up and consuming)."""
        app = celery_app(self.settings)
        for worker in workers:
            def answered(worker: WorkerProcess = worker) -> bool:
                if worker.process.poll() is not None:
                    raise AssertionError(f"worker exited: {worker.log.read_text()}")
                return bool(app.control.ping(destination=[worker.name], timeout=0.5))
            wait_until(answered, READY_TIMEOUT, f"worker {worker.name} to answer")

    def runs(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis.hgetall(self.key("runs")).items()}

    def done(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis.hgetall(self.key("done")).items()}

    def running_on(self, worker: WorkerProcess) -> set[str]:
        return {k.decode() for k in self.redis.smembers(self.key(f"running:{worker.pid}"))}

    def most_at_once(self, agent_type: str) -> int:
        return int(self.redis.get(self.key(f"max:{agent_type}")) or 0)


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
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]))
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
