"""The circuit breaker of one agent type: plain bookkeeping, no threads, no store.

Its AgentActor tells it each finished attempt (`finished`) and asks it before starting one
(`may_start`). Closed, it keeps the outcomes of the type's last `window` finished attempts,
across executions; once the window is full and at least `failure_rate` of it failed, it opens
and returns `Opened`, naming the failed attempts. Open, no attempt starts; when the cool-down
has passed (`probe_due`, told by the clock) it is half-open: exactly one attempt, the probe,
may start. The probe's success closes it (`Closed`), its failure opens it for another
cool-down. A manual `reset` closes it at once. Closing empties the window.

Only real outcomes count: an attempt withdrawn or cancelled with its execution is passed as
`failed=None` and changes nothing (a probe so withdrawn lets another attempt probe). Attempts
that finish while the circuit is open, or besides the probe, are not counted either: they
were started before it opened.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from stratexec.circuit_settings import CircuitSettings
from stratexec.domain.circuit import CircuitState


@dataclass(frozen=True)
class Opened:
    """The circuit opened: `attempts` (failed, of the last `window`) until `probe_at`."""

    failure_rate: float
    window: int
    attempts: tuple[str, ...]
    probe_at: datetime


@dataclass(frozen=True)
class Closed:
    """The probe `attempt` succeeded: the circuit is closed again."""

    attempt: str


class CircuitBreaker:
    def __init__(self, settings: CircuitSettings) -> None:
        self.settings = settings
        self.state = CircuitState.CLOSED
        self.probe_at: datetime | None = None  # when an open circuit may probe
        self.probe: str | None = None  # the half-open circuit's probe, once started
        self._window: deque[tuple[str, bool]] = deque(maxlen=settings.window)
        self._failures = 0  # how many of the window failed

    @property
    def is_open(self) -> bool:
        return self.state is not CircuitState.CLOSED

    def may_start(self) -> bool:
        """Closed: any attempt may start; half-open: the probe, if none started yet."""
        return self.state is CircuitState.CLOSED or (
            self.state is CircuitState.HALF_OPEN and self.probe is None)

    def starting(self, key: str) -> bool:
        """An attempt starts (after `may_start`); True when it is the probe."""
        if self.state is CircuitState.HALF_OPEN and self.probe is None:
            self.probe = key
            return True
        return False

    def finished(self, key: str, failed: bool | None, now: datetime) -> Opened | Closed | None:
        """An attempt finished: failed, succeeded, or (None) withdrawn. What changed."""
        if self.state is CircuitState.HALF_OPEN and key == self.probe:
            if failed is None:
                self.probe = None  # withdrawn: the next attempt probes
                return None
            if failed:
                return self._open(1.0, 1, (key,), now)
            self.reset()
            return Closed(key)
        if self.state is not CircuitState.CLOSED or failed is None:
            return None
        window = self._window
        if len(window) == window.maxlen and window[0][1]:
            self._failures -= 1
        window.append((key, failed))
        self._failures += failed
        rate = self._failures / len(window)
        if len(window) == window.maxlen and rate >= self.settings.failure_rate:
            return self._open(rate, len(window), tuple(k for k, f in window if f), now)
        return None

    def probe_due(self, probe_at: datetime) -> bool:
        """The clock says the cool-down ending at `probe_at` is over: half-open, unless the
        circuit closed or opened anew since (True when it is half-open now)."""
        if self.state is CircuitState.OPEN and self.probe_at == probe_at:
            self.state = CircuitState.HALF_OPEN
            self.probe = None
        return self.state is CircuitState.HALF_OPEN

    def reset(self) -> None:
        """Closed, with an empty window (by a successful probe, or by hand)."""
        self.state = CircuitState.CLOSED
        self.probe_at = self.probe = None
        self._window.clear()
        self._failures = 0

    def restore(self, probe_at: datetime) -> None:
        """Open, as recorded before a restart, probing at `probe_at` (a probe that was under
        way was lost with the process: the next attempt probes again)."""
        self.reset()
        self.state = CircuitState.OPEN
        self.probe_at = probe_at

    def _open(self, rate: float, window: int, attempts: tuple[str, ...], now: datetime
              ) -> Opened:
        probe_at = now + timedelta(seconds=self.settings.cool_down)
        self.reset()
        self.state, self.probe_at = CircuitState.OPEN, probe_at
        return Opened(round(rate, 4), window, attempts, probe_at)
