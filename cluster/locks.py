"""Session-level advisory locks held on a connection of their own.

PostgreSQL frees a session lock within milliseconds when its holder's connection closes,
which the kernel does when the process dies (`kill -9`), so a lock is a lease that needs no
clock. A holder that hangs with its socket open (stopped by SIGSTOP, or frozen in a debugger)
would keep it for ever; with `idle_timeout` the server ends a session that stays idle that
long (PostgreSQL's `idle_session_timeout`, 14 and later), so a hung holder loses its locks as
a dead one does, only later. A live holder touches its connection far more often (the
takeover scan, the leadership check). What a lock protects is fenced another way too (the
views' tracking positions, the event store's version check), for the holder that wakes.

The connection is used from one thread at a time (a lock guards it); `alive()` asks the
server, so that a holder whose connection was lost learns it has lost its locks too.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from stratexec.projections.sql import milliseconds

logger = logging.getLogger(__name__)


class LockConnection:
    """A dedicated connection and the advisory locks it holds (by 64-bit key)."""

    def __init__(self, conninfo: str, name: str, idle_timeout: float | None = None) -> None:
        self.conninfo, self.name, self.idle_timeout = conninfo, name, idle_timeout
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self.held: set[int] = set()

    def try_lock(self, key: int) -> bool:
        """Take the lock if nobody holds it; True if this connection holds it now."""
        with self._lock:
            if key in self.held:
                return True
            try:
                row = self._connect().execute("SELECT pg_try_advisory_lock(%s)",
                                              (key,)).fetchone()
            except psycopg.OperationalError:
                self._lost()
                return False
            if row is not None and row[0]:
                self.held.add(key)
                return True
            return False

    def unlock(self, key: int) -> None:
        with self._lock:
            if key not in self.held:
                return
            self.held.discard(key)
            try:
                self._connect().execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.OperationalError:
                self._lost()

    def alive(self) -> bool:
        """Whether the connection (and so every lock in `held`) is still there; when it is
        not, `held` is emptied: another process may hold those locks already."""
        with self._lock:
            if self._connection is None:
                return not self.held
            try:
                self._connection.execute("SELECT 1")
            except psycopg.OperationalError:
                self._lost()
                return False
            return True

    def count_sessions(self, application_name: str) -> int:
        """How many connections to this database carry `application_name` (0 when this
        one's is lost)."""
        with self._lock:
            try:
                row = self._connect().execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = %s", (application_name,)).fetchone()
            except psycopg.OperationalError:
                self._lost()
                return 0
            return 0 if row is None else int(row[0])

    def lock_counts(self, application_name: str) -> dict[int, int]:
        """Backend pid -> the session advisory locks (64-bit keys) it holds, for every
        connection to this database carrying `application_name`."""
        with self._lock:
            try:
                rows = self._connect().execute(
                    "SELECT a.pid, count(l.pid) FROM pg_stat_activity a LEFT JOIN pg_locks l"
                    " ON l.pid = a.pid AND l.locktype = 'advisory' AND l.objsubid = 1"
                    " AND l.granted WHERE a.datname = current_database()"
                    " AND a.application_name = %s GROUP BY a.pid",
                    (application_name,)).fetchall()
            except psycopg.OperationalError:
                self._lost()
                return {}
            return {int(pid): int(count) for pid, count in rows}

    def notify(self, channel: str, payload: str) -> None:
        with self._lock:
            try:
                self._connect().execute("SELECT pg_notify(%s, %s)", (channel, payload))
            except psycopg.OperationalError:
                self._lost()

    def backend_pid(self) -> int:
        with self._lock:
            return self._connect().info.backend_pid

    def close(self) -> None:
        with self._lock:
            self.held.clear()
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.conninfo, autocommit=True,
                                               application_name=self.name)
            if self.idle_timeout is not None:
                self._limit_idleness(self._connection, self.idle_timeout)
        return self._connection

    def _limit_idleness(self, connection: psycopg.Connection[Any], seconds: float) -> None:
        try:
            connection.execute(f"SET idle_session_timeout = {milliseconds(seconds)}")
        except psycopg.errors.UndefinedObject:  # before PostgreSQL 14
            logger.warning("this PostgreSQL server has no idle_session_timeout: a hung "
                           "process keeps its %s locks until it is killed", self.name)

    def _lost(self) -> None:
        if self.held:
            logger.warning("%s lost its connection to PostgreSQL, and with it %d locks",
                           self.name, len(self.held))
        self.held.clear()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
