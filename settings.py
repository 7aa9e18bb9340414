"""Where stratexec keeps its data and how its engine runs, from flags and the environment.

Embedded default: the event store and the read models are two SQLite files in the data
directory (`./var`, or `STRATEXEC_DATA_DIR`), so that projection writes never queue behind
event appends. `STRATEXEC_STORE=postgres` keeps the events and the read models in
PostgreSQL instead, configured by eventsourcing's own variables (`POSTGRES_DBNAME`,
`POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_USER`, `POSTGRES_PASSWORD`, ...): the events in
eventsourcing's table, the read models in a schema of their own (`STRATEXEC_PG_VIEWS_SCHEMA`,
default `stratexec_views`), written and read through two roles (`STRATEXEC_PG_WRITER_ROLE`,
`STRATEXEC_PG_READER_ROLE`; see `projections.security`).
"""

from __future__ import annotations

import argparse
import fcntl
import math
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from psycopg.conninfo import make_conninfo

from stratexec.circuit_settings import CircuitSettings
from stratexec.cluster.ownership import LOCK_IDLE_TIMEOUT, TAKEOVER_INTERVAL
from stratexec.config import AGENTS_ON, Config
from stratexec.domain.application import StratexecApp
from stratexec.domain.retry import RetryPolicy
from stratexec.projections.security import Roles
from stratexec.projections.store import PostgresViewStore, ViewStore

STORES = ("sqlite", "postgres")
VIEWS_SCHEMA = "stratexec_views"


class DataDirInUse(Exception):
    """Another stratexec process runs executions from this data directory."""


@dataclass(frozen=True)
class EngineOptions:
    """How the engine runs: attempts per agent type at once, the retry policy, the health
    timer, the demo agents, and when a circuit breaker pauses an agent type. The CLI's
    flags and their help take their defaults from here. `agent_retry` holds the policies of
    the agent types the config file gives their own (`engine.Engine.configured` fills it
    in); the config file's circuit settings per type go to the runtime beside it."""

    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    agent_retry: Mapping[str, RetryPolicy] = field(default_factory=dict)
    health_interval: float = 5.0
    seed: int | None = None
    demo_duration: tuple[float, float] = (0.2, 1.5)
    demo_failure_rate: float = 0.1
    circuit: CircuitSettings = field(default_factory=CircuitSettings)
    agents_on: str | None = None  # where attempts run; None: as the config file says


def postgres_environment() -> dict[str, str]:
    """eventsourcing's `POSTGRES_*` variables, from the environment."""
    return {k: v for k, v in os.environ.items() if k.startswith("POSTGRES_")}


def postgres_conninfo(postgres: Mapping[str, str]) -> str:
    """A libpq connection string from eventsourcing's `POSTGRES_*` variables."""
    chosen = {"dbname": postgres.get("POSTGRES_DBNAME"), "host": postgres.get("POSTGRES_HOST"),
              "port": postgres.get("POSTGRES_PORT"), "user": postgres.get("POSTGRES_USER"),
              "password": postgres.get("POSTGRES_PASSWORD") or None}
    return make_conninfo(**{k: v for k, v in chosen.items() if v is not None},
                         application_name="stratexec")


