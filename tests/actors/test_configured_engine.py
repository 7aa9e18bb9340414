"""An engine started from a config file: per-type concurrency reaches the agent actors."""

from __future__ import annotations

import textwrap
from pathlib import Path

from stratexec import usecases
from stratexec.config import load
from stratexec.domain.strategy import parse_strategy
from stratexec.engine import Engine
from stratexec.settings import EngineOptions, StoreSettings

CONFIG = """
    [agents.research]
    concurrency = 1
    [agents.content]
    concurrency = 3
    timeout = 12
"""


def strategy(per_agent: int) -> dict[str, object]:
    items: list[dict[str, object]] = [
        {"id": "l1", "level": 1, "parentId": None, "title": "Goal"},
        {"id": "l2", "level": 2, "parentId": "l1", "title": "Area"},
        {"id": "l3", "level": 3, "parentId": "l2", "title": "Project"}]
    for agent in ("research", "content"):
        items += [{"id": f"{agent}-{n}", "level": 4, "parentId": "l3", "title": f"{agent} {n}",
                   "agents": [agent]} for n in range(per_agent)]
    return {"name": "Independent tasks", "items": items}


def test_each_type_runs_as_many_attempts_at_once_as_its_config_says(tmp_path: Path) -> None:
    path = tmp_path / "stratexec.toml"
    path.write_text(textwrap.dedent(CONFIG))
    options = EngineOptions(concurrency=4, demo_duration=(0.05, 0.05), demo_failure_rate=0.0,
                            health_interval=60)
    engine = Engine.configured(StoreSettings(tmp_path / "data"), options, load(path))
    try:
        defined = usecases.define_strategy(engine.app, parse_strategy(strategy(5)),
                                           engine.rules)
        started = usecases.start_execution(engine, defined.strategy_id, defined.workspace_id)
        assert engine.runtime.wait(started.id, timeout=60)
        stats = {agent: ref.proxy().stats().get()
                 for agent, ref in engine.runtime.agent_refs().items()}
        limits = {agent: ref.proxy().limits.get()
                  for agent, ref in engine.runtime.agent_refs().items()}
    finally:
        engine.stop()

    assert (stats["research"].concurrency, stats["research"].finished) == (1, 5)
    assert stats["research"].max_running_seen == 1  # five were ready at once
    assert stats["content"].concurrency == 3
    assert 1 <= stats["content"].max_running_seen <= 3
    assert limits["content"].timeout == 12.0
    assert stats["email"].concurrency == 4  # not in the file: the engine's
