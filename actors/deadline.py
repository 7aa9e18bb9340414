"""When a running attempt must end: the agent type's timeouts, as Temporal has them.

`timeout` is start-to-close: the attempt must end within that many seconds of its start,
however often it reports progress. `heartbeat_timeout` is the longest gap allowed between
two progress reports (the start counts as the first): with it alone, an attempt that keeps
reporting may run for as long as it needs; with both, it may run until its `timeout`.
An attempt past `timeout` fails with kind `timeout`; one whose last report is older than
`heartbeat_timeout` with kind `heartbeat_timeout`. Both are retryable.

A `Deadline` is plain bookkeeping on `time.monotonic` (a wall-clock jump moves nothing):
the worker thread `beat`s it on each progress report, the agent actor asks when it is `due`
and whether it has `expired`.
"""

from __future__ import annotations

import threading
import time

from stratexec.actors.agents.base import AgentLimits

TIMEOUT, HEARTBEAT_TIMEOUT = "timeout", "heartbeat_timeout"


def check_limits(limits: AgentLimits) -> None:
    for name, value in (("timeout", limits.timeout),
                        ("heartbeat_timeout", limits.heartbeat_timeout)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value}")


def watched(limits: AgentLimits) -> bool:
    """Does an attempt of this agent type have a deadline at all?"""
    return limits.timeout is not None or limits.heartbeat_timeout is not None


class Deadline:
    def __init__(self, limits: AgentLimits, began: float | None = None) -> None:
        self.timeout = limits.timeout
        self.heartbeat_timeout = limits.heartbeat_timeout
        self.began = time.monotonic() if began is None else began
        self._last_beat = self.began
        self._lock = threading.Lock()  # beaten on the worker thread, read on the actor's

    def beat(self, now: float | None = None) -> None:
        with self._lock:
            self._last_beat = time.monotonic() if now is None else now

    @property
    def last_beat(self) -> float:
        with self._lock:
            return self._last_beat

    def due(self) -> float:
        """The earliest monotonic time at which the attempt may have expired."""
        candidates = []
        if self.timeout is not None:
            candidates.append(self.began + self.timeout)
        if self.heartbeat_timeout is not None:
            candidates.append(self.last_beat + self.heartbeat_timeout)
        return min(candidates, default=float("inf"))

    def expired(self, now: float) -> str | None:
        """TIMEOUT or HEARTBEAT_TIMEOUT once the attempt is past one of them, else None."""
        if self.timeout is not None and now >= self.began + self.timeout:
            return TIMEOUT
        if self.heartbeat_timeout is not None and (
                now >= self.last_beat + self.heartbeat_timeout):
            return HEARTBEAT_TIMEOUT
        return None

    def describe(self, kind: str, now: float) -> str:
        """The failure's message: which limit the attempt passed."""
        if kind == TIMEOUT:
            return (f"the attempt ran for {now - self.began:.3g} s, past its agent type's "
                    f"timeout of {self.timeout:g} s; it was cancelled")
        return (f"no progress report for {now - self.last_beat:.3g} s, past its agent type's "
                f"heartbeat timeout of {self.heartbeat_timeout:g} s; it was cancelled")
