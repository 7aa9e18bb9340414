"""One batch's unit of work: rows read once, changed in memory, written once at the end.

The handlers of every view share one `Batch` for the page of events the runner applies in
a transaction. A row is read by primary key the first time a handler asks for it (or in
bulk, by `preload`), handlers change the dict in place, and `flush` writes each table's new
rows with multi-row INSERTs and the read rows that changed with one executemany UPDATE of
the columns that changed. A page then costs a handful of statements whatever its size,
instead of several per event.

Rows do not outlive the batch: another runner (another process) may write the same store
between two of our transactions, so each batch reads what it needs afresh.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from itertools import chain
from typing import Any

from stratexec.projections.sql import Cursor, tuple_cursor
from stratexec.projections.table import Key, Row, Table, picker
from stratexec.projections.values import chunks

__all__ = ["Batch", "Key", "Row", "Rows"]  # Key and Row: the views use them from here


class Rows(dict[Key, Row]):
    """One table's rows in the batch, by primary key.

    `rows[key]` reads a row the first time it is asked for (KeyError if there is none);
    handlers change it in place. `add` makes a new row, `append` a row of an append-only
    table. `flush` writes the new rows, the appended ones, and the read rows that changed.
    """

    def __init__(self, table: Table, cur: Cursor) -> None:
        super().__init__()
        self.table = table
        self._cur = cur
        self._stored: dict[Key, tuple[Any, ...]] = {}  # key -> the row's values as read
        self._added: dict[Key, Row] = {}
        self._appended: list[Row] = []

    def __missing__(self, key: Key) -> Row:
        values = self._cur.execute(self.table.select, key).fetchone()
        if values is None:
            raise KeyError(f"no row {key} in the {self.table.name} table")
        return self._read(key, values)

    def _read(self, key: Key, values: tuple[Any, ...]) -> Row:
        row = self[key] = dict(zip(self.table.read, values, strict=False))
        self._stored[key] = values[1:]  # as `table.values(row)`, without the rowid
        return row

    def find(self, key: Key) -> Row | None:
        """`rows[key]`, or None if there is no such row."""
        try:
            return self[key]
        except KeyError:
            return None

    def add(self, values: Mapping[str, Any]) -> Row:
        """A new row (missing columns are NULL), which later events may read and change."""
        row = {**self.table.nulls, **values}
        key = self.table.key_of(row)
        if key in self:
            raise ValueError(f"row {key} of the {self.table.name} table is added twice")
        self[key] = self._added[key] = row
        return row

    def append(self, row: Row) -> None:
        """A row of an append-only table: written by `flush`, never read back."""
        self._appended.append(row)

    @property
    def appended(self) -> list[Row]:
        return self._appended

    def preload(self, prefix: Key, lasts: Iterable[Any]) -> None:
        """Read the rows that exist among those whose key is `prefix` followed by one of
        `lasts`: one statement per 500 rows instead of one per row."""
        wanted = [last for last in set(lasts) if (*prefix, last) not in self]
        read, key_in = self._read, self.table.key_in
        for chunk in chunks(wanted):
            for values in self._cur.execute(self.table.select_many(len(chunk)),
                                            (*prefix, *chunk)).fetchall():
                read(key_in(values), values)

    def flush(self) -> int:
        """Write the new rows, the read rows that changed, and the appended rows; returns
        how many rows the table gained."""
        self._insert(list(self._added.values()))
        changed, rows = self._changes()
        if rows:
            statement, values = self.table.update(changed)
            self._cur.executemany(statement, map(values, rows))
        self._insert(self._appended)
        return len(self._added) + len(self._appended)

    def _insert(self, rows: list[Row]) -> None:
        table, start = self.table, 0
        for size in table.insert_sizes:
            while len(rows) - start >= size:
                values = chain.from_iterable(map(table.values, rows[start:start + size]))
                self._cur.execute(table.insert(size), tuple(values))
                start += size

    def _changes(self) -> tuple[frozenset[str], list[Row]]:
        """The read rows that changed, and every column that changed in any of them: an
        UPDATE of only those columns binds and compares fewer values."""
        columns, values = self.table.columns, self.table.values
        changed: set[int] = set()
        unchanged = picker(range(len(columns)))  # the columns not seen changing yet
        rows = []
        for key, stored in self._stored.items():
            row = self[key]
            now = values(row)
            if now != stored:
                rows.append(row)
                if unchanged(now) != unchanged(stored):  # only while `changed` grows
                    pairs = enumerate(zip(now, stored, strict=True))
                    changed.update(i for i, (value, was) in pairs if value != was)
                    unchanged = picker(i for i in range(len(columns)) if i not in changed)
        return frozenset(columns[i] for i in changed), rows


class Batch:
    """The rows of one transaction, and the event the handlers are applying now.

    `position`, `origin` (the event's originator id as text) and `at` (its timestamp in
    ISO 8601) are set by `begin` before each event, so that no handler recomputes them.
    `memo` holds whatever else a view wants to look up only once per batch.
    """

    position: int
    origin: str
    at: str

    def __init__(self, cur: Cursor, tables: Mapping[str, Table]) -> None:
        self.cur = cur
        self.memo: dict[Hashable, Any] = {}
        self._texts: dict[int, str] = {}  # by UUID.int: a UUID's own hash is Python code
        reader = tuple_cursor(cur)  # plain tuples, zipped with the table's columns
        self.tables = {name: Rows(table, reader) for name, table in tables.items()}

    def begin(self, position: int, event: Any) -> None:
        self.position = position
        # A batch's events come from a few aggregates: str(uuid) once for each.
        number = event.originator_id.int
        origin = self._texts.get(number)
        if origin is None:
            origin = self._texts[number] = str(event.originator_id)
        self.origin = origin
        self.at = event.timestamp.isoformat()

    def flush(self) -> dict[str, int]:
        """Write every table's changes, at the end of the batch; returns how many rows each
        table gained."""
        return {name: rows.flush() for name, rows in self.tables.items()}
