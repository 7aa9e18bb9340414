"""Strategy documents: the valid examples parse; every broken rule is named with its path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stratexec.domain.errors import InvalidStrategy, StrategyProblem
from stratexec.domain.strategy import DEFAULT_WORKSPACE, Strategy, StrategyItem, parse_strategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LEAF_INDEX = 3  # the index of the first L4 item in `document(...)`


def load(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def leaf(item_id: str = "l4-a", **fields: Any) -> dict[str, Any]:
    return {"id": item_id, "level": 4, "parentId": "l3", "title": "Send emails", **fields}


def document(*leaves: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "Grow revenue",
        "workspaceId": "w",
        "items": [
            {"id": "l1", "level": 1, "parentId": None, "title": "Grow revenue"},
            {"id": "l2", "level": 2, "parentId": "l1", "title": "Sales"},
            {"id": "l3", "level": 3, "parentId": "l2", "title": "Pipeline"},
            *leaves,
        ],
    }


def without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


def problems_of(doc: Any) -> list[StrategyProblem]:
    with pytest.raises(InvalidStrategy) as raised:
        parse_strategy(doc)
    assert raised.value.problems, "InvalidStrategy must list at least one problem"
    return raised.value.problems


def the_problem_at(doc: Any, path: str) -> StrategyProblem:
    problems = problems_of(doc)
    matching = [p for p in problems if p.path == path]
    assert matching, f"no problem at {path!r}; got {problems}"
    return matching[0]


# ------------------------------------------------------------------ valid documents


def test_small_demo_example_parses() -> None:
    definition = parse_strategy(load("small-demo.json"))

    assert definition.name == "Small demo: customer newsletter"
    assert definition.workspace_id == "demo"
    assert len(definition.items) == 6
    assert [item.id for item in definition.leaves] == [
        "l4-research-topics", "l4-write-newsletter", "l4-schedule-review"]
    write = definition.items[4]
    assert write == StrategyItem(
        id="l4-write-newsletter", level=4, parent_id="l3-june-issue",
        title="Write the newsletter",
        description="Short issue covering the three chosen themes.",
        depends_on=("l4-research-topics",),
    )


def test_product_launch_example_parses() -> None:
    raw = load("product-launch.json")

    definition = parse_strategy(raw)

    assert definition.workspace_id == "demo"
    assert [item.id for item in definition.items] == [item["id"] for item in raw["items"]]
    assert len(definition.leaves) == sum(1 for item in raw["items"] if item["level"] == 4)
    assert all(item.is_leaf for item in definition.leaves)


def test_cyclic_example_parses_because_cycles_are_found_by_propagation() -> None:
    definition = parse_strategy(load("cyclic-dependencies.json"))

    assert definition.workspace_id == DEFAULT_WORKSPACE
    assert len(definition.leaves) == 4


def test_a_missing_workspace_takes_the_given_default() -> None:
    doc = without(document(leaf()), "workspaceId")

    assert parse_strategy(doc, default_workspace="acme").workspace_id == "acme"


def test_strings_are_trimmed_and_optional_fields_kept() -> None:
    doc = document(leaf(title="  Send emails  ", description=" to leads ",
                        agents=["email", "analysis"], priority="low"))
    doc["name"] = "  Grow revenue "

    definition = parse_strategy(doc)

    item = definition.leaves[0]
    assert definition.name == "Grow revenue"
    assert (item.title, item.description) == ("Send emails", "to leads")
    assert (item.agents, item.priority) == (("email", "analysis"), "low")


def test_strategy_aggregate_keeps_the_definition() -> None:
    definition = parse_strategy(load("product-launch.json"))

    strategy = Strategy.define(definition)

    assert strategy.definition == definition
    assert strategy.strategy_id == strategy.id


# ---------------------------------------------------------------- the whole document


@pytest.mark.parametrize("doc", [[], "strategy", 42, None])
def test_a_document_that_is_not_an_object_is_rejected(doc: Any) -> None:
    problems = problems_of(doc)

    assert [p.path for p in problems] == ["$"]


def test_a_missing_name_is_rejected() -> None:
    problem = the_problem_at(without(document(leaf()), "name"), "name")

    assert "required" in problem.message


@pytest.mark.parametrize("name", ["", "   ", 7])
def test_a_blank_or_mistyped_name_is_rejected(name: Any) -> None:
    doc = document(leaf())
    doc["name"] = name

    the_problem_at(doc, "name")


def test_a_mistyped_workspace_is_rejected() -> None:
    doc = document(leaf())
    doc["workspaceId"] = 3

    the_problem_at(doc, "workspaceId")


def test_an_unknown_document_field_is_rejected() -> None:
    doc = document(leaf())
    doc["owner"] = "me"

    assert the_problem_at(doc, "owner").message == "unknown field"


@pytest.mark.parametrize("items", [None, [], {"id": "l1"}, "items"])
def test_items_must_be_a_non_empty_list(items: Any) -> None:
    doc = {"name": "Grow revenue", "items": items}
    if items is None:
        del doc["items"]

    the_problem_at(doc, "items")


def test_every_problem_is_reported_at_once() -> None:
    doc = document(leaf("l4-a", level=5), leaf("l4-b", priority="urgent"))
    doc["name"] = ""

    paths = {p.path for p in problems_of(doc)}

    assert {"name", "items[3] (l4-a).level", "items[4] (l4-b).priority"} <= paths


def test_the_error_details_carry_every_problem() -> None:
    with pytest.raises(InvalidStrategy) as raised:
        parse_strategy(document(leaf(level=5)))

    error = raised.value
    assert error.code == "invalid_strategy"
    assert error.details["problems"] == [p.as_dict() for p in error.problems]
    assert "items[3] (l4-a).level" in error.message


# ------------------------------------------------------------------------ items


@pytest.mark.parametrize("raw", [42, "l4-a", ["id", "l4-a"], None])
def test_an_item_that_is_not_an_object_is_rejected(raw: Any) -> None:
    problem = the_problem_at(document(raw), f"items[{LEAF_INDEX}]")

    assert "object" in problem.message


@pytest.mark.parametrize("item_id", [None, "", "  ", 12])
def test_an_item_without_a_usable_id_is_rejected(item_id: Any) -> None:
    item = leaf() if item_id is None else leaf(id=item_id)
    if item_id is None:
        item = without(item, "id")

    the_problem_at(document(item), f"items[{LEAF_INDEX}].id")


def test_an_item_without_a_title_is_rejected() -> None:
    problem = the_problem_at(document(without(leaf(), "title")), "items[3] (l4-a).title")

    assert problem.item_id == "l4-a"


def test_an_item_without_a_level_is_rejected() -> None:
    the_problem_at(document(without(leaf(), "level")), "items[3] (l4-a).level")


def test_a_leaf_without_a_parent_is_rejected() -> None:
    problem = the_problem_at(document(without(leaf(), "parentId")), "items (l4-a).parentId")

    assert "needs a parent" in problem.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", 7),
        ("title", "   "),
        ("parentId", 3),
        ("description", 5),
        ("dependsOn", "l4-b"),
        ("dependsOn", [1]),
        ("dependsOn", [""]),
        ("dependsOn", ["l4-b", "l4-b"]),
        ("agents", "email"),
        ("agents", ["email", "email"]),
        ("priority", "urgent"),
        ("priority", 1),
    ],
)
def test_a_mistyped_field_is_named_with_its_item(field: str, value: Any) -> None:
    doc = document(leaf(**{field: value}), leaf("l4-b"))

    problem = the_problem_at(doc, f"items[3] (l4-a).{field}")

    assert problem.item_id == "l4-a"


def test_an_unknown_item_field_is_rejected() -> None:
    problem = the_problem_at(document(leaf(owner="me")), "items[3] (l4-a).owner")

    assert problem.message == "unknown field"


@pytest.mark.parametrize("level", [0, 5, -1, "4", True, 4.5, 5.0, None])
def test_a_level_out_of_range_or_mistyped_is_rejected(level: Any) -> None:
    problem = the_problem_at(document(leaf(level=level)), "items[3] (l4-a).level")

    assert repr(level) in problem.message


def test_a_level_written_with_a_zero_fraction_is_that_integer() -> None:
    """JSON Schema's `integer`, which the OpenAPI document states, is any number without a
    fraction: 4.0 is 4 (schemathesis found the server refusing it)."""
    (item,) = parse_strategy(document(leaf(level=4.0))).leaves

    assert item.level == 4
    assert type(item.level) is int


def test_an_unknown_parent_is_rejected() -> None:
    problem = the_problem_at(document(leaf(parentId="nope")), "items (l4-a).parentId")

    assert "'nope'" in problem.message
    assert problem.item_id == "l4-a"


def test_a_parent_at_the_wrong_level_is_rejected() -> None:
    problem = the_problem_at(document(leaf(parentId="l2")), "items (l4-a).parentId")

    assert "L3 parent" in problem.message


def test_an_l1_item_with_a_parent_is_rejected() -> None:
    doc = document(leaf())
    doc["items"][0]["parentId"] = "l3"

    the_problem_at(doc, "items (l1).parentId")


def test_an_l2_item_without_a_parent_is_rejected() -> None:
    doc = document(leaf())
    doc["items"][1]["parentId"] = None

    the_problem_at(doc, "items (l2).parentId")


def test_a_dependency_on_an_unknown_item_is_rejected() -> None:
    problem = the_problem_at(document(leaf(dependsOn=["ghost"])), "items (l4-a).dependsOn")

    assert "'ghost'" in problem.message


def test_a_dependency_on_a_non_leaf_item_is_rejected() -> None:
    problem = the_problem_at(document(leaf(dependsOn=["l3"])), "items (l4-a).dependsOn")

    assert "not an L4 item" in problem.message


def test_an_item_depending_on_itself_is_rejected() -> None:
    problem = the_problem_at(document(leaf(dependsOn=["l4-a"])), "items (l4-a).dependsOn")

    assert "itself" in problem.message


def test_only_leaves_may_have_dependencies() -> None:
    doc = document(leaf(), leaf("l4-b"))
    doc["items"][2]["dependsOn"] = ["l4-a"]

    the_problem_at(doc, "items (l3).dependsOn")


def test_only_leaves_may_have_agents() -> None:
    doc = document(leaf())
    doc["items"][2]["agents"] = ["email"]

    the_problem_at(doc, "items (l3).agents")


def test_duplicate_ids_are_rejected() -> None:
    problems = problems_of(document(leaf("l4-a"), leaf("l4-a", title="Again")))

    duplicates = [p for p in problems if p.message == "duplicate item id"]
    assert [p.path for p in duplicates] == ["items (l4-a).id"]
    assert duplicates[0].item_id == "l4-a"


def test_a_leaf_with_an_explicit_empty_agent_list_is_rejected() -> None:
    problem = the_problem_at(document(leaf(agents=[])), "items[3] (l4-a).agents")

    assert "at least one agent" in problem.message


def test_a_malformed_agent_type_name_is_rejected() -> None:
    problem = the_problem_at(document(leaf(agents=["email", "Robot!"])),
                             "items[3] (l4-a).agents")

    assert problem.message.startswith("'Robot!' is not an agent type name")


def test_any_agent_type_name_is_one_to_a_document() -> None:
    """Which types run is the engine's configuration (domain.propagation.check_agent_types)."""
    definition = parse_strategy(document(leaf(agents=["email", "legal-review"])))

    assert definition.leaves[0].agents == ("email", "legal-review")


def test_a_strategy_without_leaves_is_rejected() -> None:
    problem = the_problem_at(document(), "items")

    assert "no L4 items" in problem.message
