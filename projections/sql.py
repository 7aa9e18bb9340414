"""The two view stores' SQL differences, for the views and the store: a cursor protocol that
both stores' cursors meet, and for PostgreSQL a cursor that takes the views' SQLite-dialect
statements, their schema statements translated, rows read by name, and advisory lock keys.

Nothing here imports the views, so every view module may use it.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
from collections.abc import Iterable, Iterator
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar, Protocol

import psycopg
from psycopg.adapt import Loader
from psycopg.rows import RowMaker, tuple_row


class Cursor(Protocol):
    """What the views use of a cursor: `sqlite3.Cursor`, or `PgCursor` on PostgreSQL."""

    def execute(self, sql: str, parameters: Any = (), /) -> Any: ...
    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


PG_MAX_PARAMETERS = 65_535


class PgCursor:
    """A psycopg cursor that takes the views' SQLite-dialect statements (`?` parameters)."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, parameters: Any = (), /) -> PgCursor:
        self._cursor.execute(_pg_parameters(sql), tuple(parameters))
        return self

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> PgCursor:
        self._cursor.executemany(_pg_parameters(sql), parameters)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def tuples(self) -> PgCursor:
        """A cursor on the same connection (and transaction) whose rows are plain tuples."""
        return PgCursor(self._cursor.connection.cursor(row_factory=tuple_row))


def tuple_cursor(cur: Cursor) -> Cursor:
    """A cursor beside `cur`, in its transaction, whose rows are plain tuples."""
    if isinstance(cur, PgCursor):
        return cur.tuples()
    assert isinstance(cur, sqlite3.Cursor)
    reader = cur.connection.cursor()
    reader.row_factory = None
    return reader


@lru_cache(maxsize=4096)
def _pg_parameters(sql: str) -> str:
    """`?` as PostgreSQL's own `$1, $2, ...`: the connections' cursors are raw cursors,
    which send a statement as it is, where psycopg would parse a `%s` one afresh each time
    it is longer than its cache takes (a page's multi-row INSERTs: a third of a rebuild)."""
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


_PG_TYPES = {"INTEGER": "BIGINT", "TEXT": 'TEXT COLLATE "C"'}


def pg_schema(statement: str) -> str:
    return re.sub(r"\b(INTEGER|TEXT)\b", lambda m: _PG_TYPES[m.group(1)], statement)


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key (a signed 64-bit integer) for a name."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SqlRow(tuple[Any, ...]):
    """A row read by name or by index, as `sqlite3.Row` is (`dict(row)` works too)."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[SqlRow]:
    return type("SqlRow", (SqlRow,), {"__slots__": (), "_index": {
        name: i for i, name in enumerate(names)}})


def sql_row(cursor: psycopg.Cursor[Any]) -> RowMaker[Any]:
    """psycopg's row factory for `SqlRow`s."""
    if cursor.description is None:
        return tuple
    return _row_class(tuple(column.name for column in cursor.description))




class _NumberLoader(Loader):
    """`numeric` (what SUM of a BIGINT column gives) as SQLite gives it: an int when it is
    whole, else a float, never a Decimal."""

    def load(self, data: Any) -> int | float:
        number = Decimal(bytes(data).decode())
        return int(number) if number == number.to_integral_value() else float(number)


def milliseconds(seconds: float) -> int:
    """A PostgreSQL timeout setting for `seconds`: whole milliseconds, never 0 (which would
    turn the timeout off)."""
    return max(1, round(seconds * 1000))


def connect(conninfo: str, schema: str, idle_in_transaction: float | None = None,
            ) -> psycopg.Connection[Any]:
    """An autocommit connection whose tables are `schema`'s, with rows by name. With
    `idle_in_transaction` (seconds), the server ends the session when a transaction of it
    waits that long for its client (a hung process must not hold its locks for ever)."""
    options = f"-c search_path={schema}"
    if idle_in_transaction is not None:
        options += (" -c idle_in_transaction_session_timeout="
                    f"{milliseconds(idle_in_transaction)}")
    connection = psycopg.connect(conninfo, autocommit=True, row_factory=sql_row,
                                 cursor_factory=psycopg.RawCursor, options=options)
    connection.adapters.register_loader("numeric", _NumberLoader)
    return connection
