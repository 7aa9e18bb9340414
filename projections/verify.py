"""Audit replay: rebuild every view from position 0 and compare two view stores row by row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from stratexec.domain.application import StratexecApp
from stratexec.projections.base import View
from stratexec.projections.catalog import ALL
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore


def rebuild(app: StratexecApp, target_store: ViewStore, views: Sequence[View] = ALL) -> int:
    """Replay the whole log into an empty store; returns the position reached."""
    with target_store.read() as cur:
        if cur.execute("SELECT COUNT(*) FROM tracking").fetchone()[0]:
            raise ValueError(f"{target_store.path} already holds views: rebuild needs a new store")
    with target_store.bulk_load():
        return ProjectionRunner(app, target_store, views).catch_up()


def _tables(views: Sequence[View]) -> dict[str, tuple[str, ...]]:
    tables: dict[str, tuple[str, ...]] = {"tracking": ("view",)}
    for view in views:
        tables.update(view.tables)
    return tables


def _rows(store: ViewStore, table: str, key: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    with store.read() as cur:
        cur.execute(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
        for row in cur:
            yield dict(row)


def _describe(table: str, key: tuple[str, ...], row: dict[str, Any]) -> str:
    return f"{table} ({', '.join(f'{k}={row[k]!r}' for k in key)})"


def _diff_table(a: ViewStore, b: ViewStore, table: str, key: tuple[str, ...],
                ) -> Iterator[str]:
    """Merge the two tables' rows in key order, as SQLite's binary collation sorts them."""
    rows_a, rows_b = _rows(a, table, key), _rows(b, table, key)
    row_a, row_b = next(rows_a, None), next(rows_b, None)
    while row_a is not None or row_b is not None:
        key_a = None if row_a is None else tuple(row_a[k] for k in key)
        key_b = None if row_b is None else tuple(row_b[k] for k in key)
        if row_a is not None and (key_b is None or (key_a is not None and key_a < key_b)):
            yield f"{_describe(table, key, row_a)}: only in {a.path}"
            row_a = next(rows_a, None)
        elif row_b is not None and (key_a is None or (key_b is not None and key_b < key_a)):
            yield f"{_describe(table, key, row_b)}: only in {b.path}"
            row_b = next(rows_b, None)
        elif row_a is not None and row_b is not None:
            changed = [f"{column} {row_a[column]!r} != {row_b.get(column)!r}"
                       for column in row_a if row_a[column] != row_b.get(column)]
            if changed:
                yield f"{_describe(table, key, row_a)}: {'; '.join(changed)}"
            row_a, row_b = next(rows_a, None), next(rows_b, None)


def compare(store_a: ViewStore, store_b: ViewStore, views: Sequence[View] = ALL,
            max_differences: int = 1000) -> list[str]:
    """Differences between two stores, table by table in key order; [] when identical."""
    differences: list[str] = []
    for table, key in _tables(views).items():
        room = max_differences - len(differences)
        differences.extend(islice(_diff_table(store_a, store_b, table, key), room))
        if len(differences) >= max_differences:
            differences.append(f"(stopped after {max_differences} differences)")
            break
    return differences
