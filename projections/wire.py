"""The one place where the events' snake_case field names become the wire's camelCase.

Events and read-model columns keep Python's snake_case; the HTTP answers and the streams
speak camelCase. Whatever puts an event's fields on the wire names them here: history
`data`, the feed's stream `data`, health snapshots. Only field names change: values are
kept as recorded, and so are the keys inside them, which are data rather than field names
(an agent's result, metrics keyed by agent type and task status, a plan's records).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

# What eventsourcing adds to every event's state; not the event's own fields.
ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


@cache
def camel_case(name: str) -> str:
    """`avg_task_duration_ms` -> `avgTaskDurationMs`; a name without `_` is unchanged."""
    head, *words = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in words)


def camel(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The same fields, in the same order, named as on the wire."""
    return {camel_case(name): value for name, value in fields.items()}


def payload(event: object) -> dict[str, Any]:
    """An event's own fields (its state without the envelope), named as on the wire."""
    return camel({name: value for name, value in vars(event).items()
                  if name not in ENVELOPE})


def pick(event: object, *names: str) -> dict[str, Any]:
    """Some of an event's fields, named as on the wire."""
    return {camel_case(name): getattr(event, name) for name in names}
