"""Propagation: keyword rules turn L4 items into agent tasks; dependencies; cycles; order."""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import pytest

from stratexec.domain.errors import DependencyCycle, InvalidStrategy
from stratexec.domain.propagation import (
    DEFAULT_RULES,
    PlannedTask,
    PropagationRule,
    PropagationRules,
    check_agent_types,
    propagate,
    topological_order,
)
from stratexec.domain.strategy import StrategyItem, parse_strategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NEUTRAL_TITLE = "Quarterly budget review"

ROWS = [
    ("outreach", ("email", "send", "contact", "outreach"), ("email", "coordination"), "high"),
    ("content", ("write", "create", "generate", "draft"), ("content", "analysis"), "high"),
    ("research", ("research", "analyze", "study"), ("research", "analysis"), "medium"),
    ("scheduling", ("schedule", "calendar", "meeting"), ("scheduling", "email"), "high"),
    ("coordination", ("coordinate", "align", "discuss"), ("coordination", "analysis"), "medium"),
]
KEYWORD_CASES = [
    (keyword, rule, agents, priority)
    for rule, keywords, agents, priority in ROWS
    for keyword in keywords
]


def leaf(
    item_id: str = "l4-a",
    *,
    title: str = NEUTRAL_TITLE,
    description: str = "",
    depends_on: tuple[str, ...] = (),
    agents: tuple[str, ...] | None = None,
    priority: str | None = None,
) -> StrategyItem:
    return StrategyItem(
        id=item_id, level=4, parent_id="l3", title=title, description=description,
        depends_on=depends_on, agents=agents, priority=priority,
    )


def agents_of(plan_tasks: tuple[PlannedTask, ...]) -> list[str]:
    return [task.agent for task in plan_tasks]


def load_items(name: str) -> tuple[StrategyItem, ...]:
    return parse_strategy(json.loads((EXAMPLES / name).read_text())).items


# ---------------------------------------------------------------------- the rule table


def test_the_default_rules_are_the_seed_table_in_order() -> None:
    assert [(r.name, r.keywords, r.agents, r.priority) for r in DEFAULT_RULES] == ROWS


@pytest.mark.parametrize(("keyword", "rule", "agents", "priority"), KEYWORD_CASES)
def test_each_row_matches_a_keyword_in_the_title(
    keyword: str, rule: str, agents: tuple[str, ...], priority: str
) -> None:
    plan = propagate([leaf(title=f"{keyword.capitalize()} the quarterly numbers")])

    assert agents_of(plan.tasks) == list(agents)
    assert {task.priority for task in plan.tasks} == {priority}
    [decision] = plan.decisions
    assert (decision.rule, decision.keyword, decision.priority) == (rule, keyword, priority)


@pytest.mark.parametrize(("keyword", "rule", "agents", "priority"), KEYWORD_CASES)
def test_each_row_matches_a_keyword_in_the_description(
    keyword: str, rule: str, agents: tuple[str, ...], priority: str
) -> None:
    plan = propagate([leaf(description=f"We should {keyword} this by Friday.")])

    assert agents_of(plan.tasks) == list(agents)
    assert {task.priority for task in plan.tasks} == {priority}
    assert plan.decisions[0].rule == rule


def test_the_first_matching_row_wins() -> None:
    plan = propagate([leaf(title="Draft and send the proposal")])

    assert agents_of(plan.tasks) == ["email", "coordination"]
    assert (plan.decisions[0].rule, plan.decisions[0].keyword) == ("outreach", "send")


def test_a_title_match_of_a_later_row_loses_to_a_description_match_of_an_earlier_one() -> None:
    plan = propagate([leaf(title="Research the market", description="then email the team")])

    assert plan.decisions[0].rule == "outreach"


@pytest.mark.parametrize(
    ("title", "rule"),
    [
        ("Emails to partners", "outreach"),
        ("SCHEDULED sync with finance", "scheduling"),
        ("Re-send the invoice", "outreach"),
        ("Studying churn", "research"),
        ("Resend the invoice", "default"),
        ("Recreate the dashboard", "default"),
        ("Realign the roadmap", "default"),
        ("Undrafted notes", "default"),
    ],
)
def test_keywords_match_at_the_start_of_words_case_insensitively(title: str, rule: str) -> None:
    assert propagate([leaf(title=title)]).decisions[0].rule == rule


def test_an_unmatched_item_gets_one_medium_coordination_task() -> None:
    plan = propagate([leaf()])

    assert plan.tasks == (PlannedTask(
        id="l4-a:coordination", item_id="l4-a", title=NEUTRAL_TITLE, agent="coordination",
        priority="medium", depends_on=(), order=0),)
    assert (plan.decisions[0].rule, plan.decisions[0].keyword) == ("default", None)