@dataclass(frozen=True)
class StoreSettings:
    data_dir: Path
    store: str = "sqlite"
    # With `postgres`: eventsourcing's POSTGRES_* variables, and the read models' schema.
    postgres: Mapping[str, str] = field(default_factory=postgres_environment)
    views_schema: str = VIEWS_SCHEMA
    roles: Roles = field(default_factory=Roles)  # the read models' reader and writer
    # Seconds between two looks for executions no live process owns (with postgres).
    takeover_interval: float = TAKEOVER_INTERVAL
    # Seconds before PostgreSQL frees the locks of a process that hung (with postgres).
    lock_idle_timeout: float = LOCK_IDLE_TIMEOUT

    @classmethod
    def from_environment(cls, data_dir: str | None = None, store: str | None = None
                         ) -> StoreSettings:
        directory = data_dir or os.environ.get("STRATEXEC_DATA_DIR") or "var"
        chosen = store or os.environ.get("STRATEXEC_STORE") or "sqlite"
        if chosen not in STORES:
            raise ValueError(f"STRATEXEC_STORE must be one of {', '.join(STORES)}, not {chosen!r}")
        schema = os.environ.get("STRATEXEC_PG_VIEWS_SCHEMA") or VIEWS_SCHEMA
        roles = Roles(reader=os.environ.get("STRATEXEC_PG_READER_ROLE") or Roles.reader,
                      writer=os.environ.get("STRATEXEC_PG_WRITER_ROLE") or Roles.writer)
        interval = float(os.environ.get("STRATEXEC_TAKEOVER_INTERVAL") or TAKEOVER_INTERVAL)
        if not interval > 0:
            raise ValueError(f"STRATEXEC_TAKEOVER_INTERVAL must be above 0, not {interval}")
        idle = float(os.environ.get("STRATEXEC_LOCK_IDLE_TIMEOUT") or LOCK_IDLE_TIMEOUT)
        if not idle > 2 * interval:
            raise ValueError("STRATEXEC_LOCK_IDLE_TIMEOUT must be above twice "
                             f"STRATEXEC_TAKEOVER_INTERVAL ({interval}), not {idle}")
        return cls(Path(directory), chosen, views_schema=schema, roles=roles,
                   takeover_interval=interval, lock_idle_timeout=idle)

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def views_path(self) -> Path:
        return self.data_dir / "views.sqlite"

    @property
    def conninfo(self) -> str:
        return postgres_conninfo(self.postgres)

    def event_store_env(self) -> dict[str, str]:
        if self.store == "postgres":
            # A hung process's open save (with its lock on the events table) ends at the
            # same timeout as its advisory locks, unless the user set one.
            idle = str(max(1, round(self.lock_idle_timeout)))
            return {"POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": idle, **self.postgres,
                    "PERSISTENCE_MODULE": "eventsourcing.postgres"}
        return {
            "PERSISTENCE_MODULE": "stratexec.eventstore:DurableSQLiteFactory",
            "SQLITE_DBNAME": str(self.events_path),
            "SQLITE_LOCK_TIMEOUT": "30",
        }

    def open_app(self) -> StratexecApp:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return StratexecApp(env=self.event_store_env())

    def open_views(self) -> ViewStore:
        if self.store == "postgres":
            return PostgresViewStore(self.conninfo, self.views_schema, roles=self.roles,
                                     idle_timeout=self.lock_idle_timeout)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return ViewStore(str(self.views_path))

    @contextmanager
    def scratch_views(self) -> Iterator[ViewStore]:
        """A new, empty view store of this kind, removed afterwards (for rebuilds that
        are compared with the live views): a temporary file, or a temporary schema."""
        if self.store == "postgres":
            scratch = PostgresViewStore(
                self.conninfo, f"{self.views_schema}_scratch_{uuid.uuid4().hex[:12]}",
                roles=self.roles)
            try:
                yield scratch
            finally:
                scratch.drop()
                scratch.close()
            return
        with tempfile.TemporaryDirectory(prefix="stratexec-verify-") as directory, \
                ViewStore(str(Path(directory) / "views.sqlite")) as views:
            yield views

    def lock(self) -> IO[str] | None:
        """Claim the data directory for this process (one engine per directory): two
        engines would both recover, and so run, the same unfinished executions. With
        postgres there is no claim: each execution is owned by one process at a time
        (`cluster.ownership`), and any number of processes may share the database."""
        if self.store == "postgres":
            return None
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


@dataclass(frozen=True)
class ServerSettings:
    """Where the server keeps its data, how its engine runs, and what it serves on."""

    store: StoreSettings = field(default_factory=StoreSettings.from_environment)
    engine: EngineOptions = field(default_factory=EngineOptions)
    config: Config = field(default_factory=Config)  # the config file's agents and rules
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    stream_queue_size: int = 10_000
    ping_interval: float = 15.0
    stream_send_timeout: float = 10.0  # a stream's client must take each write within it


