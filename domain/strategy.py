"""A strategy: a workspace's hierarchy of items (L1..L4) and the dependencies between L4 items.

The strategy document (the JSON users write) is declared once, here: `StrategyDocument` and
its `StrategyItem`s are pydantic models. The same declaration checks an HTTP body, a file
given to the CLI, the examples seeded at the first start and the items every
`Strategy.Defined` event records; and api/openapi.py generates the document's JSON Schema
from it. The models live in domain/, not in api/, because the document is the domain's input
whichever way it arrives: in api/ it would serve HTTP alone, and the domain would keep a
second, hand-written reader for the rest. pydantic is pure computation (no I/O, no
framework), so domain/ still imports nothing from aiohttp, pykka or the stores; what is
HTTP's (the `body.` paths, the 400 answer, the OpenAPI document) stays in api/.

`parse_strategy` checks a document and either returns a `StrategyDefinition` or raises
`InvalidStrategy` listing every problem with its path (`items[3] (l4-a).level`), so a user
fixes the whole file in one go. A problem of shape (a wrong type, a missing or unknown field,
an unknown priority) and a broken rule (a blank title, a level outside 1..4, an unknown
parent, a malformed agent type name, ...) are both listed; the HTTP API answers the first
kind itself, 400, and the second through `InvalidStrategy`, 422 (see domain/shapes.py). The
`Strategy` aggregate records a definition once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from stratexec.domain import shapes
from stratexec.domain.errors import InvalidStrategy, StrategyProblem
from stratexec.domain.shapes import (
    NO_NULL,
    WHOLE_NUMBER,
    NonEmpty,
    OneOf,
    Unique,
    describe,
    read,
    rule,
)

DEFAULT_WORKSPACE = "default"
LEAF_LEVEL = 4
AGENT_TYPES = ("email", "content", "research", "scheduling", "analysis", "coordination")
# Any such name is an agent type to a document; which ones an engine runs is the use-case
# layer's check (domain.propagation.check_agent_types), against its rules' agent types.
AGENT_TYPE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
AGENT_TYPE_RULE = ("is not an agent type name (a lower-case letter, then lower-case letters, "
                   "digits, - or _; 40 at most)")
PRIORITIES = ("high", "medium", "low")

AgentType = Annotated[str, Strict(), Field(pattern=f"^{AGENT_TYPE_NAME.pattern}$"),
                      rule(f"{{value}} {AGENT_TYPE_RULE}")]
Priority = Annotated[str, OneOf(PRIORITIES)]
Text = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1),
                 rule("required, a non-empty string")]
ItemId = Annotated[str, Strict(), Field(pattern=r"\S"), rule("required, a non-empty string")]
Level = Annotated[int, Strict(), Field(ge=1, le=LEAF_LEVEL), WHOLE_NUMBER,
                  rule(f"must be an integer from 1 to {LEAF_LEVEL}, got {{value}}")]
ItemIds = Annotated[tuple[Annotated[str, Strict(), Field(min_length=1)], ...], Unique(),
                    rule("must be a list of non-empty strings")]
Agents = Annotated[tuple[AgentType, ...], Unique(), NonEmpty("an L4 item needs at least one agent")]
Workspace = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1),
                      rule("must be a non-empty string")]


def _storable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Every integer in the inputs fits the event store's encoding (msgpack: 64 bits)."""
    stack: list[Any] = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, int) and not -(2**63) <= current < 2**64:
            raise PydanticCustomError(shapes.RULE, "integers must fit in 64 bits")
    return value


def _empty(value: Any) -> bool:
    return not value


def _absent(value: Any) -> bool:
    return value is None