def test_explicit_agents_and_priority_override_the_rules() -> None:
    plan = propagate([leaf(title="Send emails", agents=("research", "email"), priority="low")])

    assert agents_of(plan.tasks) == ["research", "email"]
    assert [t.priority for t in plan.tasks] == ["low", "low"]
    assert plan.decisions[0].rule == "explicit"


def test_explicit_agents_without_a_priority_run_at_medium() -> None:
    plan = propagate([leaf(title="Send emails", agents=("analysis",))])

    assert [(t.agent, t.priority) for t in plan.tasks] == [("analysis", "medium")]


def test_an_explicit_priority_alone_keeps_the_rule_agents() -> None:
    plan = propagate([leaf(title="Send emails", priority="low")])

    assert [(t.agent, t.priority) for t in plan.tasks] == [
        ("email", "low"), ("coordination", "low")]
    assert plan.decisions[0].priority == "low"


def test_without_a_default_an_unmatched_item_is_invalid() -> None:
    rules = PropagationRules(default=None)

    with pytest.raises(InvalidStrategy) as raised:
        propagate([leaf("l4-a", title="Send emails"), leaf("l4-b")], rules)

    assert [p.path for p in raised.value.problems] == ["items (l4-b).title"]
    assert raised.value.problems[0].item_id == "l4-b"


def test_custom_rules_replace_the_table() -> None:
    rules = PropagationRules(
        rules=(PropagationRule("legal", ("contract", "nda"), ("analysis", "email"), "low"),),
        default=PropagationRule("triage", (), ("research",), "high"),
    )

    plan = propagate([leaf("l4-a", title="Review the NDA"), leaf("l4-b", title="Send emails")],
                     rules)

    assert [(t.id, t.priority) for t in plan.tasks] == [
        ("l4-a:analysis", "low"), ("l4-a:email", "low"), ("l4-b:research", "high")]
    assert [(d.rule, d.keyword) for d in plan.decisions] == [("legal", "nda"), ("triage", None)]


def test_the_agent_types_of_rules_are_the_built_in_ones_then_those_they_name() -> None:
    rules = PropagationRules(rules=(
        PropagationRule("legal", ("nda",), ("legal", "email"), "low"),
        PropagationRule("print", ("print",), ("printer", "legal"), "low")))

    assert PropagationRules().agent_types == (
        "email", "content", "research", "scheduling", "analysis", "coordination")
    assert rules.agent_types[6:] == ("legal", "printer")


def test_explicit_agents_the_rules_do_not_know_are_invalid() -> None:
    rules = PropagationRules(rules=(PropagationRule("legal", ("nda",), ("legal",), "low"),))
    items = [leaf("l4-a", agents=("legal", "email")), leaf("l4-b", agents=("robot", "printer"))]

    check_agent_types(items[:1], rules)
    with pytest.raises(InvalidStrategy) as raised:
        check_agent_types(items, rules)

    assert [(p.path, p.message[:28]) for p in raised.value.problems] == [
        ("items (l4-b).agents", "unknown agent type 'robot' ("),
        ("items (l4-b).agents", "unknown agent type 'printer'")]
    with pytest.raises(InvalidStrategy):
        check_agent_types(items[:1])  # "legal" is no built-in type


# --------------------------------------------------------------- tasks and dependencies


def test_the_seed_example_gives_an_email_task_then_a_coordination_task() -> None:
    item = leaf("outreach", title="Send personalized outreach emails to warm leads")

    plan = propagate([item])

    assert plan.tasks == (
        PlannedTask(id="outreach:email", item_id="outreach", title=item.title, agent="email",
                    priority="high", depends_on=(), order=0),
        PlannedTask(id="outreach:coordination", item_id="outreach", title=item.title,
                    agent="coordination", priority="high", depends_on=("outreach:email",),
                    order=1),
    )
    assert plan.decisions[0].task_ids == ("outreach:email", "outreach:coordination")


def test_depends_on_links_the_first_task_to_the_last_task_of_each_named_item() -> None:
    items = [
        leaf("a", title="Research leads"),
        leaf("b", title="Review budget"),
        leaf("c", title="Send emails", depends_on=("b", "a")),
    ]

    tasks = {t.id: t for t in propagate(items).tasks}

    assert tasks["c:email"].depends_on == ("b:coordination", "a:analysis")
    assert tasks["c:coordination"].depends_on == ("c:email",)
    assert tasks["a:research"].depends_on == ()
    assert tasks["a:analysis"].depends_on == ("a:research",)


