"""The view store: the read models, apart from the event store, in SQLite or PostgreSQL.

The views' SQL is written once, in SQLite's dialect (`?` parameters, `INTEGER`, `TEXT`), and
`ViewStore` (a SQLite file) and `PostgresViewStore` (a schema of the events' database)
differ only in what this module holds: how they connect, translate a statement, list their
tables and columns, name a row's address (`rowid` or `ctid`), bulk-load, and keep two
writers apart. Both make each `write()` one transaction, and give readers a connection per
thread and one snapshot per `read()` block, so any thread may read while the runner writes.

SQLite: the views are rebuildable from the log, so `synchronous=NORMAL` trades the last
commits after a power loss (replayed on restart, since tracking rolls back with them) for
faster commits.

The store records a fingerprint of the views' schema. A store made by another version of the
views (a column added, a table changed), or by one from before the fingerprint, is emptied
when opened: its positions are then 0, and the runner rebuilds every view from the log.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

import psycopg
from psycopg.sql import SQL, Identifier

from stratexec.projections.base import View
from stratexec.projections.catalog import ALL
from stratexec.projections.security import (
    SETTING,
    Roles,
    ensure_roles,
    read_scope,
    scope_setting,
    secure_tables,
)
from stratexec.projections.sql import (
    PG_MAX_PARAMETERS,
    Cursor,
    PgCursor,
    advisory_key,
    connect,
    pg_schema,
)
from stratexec.projections.table import Table, read_tables

TRACKING_SCHEMA = ("CREATE TABLE IF NOT EXISTS tracking ("
                   "view TEXT PRIMARY KEY, position BIGINT NOT NULL)")
FINGERPRINT_SCHEMA = ("CREATE TABLE IF NOT EXISTS schema_fingerprint ("
                      "name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)")

ANALYZE_AFTER = 1000  # rows a PostgreSQL view table gains before its statistics are taken

logger = logging.getLogger(__name__)


class StoreClosed(sqlite3.ProgrammingError):
    """The view store was closed (on either store)."""


class ViewStore:
    """The read models in a SQLite file."""

    rowid = "rowid"
    drop_cascade = ""  # PostgreSQL: the policies that read a table go with it

    def __init__(self, path: str, views: Sequence[View] = ALL, timeout: float = 30.0) -> None:
        self.path = path
        self.views = tuple(views)
        self._timeout = timeout
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA synchronous=NORMAL")
        self._install()

    def _install(self) -> None:
        with self.write() as cur:
            self._install_views(cur)

    def _install_views(self, cur: Cursor) -> None:
        """Create the views' tables, after emptying a store that other views made."""
        statements = (TRACKING_SCHEMA, *(s for v in self.views for s in v.schema))
        fingerprint = hashlib.sha256("\n".join(statements).encode()).hexdigest()
        if self._made_by_other_views(cur, fingerprint):
            logger.warning("%s holds read models of another version; they are rebuilt "
                           "from the event log", self.path)
            for table in self._table_names(cur):
                cur.execute(f'DROP TABLE IF EXISTS "{table}"{self.drop_cascade}')
        for statement in (FINGERPRINT_SCHEMA, *statements):
            cur.execute(self._statement(statement))
        cur.execute("INSERT INTO schema_fingerprint VALUES ('views', ?) ON CONFLICT (name)"
                    " DO UPDATE SET fingerprint = excluded.fingerprint", (fingerprint,))

    def _made_by_other_views(self, cur: Cursor, fingerprint: str) -> bool:
        tables = set(self._table_names(cur))
        if not tables:
            return False  # a new store
        if "schema_fingerprint" not in tables:
            return True  # made before the fingerprint
        row = cur.execute("SELECT fingerprint FROM schema_fingerprint WHERE name = 'views'"
                          ).fetchone()
        return row is None or row[0] != fingerprint

    # ---------------------------------------------------------- what each store does

    def _statement(self, statement: str) -> str:
        """A schema statement in this store's dialect."""
        return statement

    def _table_names(self, cur: Cursor) -> list[str]:
        return [row[0] for row in cur.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]

    def announce(self, cur: Cursor, position: int) -> None:
        """Tell the other processes, at the commit of `cur`'s transaction, that the views
        reached `position` (SQLite: one process, nobody to tell)."""

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Inside `write()`: statements whose results nobody reads, sent without waiting
        for each answer (SQLite: in-process, there is no wait to save)."""
        yield

    def grew(self, added: Mapping[str, int]) -> None:
        """A committed write added `added[table]` rows to each table (SQLite plans its
        lookups by key without statistics: nothing to do)."""

    def tables(self, cur: Cursor, keys: Mapping[str, tuple[str, ...]]) -> dict[str, Table]:
        """The `Table` of each named table (name -> primary-key columns)."""
        assert isinstance(cur, sqlite3.Cursor)
        return read_tables(cur, keys)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are the explicit BEGIN ... COMMIT below.
        connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                     check_same_thread=False)
        connection.row_factory = sqlite3.Row
        return connection

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        """One transaction on the writer connection: committed, or rolled back on error."""
        with self._write_lock:
            self._check_open()
            cur = self._writer.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                raise

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Writes without waiting for the disk, made durable once at the end.

        For filling a new store (a rebuild) that is thrown away if filling it fails: the
        syncs at each commit and checkpoint cost a tenth of a rebuild. A power loss during
        the load can corrupt the file, which only a finished load would have made useful."""
        with self._write_lock:
            self._writer.execute("PRAGMA synchronous=OFF")
        try:
            yield
        finally:
            with self._write_lock:
                self._writer.execute("PRAGMA synchronous=NORMAL")
                self._writer.execute("PRAGMA wal_checkpoint(FULL)")  # synced, at NORMAL

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """A cursor on this thread's connection; one snapshot for the whole block.

        Each reading thread keeps its connection until `close()`: fine for the bounded
        thread pools of the server, not for a thread per request.
        """
        self._check_open()
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            connection.execute("PRAGMA query_only=1")
            self._local.connection = connection
            with self._readers_lock:
                self._readers.append(connection)
        if connection.in_transaction:  # a nested read() shares the outer snapshot
            yield connection.cursor()
            return
        cur = connection.cursor()
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            cur.execute("ROLLBACK")

    def close(self) -> None:
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            for connection in (self._writer, *self._readers):
                connection.close()
            self._readers.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"the view store {self.path} is closed")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PostgresViewStore(ViewStore):
    """The read models in a schema of their own in PostgreSQL (the events' database).

    Writers take a transaction-scoped advisory lock first, as SQLite's BEGIN IMMEDIATE
    takes the file's write lock, so the writes of two processes never interleave (the
    runner re-reads its positions after it). Text columns sort as SQLite does (by code
    point, `COLLATE "C"`), and integers are 64 bits, as SQLite's are.

    Opening the store installs it as the connected user (the roles, the schema, the tables,
    their grants and row-level security: `projections.security`); afterwards it writes and
    reads as the writer role, and inside `security.reading_for(workspaces)` reads as the
    reader role, limited to those workspaces.
    """

    rowid = "ctid"  # a row's address: stable within the transaction that read it
    drop_cascade = " CASCADE"

    def __init__(self, conninfo: str, schema: str = "stratexec_views",
                 views: Sequence[View] = ALL, roles: Roles | None = None,
                 idle_timeout: float | None = None) -> None:
        self.conninfo, self.schema = conninfo, schema
        # A transaction of a hung process ends after this many seconds (its write lock too).
        self.idle_timeout = idle_timeout
        self.roles = roles or Roles()
        self.path = f"PostgreSQL schema {schema}"
        self.views = tuple(views)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._pg_readers: list[psycopg.Connection[Any]] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._write_key = advisory_key(f"stratexec views {schema}")
        self._growth: dict[str, tuple[int, int]] = {}  # table -> (rows added, at last ANALYZE)
        self._install()
        self._pg_writer = self._connect_pg(self.roles.writer)

    def _install(self) -> None:
        with connect(self.conninfo, self.schema) as owner, owner.transaction():
            cur = PgCursor(owner.cursor())
            cur.execute("SELECT pg_advisory_xact_lock(?)", (self._write_key,))
            ensure_roles(cur, self.roles)
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            self._install_views(cur)
            secure_tables(cur, self.schema, self.roles)

    @property
    def positions_channel(self) -> str:
        """The channel on which the projections' leader announces each page's position."""
        return f"{self.schema}_positions"

    def announce(self, cur: Cursor, position: int) -> None:
        cur.execute("SELECT pg_notify(?, ?)", (self.positions_channel, str(position)))

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """psycopg's pipeline mode: a page's INSERTs, UPDATEs, tracking and NOTIFY go to
        the server back to back and are answered together (a failure among them raises
        when the block ends, inside the transaction, which then rolls back)."""
        with self._pg_writer.pipeline():
            yield

    def grew(self, added: Mapping[str, int]) -> None:
        """Refresh the statistics of a table that grew by a tenth (and at least
        `ANALYZE_AFTER` rows) since this process last did.

        PostgreSQL picks a plan from a table's statistics, which autovacuum refreshes only
        when it runs (it may be off; it looks once a minute). An execution adds its whole
        plan to `tasks` at once: with the statistics of the empty table, the page's lookup
        of its tasks by key went through the `(execution_id, agent)` index and filtered
        thousands of rows (10-20 ms a page instead of 1). Runs on the runner's thread
        after the commit, as the owner (ANALYZE is an owner's right), a few times a run.
        """
        stale = []
        for table, count in added.items():
            if count:
                total, analyzed = self._growth.get(table, (0, 0))
                total += count
                self._growth[table] = (total, analyzed)
                if total - analyzed >= max(ANALYZE_AFTER, analyzed // 10):
                    stale.append(table)
        if not stale:
            return
        try:  # statistics only speed lookups up: a failure must not fail the committed page
            with connect(self.conninfo, self.schema) as owner:
                for table in stale:
                    owner.execute(SQL("ANALYZE {}").format(Identifier(table)))
                    total, _ = self._growth[table]
                    self._growth[table] = (total, total)
        except psycopg.Error as error:
            logger.warning("refreshing the statistics of %s failed (%s); trying again after"
                           " the next page", ", ".join(stale), error)

    def _connect_pg(self, role: str) -> psycopg.Connection[Any]:
        connection = connect(self.conninfo, self.schema, self.idle_timeout)
        connection.execute(SQL("SET ROLE {}").format(Identifier(role)))
        return connection

    def _statement(self, statement: str) -> str:
        return pg_schema(statement)

    def _table_names(self, cur: Cursor) -> list[str]:
        return [row[0] for row in cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]

    def tables(self, cur: Cursor, keys: Mapping[str, tuple[str, ...]]) -> dict[str, Table]:
        tables = {}
        for name, key in keys.items():
            columns = tuple(row[0] for row in cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                " current_schema() AND table_name = ? ORDER BY ordinal_position", (name,)))
            tables[name] = Table(name, key, columns, PG_MAX_PARAMETERS, self.rowid)
        return tables

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        with self._write_lock:
            self._check_open()
            with self._pg_writer.transaction():
                cur = PgCursor(self._pg_writer.cursor())
                cur.execute("SELECT pg_advisory_xact_lock(?)", (self._write_key,))
                yield cur

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Commits that do not wait for the WAL to reach the disk (a crash may lose the
        last ones, which a rebuild into a new store does not mind)."""
        with self._write_lock:
            self._pg_writer.execute("SET synchronous_commit = off")
        try:
            yield
        finally:
            with self._write_lock:
                self._pg_writer.execute("RESET synchronous_commit")

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """As the writer role; inside `security.reading_for`, as the reader role with the
        workspaces it names."""
        self._check_open()
        scope = read_scope()
        connection = self._reader(self.roles.writer if scope is None else self.roles.reader)
        cur = PgCursor(connection.cursor())
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield cur  # a nested read() shares the outer snapshot
            return
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            if scope is not None:
                cur.execute("SELECT set_config(?, ?, true)", (SETTING, scope_setting(scope)))
            yield cur
        finally:
            connection.execute("ROLLBACK")

    def _reader(self, role: str) -> psycopg.Connection[Any]:
        """This thread's connection as `role`."""
        connection: psycopg.Connection[Any] | None = getattr(self._local, role, None)
        if connection is None:
            connection = self._connect_pg(role)
            setattr(self._local, role, connection)
            with self._readers_lock:
                self._pg_readers.append(connection)
        return connection

    def close(self) -> None:
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            for connection in (self._pg_writer, *self._pg_readers):
                connection.close()
            self._pg_readers.clear()

    def drop(self) -> None:
        """Remove the schema and every view in it (a scratch store's end)."""
        with connect(self.conninfo, self.schema) as owner:
            owner.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(self.schema)))


def read_tracking(cur: Cursor) -> dict[str, int]:
    cur.execute("SELECT view, position FROM tracking")
    return {view: position for view, position in cur.fetchall()}


def write_tracking(cur: Cursor, views: Iterable[str], position: int) -> None:
    """Move each view's position forward to `position` (never backward)."""
    cur.executemany(
        "INSERT INTO tracking (view, position) VALUES (?, ?) ON CONFLICT (view)"
        " DO UPDATE SET position = excluded.position WHERE excluded.position > tracking.position",
        [(view, position) for view in views])
