"""L4 items -> agent tasks: keyword rules, priorities, dependencies, cycles, topological order.

The rules are the seed's, in order. A rule matches when one of its keywords starts a word of
the item's title or description, case-insensitively ("emails" and "scheduled" match, "resend"
does not). The first matching rule wins. An item that matches no rule gets `DEFAULT_RULE`:
one coordination task at medium priority, so that a person triages what no rule understood.
An item may also name its `agents` (and `priority`) itself, which skips the rules.

Within an item, each task depends on the one before it. An item's `dependsOn` makes its
first task depend on the last task of each named item. Ready tasks are dispatched by
priority, then by topological order (`PlannedTask.order`).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stratexec.domain.errors import DependencyCycle, InvalidStrategy, StrategyProblem
from stratexec.domain.strategy import AGENT_TYPES, StrategyItem

PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class PropagationRule:
    name: str
    keywords: tuple[str, ...]
    agents: tuple[str, ...]
    priority: str
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        words = "|".join(re.escape(k) for k in self.keywords)
        object.__setattr__(self, "_pattern", re.compile(rf"\b(?:{words})", re.IGNORECASE))

    def match(self, text: str) -> str | None:
        """The keyword that matched (lower-cased), or None."""
        found = self._pattern.search(text) if self.keywords else None
        return None if found is None else found.group(0).lower()


DEFAULT_RULES: tuple[PropagationRule, ...] = (
    PropagationRule("outreach", ("email", "send", "contact", "outreach"),
                    ("email", "coordination"), "high"),
    PropagationRule("content", ("write", "create", "generate", "draft"),
                    ("content", "analysis"), "high"),
    PropagationRule("research", ("research", "analyze", "study"),
                    ("research", "analysis"), "medium"),
    PropagationRule("scheduling", ("schedule", "calendar", "meeting"),
                    ("scheduling", "email"), "high"),
    PropagationRule("coordination", ("coordinate", "align", "discuss"),
                    ("coordination", "analysis"), "medium"),
)
DEFAULT_RULE = PropagationRule("default", (), ("coordination",), "medium")


@dataclass(frozen=True)
class PropagationRules:
    """The configurable rule table. `default=None` makes an unmatched item an error."""

    rules: tuple[PropagationRule, ...] = DEFAULT_RULES
    default: PropagationRule | None = DEFAULT_RULE

    @property
    def agent_types(self) -> tuple[str, ...]:
        """The agent types an engine with these rules runs: the built-in ones, then the
        others the rules name, in order."""
        named = [agent for rule in (*self.rules, *filter(None, [self.default]))
                 for agent in rule.agents]
        return tuple(dict.fromkeys((*AGENT_TYPES, *named)))


@dataclass(frozen=True, slots=True)
class PlannedTask:
    id: str
    item_id: str
    title: str
    agent: str
    priority: str
    depends_on: tuple[str, ...]
    order: int = 0
    description: str = ""  # the item's, for agents that write from it
    inputs: Mapping[str, Any] | None = None  # the item's `inputs`, handed to every task of it

    def as_record(self) -> dict[str, Any]:
        """The task as `Execution.Started` records it; the item's description and inputs
        only when it has them (most items have neither, and a plan can hold 100,000 tasks)."""
        record = {
            "id": self.id, "itemId": self.item_id, "title": self.title, "agent": self.agent,
            "priority": self.priority, "dependsOn": list(self.depends_on), "order": self.order,
        }
        if self.description:
            record["description"] = self.description
        if self.inputs is not None:
            record["inputs"] = dict(self.inputs)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PlannedTask:
        return cls(
            id=record["id"], item_id=record["itemId"], title=record["title"],
            agent=record["agent"], priority=record["priority"],
            depends_on=tuple(record["dependsOn"]), order=record["order"],
            description=record.get("description", ""), inputs=record.get("inputs"),
        )


@dataclass(frozen=True)
class PropagationDecision:
    """Which rule matched an L4 item (and on which keyword), and which tasks it made."""

    item_id: str
    rule: str
    keyword: str | None
    priority: str
    task_ids: tuple[str, ...]

    def as_record(self) -> dict[str, Any]:
        return {
            "itemId": self.item_id, "rule": self.rule, "keyword": self.keyword,
            "priority": self.priority, "taskIds": list(self.task_ids),
        }


@dataclass(frozen=True)
class Plan:
    tasks: tuple[PlannedTask, ...]
    decisions: tuple[PropagationDecision, ...]


def task_id(item_id: str, agent: str) -> str:
    return f"{item_id}:{agent}"


def choose_rule(
    item: StrategyItem, rules: PropagationRules
) -> tuple[str, str | None, tuple[str, ...], str]:
    """(rule name, keyword, agents, priority) for one L4 item."""
    if item.agents is not None:
        return "explicit", None, item.agents, item.priority or "medium"
    text = f"{item.title} {item.description}"
    for rule in rules.rules:
        keyword = rule.match(text)
        if keyword is not None:
            return rule.name, keyword, rule.agents, item.priority or rule.priority
    if rules.default is None:
        raise InvalidStrategy([StrategyProblem(
            f"items ({item.id}).title", "matches no propagation rule and there is no default",
            item.id)])
    default = rules.default
    return default.name, None, default.agents, item.priority or default.priority


def check_agent_types(items: Sequence[StrategyItem], rules: PropagationRules | None = None
                      ) -> None:
    """`InvalidStrategy` when an item names an agent type the rules do not know (a document
    may name any; the engine it runs on decides which it runs)."""
    known = (rules or PropagationRules()).agent_types
    problems = [
        StrategyProblem(f"items ({item.id}).agents",
                        f"unknown agent type {agent!r} (known: {', '.join(known)})", item.id)
        for item in items for agent in item.agents or () if agent not in known]
    if problems:
        raise InvalidStrategy(problems)


def propagate(items: Sequence[StrategyItem], rules: PropagationRules | None = None) -> Plan:
    """Turn the L4 items into a plan of agent tasks in topological order, or raise."""
    rules = rules or PropagationRules()
    leaves = [item for item in items if item.is_leaf]
    item_order = topological_order(
        [item.id for item in leaves], {item.id: item.depends_on for item in leaves}
    )
    by_id = {item.id: item for item in leaves}
    tasks: list[PlannedTask] = []
    decisions: list[PropagationDecision] = []
    last_task_of: dict[str, str] = {}
    for item_id in item_order:
        item = by_id[item_id]
        rule_name, keyword, agents, priority = choose_rule(item, rules)
        previous = tuple(last_task_of[d] for d in item.depends_on)
        ids = []
        for agent in agents:
            planned = PlannedTask(
                id=task_id(item.id, agent), item_id=item.id, title=item.title, agent=agent,
                priority=priority, depends_on=previous, order=len(tasks),
                description=item.description, inputs=item.inputs,
            )
            tasks.append(planned)
            ids.append(planned.id)
            previous = (planned.id,)
        last_task_of[item.id] = ids[-1]
        decisions.append(PropagationDecision(item.id, rule_name, keyword, priority, tuple(ids)))
    return Plan(tuple(tasks), tuple(decisions))


def topological_order(nodes: Sequence[str], depends_on: dict[str, Iterable[str]]) -> list[str]:
    """Kahn's algorithm; ties keep the input order. A cycle raises `DependencyCycle`."""
    position = {node: index for index, node in enumerate(nodes)}
    waiting = {node: len(set(depends_on.get(node, ()))) for node in nodes}
    dependents: dict[str, list[str]] = {node: [] for node in nodes}
    for node in nodes:
        for dependency in set(depends_on.get(node, ())):
            dependents[dependency].append(node)
    ready = [(position[n], n) for n in nodes if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for dependent in dependents[node]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, (position[dependent], dependent))
    if len(order) < len(nodes):
        raise DependencyCycle(find_cycle([n for n in nodes if waiting[n] > 0], depends_on))
    return order


def find_cycle(nodes: Sequence[str], depends_on: dict[str, Iterable[str]]) -> list[str]:
    """One cycle among `nodes`, as a path that starts and ends on the same node."""
    remaining = set(nodes)
    for start in nodes:
        path: list[str] = []
        on_path: dict[str, int] = {}
        stack = [(start, iter(sorted(set(depends_on.get(start, ())) & remaining)))]
        path.append(start)
        on_path[start] = 0
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.pop(path.pop())
                remaining.discard(node)
                continue
            if child in on_path:
                return [*path[on_path[child]:], child]
            if child in remaining:
                on_path[child] = len(path)
                path.append(child)
                stack.append((child, iter(sorted(set(depends_on.get(child, ())) & remaining))))
    raise AssertionError("find_cycle called on an acyclic graph")  # pragma: no cover
