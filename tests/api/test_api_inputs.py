"""An L4 item's `inputs` over real HTTP: kept in the strategy's document and handed to every
task of its plan, in the answer to the definition and in the strategy's detail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api_support import running_server

INPUTS = {"audience": "beta testers", "limits": {"maxRecipients": 500, "dryRun": False},
          "tags": ["launch", "beta"], "note": None, "weight": 0.25}


def strategy() -> dict[str, Any]:
    return {"name": "Beta invite", "workspaceId": "demo", "items": [
        {"id": "goal", "level": 1, "parentId": None, "title": "Launch the beta"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Outreach"},
        {"id": "plan", "level": 3, "parentId": "area", "title": "Invitations"},
        {"id": "invite", "level": 4, "parentId": "plan", "title": "Invite the testers",
         "description": "One short email.", "agents": ["content", "email"], "inputs": INPUTS},
        {"id": "count", "level": 4, "parentId": "plan", "title": "Count the sign-ups",
         "agents": ["analysis"], "dependsOn": ["invite"]},
    ]}


def check_detail(detail: dict[str, Any]) -> None:
    items = {item["id"]: item for item in detail["document"]["items"]}
    assert items["invite"]["inputs"] == INPUTS
    assert "inputs" not in items["count"]
    tasks = {task["id"]: task for task in detail["plan"]["tasks"]}
    for task_id in ("invite:content", "invite:email"):
        assert (tasks[task_id]["inputs"], tasks[task_id]["description"]) == (
            INPUTS, "One short email.")
    assert "inputs" not in tasks["count:analysis"]  # an item without them: the keys are left out
    assert "description" not in tasks["count:analysis"]


async def test_an_items_inputs_survive_the_definition_and_the_strategy_detail(
        tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        created = await api.post("/api/strategies", strategy())
        assert created.status == 201, created.body
        check_detail(created.body["strategy"])
        strategy_id = created.body["strategy"]["id"]
        read = await api.get(f"/api/strategies/{strategy_id}")
        assert read.status == 200
        check_detail(read.body["strategy"])


async def test_inputs_that_are_not_an_object_are_refused_with_their_path(
        tmp_path: Path) -> None:
    document = strategy()
    document["items"][3]["inputs"] = ["not", "an", "object"]
    async with running_server(tmp_path) as (api, _):
        refused = await api.post("/api/strategies", document)
    assert refused.status == 400
    paths = [p["path"] for p in refused.body["error"]["details"]["problems"]]
    assert paths == ["body.items[3].inputs"]
