"""What every view has in common: its tables, its schema, and dispatch on the event's type.

A view's `apply(cur, position, event)` runs inside the runner's transaction, so it may read
other views' tables: the catalog orders the views so that those reads see the right state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from sqlite3 import Cursor
from typing import Any, ClassVar
from uuid import UUID

Handler = Callable[[Cursor, int, Any], None]


class View:
    """A read model: subclasses name their tables and map event classes to handlers."""

    name: ClassVar[str]
    tables: ClassVar[Mapping[str, tuple[str, ...]]]  # table -> primary-key columns
    schema: ClassVar[tuple[str, ...]]  # CREATE ... IF NOT EXISTS, one statement each

    def handlers(self) -> Mapping[type, Handler]:
        raise NotImplementedError

    @cached_property
    def _dispatch(self) -> Mapping[type, Handler]:
        return self.handlers()

    def apply(self, cur: Cursor, position: int, event: Any) -> None:
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(cur, position, event)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    # An unexpected type in an agent's result must not make the event unprojectable.
    return repr(value)


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def uuid_text(value: UUID | str) -> str | None:
    """The canonical text of an id, or None when `value` is not a UUID at all."""
    try:
        return str(value if isinstance(value, UUID) else UUID(value))
    except ValueError:
        return None


def chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """SQL parameter lists small enough for every SQLite build."""
    return [items[i:i + size] for i in range(0, len(items), size)]
