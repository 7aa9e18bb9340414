"""A view table as the batch sees it: its key, its columns, and the SQL it runs on it.

Statements are built once per table (and per set of changed columns), with positional
parameters: binding named ones makes a string per name and row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

Key = tuple[Any, ...]
Row = dict[str, Any]
ROWID = "rowid"  # rows read from the store carry theirs, to be updated by it
INSERT_ROWS = 256  # at most, per INSERT statement


def picker(keys: Iterable[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """The items at `keys` (of a row, or of a tuple of values) as a tuple, in C."""
    keys = tuple(keys)
    if len(keys) == 1:
        (only,) = keys
        return lambda item: (item[only],)
    if not keys:
        return lambda item: ()
    return itemgetter(*keys)


class Table:
    """A table's primary key, its columns, and the statements the batch runs on it."""

    def __init__(self, name: str, key: tuple[str, ...], columns: tuple[str, ...],
                 max_parameters: int = 999, rowid: str = ROWID) -> None:
        self.name, self.key, self.columns = name, key, columns
        self.rowid = rowid
        self.where = " AND ".join(f"{column} = ?" for column in key)
        # Rows are read with their rowid (PostgreSQL: ctid) and updated by it: one index
        # search fewer than by primary key. It cannot change within the transaction that
        # read it, as long as the row is updated once (`Batch.flush` does that).
        self.select = f"SELECT {rowid}, * FROM {name} WHERE {self.where}"
        # Many rows per INSERT: each statement costs about as much as a row, and each step
        # of one hands the GIL to whichever thread wants it, then waits to get it back.
        # Row counts are powers of two, so that a few statements serve every batch.
        most = min(INSERT_ROWS, max(1, max_parameters // len(columns)))
        self.insert_sizes = [2 ** k for k in reversed(range(most.bit_length()))]
        self._inserts: dict[int, str] = {}
        self.values = picker(columns)
        self.key_of = picker(key)
        self.read = (ROWID, *columns)  # what `select` reads
        self.nulls = dict.fromkeys(columns)
        self.key_in = picker(1 + columns.index(column) for column in key)  # in read values
        self._updates: dict[frozenset[str], tuple[str, Callable[[Row], Any]]] = {}

    def insert(self, count: int) -> str:
        """INSERT of `count` rows, with positional parameters."""
        statement = self._inserts.get(count)
        if statement is None:
            marks = ", ".join([f"({', '.join('?' * len(self.columns))})"] * count)
            statement = self._inserts[count] = (
                f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES {marks}")
        return statement

    def update(self, changed: frozenset[str]) -> tuple[str, Callable[[Row], Any]]:
        """UPDATE of the `changed` columns by rowid, and a row's parameters for it."""
        update = self._updates.get(changed)
        if update is None:
            sets = tuple(column for column in self.columns if column in changed)
            statement = (f"UPDATE {self.name} SET {', '.join(f'{c} = ?' for c in sets)}"
                         f" WHERE {self.rowid} = ?")
            update = self._updates[changed] = (statement, picker((*sets, ROWID)))
        return update

    def select_many(self, count: int) -> str:
        """Rows sharing every key column but the last, whose last one is among `count`."""
        *prefix, last = self.key
        where = [f"{column} = ?" for column in prefix]
        where.append(f"{last} IN ({', '.join('?' * count)})")
        return f"SELECT {self.rowid}, * FROM {self.name} WHERE {' AND '.join(where)}"


def read_tables(cur: sqlite3.Cursor, keys: Mapping[str, tuple[str, ...]]
                ) -> dict[str, Table]:
    """The `Table` of each named table (name -> primary-key columns), columns from SQLite."""
    tables = {}
    max_parameters = cur.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    for name, key in keys.items():
        columns = tuple(row[1] for row in cur.execute(f"PRAGMA table_info({name})"))
        tables[name] = Table(name, key, columns, max_parameters)
    return tables
