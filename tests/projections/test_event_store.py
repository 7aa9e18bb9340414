"""The embedded event store's durability and pool, as `StoreSettings` opens it."""

from __future__ import annotations

import threading
from pathlib import Path

from helpers import chain_strategy

from stratexec.eventstore import POOL_TIMEOUT, DurableConnectionPool
from stratexec.settings import StoreSettings

LIBRARY_POOL_TIMEOUT = 5.0  # eventsourcing's SQLiteConnectionPool default


def test_every_connection_commits_with_synchronous_full(tmp_path: Path) -> None:
    app = StoreSettings(tmp_path).open_app()
    try:
        datastore = app.factory.datastore  # type: ignore[attr-defined]
        assert isinstance(datastore.pool, DurableConnectionPool)
        for is_writer in (True, False):
            connection = datastore.pool.get_connection(is_writer=is_writer)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("PRAGMA synchronous")
                    assert cursor.fetchone()[0] == 2  # FULL
            finally:
                datastore.pool.put_connection(connection)
    finally:
        app.close()


def test_a_save_waits_for_the_writer_longer_than_the_librarys_pool_timeout(
        tmp_path: Path) -> None:
    """Under load a save waited for the pool at most 5 s, then failed and crashed its actor."""
    app = StoreSettings(tmp_path).open_app()
    pool = app.factory.datastore.pool  # type: ignore[attr-defined]
    assert POOL_TIMEOUT > LIBRARY_POOL_TIMEOUT
    busy = pool.get_connection(is_writer=True)  # another save holds the writer
    outcome: list[object] = []

    def save() -> None:
        try:
            outcome.append(app.define_strategy(chain_strategy(["a"]))[1])
        except Exception as error:
            outcome.append(error)

    saver = threading.Thread(target=save)
    saver.start()
    try:
        saver.join(LIBRARY_POOL_TIMEOUT + 0.5)  # past the library's timeout, still waiting
        assert saver.is_alive(), outcome
    finally:
        pool.put_connection(busy)
    saver.join(30)
    try:
        assert len(outcome) == 1
        assert isinstance(outcome[0], int), outcome  # saved, at this log position
    finally:
        app.close()
