"""Properties of the pure rules, on random input: the dependency graph of a strategy
(accepted and ordered topologically when acyclic, rejected with a real cycle when a back
edge closes one), the propagation of items to tasks, and the health score (within its
bounds, and monotone in each of its inputs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from stratexec.domain.errors import DependencyCycle
from stratexec.domain.health import HealthInputs, assess
from stratexec.domain.propagation import DEFAULT_RULE, DEFAULT_RULES, propagate, topological_order
from stratexec.domain.strategy import parse_strategy

Graph = dict[str, list[str]]


@st.composite
def dags(draw: st.DrawFn, min_size: int = 1) -> tuple[list[str], Graph]:
    """Nodes in a random order and, for each, the nodes it depends on: a node depends only
    on nodes made before it, so the graph is acyclic whatever order the nodes come in."""
    count = draw(st.integers(min_size, 12))
    made = [f"n{index}" for index in range(count)]
    graph: Graph = {node: draw(st.lists(st.sampled_from(made[:index]), unique=True,
                                         max_size=3)) if index else []
                    for index, node in enumerate(made)}
    return draw(st.permutations(made)), graph


def reachable(graph: Graph, start: str) -> set[str]:
    """Every node `start` depends on, directly or not."""
    seen: set[str] = set()
    stack = list(graph[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph[node])
    return seen


def assert_is_a_cycle(cycle: list[str], graph: Graph) -> None:
    """A path that follows dependencies and ends where it started, through distinct nodes."""
    assert len(cycle) >= 2, cycle
    assert cycle[0] == cycle[-1], cycle
    assert len(set(cycle[:-1])) == len(cycle) - 1, cycle
    for node, dependency in pairwise(cycle):
        assert dependency in graph[node], (node, dependency, cycle)


@given(dags())
def test_an_acyclic_graph_is_ordered_topologically_keeping_the_input_order(
        dag: tuple[list[str], Graph]) -> None:
    nodes, graph = dag
    order = topological_order(nodes, dict[str, Iterable[str]](graph))
    assert sorted(order) == sorted(nodes)
    placed: set[str] = set()
    for node in order:
        # each node comes after its dependencies, and is the first in input order that could
        available = [n for n in nodes if n not in placed and set(graph[n]) <= placed]
        assert node == available[0]
        placed.add(node)


@given(dags(min_size=2), st.data())
def test_a_back_edge_is_rejected_with_a_cycle_that_is_one(
        dag: tuple[list[str], Graph], data: st.DataObject) -> None:
    nodes, graph = dag
    dependent = data.draw(st.sampled_from([n for n in nodes if graph[n]] or [nodes[0]]))
    below = sorted(reachable(graph, dependent))
    target = data.draw(st.sampled_from(below)) if below else dependent  # else a self-loop
    cyclic = {**graph, target: [*graph[target], dependent]}
    with pytest.raises(DependencyCycle) as refused:
        topological_order(nodes, dict[str, Iterable[str]](cyclic))
    assert_is_a_cycle(refused.value.cycle, cyclic)
    assert refused.value.details["cycle"] == refused.value.cycle


WORDS = ("email", "emails", "resend", "write", "draft", "research", "studying", "schedule",
         "calendar", "align", "discussion", "budget", "review", "launch", "contact", "plan")


def strategy_document(graph: Graph, titles: dict[str, str]) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"id": "goal", "level": 1, "parentId": None, "title": "Goal"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Area"},
        {"id": "plan", "level": 3, "parentId": "area", "title": "Plan"}]
    items += [{"id": node, "level": 4, "parentId": "plan", "title": titles[node],
               "dependsOn": graph[node]} for node in graph]
    return {"name": "random", "workspaceId": "w", "items": items}


def expected_rule(title: str) -> str:
    """The first rule of the seed's table with a keyword that starts a word of the title."""
    words = title.lower().split()
    for candidate in DEFAULT_RULES:
        if any(word.startswith(k) for word in words for k in candidate.keywords):
            return candidate.name
    return DEFAULT_RULE.name


