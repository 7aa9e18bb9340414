"""When an agent type's circuit breaker pauses it: `CircuitSettings`, one per agent type.

A module of its own, which imports nothing of stratexec: the configuration file
(`[agents.<type>.circuit_breaker]`, or `[circuit_breaker]` for every type; stratexec.config)
makes them, and the actors use them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CircuitSettings:
    """Pause an agent type once at least `failure_rate` of its last `window` finished
    attempts failed; after `cool_down` seconds, one attempt probes whether it works again."""

    window: int = 10
    failure_rate: float = 0.5
    cool_down: float = 30.0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be at least 1 attempt, got {self.window}")
        if not 0 < self.failure_rate <= 1:
            raise ValueError(f"failure_rate must be in (0, 1], got {self.failure_rate}")
        if self.cool_down < 0:
            raise ValueError(f"cool_down must be at least 0 seconds, got {self.cool_down}")
