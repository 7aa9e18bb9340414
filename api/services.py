"""The running parts the HTTP handlers use, started and stopped together.

`Services.start` claims the data directory, opens the event store and the read models,
starts the projection runner and the actors, and recovers unfinished executions; `stop`
undoes it in reverse. All of it blocks, so the server calls both from a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import IO

from actors.agents.demo import demo_agents
from actors.runtime import Runtime
from api.prometheus import Histogram
from api.streams import StreamHub
from domain.application import StratexecApp
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from settings import EngineOptions, StoreSettings

APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
READ_YOUR_WRITES_TIMEOUT = 10.0


@dataclass
class Services:
    store: StoreSettings
    app: StratexecApp
    views: ViewStore
    runner: ProjectionRunner
    runtime: Runtime
    hub: StreamHub
    lock: IO[str]
    append_seconds: Histogram = field(default_factory=lambda: Histogram(
        "stratexec_event_append_seconds", "Time to append one save of events to the store",
        APPEND_BUCKETS))

    @classmethod
    def start(cls, store: StoreSettings, options: EngineOptions, stream_queue_size: int
              ) -> Services:
        lock = store.lock()
        app = store.open_app()
        views = store.open_views()
        runner = ProjectionRunner(app, views)
        runner.start()
        runtime = Runtime(app, demo_agents(options.demo_duration, options.demo_failure_rate,
                                           options.seed), options.runtime_settings(),
                          pace=runner.keep_up)
        runtime.start()
        services = cls(store, app, views, runner, runtime,
                       StreamHub(runner, views, queue_size=stream_queue_size), lock)
        app.save_observers.append(services.append_seconds.observe)
        runtime.recover()
        return services

    def stop(self) -> None:
        self.runtime.stop()
        self.runner.wait_for(self.app.recorder.max_notification_id() or 0, timeout=10)
        self.runner.stop()
        self.views.close()
        self.app.close()
        self.lock.close()

    async def caught_up(self) -> None:
        """Wait until the read models hold everything recorded so far (read-your-writes)."""
        position = await asyncio.to_thread(self.app.recorder.max_notification_id)
        await asyncio.to_thread(self.runner.wait_for, position or 0, READ_YOUR_WRITES_TIMEOUT)
