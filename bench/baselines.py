"""The baselines measured in the same run as the engine, on the same DAG shape:

(a) the floor of Python: the same chains as plain asyncio tasks, nothing persisted;
(b) the ceiling of the store: raw eventsourcing appends of as many events to a fresh
    SQLite file (or a fresh PostgreSQL database), one event per save, and grouped as the
    engine grouped them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from eventsourcing.domain import Aggregate, event

from stratexec.bench.databases import fresh_database, store_settings

SINGLE_SAVE_CAP = 20_000  # one-event saves are slow; a rate needs no more than this
POSTGRES_SINGLE_SAVE_CAP = 2_000  # each waits for a WAL flush: tens of ms on a busy disk


async def _chains(n: int) -> None:
    async def task() -> dict[str, Any]:
        return {}

    async def second(first: asyncio.Task[dict[str, Any]]) -> dict[str, Any]:
        await first
        return await task()

    pending = []
    for _ in range(n):
        first = asyncio.create_task(task())
        pending.append(first)
        pending.append(asyncio.create_task(second(first)))
    await asyncio.gather(*pending)


def plain_asyncio(n: int) -> dict[str, Any]:
    """N chains of two tasks as asyncio tasks: 2N tasks, each waiting on its dependency."""
    started = time.perf_counter()
    asyncio.run(_chains(n))
    elapsed = time.perf_counter() - started
    return {"tasks": 2 * n, "seconds": elapsed, "tasksPerSecond": 2 * n / elapsed}


class Ledger(Aggregate):
    """A stand-in aggregate: each event is about as big as a task event of the engine."""

    @event("Recorded")
    def record(self, task_id: str, attempt: int) -> None:
        self.count = getattr(self, "count", 0) + 1


def raw_appends(events: int, per_save: int, postgres: bool = False) -> dict[str, Any]:
    """Append `events` events to a fresh store, `per_save` events in each save."""
    with tempfile.TemporaryDirectory(prefix="stratexec-baseline-") as scratch, \
            (fresh_database() if postgres else nullcontext(None)) as database:
        app = store_settings(Path(scratch), database).open_app()
        ledger = Ledger()
        app.save(ledger)
        started = time.perf_counter()
        written = 0
        while written < events:
            batch = min(per_save, events - written)
            for index in range(batch):
                ledger.record(task_id=f"item-{written + index}:research", attempt=1)
            app.save(ledger)
            written += batch
        elapsed = time.perf_counter() - started
        app.close()
    return {"events": written, "perSave": per_save, "seconds": elapsed,
            "eventsPerSecond": written / elapsed}


def store_ceiling(events: int, engine_events_per_save: float, postgres: bool = False
                  ) -> dict[str, Any]:
    return {
        "oneEventPerSave": raw_appends(
            min(events, POSTGRES_SINGLE_SAVE_CAP if postgres else SINGLE_SAVE_CAP), 1, postgres),
        "groupedAsTheEngine": raw_appends(events, max(1, round(engine_events_per_save)),
                                          postgres),
    }
