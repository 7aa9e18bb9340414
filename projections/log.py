"""The notification log read for projecting: a page of (position, domain event) at a time.

eventsourcing reads a page as `Notification` objects (a frozen dataclass each, with a new UUID
for every row) which its mapper then turns into events. For the projection runner that was
a third of the cost of reading and decoding, the rest being msgpack itself. Here each store
is asked for plain rows, each aggregate id becomes a UUID once per page, and each event is
made as the mapper makes it: the decoded state set as the new object's `__dict__`. Stores
or pipelines this does not know (the in-memory store, a cipher or a compressor, an event
class with upcasting) go through the library's own path.

`sqlite_rows` and `postgres_rows` are the per-store reads, shared with `projections.audit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import resolve_topic
from psycopg.sql import SQL, Identifier

from stratexec.domain.application import StratexecApp

Page = list[tuple[int, Any]]  # (log position, domain event), by position


def read_events(app: StratexecApp, after: int, limit: int) -> Page:
    """The first `limit` events after position `after`."""
    mapper, recorder = app.mapper, app.recorder
    if mapper.cipher is None and mapper.compressor is None:
        if isinstance(recorder, SQLiteApplicationRecorder):  # ids stored as text
            rows = sqlite_rows(recorder, "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                               (after, limit))
            return _decode(app, rows, recorder.convert_originator_id)
        if isinstance(recorder, PostgresApplicationRecorder):  # ids come back as UUIDs
            rows = postgres_rows(recorder, "WHERE notification_id > %s"
                                 " ORDER BY notification_id LIMIT %s", (after, limit))
            return _decode(app, rows, lambda value: value)
    notifications = islice(app.read_notifications(after=after, page_size=limit), limit)
    return [(n.id, mapper.to_domain_event(n)) for n in notifications]


Rows = list[tuple[int, Any, int, str, bytes]]  # position, originator id, version, topic, state
_COLUMNS = "originator_id, originator_version, topic, state"


def sqlite_rows(recorder: SQLiteApplicationRecorder, where: str, params: Sequence[Any]) -> Rows:
    """The stored events `where` selects (a constant clause: `rowid` is the position)."""
    statement = f"SELECT rowid, {_COLUMNS} FROM {recorder.events_table_name} {where}"
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.sqlite_cursor.row_factory = None  # plain tuples, not sqlite3.Row
        cursor.execute(statement, params)
        rows: Rows = cursor.fetchall()
    return rows


def postgres_rows(recorder: PostgresApplicationRecorder, where: str, params: Sequence[Any],
                  ) -> Rows:
    """The stored events `where` selects (a constant clause: `notification_id` is the
    position). One statement on an autocommit connection is its own snapshot: no BEGIN
    and ROLLBACK around it, two round trips fewer per page."""
    query = SQL(f"SELECT notification_id, {_COLUMNS} FROM {{schema}}.{{table}} {where}").format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name))
    with recorder.datastore.get_connection() as connection:
        cursor = connection.execute(query, params, prepare=True)
        return [(row["notification_id"], row["originator_id"], row["originator_version"],
                 row["topic"], bytes(row["state"])) for row in cursor.fetchall()]


def _decode(app: StratexecApp, rows: Rows, convert_id: Callable[[Any], UUID | str]) -> Page:
    decode = app.mapper.transcoder.decode
    ids: dict[Any, UUID | str] = {}  # a page's events come from a few aggregates
    page: Page = []
    for position, stored_id, version, topic, state in rows:
        originator_id = ids.get(stored_id)
        if originator_id is None:
            originator_id = ids[stored_id] = convert_id(stored_id)
        cls = resolve_topic(topic)
        if getattr(cls, "class_version", 1) != 1:  # upcasting: the mapper knows how
            page.append((position, app.mapper.to_domain_event(Notification(
                id=position, originator_id=originator_id, originator_version=version,
                topic=topic, state=state))))
            continue
        event_state = decode(state)
        event_state["originator_id"] = originator_id
        event_state["originator_version"] = version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)  # as eventsourcing's mapper does
        page.append((position, event))
    return page
