"""The view store on PostgreSQL: the views' own schema, atomic writes, read-only reads, and a
store of other views emptied without touching anything else in the database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from stratexec.bench.workloads import chains_strategy
from stratexec.domain.application import StratexecApp
from stratexec.domain.strategy import parse_strategy
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import (
    ANALYZE_AFTER,
    PostgresViewStore,
    read_tracking,
    write_tracking,
)
from stratexec.settings import postgres_conninfo

pytestmark = pytest.mark.postgres


@pytest.fixture
def conninfo(postgres_env: dict[str, str]) -> str:
    return postgres_conninfo(postgres_env)


@pytest.fixture
def views(conninfo: str) -> Iterator[PostgresViewStore]:
    with PostgresViewStore(conninfo, "views_under_test") as store:
        yield store


def test_opening_twice_keeps_the_rows_in_the_views_schema(
        conninfo: str, views: PostgresViewStore) -> None:
    with views.write() as cur:
        write_tracking(cur, ["executions"], 7)
    with PostgresViewStore(conninfo, "views_under_test") as again, again.read() as cur:
        assert read_tracking(cur) == {"executions": 7}
    with psycopg.connect(conninfo) as connection:
        tables = {row[0] for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'views_under_test'")}
    assert {"tracking", "schema_fingerprint", "executions", "event_feed"} <= tables


def write_then_fail(views: PostgresViewStore) -> None:
    with views.write() as cur:
        write_tracking(cur, ["executions"], 3)
        raise RuntimeError("midway")


def test_a_failed_write_rolls_back_and_reads_cannot_write(views: PostgresViewStore) -> None:
    with pytest.raises(RuntimeError, match="midway"):
        write_then_fail(views)
    with views.write() as cur:
        write_tracking(cur, ["executions"], 5)
        write_tracking(cur, ["executions"], 4)  # never backwards
    with views.read() as cur:
        assert read_tracking(cur) == {"executions": 5}
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), views.read() as cur:
        cur.execute("DELETE FROM tracking")


def test_text_sorts_by_code_point_and_integers_take_64_bits(views: PostgresViewStore) -> None:
    with views.write() as cur:
        write_tracking(cur, ["b", "B", "é", "a"], 2 ** 40)
    with views.read() as cur:
        rows = cur.execute("SELECT view, position FROM tracking ORDER BY view").fetchall()
    assert [row["view"] for row in rows] == ["B", "a", "b", "é"]  # as SQLite's BINARY
    assert {row[1] for row in rows} == {2 ** 40}


def test_a_store_of_other_views_is_emptied_and_nothing_else_is_touched(
        conninfo: str, views: PostgresViewStore) -> None:
    with views.write() as cur:
        write_tracking(cur, ["executions"], 7)
        cur.execute("UPDATE schema_fingerprint SET fingerprint = 'older'")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("CREATE TABLE public.not_a_view (id INTEGER)")
    with PostgresViewStore(conninfo, "views_under_test") as again, again.read() as cur:
        assert read_tracking(cur) == {}  # every view starts again from position 0
    with psycopg.connect(conninfo) as connection:
        assert connection.execute("SELECT COUNT(*) FROM public.not_a_view").fetchone() == (0,)


def test_a_scratch_store_is_dropped_with_its_schema(conninfo: str) -> None:
    scratch = PostgresViewStore(conninfo, "scratch_views")
    scratch.drop()
    scratch.close()
    with psycopg.connect(conninfo) as connection:
        assert connection.execute("SELECT COUNT(*) FROM pg_namespace WHERE nspname ="
                                  " 'scratch_views'").fetchone() == (0,)


def planned_rows(conninfo: str, table: str) -> float:
    """PostgreSQL's estimate of a table's rows: -1 until its statistics are first taken."""
    with psycopg.connect(conninfo) as connection:
        row = connection.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                                 (f"views_under_test.{table}",)).fetchone()
    assert row is not None
    return float(row[0])


def test_a_table_that_grew_by_a_thousand_rows_gets_its_statistics(
        conninfo: str, views: PostgresViewStore) -> None:
    with views.write() as cur:
        write_tracking(cur, [f"view-{k}" for k in range(ANALYZE_AFTER - 1)], 1)
    views.grew({"tracking": ANALYZE_AFTER - 1})
    assert planned_rows(conninfo, "tracking") == -1  # not yet: too few rows for the cost
    with views.write() as cur:
        write_tracking(cur, ["one-more"], 1)
    views.grew({"tracking": 1, "executions": 0})
    assert planned_rows(conninfo, "tracking") == ANALYZE_AFTER
    assert planned_rows(conninfo, "executions") == -1


def test_after_a_large_plan_is_projected_its_tasks_are_read_by_primary_key(
        conninfo: str, postgres_env: dict[str, str]) -> None:
    """The page lookup of an execution's tasks (`Rows.preload`) on statistics of the table
    as it is, not as it was empty: by the primary key, not the (execution, agent) index."""
    app = StratexecApp(env=postgres_env)
    strategy, _ = app.define_strategy(parse_strategy(chains_strategy(ANALYZE_AFTER // 2 + 100)))
    execution = app.create_execution(strategy)[0]
    app.save(execution)
    with PostgresViewStore(conninfo, "views_under_test") as views:
        ProjectionRunner(app, views).catch_up()
        with views.read() as cur:
            table = views.tables(cur, {"tasks": ("execution_id", "task_id")})["tasks"]
            plan = "\n".join(row[0] for row in cur.execute(
                "EXPLAIN " + table.select_many(3),
                (str(execution.id), *list(execution.tasks)[:3])))
    app.close()
    assert "tasks_pkey" in plan, plan
