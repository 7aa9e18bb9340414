"""Hostile input: bodies and credentials, each a 400 or 401 with the error JSON, never a 500,
changing nothing; an endless body, cut off with a 413; connections held open as a slowloris
does (sending nothing, headers or a body never finished) and a reader that never reads,
while the server goes on answering everyone else; paths that try to leave `/static/`."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from api_support import Api, running_server
from yarl import URL

ROOT = Path(__file__).resolve().parents[2]

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


async def connect(server: TestServer, receive_buffer: int | None = None
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TCP connection to the server; with `receive_buffer`, one whose kernel buffer
    is that small, so that a client that stops reading soon stops the server's writes."""
    url = server.make_url("/")
    if receive_buffer is None:
        return await asyncio.open_connection(url.host, url.port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.host, url.port))
    return await asyncio.open_connection(sock=sock)


async def exchange(server: TestServer, request: bytes) -> tuple[bytes, bytes]:
    """One raw request (that asks the server to close), and the answer's status line and
    body: for what no HTTP client library would send."""
    reader, writer = await connect(server)
    writer.write(request)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return head.partition(b"\r\n")[0], body


def post_head(token: str, framing: bytes) -> bytes:
    return (b"POST /api/strategies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n" + framing + b"\r\n\r\n")


def credential_request(where: str) -> bytes:
    raw = b"Bearer sx_\xff\xfe" if where == "Authorization" else b"stratexec_token=sx_\xff"
    return (b"GET /api/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + where.encode() + b": " + raw + b"\r\n\r\n")


@pytest.mark.parametrize("where", ["Authorization", "Cookie"])
async def test_a_credential_that_is_not_utf8_is_a_401(tmp_path: Path, where: str) -> None:
    async with running_server(tmp_path) as (api, server):
        status_line, body = await exchange(server, credential_request(where))
        assert b" 401 " in status_line, status_line
        assert json.loads(body)["error"]["code"] == "unauthorized"
        assert (await api.get("/api/me")).status == 200  # and the server still answers


async def test_an_endless_body_is_cut_off_with_a_413_and_records_nothing(
        tmp_path: Path) -> None:
    """A chunked body that never ends (JSON whitespace, forever): the server answers 413
    once it holds more than its limit (64 KiB here), while the client is still sending."""
    chunk = b" " * 16_384
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    give_up = 1024 * len(chunk)  # 16 MiB: a server waiting for the end would let it all in
    async with running_server(tmp_path) as (api, server):
        before = await strategy_count(api)
        reader, writer = await connect(server)
        writer.write(post_head(api.token or "", b"Transfer-Encoding: chunked"))
        sent = 0

        async def send_forever() -> None:
            nonlocal sent
            with suppress(ConnectionError):
                while sent < give_up:
                    writer.write(framed)
                    await writer.drain()
                    sent += len(chunk)

        sender = asyncio.create_task(send_forever())
        status_line = await asyncio.wait_for(reader.readline(), 60)
        stopped_at = sent
        sender.cancel()
        with suppress(asyncio.CancelledError):
            await sender
        writer.close()
        assert b" 413 " in status_line, status_line
        assert stopped_at < give_up
        assert await strategy_count(api) == before


@asynccontextmanager
async def held_connections(server: TestServer, token: str, each: int
                           ) -> AsyncIterator[None]:
    """`each` connections of every kind a slowloris holds open: one that sends nothing,
    one whose headers never end, one whose body stops short of its Content-Length, one
    whose chunked body stalls; and a reader that pipelines requests for the OpenAPI
    document (56 KB each) and never reads an answer."""
    stalled = [b"", b"GET /api/me HTTP/1.1\r\nHost: x\r\n",
               post_head(token, b"Content-Length: 1000") + b'{"name": ',
               post_head(token, b"Transfer-Encoding: chunked") + b'5\r\n{"nam']
    never_read = b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 40
    writers = []
    for data, buffer in [*((data, None) for data in stalled), (never_read, 4096)]:
        for _ in range(each):
            _, writer = await connect(server, buffer)
            writer.write(data)
            await writer.drain()
            writers.append(writer)
    try:
        yield
    finally:
        for writer in writers:
            writer.close()
        for writer in writers:
            with suppress(ConnectionError):
                await writer.wait_closed()


async def test_the_server_answers_everyone_else_while_connections_are_held(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """250 hostile connections open at once, and meanwhile every normal request and every
    hostile body is answered as usual; once they go, nothing was logged as a server error."""
    document = json.loads((ROOT / "examples" / "small-demo.json").read_text())
    caplog.set_level(logging.ERROR, logger="stratexec")
    async with running_server(tmp_path) as (api, server):
        async with held_connections(server, api.token or "", each=50):
            assert (await api.get("/api/me")).status == 200
            created = await api.post("/api/strategies", document | {"workspaceId": "demo"})
            assert created.status == 201, created.body
            for case, body in HOSTILE_BODIES.items():
                answer = await api.call("POST", "/api/strategies", raw=body,
                                        headers={"Content-Type": "application/json"})
                assert answer.status == 400, (case, answer.body)
            for where in ("Authorization", "Cookie"):
                assert b" 401 " in (await exchange(server, credential_request(where)))[0]
            assert (await api.get("/api/openapi.json")).status == 200
        assert (await api.get("/api/me")).status == 200
    assert [r.getMessage() for r in caplog.records if r.name.startswith("stratexec")] == []


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
