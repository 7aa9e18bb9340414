"""The view store: a SQLite file of read models, apart from the event store.

One writer connection, guarded by a lock, makes each `write()` one transaction. Readers get
a connection per thread, so any thread may read while the runner writes (WAL mode). The
views are rebuildable from the log, so `synchronous=NORMAL` trades the last commits after a
power loss (replayed on restart, since tracking rolls back with them) for faster commits.

The file records a fingerprint of the views' schema. A file made by another version of the
views (a column added, a table changed), or by one from before the fingerprint, is emptied
when opened: its positions are then 0, and the runner rebuilds every view from the log.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from stratexec.projections.base import View
from stratexec.projections.catalog import ALL

TRACKING_SCHEMA = ("CREATE TABLE IF NOT EXISTS tracking ("
                   "view TEXT PRIMARY KEY, position BIGINT NOT NULL)")
FINGERPRINT_SCHEMA = ("CREATE TABLE IF NOT EXISTS schema_fingerprint ("
                      "name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)")

logger = logging.getLogger(__name__)


class ViewStore:
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
        statements = (TRACKING_SCHEMA, *(s for v in self.views for s in v.schema))
        fingerprint = hashlib.sha256("\n".join(statements).encode()).hexdigest()
        with self.write() as cur:
            if _made_by_other_views(cur, fingerprint):
                logger.warning("%s holds read models of another version; they are rebuilt "
                               "from the event log", path)
                _drop_tables(cur)
            for statement in (FINGERPRINT_SCHEMA, *statements):
                cur.execute(statement)
            cur.execute("INSERT OR REPLACE INTO schema_fingerprint VALUES ('views', ?)",
                        (fingerprint,))

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are the explicit BEGIN ... COMMIT below.
        connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                     check_same_thread=False)
        connection.row_factory = sqlite3.Row
        return connection

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
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
    def read(self) -> Iterator[sqlite3.Cursor]:
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
            raise sqlite3.ProgrammingError(f"the view store {self.path} is closed")

    def __enter__(self) -> ViewStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_tracking(cur: sqlite3.Cursor) -> dict[str, int]:
    cur.execute("SELECT view, position FROM tracking")
    return {view: position for view, position in cur.fetchall()}


def write_tracking(cur: sqlite3.Cursor, views: Iterable[str], position: int) -> None:
    """Move each view's position forward to `position` (never backward)."""
    cur.executemany(
        "INSERT INTO tracking (view, position) VALUES (?, ?) ON CONFLICT (view)"
        " DO UPDATE SET position = excluded.position WHERE excluded.position > tracking.position",
        [(view, position) for view in views])


def _made_by_other_views(cur: sqlite3.Cursor, fingerprint: str) -> bool:
    tables = {row[0] for row in cur.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    if not tables:
        return False  # a new file
    if "schema_fingerprint" not in tables:
        return True  # made before the fingerprint
    row = cur.execute("SELECT fingerprint FROM schema_fingerprint WHERE name = 'views'"
                      ).fetchone()
    return row is None or row[0] != fingerprint


def _drop_tables(cur: sqlite3.Cursor) -> None:
    tables = [row[0] for row in cur.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    for table in tables:
        cur.execute(f'DROP TABLE "{table}"')
