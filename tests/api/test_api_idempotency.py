"""`POST /api/executions/start` with an `Idempotency-Key`: a retry answers the first
execution (the same 201 and body) and starts nothing, also when the requests race and after
the server was killed; another body under the key is a 422 naming the header; the key is
scoped to the token's user."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from api_support import FAST, SLOW, Answer, Api, ServerProcess, running_server

from stratexec.api.handlers import SERVICES

START = "/api/executions/start"


async def strategy_ids(api: Api) -> dict[str, str]:
    strategies = (await api.get("/api/strategies?workspaceId=demo")).body["strategies"]
    return {strategy["name"]: strategy["id"] for strategy in strategies}


async def start(api: Api, strategy_id: str, key: str | None) -> Answer:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await api.call("POST", START, {"strategyId": strategy_id, "workspaceId": "demo"},
                          headers=headers)


async def execution_count(api: Api) -> int:
    return len((await api.get("/api/executions?workspaceId=demo")).body["executions"])


async def test_a_retry_with_the_key_answers_the_first_execution(tmp_path: Path) -> None:
    async with running_server(tmp_path, SLOW) as (api, _):
        strategy = (await strategy_ids(api))["Small demo: customer newsletter"]
        first = await start(api, strategy, "order-1234")
        assert first.status == 201
        assert "Idempotent-Replayed" not in first.headers
        again = await start(api, strategy, "order-1234")
        assert (again.status, again.body) == (201, first.body)  # status "pending", as at first
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await execution_count(api) == 1
        other = await start(api, strategy, "order-1235")  # another key: another execution
        assert other.body["executionId"] != first.body["executionId"]
        assert await execution_count(api) == 2


async def test_the_key_with_another_body_is_a_422_naming_the_header(tmp_path: Path) -> None:
    async with running_server(tmp_path, SLOW) as (api, _):
        ids = await strategy_ids(api)
        assert (await start(api, ids["Small demo: customer newsletter"], "k-1")).status == 201
        reused = await start(api, ids["Launch Acme Insights 2.0"], "k-1")
        assert reused.status == 422
        assert reused.body["error"]["code"] == "idempotency_key_reused"
        assert reused.body["error"]["details"] == {"header": "Idempotency-Key"}
        assert "Idempotency-Key" in reused.body["error"]["message"]
        assert await execution_count(api) == 1


async def test_a_key_is_scoped_to_the_tokens_user(tmp_path: Path) -> None:
    async with running_server(tmp_path, SLOW) as (api, server):
        _, secret = await asyncio.to_thread(
            server.app[SERVICES].engine.app.issue_token, "ursula", ["demo"])
        strategy = (await strategy_ids(api))["Small demo: customer newsletter"]
        mine = await start(api, strategy, "shared-key")
        theirs = await start(api.with_token(secret), strategy, "shared-key")
        assert theirs.status == 201
        assert "Idempotent-Replayed" not in theirs.headers
        assert theirs.body["executionId"] != mine.body["executionId"]


async def test_racing_requests_with_one_key_start_one_execution(tmp_path: Path) -> None:
    async with running_server(tmp_path, SLOW) as (api, _):
        strategy = (await strategy_ids(api))["Small demo: customer newsletter"]
        answers = await asyncio.gather(*(start(api, strategy, "race") for _ in range(8)))
        assert {answer.status for answer in answers} == {201}
        assert len({json.dumps(answer.body) for answer in answers}) == 1
        assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1  # one won
        assert await execution_count(api) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there"])
async def test_a_malformed_key_is_a_400_that_starts_nothing(tmp_path: Path, key: str) -> None:
    async with running_server(tmp_path, FAST) as (api, _):
        strategy = (await strategy_ids(api))["Small demo: customer newsletter"]
        answer = await api.call(
            "POST", START, raw=json.dumps({"strategyId": strategy, "workspaceId": "demo"})
            .encode(), headers={"Idempotency-Key": key, "Content-Type": "application/json"})
        assert answer.status == 400, answer.body
        problems = answer.body["error"]["details"]["problems"]
        assert problems[0]["path"] == "header.Idempotency-Key"
        assert await execution_count(api) == 0


async def test_the_key_holds_across_a_kill_and_a_restart(tmp_path: Path) -> None:
    """The retry after a crash (the answer was lost with the process) finds the execution."""
    first_server = ServerProcess.start(tmp_path, "--demo-duration", "0.3:0.6")
    try:
        body = await post_with_key(first_server, "after-crash")
        first_server.process.kill()  # SIGKILL: nothing is written on the way out
        first_server.process.wait(30)
    finally:
        first_server.close()
    second_server = ServerProcess.start(tmp_path, "--demo-duration", "0.3:0.6")
    try:
        again = await post_with_key(second_server, "after-crash", replayed=True)
        assert again == body
    finally:
        second_server.close()


async def post_with_key(server: ServerProcess, key: str, replayed: bool = False
                        ) -> dict[str, Any]:
    async with aiohttp.ClientSession(base_url=server.url) as session:
        api = Api(session, server.token, await (await session.get("/api/openapi.json")).json())
        strategy = (await strategy_ids(api))["Small demo: customer newsletter"]
        answer = await start(api, strategy, key)
        assert answer.status == 201, answer.body
        assert ("Idempotent-Replayed" in answer.headers) == replayed
        assert await execution_count(api) == 1
        body: dict[str, Any] = answer.body
        return body