@given(dags(), st.data())
def test_a_strategy_becomes_a_plan_in_dependency_order_by_the_first_matching_rule(
        dag: tuple[list[str], Graph], data: st.DataObject) -> None:
    _, graph = dag
    titles = {node: " ".join(data.draw(st.lists(st.sampled_from(WORDS), min_size=1,
                                                max_size=3))) for node in graph}
    plan = propagate(parse_strategy(strategy_document(graph, titles)).items)
    tasks = {task.id: task for task in plan.tasks}
    assert [task.order for task in plan.tasks] == list(range(len(plan.tasks)))
    index = {task.id: task.order for task in plan.tasks}
    assert all(index[d] < task.order for task in plan.tasks for d in task.depends_on)
    decisions = {decision.item_id: decision for decision in plan.decisions}
    assert set(decisions) == set(graph)
    for item_id, decision in decisions.items():
        assert decision.rule == expected_rule(titles[item_id])
        first, *rest = (tasks[t] for t in decision.task_ids)
        assert first.depends_on == tuple(decisions[d].task_ids[-1] for d in graph[item_id])
        for previous, task in pairwise([first, *rest]):
            assert task.depends_on == (previous.id,)  # an item's tasks run one after another


@given(dags(min_size=2), st.data())
def test_a_strategy_with_a_back_edge_is_rejected_naming_a_real_cycle(
        dag: tuple[list[str], Graph], data: st.DataObject) -> None:
    _, graph = dag
    dependent = data.draw(st.sampled_from(sorted(graph)))
    below = sorted(reachable(graph, dependent))
    assume(below)  # a self-loop is a rule of the document, checked before the graph
    target = data.draw(st.sampled_from(below))
    cyclic = {**graph, target: [*graph[target], dependent]}
    definition = parse_strategy(strategy_document(cyclic, dict.fromkeys(graph, "Plan")))
    with pytest.raises(DependencyCycle) as refused:
        propagate(definition.items)
    assert_is_a_cycle(refused.value.cycle, cyclic)


@st.composite
def health_inputs(draw: st.DrawFn) -> HealthInputs:
    counts = st.integers(0, 200)
    completed, failed, skipped, cancelled = (draw(counts) for _ in range(4))
    attempts = draw(st.integers(0, 400))
    return HealthInputs(
        total=completed + failed + skipped + cancelled + draw(counts), completed=completed,
        failed=failed, skipped=skipped, cancelled=cancelled, attempts=attempts,
        failed_attempts=draw(st.integers(0, attempts)),
        mean_duration_ms=draw(st.floats(0, 200_000, allow_nan=False)))


@given(health_inputs())
def test_the_health_score_stays_within_its_bounds(inputs: HealthInputs) -> None:
    assessment = assess(inputs)
    assert 10 <= assessment.score <= 100  # 100 minus at most 50 + 25 + 15
    assert assessment.healthy == (assessment.score >= 50)


def more(inputs: HealthInputs, field: str, extra: int | float) -> HealthInputs:
    """`inputs` with `extra` more of `field`; a task or attempt added counts in the total."""
    changed = replace(inputs, **{field: getattr(inputs, field) + extra})
    if field in ("completed", "failed", "skipped", "cancelled"):
        changed = replace(changed, total=inputs.total + int(extra))
    if field == "failed_attempts":
        changed = replace(changed, attempts=inputs.attempts + int(extra))
    return changed


@given(health_inputs(), st.integers(1, 100), st.floats(0.001, 100_000))
def test_the_health_score_is_monotone_in_each_input(
        inputs: HealthInputs, extra: int, longer: float) -> None:
    score = assess(inputs).score
    assert assess(more(inputs, "completed", extra)).score >= score
    assert assess(more(inputs, "attempts", extra)).score >= score  # more attempts that worked
    assert assess(more(inputs, "failed", extra)).score <= score
    assert assess(more(inputs, "skipped", extra)).score <= score
    assert assess(more(inputs, "failed_attempts", extra)).score <= score
    assert assess(more(inputs, "mean_duration_ms", longer)).score <= score
    assert assess(more(inputs, "cancelled", extra)).score == score  # cancelling is no error
