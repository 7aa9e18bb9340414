"""Bad bodies over real HTTP: every problem comes back at once, each with its path in one
format (`body.items[3].level`); 400 for the wrong shape, 422 for the domain's rules. Every
answer is also checked against /api/openapi.json by the client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api_support import Api, running_server

ROOT = Path(__file__).resolve().parents[2]


def small_demo() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / "examples" / "small-demo.json").read_text())
    return document


def problems_of(body: Any) -> dict[str, str]:
    return {p["path"]: p["message"] for p in body["error"]["details"]["problems"]}


async def unchanged(api: Api, before: list[Any]) -> bool:
    after: list[Any] = (await api.get("/api/strategies")).body["strategies"]
    return after == before


async def test_one_strategy_document_gets_every_problem_of_shape_back_with_its_path(
        tmp_path: Path) -> None:
    document = small_demo()
    del document["name"]
    document["workspaceId"] = 5
    document["owner"] = "me"
    items = document["items"]
    items[1]["colour"] = "red"
    items[2]["agents"] = ["research", 7]
    items[3]["level"] = "4"
    items[4]["dependsOn"] = "l4-research-topics"
    items[5]["priority"] = None
    items.append([])
    async with running_server(tmp_path) as (api, _):
        before = (await api.get("/api/strategies")).body["strategies"]
        answer = await api.post("/api/strategies", document)
        assert (answer.status, answer.body["error"]["code"]) == (400, "bad_request")
        problems = problems_of(answer.body)
        assert problems == {
            "body.name": "required",
            "body.workspaceId": "expected a string, got an integer",
            "body.owner": "unknown field",
            "body.items[1].colour": "unknown field",
            "body.items[2].agents[1]": "expected a string, got an integer",
            "body.items[3].level": "expected an integer, got a string",
            "body.items[4].dependsOn": "expected a list, got a string",
            "body.items[5].priority": "may be left out, but not null",
            "body.items[6]": "expected an object, got a list",
        }
        message = answer.body["error"]["message"]
        assert message.startswith("body.")
        assert message.endswith("(and 4 more)")
        assert await unchanged(api, before)


async def test_a_document_of_the_right_shape_gets_every_broken_rule_back_as_422(
        tmp_path: Path) -> None:
    document = small_demo()
    document["name"] = "   "
    items = document["items"]
    items[3]["level"] = 7  # a rule of one item, found with the shape
    items[4]["parentId"] = "nowhere"  # a rule between items, checked on the rest
    async with running_server(tmp_path) as (api, _):
        answer = await api.post("/api/strategies", document)
        assert (answer.status, answer.body["error"]["code"]) == (422, "invalid_strategy")
        problems = problems_of(answer.body)
        assert problems["name"] == "required, a non-empty string"
        assert problems["items[3] (l4-research-topics).level"] == (
            "must be an integer from 1 to 4, got 7")
        assert problems["items (l4-write-newsletter).parentId"] == (
            "unknown parent id 'nowhere'")
        fixed = small_demo()
        fixed["items"][4]["parentId"] = "nowhere"
        only_between = await api.post("/api/strategies", fixed)
        assert only_between.status == 422
        assert list(problems_of(only_between.body)) == ["items (l4-write-newsletter).parentId"]


async def test_an_agent_type_the_engine_does_not_run_is_a_broken_rule(tmp_path: Path) -> None:
    document = small_demo()
    document["items"][3]["agents"] = ["research", "robot"]  # a name, but no type it runs
    document["items"][4]["agents"] = ["Robot!"]
    async with running_server(tmp_path) as (api, _):
        answer = await api.post("/api/strategies", document)
        assert (answer.status, answer.body["error"]["code"]) == (422, "invalid_strategy")
        assert problems_of(answer.body) == {
            "items[4] (l4-write-newsletter).agents": "'Robot!' is not an agent type name (a "
            "lower-case letter, then lower-case letters, digits, - or _; 40 at most)"}
        del document["items"][4]["agents"]
        answer = await api.post("/api/strategies", document)
        assert answer.status == 422
        assert problems_of(answer.body) == {
            "items (l4-research-topics).agents": "unknown agent type 'robot' (known: email, "
            "content, research, scheduling, analysis, coordination)"}


async def test_every_body_reports_every_problem_in_the_same_format(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        start = await api.post("/api/executions/start", {"strategyId": 5, "extra": True})
        assert start.status == 400
        assert problems_of(start.body) == {
            "body.strategyId": "expected a string, got an integer",
            "body.workspaceId": "required",
            "body.extra": "unknown field",
        }
        for raw, expected in ((b"[]", "expected an object, got a list"),
                              (b"", "malformed JSON: EOF while parsing a value at line 1 "
                                    "column 0")):
            answer = await api.call("POST", "/api/strategies", raw=raw)
            assert answer.status == 400
            assert problems_of(answer.body) == {"body": expected}
            assert answer.body["error"]["message"] == f"body: {expected}"
        snake = small_demo()
        snake["items"][1]["parent_id"] = snake["items"][1].pop("parentId")
        answer = await api.post("/api/strategies", snake)
        assert problems_of(answer.body) == {"body.items[1].parent_id": "unknown field"}


async def test_a_strategy_without_items_is_refused_as_its_schema_says(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        schema = api.document["components"]["schemas"]["StrategyDocument"]
        assert schema["properties"]["items"]["minItems"] == 1
        before = (await api.get("/api/strategies")).body["strategies"]
        answer = await api.post("/api/strategies", {"name": "Empty", "items": []})
        assert (answer.status, answer.body["error"]["code"]) == (422, "invalid_strategy")
        assert "items" in problems_of(answer.body)
        assert await unchanged(api, before)
