"""When a failed task is tried again, modelled on Temporal's retry policy.

The default gives the seed's behaviour: up to 3 retries (4 attempts in all), the first one
second after the failure, then exponential backoff (x2) capped at 60 s, with +/-10% jitter so
that many tasks failing together do not retry in lockstep. Errors whose kind is listed in
`non_retryable` fail the task at once. An attempt lost in a crash (the process stopped while
it was under way) is not a failure, and its task runs again at once, but it uses up one of
`maximum_attempts`: a task that stops the process whenever it runs ends after that many.
One handed back unstarted (on pause) uses up nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    maximum_attempts: int = 4
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float = 60.0
    jitter: float = 0.1
    non_retryable: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.maximum_attempts < 1:
            raise ValueError("maximum_attempts must be at least 1")
        if self.initial_interval < 0 or self.maximum_interval < self.initial_interval:
            raise ValueError("need 0 <= initial_interval <= maximum_interval")
        if self.backoff_coefficient < 1:
            raise ValueError("backoff_coefficient must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def should_retry(self, failures: int, error_kind: str, retryable: bool = True) -> bool:
        """After `failures` failed attempts (this one included), is there another?"""
        return retryable and error_kind not in self.non_retryable and (
            failures < self.maximum_attempts)

    def delay(self, failures: int, random_unit: float = 0.5) -> float:
        """Seconds to wait after the `failures`-th failure; `random_unit` in [0, 1) jitters."""
        base = min(
            self.initial_interval * self.backoff_coefficient ** (failures - 1),
            self.maximum_interval,
        )
        return max(0.0, base * (1 + self.jitter * (2 * random_unit - 1)))

    def as_record(self) -> dict[str, Any]:
        return {
            "maximumAttempts": self.maximum_attempts,
            "initialInterval": self.initial_interval,
            "backoffCoefficient": self.backoff_coefficient,
            "maximumInterval": self.maximum_interval,
            "jitter": self.jitter,
            "nonRetryable": sorted(self.non_retryable),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RetryPolicy:
        return cls(
            maximum_attempts=record["maximumAttempts"],
            initial_interval=record["initialInterval"],
            backoff_coefficient=record["backoffCoefficient"],
            maximum_interval=record["maximumInterval"],
            jitter=record["jitter"],
            non_retryable=frozenset(record["nonRetryable"]),
        )
