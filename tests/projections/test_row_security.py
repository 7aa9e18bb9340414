"""Row-level security of the read models on PostgreSQL: a query that forgets its workspace
filter, run through the reader path, still sees nothing of another workspace."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from projection_scenarios import drive_to_failure, record_health, start_execution

from stratexec.domain.application import StratexecApp
from stratexec.projections import queries
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.security import Roles, reading_for
from stratexec.projections.store import PostgresViewStore
from stratexec.settings import postgres_conninfo

pytestmark = pytest.mark.postgres
WORKSPACE_TABLES = {"executions", "strategies", "event_feed", "health_snapshots"}
EXECUTION_TABLES = {"tasks", "agent_metrics", "propagation_log"}


@pytest.fixture
def conninfo(postgres_env: dict[str, str]) -> str:
    return postgres_conninfo(postgres_env)


@pytest.fixture
def views(conninfo: str, postgres_env: dict[str, str]) -> Iterator[PostgresViewStore]:
    """Views of two workspaces' executions, each with every kind of row."""
    app = StratexecApp(env=postgres_env)
    for workspace in ("mine", "theirs"):
        execution = drive_to_failure(app, start_execution(app, workspace))
        record_health(app, execution)
    with PostgresViewStore(conninfo) as store:
        ProjectionRunner(app, store).catch_up()
        yield store
    app.close()


def unfiltered(views: PostgresViewStore, table: str) -> list[dict[str, object]]:
    with views.read() as cur:
        return [dict(row) for row in cur.execute(f"SELECT * FROM {table}")]


def test_an_unfiltered_select_through_the_reader_path_sees_only_its_workspaces(
        views: PostgresViewStore) -> None:
    everything = {table: unfiltered(views, table) for table in WORKSPACE_TABLES}
    mine_ids = {row["id"] for row in everything["executions"] if row["workspace_id"] == "mine"}
    with reading_for({"mine"}):
        for table in WORKSPACE_TABLES:
            seen = unfiltered(views, table)
            assert seen, table
            assert {row["workspace_id"] for row in seen} == {"mine"}, table
            assert len(seen) < len(everything[table])
        for table in EXECUTION_TABLES:
            seen = unfiltered(views, table)
            assert seen, table
            assert {row["execution_id"] for row in seen} == mine_ids, table
        assert {e["workspaceId"] for e in queries.list_executions(views, None)} == {"mine"}
    with reading_for(set()):
        for table in WORKSPACE_TABLES | EXECUTION_TABLES:
            assert unfiltered(views, table) == [], table
    with reading_for({"mine", "theirs"}):
        assert len(unfiltered(views, "executions")) == len(everything["executions"]) == 2


def test_rows_for_every_workspace_reach_every_reader(views: PostgresViewStore) -> None:
    with views.write() as cur:  # as the circuit breaker's rows are: workspace ''
        cur.execute("INSERT INTO event_feed VALUES (?, ?, '', 'agent-type-paused', '{}', ?)",
                    (10 ** 9, "circuit", "2026-01-01T00:00:00+00:00"))
    with reading_for({"mine"}):
        assert [row["position"] for row in unfiltered(views, "event_feed")
                if row["workspace_id"] == ""] == [10 ** 9]


def test_every_table_with_workspace_data_has_rls_enabled_and_forced_for_two_plain_roles(
        views: PostgresViewStore, conninfo: str) -> None:
    with psycopg.connect(conninfo) as connection:
        flags = {name: (enabled, forced) for name, enabled, forced in connection.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'stratexec_views' AND c.relkind = 'r'")}
        roles = connection.execute(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = ANY(%s)"
            " ORDER BY rolname", ([Roles().reader, Roles().writer],)).fetchall()
    assert {name for name, pair in flags.items() if pair == (True, True)} == \
        WORKSPACE_TABLES | EXECUTION_TABLES
    assert roles == [(Roles().reader, False, False), (Roles().writer, False, False)]
    with reading_for({"mine"}), views.read() as cur:
        assert cur.execute("SELECT current_user").fetchone()[0] == Roles().reader
    with views.read() as cur:
        assert cur.execute("SELECT current_user").fetchone()[0] == Roles().writer


@pytest.fixture
def two_databases(postgres_env: dict[str, str]) -> Iterator[list[str]]:
    """Two fresh databases' connection strings; new roles made in them are dropped after."""
    admin = postgres_conninfo({**postgres_env, "POSTGRES_DBNAME": "postgres"})
    names = [f"{postgres_env['POSTGRES_DBNAME']}_{i}" for i in (1, 2)]
    with psycopg.connect(admin, autocommit=True) as connection:
        for name in names:
            connection.execute(f'CREATE DATABASE "{name}"')
    yield [postgres_conninfo({**postgres_env, "POSTGRES_DBNAME": name}) for name in names]
    with psycopg.connect(admin, autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_first_starts_racing_on_new_roles_both_succeed(two_databases: list[str]) -> None:
    suffix = uuid.uuid4().hex[:8]
    roles = Roles(reader=f"stratexec_race_reader_{suffix}",
                  writer=f"stratexec_race_writer_{suffix}")
    barrier = threading.Barrier(len(two_databases))
    errors: list[BaseException] = []

    def first_start(conninfo: str) -> None:
        barrier.wait()
        try:
            PostgresViewStore(conninfo, roles=roles).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=first_start, args=(c,)) for c in two_databases]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        with PostgresViewStore(two_databases[0], roles=roles) as views, \
                reading_for({"mine"}), views.read() as cur:
            assert cur.execute("SELECT current_user").fetchone()[0] == roles.reader
    finally:
        with psycopg.connect(two_databases[0], autocommit=True) as connection:
            for name in (roles.reader, roles.writer):
                connection.execute(f'DROP OWNED BY "{name}"')
        for conninfo in two_databases[1:]:
            with psycopg.connect(conninfo, autocommit=True) as connection:
                for name in (roles.reader, roles.writer):
                    connection.execute(f'DROP OWNED BY "{name}"')
        with psycopg.connect(two_databases[0], autocommit=True) as connection:
            for name in (roles.reader, roles.writer):
                connection.execute(f'DROP ROLE IF EXISTS "{name}"')