# ------------------------------------------------------------ command-line flags

def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where the stores live (default ./var, or "
                                           "STRATEXEC_DATA_DIR)")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `run`, `resume` and `serve`, with the defaults of `EngineOptions`."""
    engine, retry = EngineOptions(), RetryPolicy()
    add_demo_arguments(parser)
    parser.add_argument("--agents-on", choices=AGENTS_ON, default=None,
                        help="where attempts run: on this process's threads, or on Celery "
                             "workers (stratexec worker); default the config file's "
                             "[engine] agents_on, else local")
    parser.add_argument("--concurrency", type=positive_int, default=engine.concurrency,
                        help=f"attempts each agent type runs at once "
                             f"(default {engine.concurrency})")
    parser.add_argument("--max-attempts", type=positive_int, default=retry.maximum_attempts,
                        help="attempts per task before it fails for good "
                             f"(default {retry.maximum_attempts})")
    parser.add_argument("--retry-interval", type=_seconds, default=retry.initial_interval,
                        help="seconds before the first retry; doubles after "
                             f"(default {retry.initial_interval:g})")
    parser.add_argument("--health-interval", type=_positive_seconds,
                        default=engine.health_interval,
                        help="seconds between health assessments "
                             f"(default {engine.health_interval:g})")
    add_circuit_arguments(parser, engine.circuit)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo agents' flags (of the engine's commands, and of `stratexec worker`)."""
    engine = EngineOptions()
    low, high = engine.demo_duration
    parser.add_argument("--demo-duration", type=_duration_range, default=engine.demo_duration,
                        metavar="MIN:MAX",
                        help=f"demo agents' duration range in seconds (default {low}:{high})")
    parser.add_argument("--demo-failure-rate", type=_rate, default=engine.demo_failure_rate,
                        metavar="R", help="chance that a demo agent's attempt fails "
                                          f"(default {engine.demo_failure_rate})")
    parser.add_argument("--seed", type=int, default=engine.seed, help="seed the demo agents")


def add_circuit_arguments(parser: argparse.ArgumentParser, circuit: CircuitSettings) -> None:
    """Every agent type's circuit breaker (until the configuration file sets them per type)."""
    parser.add_argument("--circuit-window", type=positive_int, default=circuit.window,
                        metavar="N", help="an agent type's circuit breaker weighs its last N "
                                          f"finished attempts (default {circuit.window})")
    parser.add_argument("--circuit-failure-rate", type=_share, default=circuit.failure_rate,
                        metavar="R", help="and pauses the type once at least R of them "
                                          f"failed (default {circuit.failure_rate:g})")
    parser.add_argument("--circuit-cool-down", type=_seconds, default=circuit.cool_down,
                        metavar="S", help="seconds before one attempt probes a paused type "
                                          f"(default {circuit.cool_down:g})")


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The options `add_engine_arguments` parsed."""
    default = RetryPolicy()
    retry = RetryPolicy(maximum_attempts=args.max_attempts,
                        initial_interval=args.retry_interval,
                        maximum_interval=max(default.maximum_interval, args.retry_interval))
    return EngineOptions(
        concurrency=args.concurrency, retry=retry, health_interval=args.health_interval,
        seed=args.seed, demo_duration=args.demo_duration,
        demo_failure_rate=args.demo_failure_rate,
        circuit=CircuitSettings(args.circuit_window, args.circuit_failure_rate,
                                args.circuit_cool_down),
        agents_on=args.agents_on)


def _duration_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX seconds, got {text!r}") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX, got {text!r}")
    return low, high


def _rate(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {text!r}")
    return value


def _share(text: str) -> float:
    value = _rate(text)
    if value == 0:
        raise argparse.ArgumentTypeError("a share above 0 is needed")
    return value


def positive_int(text: str) -> int:
    """A flag's whole number of 1 or more (argparse's type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {text!r}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value
