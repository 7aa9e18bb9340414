"""The circuit of one agent type: paused while its attempts fail too often.

The breaker that watches the attempts (`actors.circuit.CircuitBreaker`, held by the agent
type's actor) decides when; this aggregate records each change, so that a restart keeps a
paused type paused until its probe is due. States: closed (attempts start freely) -> open
(`Paused`: none start, until `probe_at`) -> half-open (`Probing`: one attempt, the probe,
is under way) -> closed (`Resumed` by a successful probe) or open again (`Paused`, by the
probe's failure). An operator may resume an open or half-open circuit at any time.

Its id is derived from the agent type, so that the type's actor finds it after a restart.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from stratexec.domain.errors import InvalidTransition


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


PAUSED = frozenset({CircuitState.OPEN, CircuitState.HALF_OPEN})
BY_PROBE, BY_OPERATOR = "probe", "operator"


def agent_circuit_id(agent_type: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"stratexec:agent-circuit:{agent_type}")


class AgentCircuit(Aggregate):
    TOPIC = "stratexec:AgentCircuit"

    class Created(Aggregate.Created):
        TOPIC = "stratexec:AgentCircuit.Created"

    @staticmethod
    def create_id(agent_type: str) -> UUID:
        return agent_circuit_id(agent_type)

    @event("Watched", topic="stratexec:AgentCircuit.Watched")
    def __init__(self, agent_type: str) -> None:
        self.agent_type = agent_type
        self.state = CircuitState.CLOSED
        self.failure_rate: float | None = None
        self.attempts: list[str] = []  # the failed attempts that paused it (idempotency keys)
        self.probe_at: datetime | None = None
        self.probe: str | None = None  # the probing attempt's idempotency key

    @property
    def is_paused(self) -> bool:
        return self.state in PAUSED

    def pause(self, failure_rate: float, window: int, attempts: list[str], probe_at: datetime
              ) -> None:
        """`attempts` of the last `window` failed (`failure_rate` of them): pause until
        `probe_at`. A failed probe pauses again with itself as the window."""
        if self.state is CircuitState.OPEN:
            raise self._refused("pause", "it is paused already")
        self._paused(failure_rate=failure_rate, window=window, attempts=list(attempts),
                     probe_at=probe_at)

    def start_probe(self, attempt: str) -> None:
        """One attempt probes (half-open); another may replace a probe lost in a restart."""
        if not self.is_paused:
            raise self._refused("probe", "it is not paused")
        self._probing(attempt=attempt)

    def resume(self, by: str, attempt: str | None = None) -> None:
        """Resume by a successful probe (`attempt`), or by an operator."""
        if not self.is_paused:
            raise self._refused("resume", "it is not paused")
        self._resumed(by=by, attempt=attempt)

    def _refused(self, command: str, why: str) -> InvalidTransition:
        return InvalidTransition(f"cannot {command} agent type {self.agent_type!r}: {why}",
                                 {"agentType": self.agent_type, "state": str(self.state)})

    @event("Paused", topic="stratexec:AgentCircuit.Paused")
    def _paused(self, failure_rate: float, window: int, attempts: list[str],
                probe_at: datetime) -> None:
        self.state = CircuitState.OPEN
        self.failure_rate = failure_rate
        self.attempts = attempts
        self.probe_at = probe_at
        self.probe = None

    @event("Probing", topic="stratexec:AgentCircuit.Probing")
    def _probing(self, attempt: str) -> None:
        self.state = CircuitState.HALF_OPEN
        self.probe = attempt

    @event("Resumed", topic="stratexec:AgentCircuit.Resumed")
    def _resumed(self, by: str, attempt: str | None) -> None:
        self.state = CircuitState.CLOSED
        self.probe_at = None
        self.probe = None
