"""An engine on Celery workers, in the test's process, and what it recorded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

from stratexec import usecases
from stratexec.bench.workloads import chains_strategy
from stratexec.config import load
from stratexec.domain.execution import Execution
from stratexec.domain.strategy import parse_strategy
from stratexec.engine import Engine
from stratexec.settings import EngineOptions, StoreSettings

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
