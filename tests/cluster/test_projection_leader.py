"""The projections run once among several runners on one PostgreSQL database: one leads and
applies the pages, the others follow its announced positions and hand the feed rows to their
subscribers; when the leader goes, a follower takes over, exactly once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import eventually

from stratexec.cluster.leader import AdvisoryLeadership
from stratexec.cluster.node import Node
from stratexec.domain.application import StratexecApp
from stratexec.domain.strategy import parse_strategy
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import PostgresViewStore
from stratexec.projections.verify import compare, rebuild
from stratexec.settings import postgres_conninfo

pytestmark = pytest.mark.postgres
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "small-demo.json"


class Member:
    """One node's views, runner and node parts, as `engine.Engine` wires them."""

    def __init__(self, app: StratexecApp, conninfo: str) -> None:
        self.views = PostgresViewStore(conninfo)
        self.node = Node(conninfo, self.views)
        self.runner = ProjectionRunner(app, self.views, leadership=self.node.leadership,
                                       poll_interval=5.0)  # woken by NOTIFY, not the poll
        self.rows: list[int] = []
        self._lock = threading.Lock()
        self.runner.subscribe(self._received)
        self.runner.start()
        self.node.listen(app, self.runner)

    def _received(self, rows: list[dict[str, Any]], position: int) -> None:
        with self._lock:
            self.rows.extend(row["position"] for row in rows)

    def stop(self) -> None:
        self.runner.stop()
        self.node.stop()
        self.views.close()


@pytest.fixture
def app(postgres_env: dict[str, str]) -> Iterator[StratexecApp]:
    application = StratexecApp(env=postgres_env)
    yield application
    application.close()


def start_executions(app: StratexecApp, count: int) -> None:
    document = json.loads(EXAMPLE.read_text())
    strategy, _ = app.define_strategy(parse_strategy(document))
    for _ in range(count):
        execution = app.create_execution(strategy)[0]
        execution.pause()
        app.save(execution)


def feed_positions(views: PostgresViewStore) -> list[int]:
    with views.read() as cur:
        return [row[0] for row in cur.execute("SELECT position FROM event_feed ORDER BY position")]


def last(app: StratexecApp) -> int:
    return app.recorder.max_notification_id() or 0


def test_one_runner_leads_the_other_follows_and_takes_over_exactly_once(
        app: StratexecApp, postgres_env: dict[str, str]) -> None:
    conninfo = postgres_conninfo(postgres_env)
    first = Member(app, conninfo)
    eventually(lambda: first.runner.leading, what="the first runner leads")
    second = Member(app, conninfo)
    try:
        start_executions(app, 5)
        eventually(lambda: second.runner.position == first.runner.position == last(app),
                   what="both runners at the log's end")
        assert not second.runner.leading
        assert second.rows == first.rows == feed_positions(second.views)  # in order, once

        first.stop()  # its lock goes, as when its process dies
        start_executions(app, 5)
        eventually(lambda: second.runner.leading and second.runner.position == last(app),
                   what="the follower takes over and catches up")
        assert second.rows == feed_positions(second.views)
    finally:
        first.stop()
        second.stop()
    with PostgresViewStore(conninfo, "rebuilt") as fresh:
        rebuild(app, fresh)
        with PostgresViewStore(conninfo) as live:
            assert compare(live, fresh) == []


def test_a_leader_that_lost_its_lock_connection_knows_it_within_the_check_interval(
        postgres_env: dict[str, str]) -> None:
    """The held lock is looked at once per interval, not at every page; a lost connection
    (and with it the lock) is still noticed, and another runner takes the lead meanwhile."""
    conninfo = postgres_conninfo(postgres_env)
    leader = AdvisoryLeadership(conninfo, "views", check_interval=0.2)
    other = AdvisoryLeadership(conninfo, "views")
    try:
        assert leader.acquire()
        assert not other.acquire()
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (leader.backend_pid(),))
        eventually(other.acquire, what="the lock freed with the connection")
        eventually(lambda: not leader.acquire(), timeout=5, what="the loss noticed")
    finally:
        leader.close()
        other.close()
