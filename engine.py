"""The running engine on one data directory: the claim on the directory, the event store,
the read models kept up to date by the projection runner, and the actors. The CLI runs one
for `run` and `resume`; the server's `Services` is one with the HTTP parts added."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Self

from stratexec.actors.agents.demo import demo_agents
from stratexec.actors.runtime import Runtime, share_malloc_arenas
from stratexec.domain.application import StratexecApp
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.settings import EngineOptions, StoreSettings

SETTLE_TIMEOUT = 60.0


@dataclass
class Engine:
    store: StoreSettings
    app: StratexecApp
    views: ViewStore
    runner: ProjectionRunner
    runtime: Runtime
    lock: IO[str]

    @classmethod
    def start(cls, store: StoreSettings, options: EngineOptions) -> Self:
        """Raises `settings.DataDirInUse` when another engine holds the directory."""
        lock = store.lock()
        share_malloc_arenas()  # before the engine's threads start
        app = store.open_app()
        views = store.open_views()
        runner = ProjectionRunner(app, views)
        runner.start()
        handlers = demo_agents(options.demo_duration, options.demo_failure_rate, options.seed)
        runtime = Runtime(app, handlers, options.runtime_settings(), pace=runner.keep_up)
        runtime.start()
        return cls(store, app, views, runner, runtime, lock)

    def settle(self) -> None:
        """Stop the actors (the health monitor records its last assessments) and let the
        read models catch up with everything recorded."""
        self.runtime.stop()
        self.runner.wait_for(self.app.recorder.max_notification_id() or 0, SETTLE_TIMEOUT)

    def stop(self) -> None:
        self.settle()
        self.runner.stop()
        self.views.close()
        self.app.close()
        self.lock.close()
