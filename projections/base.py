"""What every view has in common: its tables, its schema, and dispatch on the event's type.

The values views write (JSON text, ISO times, canonical ids) are `projections.values`.

A view's handlers run inside the runner's transaction, on the batch's in-memory rows
(`projections.batch`), so they may read rows of other views' tables: the catalog orders the
views so that those reads see the right state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from stratexec.projections.batch import Batch

Handler = Callable[["Batch", Any], object]  # what it returns is ignored


class View:
    """A read model: subclasses name their tables and map event classes to handlers."""

    name: ClassVar[str]
    tables: ClassVar[Mapping[str, tuple[str, ...]]]  # table -> primary-key columns
    schema: ClassVar[tuple[str, ...]]  # CREATE ... IF NOT EXISTS, one statement each

    def handlers(self) -> Mapping[type, Handler]:
        raise NotImplementedError

    def preload(self, batch: Batch, events: Sequence[tuple[int, Any]]) -> None:
        """Read in bulk the rows these events will need (an optimisation: rows a handler
        asks for are read anyway)."""
