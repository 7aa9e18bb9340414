"""What the worker tests share: real `stratexec worker` processes (`WorkerProcess`), the
test's Celery environment (`CeleryEnv`), and an engine on the workers in the test's process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import redis

from stratexec import usecases
from stratexec.bench.workloads import chains_strategy
from stratexec.config import load
from stratexec.domain.execution import Execution
from stratexec.domain.strategy import parse_strategy
from stratexec.engine import Engine
from stratexec.settings import EngineOptions, StoreSettings
from stratexec.workers.connection import CelerySettings, celery_app

RECORDING_AGENT_DIR = Path(__file__).resolve().parent / "workers"  # on the workers' path
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
        """How often each attempt ran, by key."""
        return _counts(self.redis.hgetall(self.key("runs")))

    def done(self) -> dict[str, int]:
        """The worker (pid) that finished each attempt, by key."""
        return _counts(self.redis.hgetall(self.key("done")))

    def running_on(self, worker: WorkerProcess) -> set[str]:
        """The keys of the attempts the worker is running now."""
        return {_text(k) for k in self.redis.smembers(self.key(f"running:{worker.pid}"))}

    def most_at_once(self, agent_type: str) -> int:
        return int(self.redis.get(self.key(f"max:{agent_type}")) or 0)


def _counts(found: Mapping[bytes | str, bytes | str]) -> dict[str, int]:
    return {_text(key): int(value) for key, value in found.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


ON_CELERY = EngineOptions(agents_on="celery", seed=1, health_interval=1.0)


@contextmanager
def celery_engine(data_dir: Path, config: Path) -> Iterator[Engine]:
    engine = Engine.configured(StoreSettings(data_dir), ON_CELERY, load(config))
    try:
        yield engine
    finally:
        engine.stop()


def start_chains(engine: Engine, n: int) -> UUID:
    """An execution of N chains of two tasks (research, then analysis): 2N tasks."""
    defined = usecases.define_strategy(engine.app, parse_strategy(chains_strategy(n)),
                                       engine.rules)
    return usecases.start_execution(engine, defined.strategy_id, defined.workspace_id).id


def event_counts(engine: Engine, execution_id: UUID, kind: str) -> Counter[str]:
    """How many events of `kind` (TaskStarted, TaskSucceeded, ...) each task has."""
    return Counter(event["data"]["taskId"] for event in usecases.history(engine.app, execution_id)
                   if event["type"] == f"Execution.{kind}")


def keys_of(execution: Execution) -> set[str]:
    """Every task's last attempt key."""
    return {f"{execution.id}:{task.id}:{task.attempt}" for task in execution.tasks.values()}
