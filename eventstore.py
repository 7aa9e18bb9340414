"""The embedded event store: eventsourcing's SQLite module, with durability and a pool sized
for the engine, both said here rather than left to defaults.

- `PRAGMA synchronous=FULL` on every connection: in WAL mode a commit is then on disk when
  `save()` returns, whatever SQLite's compiled-in default is (a build with
  `SQLITE_DEFAULT_WAL_SYNCHRONOUS=1` would otherwise lose the last commits at a power cut).
- A connection pool that does not time out under load: eventsourcing waits at most 5 s for a
  free connection, and an engine with many execution actors saving at once (each save waits
  for the single writer) could wait longer, which crashed the actor that waited. Writes are
  serialised by the writer lock anyway, so more connections only let readers and writers
  wait in SQLite's own lock (`SQLITE_LOCK_TIMEOUT`) instead of in the pool.

`settings.StoreSettings` names this factory in `PERSISTENCE_MODULE`.
"""

from __future__ import annotations

from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory
from eventsourcing.utils import Environment, EnvType

POOL_SIZE = 8
MAX_OVERFLOW = 64
POOL_TIMEOUT = 60.0  # seconds waiting for a free connection before a save fails


class DurableConnectionPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        if not self.is_sqlite_memory_mode:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=FULL")
        return connection


class DurableSQLiteFactory(SQLiteFactory):
    """eventsourcing's SQLite infrastructure, on a `DurableConnectionPool`."""

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        library_pool = self.datastore.pool
        self.datastore.pool = DurableConnectionPool(
            db_name=library_pool.db_name, lock_timeout=library_pool.lock_timeout,
            pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_timeout=POOL_TIMEOUT)
        library_pool.close()  # it made no connection yet

