"""Where stratexec keeps its data, read from flags and the environment.

Embedded default: the event store and the read models are two SQLite files in the data
directory (`./var`, or `STRATEXEC_DATA_DIR`), so that projection writes never queue behind
event appends. `STRATEXEC_STORE=postgres` keeps the events in PostgreSQL instead, configured
by eventsourcing's own variables (`POSTGRES_DBNAME`, `POSTGRES_HOST`, `POSTGRES_PORT`,
`POSTGRES_USER`, `POSTGRES_PASSWORD`, ...); the read models stay in the data directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from domain.application import StratexecApp
from projections.store import ViewStore

STORES = ("sqlite", "postgres")


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
