"""The interface an agent implements: one synchronous call per attempt.

A handler class is built once per agent type at start-up as `Handler(agent_type, options)`,
where `options` is the type's `[agents.<type>.options]` table of the config file (a plain
mapping of TOML values); it checks them there and raises `OptionError(key, problem)` for a
missing or mistyped one, so a bad configuration stops start-up instead of failing attempts.

A real email, content or research agent is a class with an `agent_type` and a `run` method.
`run` gets the attempt (`AgentTask`, with an idempotency key so that a retried or
re-delivered attempt can be recognised by the outside world) and a `TaskContext` to report
progress and to notice cancellation. It returns a small JSON-able dict: what it produced.
To fail, it raises: `AgentError` says what kind of failure it was and whether another
attempt could help; any other exception is a retryable failure of kind "exception".
Handlers run on the agent's worker threads (or on Celery workers: `stratexec worker`), at
most `concurrency` at a time per agent type.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from stratexec.actors.messages import AgentTask


class AgentError(Exception):
    def __init__(self, kind: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable


class OptionError(ValueError):
    """A handler's option is missing or wrong: `key` names it within the type's options."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class AgentLimits:
    """How one agent type runs, beside which handler runs it."""

    concurrency: int = 4  # attempts at once
    timeout: float | None = None  # seconds an attempt may run, start to end
    heartbeat_timeout: float | None = None  # with it, a progress report extends the deadline


class TaskContext:
    """Handed to a handler for one attempt: progress reports and a cancellation flag."""

    def __init__(
        self, report: Callable[[float, str], None], cancel_event: threading.Event | None = None
    ) -> None:
        self._report = report
        self.cancel_event = cancel_event or threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def report_progress(self, fraction: float, message: str = "") -> None:
        self._report(fraction, message)

    def wait_cancelled(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early (True) if the attempt is cancelled."""
        return self.cancel_event.wait(timeout)


class AgentHandler(Protocol):
    agent_type: str

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]: ...
