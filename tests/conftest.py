"""Fixtures shared by every test: real stores, never mocks.

`store_env` runs a test once on a SQLite file and once on the PostgreSQL server (a fresh
database per test, dropped afterwards). PostgreSQL is part of the suite: if it cannot be
reached the tests fail with the reason, they are never skipped.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import is_postgres

from stratexec.domain.application import StratexecApp
from stratexec.projections.store import PostgresViewStore, ViewStore
from stratexec.settings import postgres_conninfo

PG_HOST = os.environ.get("STRATEXEC_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("STRATEXEC_TEST_PG_PORT", "5432")
PG_USER = os.environ.get("STRATEXEC_TEST_PG_USER", "postgres")


def pytest_configure() -> None:
    """A suite started in the background of a shell without job control inherits SIGINT
    ignored, and so would every process it starts, which the Ctrl-C tests then cannot
    interrupt: take Python's own handler back (a started process then gets the default)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "events.sqlite")}


@pytest.fixture
def postgres_env() -> Iterator[dict[str, str]]:
    name = f"stratexec_test_{uuid.uuid4().hex[:12]}"
    admin = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres connect_timeout=5"
    try:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} is needed by this test: {error}")
    yield {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": name,
           "POSTGRES_HOST": PG_HOST, "POSTGRES_PORT": PG_PORT, "POSTGRES_USER": PG_USER,
           "POSTGRES_PASSWORD": ""}
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    env: dict[str, str] = request.getfixturevalue(f"{request.param}_env")
    return env


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The event store of a server the test starts (`running_server(..., store=...)`): a
    SQLite file in its data directory, or a fresh PostgreSQL database that the `POSTGRES_*`
    environment names, as `stratexec serve` reads it. `STRATEXEC_STORE` names it too, so
    the `stratexec` commands a test runs beside the server use the same store."""
    if request.param == "postgres":
        env: dict[str, str] = request.getfixturevalue("postgres_env")
        for name, value in env.items():
            if name.startswith("POSTGRES_"):
                monkeypatch.setenv(name, value)
    monkeypatch.setenv("STRATEXEC_STORE", request.param)
    return str(request.param)


@pytest.fixture
def sqlite_app(sqlite_env: dict[str, str]) -> Iterator[StratexecApp]:
    application = StratexecApp(env=sqlite_env)
    yield application
    application.close()


@pytest.fixture
def store(store_env: dict[str, str], tmp_path: Path) -> Iterator[ViewStore]:
    """The read models: in a SQLite file of their own, or in the PostgreSQL database of
    `store_env` (as `STRATEXEC_STORE=postgres` keeps them)."""
    views = (PostgresViewStore(postgres_conninfo(store_env)) if is_postgres(store_env)
             else ViewStore(str(tmp_path / "views.sqlite")))
    with views:
        yield views


@pytest.fixture
def app(store_env: dict[str, str]) -> Iterator[StratexecApp]:
    application = StratexecApp(env=store_env)
    yield application
    application.close()
