"""Several real `stratexec serve` processes on one fresh PostgreSQL database, and clients
of them."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from api_support import Frame, ServerProcess, sse_frames
from helpers import store_variables

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "small-demo.json"
# Executions per test; more with STRATEXEC_CLUSTER_EXECUTIONS for a longer run.
EXECUTIONS = int(os.environ.get("STRATEXEC_CLUSTER_EXECUTIONS", "20"))
NODE_OPTIONS = ("--demo-duration", "0.2:0.5", "--demo-failure-rate", "0", "--seed", "3",
                "--health-interval", "0.5", "--retry-interval", "0.05")


class Cluster:
    """Nodes started on demand, each with its own data directory, all on one database."""

    def __init__(self, tmp_path: Path, postgres_env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = {**store_variables(postgres_env), "STRATEXEC_TAKEOVER_INTERVAL": "0.5"}
        self.nodes: list[ServerProcess] = []

    def start(self, *options: str) -> ServerProcess:
        node = ServerProcess.start(self.tmp_path / f"node{len(self.nodes)}", *NODE_OPTIONS,
                                   *options, env=self.env)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class Client:
    """HTTP calls to one node, with its token."""

    def __init__(self, session: aiohttp.ClientSession, node: ServerProcess) -> None:
        self.session, self.node = session, node
        self.headers = {"Authorization": f"Bearer {node.token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.node.url + path, headers=self.headers,
                                        json=body) as response:
            return response.status, await response.json()

    async def start_executions(self, count: int) -> list[str]:
        document = json.loads(EXAMPLE.read_text())
        status, created = await self.call("POST", "/api/strategies", document)
        assert status == 201, created
        ids = []
        for _ in range(count):
            status, started = await self.call("POST", "/api/executions/start", {
                "strategyId": created["strategy"]["id"], "workspaceId": "demo"})
            assert status == 201, started
            ids.append(started["executionId"])
        return ids

    async def executions(self) -> list[dict[str, Any]]:
        status, listed = await self.call("GET", "/api/executions?limit=1000")
        assert status == 200, listed
        executions: list[dict[str, Any]] = listed["executions"]
        return executions

    async def healthz(self) -> dict[str, Any]:
        status, health = await self.call("GET", "/healthz")
        assert status == 200, health
        node: dict[str, Any] = health["node"]
        return node

    async def history(self, execution_id: str) -> list[dict[str, Any]]:
        status, page = await self.call("GET", f"/api/executions/{execution_id}/history"
                                              "?limit=1000")
        assert status == 200, page
        events: list[dict[str, Any]] = page["events"]
        return events

    async def stream(self, path: str, into: list[Frame]) -> None:
        """Collect the frames of a stream until cancelled."""
        async with self.session.get(self.node.url + path, headers=self.headers,
                                    timeout=aiohttp.ClientTimeout(total=None)) as response:
            assert response.status == 200
            async for frame in sse_frames(response):
                if frame.id is not None:
                    into.append(frame)


async def until(condition: Any, timeout: float, what: str) -> Any:
    """Await `condition()` until it returns something true, or fail after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := await condition()):
        assert loop.time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)
    return result
