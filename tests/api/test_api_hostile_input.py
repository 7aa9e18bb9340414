"""Hostile request bodies and credentials: each is a 400 or 401 with the error JSON, never a
500, and changes nothing (the server stays responsive and records nothing)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from api_support import Api, running_server
from yarl import URL

ROOT_STRATEGY = {"id": "g", "level": 1, "parentId": None, "title": "Goal"}


def strategy_with_title(title: str) -> str:
    return json.dumps({"name": "Hostile", "workspaceId": "demo", "items": [
        ROOT_STRATEGY,
        {"id": "l2", "level": 2, "parentId": "g", "title": "Two"},
        {"id": "l3", "level": 3, "parentId": "l2", "title": "Three"},
        {"id": "l4", "level": 4, "parentId": "l3", "title": title}]})


HOSTILE_BODIES = {
    "nested 10,000 deep": ("[" * 10_000 + "]" * 10_000).encode(),
    "nested objects 10,000 deep": ('{"a":' * 10_000 + "1" + "}" * 10_000).encode(),
    "a 5,000-digit integer": b'{"name": "x", "items": [], "workspaceId": ' + b"9" * 5000 + b"}",
    "not UTF-8": b'{"name": "\xff\xfe", "items": []}',
    "a lone surrogate in a title": strategy_with_title("\ud800 launch").encode(),
}


async def strategy_count(api: Api) -> int:
    answer = await api.get("/api/strategies?limit=1000")
    return len(answer.body["strategies"])


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
async def test_a_hostile_body_is_a_400_that_changes_nothing(tmp_path: Path, case: str) -> None:
    async with running_server(tmp_path) as (api, _):
        before = await strategy_count(api)
        answer = await api.call("POST", "/api/strategies", raw=HOSTILE_BODIES[case],
                                headers={"Content-Type": "application/json"})
        assert answer.status == 400, answer.body
        assert answer.body["error"]["code"] == "bad_request"
        assert answer.body["error"]["details"]["problems"][0]["path"].startswith("body")
        assert await strategy_count(api) == before


async def test_an_unknown_charset_is_a_400(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        answer = await api.call("POST", "/api/executions/start", raw=b"{}",
                                headers={"Content-Type": "application/json; charset=klingon"})
        assert answer.status == 400, answer.body
        assert answer.body["error"]["details"]["problems"][0]["path"] == "body"


@pytest.mark.parametrize("where", ["Authorization", "Cookie"])
async def test_a_credential_that_is_not_utf8_is_a_401(tmp_path: Path, where: str) -> None:
    async with running_server(tmp_path) as (api, server):
        raw = b"Bearer sx_\xff\xfe" if where == "Authorization" else b"stratexec_token=sx_\xff"
        url = server.make_url("/api/me")
        reader, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(b"GET /api/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     + where.encode() + b": " + raw + b"\r\n\r\n")
        await writer.drain()
        response = await reader.read()
        writer.close()
        status_line, _, rest = response.partition(b"\r\n")
        assert b" 401 " in status_line, response[:300]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"]["code"] == "unauthorized"
        assert (await api.get("/api/me")).status == 200  # and the server still answers


async def test_inputs_holding_an_integer_the_store_cannot_encode_are_a_422(
        tmp_path: Path) -> None:
    document = json.loads(strategy_with_title("Send the launch email"))
    document["items"][3]["inputs"] = {"audience": [1, {"size": 2**70}]}
    async with running_server(tmp_path) as (api, _):
        before = await strategy_count(api)
        answer = await api.post("/api/strategies", document)
        assert answer.status == 422, answer.body
        assert "64 bits" in answer.body["error"]["message"]
        assert await strategy_count(api) == before


async def test_a_method_not_allowed_says_which_are(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        answer = await api.call("DELETE", "/api/strategies")
        assert answer.status == 405
        assert answer.body["error"]["code"] == "method_not_allowed"
        assert set(answer.headers["Allow"].split(",")) >= {"GET", "POST"}


async def test_a_missing_static_file_is_the_json_404(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        answer = await api.with_token(None).call("GET", "/static/no-such-file.js")
        assert answer.status == 404
        assert answer.body["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py",
    "/static/js/../../server.py", "/static//etc/passwd", "/static/%00", "/static/" + "a" * 300])
async def test_nothing_outside_static_is_served_from_it(tmp_path: Path, path: str) -> None:
    async with running_server(tmp_path) as (api, server):
        origin = str(server.make_url("")).rstrip("/")
        async with api.session.get(URL(origin + path, encoded=True)) as response:  # as written
            body = await response.read()
        assert response.status in (401, 404), path  # 401: it left /static/, to a private path
        assert response.content_type == "application/json"
        assert b"create_app" not in body
        assert b"root:" not in body
