"""The view store: idempotent schema, atomic writes, reads from any thread."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import nullcontext
from pathlib import Path

import pytest

from stratexec.projections.store import ViewStore, read_tracking, write_tracking


def test_opening_twice_keeps_the_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "views.sqlite")
    with ViewStore(path) as store, store.write() as cur:
        write_tracking(cur, ["executions"], 7)
    with ViewStore(path) as store, store.read() as cur:
        assert read_tracking(cur) == {"executions": 7}
        assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def write_then_fail(store: ViewStore) -> None:
    with store.write() as cur:
        write_tracking(cur, ["executions"], 3)
        raise RuntimeError("midway")


def test_a_failed_write_rolls_back(tmp_path: Path) -> None:
    with ViewStore(str(tmp_path / "views.sqlite")) as store:
        with pytest.raises(RuntimeError, match="midway"):
            write_then_fail(store)
        with store.write() as cur:
            write_tracking(cur, ["executions"], 5)
            write_tracking(cur, ["executions"], 4)  # never backwards
        with store.read() as cur:
            assert read_tracking(cur) == {"executions": 5}


def test_reads_from_other_threads_see_commits_and_cannot_write(tmp_path: Path) -> None:
    seen: list[dict[str, int]] = []
    errors: list[Exception] = []

    def read() -> None:
        with store.read() as cur:
            seen.append(read_tracking(cur))
            try:
                cur.execute("DELETE FROM tracking")
            except sqlite3.OperationalError as error:
                errors.append(error)

    with ViewStore(str(tmp_path / "views.sqlite")) as store:
        with store.write() as cur:
            write_tracking(cur, ["feed"], 2)
        threads = [threading.Thread(target=read) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert seen == [{"feed": 2}] * 3
    assert len(errors) == 3


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = ViewStore(str(tmp_path / "views.sqlite"))
    store.close()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError), store.read():
        pass


def synchronous(store: ViewStore) -> int:
    with store.write() as cur:
        level: int = cur.execute("PRAGMA synchronous").fetchone()[0]
    return level


@pytest.mark.parametrize("fails", [False, True])
def test_a_bulk_load_writes_unsynced_then_syncs_and_restores_durability(
        tmp_path: Path, fails: bool) -> None:
    store = ViewStore(str(tmp_path / "views.sqlite"))
    normal = synchronous(store)
    assert normal == 1  # NORMAL
    with pytest.raises(RuntimeError) if fails else nullcontext(), store.bulk_load():
        assert synchronous(store) == 0  # OFF
        with store.write() as cur:
            write_tracking(cur, ["a"], 7)
        if fails:
            raise RuntimeError("the load failed")
    assert synchronous(store) == normal
    store.close()
    reopened = ViewStore(str(tmp_path / "views.sqlite"))
    with reopened.read() as cur:
        assert read_tracking(cur) == {"a": 7}
    reopened.close()


def test_a_store_made_by_other_views_is_emptied_so_that_they_are_rebuilt(
        tmp_path: Path) -> None:
    path = str(tmp_path / "views.sqlite")
    with ViewStore(path) as store, store.write() as cur:
        write_tracking(cur, ["executions"], 7)
        cur.execute("ALTER TABLE agent_metrics RENAME TO agent_metrics_of_an_older_version")
    with sqlite3.connect(path) as connection:  # as another version of the views left it
        connection.execute("UPDATE schema_fingerprint SET fingerprint = 'older'")
    with ViewStore(path) as store, store.read() as cur:
        assert read_tracking(cur) == {}  # every view starts again from position 0
        tables = {row[0] for row in cur.execute("SELECT name FROM sqlite_master")}
        assert "agent_metrics" in tables
        assert "agent_metrics_of_an_older_version" not in tables


def test_a_store_from_before_the_fingerprint_is_emptied(tmp_path: Path) -> None:
    path = str(tmp_path / "views.sqlite")
    with ViewStore(path) as store, store.write() as cur:
        write_tracking(cur, ["executions"], 7)
        cur.execute("DROP TABLE schema_fingerprint")
    with ViewStore(path) as store, store.read() as cur:
        assert read_tracking(cur) == {}
