"""Fresh PostgreSQL databases for the benchmark's PostgreSQL runs, dropped afterwards.

The server and the user are eventsourcing's `POSTGRES_*` variables (as for
`STRATEXEC_STORE=postgres`); the user must be allowed to create databases. Each run gets a
database of its own, so that one run's log and views never slow the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from stratexec.settings import StoreSettings, postgres_conninfo, postgres_environment


@contextmanager
def fresh_database() -> Iterator[str]:
    """The name of a new, empty database, dropped on exit."""
    admin = postgres_conninfo({**postgres_environment(), "POSTGRES_DBNAME": "postgres"})
    name = f"stratexec_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def store_settings(data_dir: Path, database: str | None) -> StoreSettings:
    """SQLite in `data_dir`, or PostgreSQL's `database` when one is named."""
    if database is None:
        return StoreSettings(data_dir)
    return StoreSettings(data_dir, "postgres",
                         postgres={**postgres_environment(), "POSTGRES_DBNAME": database})


def server_environment(database: str) -> dict[str, str]:
    """The environment of a `stratexec serve` process on `database`."""
    return {**postgres_environment(), "STRATEXEC_STORE": "postgres",
            "POSTGRES_DBNAME": database}
