"""The batch unit of work: rows read once, changes written once, a few statements a batch."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from stratexec.projections.batch import Batch
from stratexec.projections.table import read_tables

SCHEMA = ("CREATE TABLE items (owner TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,"
          " note TEXT, PRIMARY KEY (owner, name))",
          "CREATE TABLE log (position BIGINT PRIMARY KEY, text TEXT NOT NULL)")
KEYS = {"items": ("owner", "name"), "log": ("position",)}


@pytest.fixture
def connection() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    for statement in SCHEMA:
        connection.execute(statement)
    connection.executemany("INSERT INTO items VALUES (?, ?, ?, ?)",
                           [("a", f"n{k}", k, None) for k in range(10)])
    yield connection
    connection.close()


def traced(connection: sqlite3.Connection) -> list[str]:
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    return statements


def rows(connection: sqlite3.Connection, table: str) -> list[tuple[object, ...]]:
    return connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def new_batch(connection: sqlite3.Connection) -> Batch:
    return Batch(connection.cursor(), read_tables(connection.cursor(), KEYS))


def test_a_row_is_read_once_and_only_its_changed_columns_are_written(
        connection: sqlite3.Connection) -> None:
    batch = new_batch(connection)
    statements = traced(connection)
    items = batch.tables["items"]
    items["a", "n1"]["size"] += 1
    items["a", "n1"]["size"] += 1
    assert items["a", "n2"]["size"] == 2  # read, never changed
    assert len(statements) == 2
    batch.flush()
    rowid = items["a", "n1"]["rowid"]
    assert statements[2:] == [f"UPDATE items SET size = 3 WHERE rowid = {rowid}"]
    assert rows(connection, "items")[1:3] == [("a", "n1", 3, None), ("a", "n2", 2, None)]


def test_missing_rows_raise_or_are_none(connection: sqlite3.Connection) -> None:
    items = new_batch(connection).tables["items"]
    with pytest.raises(KeyError, match="no row"):
        items["a", "nope"]
    assert items.find(("a", "nope")) is None


def test_preload_reads_many_rows_in_one_statement(connection: sqlite3.Connection) -> None:
    batch = new_batch(connection)
    statements = traced(connection)
    batch.tables["items"].preload(("a",), [f"n{k}" for k in range(20)])
    assert len(statements) == 1
    assert [batch.tables["items"]["a", f"n{k}"]["size"] for k in range(10)] == list(range(10))
    assert len(statements) == 1


def test_added_and_appended_rows_are_inserted_in_few_statements(
        connection: sqlite3.Connection) -> None:
    batch = new_batch(connection)
    added = batch.tables["items"].add({"owner": "b", "name": "x", "size": 1})
    added["size"] = 5  # a later event of the same batch
    with pytest.raises(ValueError, match="added twice"):
        batch.tables["items"].add({"owner": "b", "name": "x", "size": 1})
    for position in range(1, 451):
        batch.tables["log"].append({"position": position, "text": f"event {position}"})
    statements = traced(connection)
    batch.flush()
    assert len(statements) == 1 + 4  # 450 = 256 + 128 + 64 + 2
    assert rows(connection, "items")[-1] == ("b", "x", 5, None)
    assert rows(connection, "log") == [(p, f"event {p}") for p in range(1, 451)]
