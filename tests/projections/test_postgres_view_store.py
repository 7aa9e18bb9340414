"""The view store on PostgreSQL: the views' own schema, atomic writes, read-only reads, and a
store of other views emptied without touching anything else in the database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from stratexec.projections.store import PostgresViewStore, read_tracking, write_tracking
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
