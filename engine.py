"""The running engine on one data directory: the claim on the directory, the event store,
the read models kept up to date by the projection runner, and the actors running the agent
handlers it is given. The CLI runs one for `run` and `resume`; the server's `Services`
holds one beside its stream hub."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import IO, Any, Self

from stratexec.actors.agents.base import AgentHandler, AgentLimits
from stratexec.actors.memory import share_malloc_arenas
from stratexec.actors.placement import LocalPlacement, Placement
from stratexec.actors.runtime import Runtime
from stratexec.circuit_settings import CircuitSettings
from stratexec.cluster.node import Node
from stratexec.config import Config, ConfigError
from stratexec.domain.application import StratexecApp
from stratexec.domain.propagation import PropagationRules
from stratexec.projections.remaining import estimate_completion
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import PostgresViewStore, ViewStore
from stratexec.settings import EngineOptions, StoreSettings

SETTLE_TIMEOUT = 60.0


def agent_handlers(options: EngineOptions, config: Config | None = None
                   ) -> Mapping[str, AgentHandler]:
    """The handler of every agent type the config knows: the one it names, else the demo
    agent, with the options' timing. `config.ConfigError` when one cannot be built."""
    return (config or Config()).handlers(demo_options(options))


def demo_options(options: EngineOptions) -> dict[str, Any]:
    """The demo agent's options from the command line (--demo-duration, ...)."""
    chosen = {"duration": options.demo_duration, "failure_rate": options.demo_failure_rate,
              "seed": options.seed}
    return {key: value for key, value in chosen.items() if value is not None}


def circuits(options: EngineOptions, config: Config) -> dict[str, CircuitSettings]:
    """Each agent type's circuit breaker settings: its own table in the config file, else
    the file's `[circuit_breaker]`, else the `--circuit-*` flags. (The file's settings
    read as not given where they equal the built-in defaults.)"""
    for_all = (options.circuit if config.circuit_breaker == CircuitSettings()
               else config.circuit_breaker)
    chosen = {}
    for agent_type in config.agent_types:
        own = config.circuit(agent_type)
        chosen[agent_type] = own if own != config.circuit_breaker else for_all
    return chosen


def placement(agents_on: str) -> Placement:
    """Where attempts run: "local" (this process's threads) or "celery" (the workers of
    `stratexec worker`, on the broker of `CELERY_BROKER_URL`)."""
    if agents_on != "celery":
        return LocalPlacement()
    # Celery is imported only by the engines that use it.
    from stratexec.workers.connection import CelerySettings  # noqa: PLC0415
    from stratexec.workers.dispatch import CeleryPlacement  # noqa: PLC0415

    try:
        return CeleryPlacement(CelerySettings.from_environment())
    except Exception as error:  # a bad URL, or Redis not answering
        raise ConfigError("(environment)", "CELERY_RESULT_BACKEND",
                          f"cannot use the Celery workers: {error}") from None


@dataclass
class Engine:
    store: StoreSettings
    app: StratexecApp
    views: ViewStore
    runner: ProjectionRunner
    runtime: Runtime
    rules: PropagationRules
    lock: IO[str] | None  # SQLite: the claim on the data directory
    node: Node | None = None  # with PostgreSQL: this process among the others

    @classmethod
    def start(cls, store: StoreSettings, options: EngineOptions,
              handlers: Mapping[str, AgentHandler],
              rules: PropagationRules | None = None,
              limits: Mapping[str, AgentLimits] | None = None,
              circuits: Mapping[str, CircuitSettings] | None = None,
              placement: Placement | None = None) -> Self:
        """Raises `settings.DataDirInUse` when another engine holds the directory (SQLite;
        with PostgreSQL, this process joins the others on the database as a `Node`).
        `placement` says where attempts run (by default on the engine's threads); the
        engine owns it from here on."""
        try:
            lock = store.lock()
        except BaseException:
            if placement is not None:
                placement.close()
            raise
        share_malloc_arenas()  # before the engine's threads start
        app = store.open_app()
        views = store.open_views()
        node = (Node(store.conninfo, views, store.takeover_interval, store.lock_idle_timeout)
                if isinstance(views, PostgresViewStore) else None)
        runner = ProjectionRunner(app, views,
                                  leadership=None if node is None else node.leadership)
        runner.start()
        runtime = Runtime(app, handlers, options, pace=runner.keep_up, limits=limits,
                          circuits=circuits, estimate=partial(estimate_completion, views),
                          ownership=None if node is None else node.ownership,
                          placement=placement)
        runtime.start()
        if node is not None:
            node.take_over(runtime)
            node.listen(app, runner)
        return cls(store, app, views, runner, runtime, rules or PropagationRules(), lock, node)

    @classmethod
    def configured(cls, store: StoreSettings, options: EngineOptions, config: Config) -> Self:
        """`start` with what the config file says: each type's handler, limits and retry
        policy, and the rules. `config.ConfigError` (before the directory is claimed) when
        a handler cannot be built or a type's retry settings contradict the options'."""
        options = replace(options, agent_retry=config.retry_policies(options.retry))
        handlers = agent_handlers(options, config)
        return cls.start(store, options, handlers, config.rules,
                         config.limits(options.concurrency), circuits(options, config),
                         placement(options.agents_on or config.agents_on))

    def settle(self) -> None:
        """Stop the actors (the health monitor records its last assessments) and let the
        read models catch up with everything recorded."""
        self.runtime.stop()
        self.runner.wait_for(self.app.recorder.max_notification_id() or 0, SETTLE_TIMEOUT)

    def stop(self) -> None:
        if self.node is not None and self.node.takeover is not None:
            self.node.takeover.stop()  # before the runtime: it would spawn actors again
        self.settle()
        self.runner.stop()
        if self.node is not None:
            self.node.stop()
        self.views.close()
        self.app.close()
        if self.lock is not None:
            self.lock.close()