def test_only_leaves_become_tasks() -> None:
    parent = StrategyItem(id="l3", level=3, parent_id="l2", title="Send emails")

    plan = propagate([parent, leaf("l4-a")])

    assert {t.item_id for t in plan.tasks} == {"l4-a"}
    assert [d.item_id for d in plan.decisions] == ["l4-a"]


def test_planned_task_record_round_trip() -> None:
    for task in propagate(load_items("product-launch.json")).tasks:
        assert PlannedTask.from_record(task.as_record()) == task


# ---------------------------------------------------------------------------- cycles


def test_the_cyclic_example_is_rejected_naming_the_cycle() -> None:
    items = load_items("cyclic-dependencies.json")
    depends_on = {item.id: item.depends_on for item in items}

    with pytest.raises(DependencyCycle) as raised:
        propagate(items)

    cycle = raised.value.cycle
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["l4-book-venue", "l4-draft-agenda", "l4-email-invitations"]
    assert all(b in depends_on[a] for a, b in pairwise(cycle))
    for item_id in cycle:
        assert item_id in raised.value.message
    assert "l4-research-team-goals" not in raised.value.message
    assert raised.value.details["cycle"] == cycle
    assert isinstance(raised.value, InvalidStrategy)
    [problem] = raised.value.problems
    assert (problem.path, problem.item_id) == (f"items ({cycle[0]}).dependsOn", cycle[0])


def test_a_two_item_cycle_is_rejected() -> None:
    items = [leaf("a", depends_on=("b",)), leaf("b", depends_on=("a",))]

    with pytest.raises(DependencyCycle) as raised:
        propagate(items)

    assert raised.value.cycle in (["a", "b", "a"], ["b", "a", "b"])


def test_one_cycle_among_acyclic_parts_is_found() -> None:
    graph: dict[str, Iterable[str]] = {
        "root": (),
        "left": ("root",),
        "right": ("root",),
        "join": ("left", "right"),
        "c1": ("join", "c3"),
        "c2": ("c1",),
        "c3": ("c2", "right"),
        "after": ("c2",),
        "alone": (),
    }

    with pytest.raises(DependencyCycle) as raised:
        topological_order(list(graph), graph)

    cycle = raised.value.cycle
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["c1", "c2", "c3"]
    assert all(b in graph[a] for a, b in pairwise(cycle))


def test_the_cycle_leaves_out_the_items_that_only_lead_into_it() -> None:
    items = [leaf("lead", depends_on=("a",)), leaf("a", depends_on=("b",)),
             leaf("b", depends_on=("a",))]

    with pytest.raises(DependencyCycle) as raised:
        propagate(items)

    assert raised.value.cycle == ["a", "b", "a"]
    assert "lead" not in raised.value.message


def test_a_self_loop_is_a_cycle_of_one() -> None:
    with pytest.raises(DependencyCycle) as raised:
        topological_order(["a", "b"], {"a": ("a",), "b": ()})

    assert raised.value.cycle == ["a", "a"]


# ------------------------------------------------------------------ topological order


def test_every_task_comes_after_its_dependencies() -> None:
    plan = propagate(load_items("product-launch.json"))

    position = {task.id: index for index, task in enumerate(plan.tasks)}
    assert [task.order for task in plan.tasks] == list(range(len(plan.tasks)))
    for task in plan.tasks:
        for dependency in task.depends_on:
            assert position[dependency] < position[task.id], (dependency, task.id)


def test_every_dependency_of_an_example_becomes_a_task_dependency() -> None:
    items = load_items("product-launch.json")
    plan = propagate(items)

    tasks_of = {d.item_id: d.task_ids for d in plan.decisions}
    first_deps = {t.id: set(t.depends_on) for t in plan.tasks}
    for item in items:
        if item.is_leaf:
            first = tasks_of[item.id][0]
            assert first_deps[first] == {tasks_of[d][-1] for d in item.depends_on}


def test_ties_keep_the_input_order() -> None:
    assert topological_order(["c", "a", "b"], {}) == ["c", "a", "b"]
    assert topological_order(["x", "y", "z"], {"x": ("z",)}) == ["y", "z", "x"]
    assert topological_order(["x", "y", "z"], {"x": ("z",), "y": ("z",)}) == ["z", "x", "y"]


def test_items_are_planned_in_topological_then_input_order() -> None:
    items = [
        leaf("a", depends_on=("c",)),
        leaf("b"),
        leaf("c"),
    ]

    assert [d.item_id for d in propagate(items).decisions] == ["b", "c", "a"]