class _Document(BaseModel):
    """camelCase keys, nothing else accepted; immutable. Code builds one by Python names
    (`parent_id=`); a document from outside is read by its JSON keys (`shapes.read`)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_alias=True,
                              validate_by_name=True, serialize_by_alias=True,
                              extra="forbid", frozen=True)


class StrategyItem(_Document):
    """One item of the hierarchy (levels 1 to 4; tasks come from level 4). `agents` and
    `priority` override the propagation rules; `inputs` is handed to the item's tasks."""

    id: ItemId
    level: Level
    parent_id: Annotated[str, Strict()] | None = None
    title: Text
    description: Annotated[str, Strict(), StringConstraints(strip_whitespace=True)] = Field(
        default="", exclude_if=_empty)
    depends_on: ItemIds = Field(default=(), exclude_if=_empty)
    agents: Annotated[Agents | None, NO_NULL] = Field(default=None, exclude_if=_absent)
    priority: Annotated[Priority | None, NO_NULL] = Field(default=None, exclude_if=_absent)
    inputs: Annotated[dict[str, Any] | None, Strict(), NO_NULL,
                      AfterValidator(_storable)] = Field(
        default=None, exclude_if=_absent,
        description="A JSON object handed to every task of this L4 item (its agents' input).")

    @property
    def is_leaf(self) -> bool:
        return self.level == LEAF_LEVEL

    def as_document(self) -> dict[str, Any]:
        """The item as users write it (what `Strategy.Defined` records)."""
        return self.model_dump(mode="json")


class StrategyDocument(_Document):
    """A strategy as users write it. `workspaceId` defaults to the caller's workspace (over
    HTTP: the token's only one; with several it is required)."""

    name: Text
    workspace_id: Annotated[Workspace | None, NO_NULL] = Field(default=None, exclude_if=_absent)
    items: Annotated[tuple[StrategyItem, ...], NonEmpty("required, a non-empty list of items")]

    def definition(self, default_workspace: str = DEFAULT_WORKSPACE) -> StrategyDefinition:
        """The definition, if the items agree with each other; else `InvalidStrategy`."""
        problems: list[StrategyProblem] = []
        _check_hierarchy(self.items, problems)
        if problems:
            raise InvalidStrategy(problems)
        return StrategyDefinition(self.name, self.workspace_id or default_workspace,
                                  self.items)


@dataclass(frozen=True)
class StrategyDefinition:
    name: str
    workspace_id: str
    items: tuple[StrategyItem, ...]

    @property
    def leaves(self) -> tuple[StrategyItem, ...]:
        return tuple(item for item in self.items if item.is_leaf)


def parse_strategy(document: Any, default_workspace: str = DEFAULT_WORKSPACE) -> StrategyDefinition:
    """Check a strategy document and return its definition, or raise `InvalidStrategy`."""
    try:
        shaped = read(StrategyDocument, document)
    except ValidationError as error:
        raise InvalidStrategy(document_problems(document, error)) from None
    return shaped.definition(default_workspace)


def document_problems(document: Any, error: ValidationError) -> list[StrategyProblem]:
    """Every problem of a document that did not validate: each error, where it is, then
    the rules between the items that did validate."""
    raw_items = document.get("items") if isinstance(document, Mapping) else None
    raw_items = raw_items if isinstance(raw_items, list) else []
    errors = error.errors(include_url=False)
    problems = [_problem(e, raw_items) for e in errors]
    broken = {e["loc"][1] for e in errors if len(e["loc"]) > 1 and e["loc"][0] == "items"}
    fine = [read(StrategyItem, raw)
            for index, raw in enumerate(raw_items) if index not in broken]
    _check_hierarchy(fine, problems)
    return problems


def _problem(error: ErrorDetails, raw_items: list[Any]) -> StrategyProblem:
    """Where (`name`, `items[3]`, `items[3] (l4-a).level`) and what, in the domain's words."""
    loc = error["loc"]
    message = describe(error)
    if not loc:
        return StrategyProblem("$", "the document must be a JSON object"
                               if error["type"] == "model_type" else message)
    if loc[0] != "items" or len(loc) < 2 or not isinstance(loc[1], int):
        return StrategyProblem(str(loc[0]), message)
    where = f"items[{loc[1]}]"
    if len(loc) == 2:
        return StrategyProblem(where, message)
    item_id = _usable_id(raw_items[loc[1]]) if loc[1] < len(raw_items) else None
    if item_id is None:
        return StrategyProblem(f"{where}.{loc[2]}", message)
    return StrategyProblem(f"{where} ({item_id}).{loc[2]}", message, item_id)


