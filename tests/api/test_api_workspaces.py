"""A token sees nothing outside its workspaces: every route answers 404 for another
workspace's resources, exactly as for ones that do not exist, and 401 without a token, with
the events in SQLite and in PostgreSQL. The check walks the server's whole route table, so a
new route cannot skip it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from api_support import SLOW, Api, metric_families, running_server
from openapi_check import validate_schema

from stratexec.api.auth import PUBLIC_PATHS
from stratexec.api.handlers import SERVICES

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("/", "/executions/{executionId}")


def body_for(method: str, path: str, ids: dict[str, str]) -> Any:
    """A valid body aimed at the other workspace, for the routes that take one."""
    if path == "/api/strategies" and method == "POST":
        document = json.loads((ROOT / "examples" / "small-demo.json").read_text())
        return document | {"workspaceId": "other"}
    if path == "/api/executions/start":
        return {"strategyId": ids["strategyId"], "workspaceId": "other"}
    return None


async def test_every_route_hides_other_workspaces(tmp_path: Path, server_store: str) -> None:
    async with running_server(tmp_path, store=server_store) as (api, server):
        services = server.app[SERVICES]
        assert server_store in type(services.engine.app.recorder).__name__.lower()
        _, other_secret = await asyncio.to_thread(
            services.engine.app.issue_token, "olga", ["other"])
        other = api.with_token(other_secret)
        document = json.loads((ROOT / "examples" / "small-demo.json").read_text())
        created = await other.post("/api/strategies", document | {"workspaceId": "other"})
        strategy_id = created.body["strategy"]["id"]
        started = await other.post("/api/executions/start",
                                   {"strategyId": strategy_id, "workspaceId": "other"})
        ids = {"strategyId": strategy_id, "executionId": started.body["executionId"],
               "workspaceId": "other", "taskId": "l4-research-topics:research"}
        missing = {"strategyId": "00000000-0000-0000-0000-000000000000",
                   "executionId": "00000000-0000-0000-0000-000000000000",
                   "workspaceId": "nowhere", "taskId": "l4-research-topics:research"}

        checked = set()
        for route in server.app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            template = info.get("formatter") or info.get("path") or info.get("prefix", "")
            if route.method == "HEAD" or template in PUBLIC_PATHS or template in PAGES \
                    or template.startswith("/static"):
                continue
            if template == "/api/me":  # not a resource: it names the token's own workspaces
                assert (await api.get("/api/me")).body["workspaces"] == ["demo"]
                continue
            if template == "/metrics":  # not a resource: it counts the token's workspaces only
                mine = metric_families((await api.get("/metrics")).body)
                theirs = metric_families((await other.get("/metrics")).body)
                assert not mine["stratexec_executions"].samples
                assert theirs["stratexec_executions"].samples
                continue
            if template == "/api/agents/{agentType}/resume":  # the engine's, every workspace's
                assert (await api.post("/api/agents/plumbing/resume")).status == 404
                assert (await other.post("/api/agents/email/resume")).status == 409
                assert (await api.with_token(None).post("/api/agents/email/resume")
                        ).status == 401
                continue
            checked.add((route.method, template))
            for names in (ids, missing):
                path = template.format(**names)
                if "{" not in template and route.method == "GET":
                    path += "?workspaceId=" + names["workspaceId"]
                answer = await api.call(route.method, path, body_for(route.method, template,
                                                                    names))
                assert answer.status == 404, (route.method, path, answer.body)
                validate_schema(api.document, "Error", answer.body)
            anonymous = await api.with_token(None).call(route.method, template.format(**ids))
            assert anonymous.status == 401, (route.method, template)
            # The owner of the workspace does get past the check on the same route.
            owner = await other.call(route.method, template.format(**ids) + (
                "?workspaceId=other" if "{" not in template and route.method == "GET" else ""),
                body_for(route.method, template, ids))
            assert owner.status not in (401, 404), (route.method, template, owner.body)
        assert len(checked) == 17, sorted(checked)
        documented = {(method.upper(), path) for path, item in api.document["paths"].items()
                      for method in item if method in ("get", "post")}
        assert checked <= documented


async def test_streams_of_other_workspaces_are_not_found(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        other = Api(api.session, api.token, api.document)
        for path in ("/api/workspaces/other/events", "/api/executions/"
                     "00000000-0000-0000-0000-000000000000/events"):
            async with other.session.get(path, headers=other.headers()) as resp:
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == "not_found"


def live_executions(scrape: str) -> float:
    (sample,) = metric_families(scrape)["stratexec_live_executions"].samples
    return sample.value


async def test_live_executions_on_metrics_count_the_tokens_workspaces_only(
        tmp_path: Path) -> None:
    async with running_server(tmp_path, SLOW) as (api, server):
        _, other_secret = await asyncio.to_thread(
            server.app[SERVICES].engine.app.issue_token, "olga", ["other"])
        other = api.with_token(other_secret)
        document = json.loads((ROOT / "examples" / "small-demo.json").read_text())
        created = await other.post("/api/strategies", document | {"workspaceId": "other"})
        started = await other.post("/api/executions/start", {
            "strategyId": created.body["strategy"]["id"], "workspaceId": "other"})
        assert started.status == 201
        assert live_executions((await other.get("/metrics")).body) == 1  # SLOW: still running
        assert live_executions((await api.get("/metrics")).body) == 0
