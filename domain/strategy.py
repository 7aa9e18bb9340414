"""A strategy: a workspace's hierarchy of items (L1..L4) and the dependencies between L4 items.

`parse_strategy` checks a strategy document (the JSON users write) and either returns a
`StrategyDefinition` or raises `InvalidStrategy` listing every problem with its path, so a
user fixes the whole file in one go. The `Strategy` aggregate records a definition once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from stratexec.domain.errors import InvalidStrategy, StrategyProblem

DEFAULT_WORKSPACE = "default"
LEAF_LEVEL = 4
AGENT_TYPES = ("email", "content", "research", "scheduling", "analysis", "coordination")
PRIORITIES = ("high", "medium", "low")

_ITEM_FIELDS = {
    "id", "level", "parentId", "title", "description", "dependsOn", "agents", "priority",
}
_DOCUMENT_FIELDS = {"name", "workspaceId", "items"}


@dataclass(frozen=True)
class StrategyItem:
    """One item of the hierarchy. `agents` and `priority` override the propagation rules."""

    id: str
    level: int
    parent_id: str | None
    title: str
    description: str = ""
    depends_on: tuple[str, ...] = ()
    agents: tuple[str, ...] | None = None
    priority: str | None = None

    @property
    def is_leaf(self) -> bool:
        return self.level == LEAF_LEVEL

    def as_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id, "level": self.level, "parentId": self.parent_id, "title": self.title,
        }
        if self.description:
            doc["description"] = self.description
        if self.depends_on:
            doc["dependsOn"] = list(self.depends_on)
        if self.agents is not None:
            doc["agents"] = list(self.agents)
        if self.priority is not None:
            doc["priority"] = self.priority
        return doc


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
    problems: list[StrategyProblem] = []
    if not isinstance(document, Mapping):
        raise InvalidStrategy([StrategyProblem("$", "the document must be a JSON object")])
    for key in sorted(set(document) - _DOCUMENT_FIELDS):
        problems.append(StrategyProblem(key, "unknown field"))
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(StrategyProblem("name", "required, a non-empty string"))
    workspace = document.get("workspaceId", default_workspace)
    if not isinstance(workspace, str) or not workspace.strip():
        problems.append(StrategyProblem("workspaceId", "must be a non-empty string"))
    raw_items = document.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        problems.append(StrategyProblem("items", "required, a non-empty list of items"))
        raise InvalidStrategy(problems)
    items = [_parse_item(raw, index, problems) for index, raw in enumerate(raw_items)]
    parsed = [item for item in items if item is not None]
    _check_hierarchy(parsed, problems)
    if problems:
        raise InvalidStrategy(problems)
    assert isinstance(name, str)
    assert isinstance(workspace, str)
    return StrategyDefinition(name.strip(), workspace.strip(), tuple(parsed))


def _parse_item(raw: Any, index: int, problems: list[StrategyProblem]) -> StrategyItem | None:
    where = f"items[{index}]"
    if not isinstance(raw, Mapping):
        problems.append(StrategyProblem(where, "each item must be an object"))
        return None
    item_id = raw.get("id")
    if isinstance(item_id, str) and item_id.strip():
        where = f"items[{index}] ({item_id})"
    else:
        problems.append(StrategyProblem(f"{where}.id", "required, a non-empty string"))
        item_id = None
    count_before = len(problems)

    def problem(field: str, message: str) -> None:
        problems.append(StrategyProblem(f"{where}.{field}", message, item_id))

    for key in sorted(set(raw) - _ITEM_FIELDS):
        problem(key, "unknown field")
    level = raw.get("level")
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= LEAF_LEVEL:
        problem("level", f"must be an integer from 1 to {LEAF_LEVEL}, got {level!r}")
    parent_id = raw.get("parentId")
    if parent_id is not None and not isinstance(parent_id, str):
        problem("parentId", "must be a string or null")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        problem("title", "required, a non-empty string")
    description = raw.get("description", "")
    if not isinstance(description, str):
        problem("description", "must be a string")
    depends_on = _string_list(raw.get("dependsOn", []), "dependsOn", problem)
    agents = None
    if "agents" in raw:
        agents = _string_list(raw["agents"], "agents", problem)
        if agents is not None:
            _check_agents(agents, problem)
    priority = raw.get("priority")
    if priority is not None and priority not in PRIORITIES:
        problem("priority", f"must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    if len(problems) > count_before or item_id is None:
        return None
    assert isinstance(level, int)
    assert isinstance(title, str)
    assert isinstance(description, str)
    return StrategyItem(
        id=item_id, level=level, parent_id=parent_id, title=title.strip(),
        description=description.strip(), depends_on=tuple(depends_on or ()),
        agents=None if agents is None else tuple(agents), priority=priority,
    )


def _string_list(value: Any, field: str, problem: Any) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problem(field, "must be a list of non-empty strings")
        return None
    if len(set(value)) != len(value):
        problem(field, "lists the same value twice")
        return None
    return list(value)


def _check_agents(agents: list[str], problem: Any) -> None:
    if not agents:
        problem("agents", "an L4 item needs at least one agent")
    for agent in agents:
        if agent not in AGENT_TYPES:
            problem("agents", f"unknown agent type {agent!r}; known: {', '.join(AGENT_TYPES)}")


def _check_hierarchy(items: list[StrategyItem], problems: list[StrategyProblem]) -> None:
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
