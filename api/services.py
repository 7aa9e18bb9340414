"""The running parts the HTTP handlers use, started and stopped together.

`Services.start_serving` starts the engine (`engine.Engine`), adds the stream hub and the
append timer, and recovers unfinished executions; `stop` undoes it in reverse. All of it
blocks, so the server calls both from a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from prometheus_client import Histogram

from stratexec.api.streams import StreamHub
from stratexec.engine import Engine
from stratexec.settings import EngineOptions, StoreSettings

APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
READ_YOUR_WRITES_TIMEOUT = 10.0


@dataclass
class Services(Engine):
    """The engine, plus what the HTTP layer adds: the stream hub and the append timer."""

    hub: StreamHub = field(init=False)
    append_seconds: Histogram = field(default_factory=lambda: Histogram(
        "stratexec_event_append_seconds", "Time to append one save of events to the store",
        buckets=APPEND_BUCKETS, registry=None))  # each scrape registers it (api.metrics)

    @classmethod
    def start_serving(cls, store: StoreSettings, options: EngineOptions,
                      stream_queue_size: int) -> Services:
        services = cls.start(store, options)
        services.hub = StreamHub(services.runner, services.views, queue_size=stream_queue_size)
        services.app.save_observers.append(services.append_seconds.observe)
        services.runtime.recover()
        return services

    async def caught_up(self) -> None:
        """Wait until the read models hold everything recorded so far (read-your-writes)."""
        position = await asyncio.to_thread(self.app.recorder.max_notification_id)
        await asyncio.to_thread(self.runner.wait_for, position or 0, READ_YOUR_WRITES_TIMEOUT)
