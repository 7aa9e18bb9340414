"""The eventsourcing Application: get -> call -> save, and the msgpack transcoder.

One Application holds every aggregate (strategies, executions, health), so one notification
log orders every event. Events are encoded with msgpack; changing the transcoder would make
stored events unreadable, so it is fixed here and not configurable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Notification, Recording, Transcoder

from stratexec.domain.access import AccessToken, token_id
from stratexec.domain.circuit import AgentCircuit, agent_circuit_id
from stratexec.domain.errors import NotFound
from stratexec.domain.execution import Execution
from stratexec.domain.health import ExecutionHealth, health_id
from stratexec.domain.propagation import Plan, propagate
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import Strategy, StrategyDefinition

_UUID, _DATETIME, _DECIMAL, _DATE = 1, 2, 3, 4


def _encode_extra(obj: Any) -> msgpack.ExtType:
    if isinstance(obj, UUID):
        return msgpack.ExtType(_UUID, obj.bytes)
    if isinstance(obj, datetime):  # before date: datetime is a subclass of date
        return msgpack.ExtType(_DATETIME, obj.isoformat().encode())
    if isinstance(obj, date):
        return msgpack.ExtType(_DATE, obj.isoformat().encode())
    if isinstance(obj, Decimal):
        return msgpack.ExtType(_DECIMAL, str(obj).encode())
    raise TypeError(f"cannot encode {type(obj).__name__} in an event: {obj!r}")


def _decode_extra(code: int, data: bytes) -> Any:
    if code == _UUID:
        return UUID(bytes=data)
    if code == _DATETIME:
        return datetime.fromisoformat(data.decode())
    if code == _DATE:
        return date.fromisoformat(data.decode())
    if code == _DECIMAL:
        return Decimal(data.decode())
    return msgpack.ExtType(code, data)


class MsgpackTranscoder(Transcoder):
    """msgpack with UUID, datetime, date and Decimal as extension types. Tuples become lists."""

    def encode(self, obj: Any) -> bytes:
        packed: bytes = msgpack.packb(obj, default=_encode_extra, use_bin_type=True)
        return packed

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=_decode_extra, raw=False, strict_map_key=False)


# The explicit topics the Execution aggregate registers for its lifecycle events: Started
# opens an execution, TasksRetried reopens a failed one, the others finish it.
EXECUTION_LIFECYCLE_TOPICS = tuple(f"stratexec:Execution.{name}" for name in (
    "Started", "Completed", "Failed", "Cancelled", "TasksRetried"))
FINISHED_TOPICS = frozenset(EXECUTION_LIFECYCLE_TOPICS[1:4])
TOKEN_ISSUED_TOPIC = "stratexec:AccessToken.Issued"


class StratexecApp(Application[UUID]):
    """Every aggregate of stratexec, on the store the environment names (SQLite, PostgreSQL)."""

    name = "stratexec"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._listeners: list[Callable[[int], None]] = []
        self._listeners_lock = threading.Lock()
        self.save_observers: list[Callable[[float], None]] = []

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save, and tell `save_observers` how long the append took (for /metrics)."""
        started = time.perf_counter()
        recordings = super().save(*objs, **kwargs)
        elapsed = time.perf_counter() - started
        for observe in self.save_observers:
            observe(elapsed)
        return recordings

    def record(self, *objs: Any) -> int:
        """Save, and return the log position the save reached (0 when it held nothing)."""
        recordings = self.save(*objs)
        return recordings[-1].notification.id if recordings else 0

    # ------------------------------------------------------------ strategies

    def define_strategy(self, definition: StrategyDefinition, plan: Plan | None = None
                        ) -> tuple[Strategy, int]:
        """Record the strategy, whose plan is `plan` (computed when not given: a strategy
        without a plan is never recorded); the strategy and the log position reached."""
        plan = plan or propagate(definition.items)
        strategy = Strategy.define(definition, task_count=len(plan.tasks))
        return strategy, self.record(strategy)

    def get_strategy(self, strategy_id: UUID) -> Strategy:
        try:
            return self.repository.get(strategy_id)
        except AggregateNotFoundError:
            raise NotFound(f"no strategy {strategy_id}") from None

    # ------------------------------------------------------------ executions

    def create_execution(
        self, strategy: Strategy, plan: Plan | None = None,
        retry_policy: RetryPolicy | None = None,
        agent_retry_policies: Mapping[str, RetryPolicy] | None = None,
        request: tuple[str, str] | None = None,
    ) -> tuple[Execution, int]:
        """Record a new execution of `strategy` with its plan (computed with the default
        rules when not given) and its retry policies (`agent_retry_policies` per agent type,
        over `retry_policy`); the execution and the log position reached. `request`: the
        scoped key and fingerprint of an idempotent start; the store's IntegrityError when
        that key started an execution already."""
        request_key, fingerprint = request or (None, None)
        execution = Execution.start(
            strategy.id, strategy.workspace_id, strategy.name,
            plan or propagate(strategy.definition.items), retry_policy or RetryPolicy(),
            agent_retry_policies, request_key, fingerprint)
        return execution, self.record(execution)

    def get_execution(self, execution_id: UUID, version: int | None = None) -> Execution:
        try:
            return self.repository.get(execution_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"no execution {execution_id}") from None

    def unfinished_execution_ids(self) -> list[UUID]:
        """Executions started but not finished, oldest first, read from the log itself."""
        unfinished: dict[UUID, None] = {}
        for notification in self.read_notifications(topics=EXECUTION_LIFECYCLE_TOPICS):
            execution_id = UUID(str(notification.originator_id))
            if notification.topic in FINISHED_TOPICS:
                unfinished.pop(execution_id, None)
            else:
                unfinished[execution_id] = None
        return list(unfinished)

    # ---------------------------------------------------------------- access

    def issue_token(self, user: str, workspaces: list[str], label: str = ""
                    ) -> tuple[AccessToken, str]:
        token, secret = AccessToken.issue(user, workspaces, label)
        self.save(token)
        return token, secret

    def find_token(self, secret: str) -> AccessToken | None:
        """The live token with this secret, or None (unknown, revoked, or not a secret at
        all: a token is printable ASCII, and a header need not be)."""
        if not (secret.isascii() and secret.isprintable()):
            return None
        try:
            token: AccessToken = self.repository.get(token_id(secret))
        except AggregateNotFoundError:
            return None
        return None if token.revoked else token

    def list_tokens(self) -> list[AccessToken]:
        """Every token ever issued, revoked ones too, oldest first, read from the log."""
        issued = self.read_notifications(topics=(TOKEN_ISSUED_TOPIC,))
        return [self.repository.get(UUID(str(n.originator_id))) for n in issued]

    def revoke_token(self, token_or_secret: str) -> AccessToken:
        """Revoke by the token's id or by its secret."""
        try:
            aggregate_id = UUID(token_or_secret)
        except ValueError:
            aggregate_id = token_id(token_or_secret)
        try:
            token: AccessToken = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound("no such token") from None
        token.revoke()
        self.save(token)
        return token

    # ---------------------------------------------------------------- health

    def get_health(self, execution_id: UUID) -> ExecutionHealth | None:
        try:
            return self.repository.get(health_id(execution_id))
        except AggregateNotFoundError:
            return None

    # -------------------------------------------------------- agent circuits

    def get_agent_circuit(self, agent_type: str) -> AgentCircuit | None:
        """The recorded circuit of an agent type (None until its breaker first opened)."""
        try:
            return self.repository.get(agent_circuit_id(agent_type))
        except AggregateNotFoundError:
            return None

    # ------------------------------------------------------------- the log

    def read_notifications(
        self, after: int = 0, page_size: int = 1000, topics: Sequence[str] = (),
        stop: int | None = None,
    ) -> Iterator[Notification]:
        """Every notification after position `after` (up to `stop`), in order, page by page."""
        position = after
        while True:
            page = self.recorder.select_notifications(
                start=position, limit=page_size, inclusive_of_start=False, topics=topics,
                stop=stop)
            yield from page
            if len(page) < page_size:
                return
            position = page[-1].id

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call `listener(max position)` after every save in this process (a wake-up only)."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[int], None]) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if not recordings:
            return
        position = max(r.notification.id for r in recordings)
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(position)
