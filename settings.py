"""Where stratexec keeps its data and how its engine runs, from flags and the environment.

Embedded default: the event store and the read models are two SQLite files in the data
directory (`./var`, or `STRATEXEC_DATA_DIR`), so that projection writes never queue behind
event appends. `STRATEXEC_STORE=postgres` keeps the events in PostgreSQL instead, configured
by eventsourcing's own variables (`POSTGRES_DBNAME`, `POSTGRES_HOST`, `POSTGRES_PORT`,
`POSTGRES_USER`, `POSTGRES_PASSWORD`, ...); the read models stay in the data directory.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stratexec.actors.runtime import RuntimeSettings
from stratexec.domain.application import StratexecApp
from stratexec.domain.retry import RetryPolicy
from stratexec.projections.store import ViewStore

STORES = ("sqlite", "postgres")


class DataDirInUse(Exception):
    """Another stratexec process runs executions from this data directory."""


@dataclass(frozen=True)
class EngineOptions:
    """How the engine runs: the demo agents, concurrency, retries, health timer."""

    demo_duration: tuple[float, float] = (0.2, 1.5)
    demo_failure_rate: float = 0.1
    seed: int | None = None
    concurrency: int = 4
    max_attempts: int = 4
    retry_interval: float = 1.0
    health_interval: float = 5.0

    def runtime_settings(self) -> RuntimeSettings:
        policy = RetryPolicy(maximum_attempts=self.max_attempts,
                             initial_interval=self.retry_interval,
                             maximum_interval=max(60.0, self.retry_interval))
        return RuntimeSettings(agent_concurrency=self.concurrency,
                               health_interval=self.health_interval,
                               retry_policy=policy, seed=self.seed)


@dataclass(frozen=True)
class StoreSettings:
    data_dir: Path
    store: str = "sqlite"

    @classmethod
    def from_environment(cls, data_dir: str | None = None, store: str | None = None
                         ) -> StoreSettings:
        directory = data_dir or os.environ.get("STRATEXEC_DATA_DIR") or "var"
        chosen = store or os.environ.get("STRATEXEC_STORE") or "sqlite"
        if chosen not in STORES:
            raise ValueError(f"STRATEXEC_STORE must be one of {', '.join(STORES)}, not {chosen!r}")
        return cls(Path(directory), chosen)

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def views_path(self) -> Path:
        return self.data_dir / "views.sqlite"

    def event_store_env(self) -> dict[str, str]:
        if self.store == "postgres":
            env = {k: v for k, v in os.environ.items() if k.startswith("POSTGRES_")}
            env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
            return env
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.events_path),
            "SQLITE_LOCK_TIMEOUT": "30",
        }

    def open_app(self) -> StratexecApp:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return StratexecApp(env=self.event_store_env())

    def open_views(self) -> ViewStore:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return ViewStore(str(self.views_path))

    def lock(self) -> IO[str]:
        """Claim the data directory for this process (one engine per directory): two
        engines would both recover, and so run, the same unfinished executions."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = (self.data_dir / "engine.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DataDirInUse(
                f"{self.data_dir} is in use by {holder}; stop it first, or use another "
                "--data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        return handle
