"""A client that subscribes to a stream and never reads holds nothing up: the server drops
it once a write has waited the send timeout, and a SIGTERM stops the server in a few
seconds with exit code 0 even while such a client is connected.

The client is a raw socket with a small receive buffer that sends its request and then never
reads; the stream it asks for replays more than the kernel buffers of both ends hold (the
titles of a wide strategy's tasks, carried by every `task-assigned` event), so the server's
writes to it block."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from api_support import FAST, Api, ServerProcess, running_server
from yarl import URL

from stratexec.api.handlers import SERVICES

WIDE_ITEMS = 100
TITLE_BYTES = 9000  # 100 items of 9 KB: 200 tasks, 1.8 MB of task-assigned frames per run
EXECUTIONS = 3  # 5 MB to replay, above what loopback buffers absorb (about 3 MB)
SEND_TIMEOUT = 1.0
STOPS_WITHIN = 8.0  # the grace before a stalled stream is aborted is 1 s
ENGINE = ("--demo-duration", "0.001:0.005", "--demo-failure-rate", "0", "--concurrency", "8")


def wide_strategy() -> dict[str, Any]:
    """An L4 item per task pair, each with a long title (under the 1 MiB body limit)."""
    filler = "x" * TITLE_BYTES
    items: list[dict[str, Any]] = [
        {"id": "goal", "level": 1, "parentId": None, "title": "Goal"},
        {"id": "l2", "level": 2, "parentId": "goal", "title": "Two"},
        {"id": "l3", "level": 3, "parentId": "l2", "title": "Three"}]
    items += [{"id": f"l4-{n}", "level": 4, "parentId": "l3",
               "title": f"Coordinate part {n} {filler}"} for n in range(WIDE_ITEMS)]
    return {"name": "Wide", "workspaceId": "demo", "items": items}


async def run_wide_executions(api: Api) -> None:
    created = await api.post("/api/strategies", wide_strategy())
    assert created.status == 201, created.body
    started = [await api.post("/api/executions/start", {
        "strategyId": created.body["strategy"]["id"], "workspaceId": "demo"})
        for _ in range(EXECUTIONS)]
    for answer in started:  # by polling: a stream left open would count as a subscriber
        status = f"/api/executions/{answer.body['executionId']}/status"

        async def finished(status: str = status) -> bool:
            return bool((await api.get(status)).body["execution"]["status"] == "completed")

        await until(finished, 60, "a wide execution did not finish")


@contextmanager
def stalled_subscriber(url: URL, path: str, token: str) -> Iterator[socket.socket]:
    """A connection that asks for `path` and then reads nothing."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        client.connect((url.host, url.port))
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: {url.host}\r\n"
                       f"Authorization: Bearer {token}\r\n\r\n".encode())
        yield client
    finally:
        client.close()


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_reader_that_stops_reading_is_dropped_after_the_send_timeout(
        tmp_path: Path) -> None:
    async with running_server(tmp_path, FAST, max_body_bytes=1024 * 1024,
                              stream_send_timeout=SEND_TIMEOUT) as (api, server):
        await run_wide_executions(api)
        hub = server.app[SERVICES].hub

        async def subscribed() -> bool:
            return hub.subscriber_count == 1

        async def dropped() -> bool:
            return hub.subscriber_count == 0

        url = server.make_url("")
        with stalled_subscriber(url, "/api/workspaces/demo/events?lastEventId=0", api.token
                                or ""):
            await until(subscribed, 10, "the stalled client never subscribed")
            await until(dropped, 10 + SEND_TIMEOUT, "the stalled client was never dropped")
            assert (await api.get("/api/me")).status == 200  # and the server answers on


def test_sigterm_stops_the_server_promptly_despite_a_reader_that_stopped_reading(
        tmp_path: Path) -> None:
    server = ServerProcess.start(tmp_path, *ENGINE)
    try:
        url = URL(server.url)

        async def prepare() -> None:
            async with aiohttp.ClientSession(base_url=server.url) as session:
                async with session.get("/api/openapi.json") as resp:
                    document = await resp.json()
                await run_wide_executions(Api(session, server.token, document))

        asyncio.run(prepare())
        with stalled_subscriber(url, "/api/workspaces/demo/events?lastEventId=0",
                                server.token):
            asyncio.run(until(lambda: subscribers(server.url, 1), 10,
                              "the stalled client never subscribed"))
            began = time.monotonic()
            server.process.terminate()
            code = server.process.wait(60)
            took = time.monotonic() - began
        assert code == 0, server.process.stderr.read() if server.process.stderr else ""
        assert took < STOPS_WITHIN, f"SIGTERM took {took:.1f} s"
    finally:
        server.close()


async def subscribers(base_url: str, wanted: int) -> bool:
    async with aiohttp.ClientSession(base_url=base_url) as session, \
            session.get("/healthz") as resp:
        health = json.loads(await resp.text())
    return bool(health["subscribers"] == wanted)
