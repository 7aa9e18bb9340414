"""The running parts the HTTP handlers use, started and stopped together.

`Services.start` starts the engine (`engine.Engine`) with the agent handlers its config file
names, and adds the stream hub and the append timer; `recover` then takes up unfinished
executions (the server calls it last, once everything else has started); `stop` undoes it.
All three block, so the server calls them from a worker thread. Handlers reach the engine
only through `stratexec.usecases`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import UUID

from prometheus_client import Histogram

from stratexec import usecases
from stratexec.api.streams import StreamHub
from stratexec.engine import Engine
from stratexec.settings import ServerSettings

APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
READ_YOUR_WRITES_TIMEOUT = 10.0


@dataclass
class Services:
    """The engine, and what the HTTP layer adds: the stream hub and the append timer."""

    engine: Engine
    hub: StreamHub
    append_seconds: Histogram = field(default_factory=lambda: Histogram(
        "stratexec_event_append_seconds", "Time to append one save of events to the store",
        buckets=APPEND_BUCKETS, registry=None))  # each scrape registers it (api.metrics)

    @classmethod
    def start(cls, settings: ServerSettings) -> Services:
        engine = Engine.configured(settings.store, settings.engine, settings.config)
        services = cls(engine, StreamHub(engine.runner, engine.views,
                                         queue_size=settings.stream_queue_size))
        engine.app.save_observers.append(services.append_seconds.observe)
        return services

    def recover(self) -> list[UUID]:
        """Take up the unfinished executions; the ids taken up."""
        return usecases.recover_executions(self.engine)

    def stop(self) -> None:
        self.engine.stop()

    async def stop_executions(self) -> None:
        """Stop the executions (each records that the engine stopped: `usecases.
        stop_executions`), and wait until the read models hold that: the hub has then
        handed it to every open stream."""
        await asyncio.to_thread(usecases.stop_executions, self.engine)
        await self.caught_up()

    async def reads_reach(self, position: int) -> None:
        """Wait until the read models hold the log up to `position` (read-your-writes)."""
        await asyncio.to_thread(self.engine.runner.wait_for, position, READ_YOUR_WRITES_TIMEOUT)

    async def caught_up(self) -> None:
        """Wait until the read models hold everything recorded so far."""
        position = await asyncio.to_thread(self.engine.app.recorder.max_notification_id)
        await self.reads_reach(position or 0)