def _usable_id(raw: Any) -> str | None:
    item_id = raw.get("id") if isinstance(raw, Mapping) else None
    return item_id if isinstance(item_id, str) and item_id.strip() else None


def _check_hierarchy(items: Sequence[StrategyItem], problems: list[StrategyProblem]
                     ) -> None:
    by_id: dict[str, StrategyItem] = {}
    for item in items:
        if item.id in by_id:
            problems.append(StrategyProblem(f"items ({item.id}).id", "duplicate item id", item.id))
        by_id[item.id] = item
    for item in items:
        where = f"items ({item.id})"
        if item.level == 1:
            if item.parent_id is not None:
                problems.append(StrategyProblem(f"{where}.parentId", "an L1 item has no parent",
                                                item.id))
        elif item.parent_id is None:
            problems.append(StrategyProblem(f"{where}.parentId",
                                            f"an L{item.level} item needs a parent", item.id))
        elif item.parent_id not in by_id:
            problems.append(StrategyProblem(f"{where}.parentId",
                                            f"unknown parent id {item.parent_id!r}", item.id))
        elif by_id[item.parent_id].level != item.level - 1:
            parent = by_id[item.parent_id]
            problems.append(StrategyProblem(
                f"{where}.parentId",
                f"parent {parent.id!r} is L{parent.level}; an L{item.level} item needs an "
                f"L{item.level - 1} parent", item.id))
        if item.depends_on and not item.is_leaf:
            problems.append(StrategyProblem(f"{where}.dependsOn",
                                            "only L4 items may have dependencies", item.id))
        if item.inputs is not None and not item.is_leaf:
            problems.append(StrategyProblem(f"{where}.inputs", "only L4 items have inputs",
                                            item.id))
        if item.agents is not None and not item.is_leaf:
            problems.append(StrategyProblem(f"{where}.agents", "only L4 items have agents",
                                            item.id))
        for dependency in item.depends_on:
            target = by_id.get(dependency)
            if target is None:
                problems.append(StrategyProblem(f"{where}.dependsOn",
                                                f"unknown item id {dependency!r}", item.id))
            elif not target.is_leaf:
                problems.append(StrategyProblem(
                    f"{where}.dependsOn", f"{dependency!r} is not an L4 item", item.id))
            elif dependency == item.id:
                problems.append(StrategyProblem(f"{where}.dependsOn",
                                                "an item cannot depend on itself", item.id))
    if not any(item.is_leaf for item in items) and not problems:
        problems.append(StrategyProblem("items", "the strategy has no L4 items to execute"))


class Strategy(Aggregate):
    """A strategy as defined by a user. Its items never change once defined."""

    TOPIC = "stratexec:Strategy"

    class Created(Aggregate.Created):
        TOPIC = "stratexec:Strategy.Created"

    @event("Defined", topic="stratexec:Strategy.Defined")
    def __init__(self, name: str, workspace_id: str, items: list[dict[str, Any]],
                 task_count: int | None = None) -> None:
        self.name = name
        self.workspace_id = workspace_id
        self.items = items
        # The plan's size under the default rules when it was defined. Events recorded
        # before this was added lack it (None here; the strategies view computes it).
        self.task_count = task_count

    @classmethod
    def define(cls, definition: StrategyDefinition, task_count: int | None = None) -> Strategy:
        return cls(
            name=definition.name,
            workspace_id=definition.workspace_id,
            items=[item.as_document() for item in definition.items],
            task_count=task_count,
        )

    @property
    def definition(self) -> StrategyDefinition:
        return parse_strategy(
            {"name": self.name, "workspaceId": self.workspace_id, "items": self.items}
        )

    @property
    def strategy_id(self) -> UUID:
        return self.id
