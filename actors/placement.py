"""Where a runtime's attempts run, independent of which handler runs them.

The embedded default (`LocalPlacement`) runs them on the engine's own threads: an attempt
under way dies with the process, and a restart interrupts it (a new attempt). With
`--agents-on celery`, `stratexec.workers.dispatch.CeleryPlacement` sends them to Celery
workers: an attempt outlives the engine, and a restart `collect`s the outcomes of those that
finished meanwhile before it continues the others.
"""

from __future__ import annotations

from typing import Any, Protocol

from stratexec.actors.agent import AttemptRunner, LocalRunner
from stratexec.actors.agents.base import AgentHandler, AgentLimits
from stratexec.actors.execution import Collect


class Placement(Protocol):
    name: str

    def runner(self, handler: AgentHandler, limits: AgentLimits) -> AttemptRunner: ...

    @property
    def collect(self) -> Collect | None:
        """None when attempts under way die with the process."""

    def health(self) -> dict[str, Any] | None:
        """What `/healthz` shows of the workers (None: there are none)."""

    def close(self) -> None: ...


class LocalPlacement:
    name = "local"
    collect = None

    def runner(self, handler: AgentHandler, limits: AgentLimits) -> AttemptRunner:
        return LocalRunner(handler, limits.concurrency)

    def health(self) -> dict[str, Any] | None:
        return None

    def close(self) -> None:
        pass
