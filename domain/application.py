"""The eventsourcing Application: get -> call -> save, and the msgpack transcoder.

One Application holds every aggregate (strategies, executions, health), so one notification
log orders every event. Events are encoded with msgpack; changing the transcoder would make
stored events unreadable, so it is fixed here and not configurable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Notification, Recording, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from domain.errors import NotFound
from domain.execution import Execution
from domain.health import ExecutionHealth, health_id
from domain.propagation import PropagationRules, propagate
from domain.retry import RetryPolicy
from domain.strategy import Strategy, StrategyDefinition

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


# The explicit topics the Execution aggregate registers for its lifecycle events.
EXECUTION_LIFECYCLE_TOPICS = tuple(f"stratexec:Execution.{name}" for name in (
    "Started", "Completed", "Failed", "Cancelled"))
FINISHED_TOPICS = frozenset(EXECUTION_LIFECYCLE_TOPICS[1:])


class StratexecApp(Application[UUID]):
    """Every aggregate of stratexec, on the store the environment names (SQLite, PostgreSQL)."""

    name = "stratexec"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._listeners: list[Callable[[int], None]] = []
        self._listeners_lock = threading.Lock()

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    # ------------------------------------------------------------ strategies

    def define_strategy(self, definition: StrategyDefinition) -> Strategy:
        propagate(definition.items)  # a plan that cannot be made is rejected before recording
        strategy = Strategy.define(definition)
        self.save(strategy)
        return strategy

    def get_strategy(self, strategy_id: UUID) -> Strategy:
        try:
            return self.repository.get(strategy_id)
        except AggregateNotFoundError:
            raise NotFound(f"no strategy {strategy_id}") from None

    # ------------------------------------------------------------ executions

    def create_execution(
        self, strategy_id: UUID, rules: PropagationRules | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> Execution:
        strategy = self.get_strategy(strategy_id)
        plan = propagate(strategy.definition.items, rules)
        execution = Execution.start(
            strategy.id, strategy.workspace_id, strategy.name, plan,
            retry_policy or RetryPolicy())
        self.save(execution)
        return execution

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

    # ---------------------------------------------------------------- health

    def get_health(self, execution_id: UUID) -> ExecutionHealth | None:
        try:
            return self.repository.get(health_id(execution_id))
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

    def aggregate_history(self, originator_id: UUID) -> list[Notification]:
        """The notifications of one aggregate in version order, each with its log position."""
        recorder = self.recorder
        if isinstance(recorder, SQLiteApplicationRecorder):
            statement = (f"SELECT rowid AS id, * FROM {recorder.events_table_name} "
                         "WHERE originator_id=? ORDER BY originator_version")
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(statement, [originator_id.hex])
                rows = cursor.fetchall()
        elif isinstance(recorder, PostgresApplicationRecorder):
            query = SQL("SELECT notification_id AS id, * FROM {schema}.{table} "
                        "WHERE originator_id=%s ORDER BY originator_version").format(
                schema=Identifier(recorder.datastore.schema),
                table=Identifier(recorder.events_table_name))
            with recorder.datastore.transaction(commit=False) as pg_cursor:
                pg_cursor.execute(query, [originator_id])
                rows = pg_cursor.fetchall()
        else:  # the in-memory store of unit tests: scan the log
            return [n for n in self.read_notifications() if n.originator_id == originator_id]
        return [Notification(id=row["id"], originator_id=originator_id,
                             originator_version=row["originator_version"],
                             topic=row["topic"], state=bytes(row["state"]))
                for row in rows]

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
