"""`stratexec worker`: a Celery worker running the configured handlers of the agent types it
serves (all of them by default, one queue each), for engines started with
`--agents-on celery`.

It reads the same configuration file as the engine (`--config`, `STRATEXEC_CONFIG` or
./stratexec.toml): each type's handler and options, and its `timeout`, from which the
visibility timeout is set. The types left to the demo agent take `--demo-duration`,
`--demo-failure-rate` and `--seed`. It runs Celery's prefork pool (`--concurrency` processes,
Celery's default: one per CPU), where a cancel can terminate a running attempt.
"""

from __future__ import annotations

import argparse
import os

from stratexec.config import ConfigError, load_config
from stratexec.engine import demo_options
from stratexec.settings import EngineOptions
from stratexec.workers.connection import (
    CelerySettings,
    celery_app,
    redis_client,
    visibility_timeout,
)
from stratexec.workers.task import AttemptDeliveries, register


def run(args: argparse.Namespace) -> int:
    """Blocks until the worker stops (SIGTERM or Ctrl-C: a warm shutdown)."""
    config = load_config(args)
    known = config.agent_types
    served = args.queues or list(known)
    unknown = [t for t in served if t not in known]
    if unknown:
        raise ConfigError(config.name, None, f"--queues: unknown agent type(s) "
                          f"{', '.join(unknown)} (known: {', '.join(known)})")
    options = EngineOptions(seed=args.seed, demo_duration=args.demo_duration,
                            demo_failure_rate=args.demo_failure_rate)
    handlers = config.handlers(demo_options(options))
    try:
        settings = CelerySettings.from_environment()
    except ValueError as error:
        raise ConfigError("(environment)", None, str(error)) from None
    app = celery_app(settings, visibility_timeout(config.agent(t).timeout for t in served))
    register(app, AttemptDeliveries({t: handlers[t] for t in served}, settings,
                                    redis_client(settings)))
    app.worker_main(_worker_argv(settings, served, args.concurrency))
    return 0


def _worker_argv(settings: CelerySettings, served: list[str], concurrency: int | None
                 ) -> list[str]:
    argv: list[str] = [
        "worker", "--queues", ",".join(settings.queue(t) for t in served),
        "--pool", "prefork", "--hostname", f"stratexec-{os.getpid()}@%h",
        "--loglevel", "WARNING",
        "--without-gossip", "--without-mingle"]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    return argv
