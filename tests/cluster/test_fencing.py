"""Fencing: a process that lost an execution to another one stops writing it. Its actor's
next save is refused by the event store's version check, and the actor stops for good."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest
from helpers import chain_strategy, eventually, scripted_agents

from stratexec.actors.runtime import Runtime
from stratexec.cluster.ownership import NODE_APPLICATION, AdvisoryOwnership
from stratexec.domain.application import StratexecApp
from stratexec.settings import EngineOptions, postgres_conninfo

pytestmark = pytest.mark.postgres
ITEM = "a"
TASK = f"{ITEM}:research"


@pytest.fixture
def app(postgres_env: dict[str, str]) -> Iterator[StratexecApp]:
    application = StratexecApp(env=postgres_env)
    yield application
    application.close()


def test_the_old_owner_stops_at_its_refused_save_and_records_nothing(
        app: StratexecApp, postgres_env: dict[str, str], caplog: pytest.LogCaptureFixture
        ) -> None:
    conninfo = postgres_conninfo(postgres_env)
    agents = scripted_agents()
    gate = agents["research"].gate(TASK)
    old_owner = AdvisoryOwnership(conninfo)
    runtime = Runtime(app, agents, EngineOptions(health_interval=60), ownership=old_owner)
    runtime.start()
    new_owner = AdvisoryOwnership(conninfo)
    other_process = StratexecApp(env=postgres_env)
    try:
        strategy, _ = app.define_strategy(chain_strategy([ITEM]))
        execution_id = runtime.start_execution(strategy).id
        assert agents["research"].entered[TASK].wait(10)
        assert not new_owner.claim(execution_id)  # owned while the old owner is connected

        with psycopg.connect(conninfo, autocommit=True) as admin:  # its connection is lost
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                          " datname = current_database() AND application_name = %s",
                          (NODE_APPLICATION,))
        eventually(lambda: new_owner.claim(execution_id), 10, "the lock is free")
        taken = other_process.get_execution(execution_id)
        taken.pause()  # the new owner records something
        other_process.save(taken)

        with caplog.at_level(logging.ERROR):
            gate.set()  # the old owner's attempt ends: its actor saves, and is refused
            eventually(lambda: not runtime.is_live(execution_id), 10, "the old actor stopped")
        assert "no longer this one's" in caplog.text
        stored = other_process.get_execution(execution_id)
        assert str(stored.status) == "paused"
        assert stored.tasks[TASK].status == "in_progress"  # its success was never recorded
    finally:
        gate.set()
        runtime.stop()
        for ownership in (old_owner, new_owner):
            ownership.close()
        other_process.close()
