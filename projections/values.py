"""The values read models hold, written the same way by every view: JSON text (fast, with
the types events carry), ISO times, canonical ids, and SQL parameter lists in chunks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

T = TypeVar("T")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    # An unexpected type in an agent's result must not make the event unprojectable.
    return repr(value)


# json.dumps with options builds a new encoder for every call, which costs more than the
# encoding itself. The C encoder, built once, writes the same text about three times faster.
# It skips the check for circular references: decoded events and JSON values have none.
_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed
_C_ENCODER = _make_encoder and _make_encoder(
    None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), ensure_ascii=False)


def to_json(value: Any) -> str:
    if _C_ENCODER is None:  # Python builds without the _json accelerator
        return _ENCODER.encode(value)
    return "".join(_C_ENCODER(value, 0))


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def uuid_text(value: UUID | str) -> str | None:
    """The canonical text of an id, or None when `value` is not a UUID at all."""
    try:
        return str(value if isinstance(value, UUID) else UUID(value))
    except ValueError:
        return None


def chunks(items: Sequence[T], size: int = 500) -> list[Sequence[T]]:
    """SQL parameter lists small enough for every SQLite build."""
    return [items[i:i + size] for i in range(0, len(items), size)]
