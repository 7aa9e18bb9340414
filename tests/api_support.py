"""A real stratexec server for API tests, and a client that checks every answer against
the server's own OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from openapi_check import (
    path_template,
    validate_response,
    validate_schema,
    validate_stream_event,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from stratexec.config import Config
from stratexec.domain.retry import RetryPolicy
from stratexec.server import DASHBOARD_SECRET, create_app
from stratexec.settings import EngineOptions, ServerSettings, StoreSettings

ROOT = Path(__file__).resolve().parents[1]
FAST = EngineOptions(demo_duration=(0.01, 0.05), demo_failure_rate=0.0, seed=1,
                     retry=RetryPolicy(initial_interval=0.05), health_interval=0.1)
SLOW = EngineOptions(demo_duration=(0.3, 0.6), demo_failure_rate=0.0, seed=2,
                     concurrency=1, retry=RetryPolicy(initial_interval=0.05), health_interval=0.1)


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Api:
    """HTTP calls with a bearer token; every JSON answer is validated against the
    OpenAPI document of the server itself."""

    def __init__(self, session: aiohttp.ClientSession, token: str | None,
                 document: dict[str, Any]) -> None:
        self.session = session
        self.token = token
        self.document = document

    def with_token(self, token: str | None) -> Api:
        return Api(self.session, token, self.document)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> Answer:
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        async with self.session.request(method, path, data=data,
                                        headers={**self.headers(), **(headers or {})}) as resp:
            if resp.content_type == "text/event-stream":  # a live stream: never ends by itself
                return Answer(resp.status, None, dict(resp.headers))
            text = await resp.text()
            answer = Answer(resp.status, json.loads(text) if resp.content_type ==
                            "application/json" else text, dict(resp.headers))
        try:
            template = path_template(self.document, path)
        except AssertionError:  # an undocumented path: the answer must be the 404 error
            assert answer.status == 404, answer
            validate_schema(self.document, "Error", answer.body)
            return answer
        if resp.content_type == "application/json":
            validate_response(self.document, method, template, resp.status, answer.body)
        return answer

    async def get(self, path: str) -> Answer:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any = None) -> Answer:
        return await self.call("POST", path, body)

    async def start(self, strategy_name: str, workspace: str = "demo") -> str:
        strategies = (await self.get(f"/api/strategies?workspaceId={workspace}")).body
        strategy = next(s for s in strategies["strategies"] if s["name"] == strategy_name)
        answer = await self.post("/api/executions/start",
                                 {"strategyId": strategy["id"], "workspaceId": workspace})
        assert answer.status == 201, answer.body
        execution_id: str = answer.body["executionId"]
        return execution_id

    async def until_finished(self, execution_id: str) -> list[Frame]:
        """The execution's stream from the start of the log to `execution-completed`."""
        async with self.session.get(f"/api/executions/{execution_id}/events?lastEventId=0",
                                    headers=self.headers()) as stream:
            return await collect_until(sse_frames(stream), self.document)


@dataclass
class Frame:
    id: int | None
    event: str
    data: Any


async def sse_frames(response: aiohttp.ClientResponse) -> AsyncIterator[Frame]:
    """Parse an SSE stream into frames (comments skipped)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                frame_id = fields.get("id")
                yield Frame(int(frame_id) if frame_id else None, fields.get("event", "message"),
                            json.loads("\n".join(data)))
            fields, data = {}, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


async def collect_until(frames: AsyncIterator[Frame], document: dict[str, Any],
                        done: str = "execution-completed", timeout: float = 30,
                        into: list[Frame] | None = None) -> list[Frame]:
    """Frames up to and including the first of type `done`, each checked against the
    StreamEvent schema."""
    collected = [] if into is None else into

    async def read() -> None:
        async for frame in frames:
            if frame.event not in ("snapshot", "error"):
                validate_stream_event(document, frame.data)
            collected.append(frame)
            if frame.event == done:
                return
        raise AssertionError(f"stream ended before {done}")

    await asyncio.wait_for(read(), timeout)
    return collected


def metric_families(text: str) -> dict[str, Metric]:
    """A /metrics body (text format 0.0.4) as prometheus_client reads it, by family name."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def openmetrics_families(text: str) -> dict[str, Metric]:
    """The same for an OpenMetrics body, which must end with `# EOF` (this parser of
    prometheus_client has no annotations)."""
    families = openmetrics.text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    return {family.name: family for family in families}


@asynccontextmanager
async def running_server(data_dir: Path, options: EngineOptions = FAST,
                         config: Config | None = None, store: str = "sqlite",
                         **settings_given: Any) -> AsyncIterator[tuple[Api, TestServer]]:
    """stratexec's app served on a free port, and a client holding the dashboard token;
    with `config`, its agents are the ones it configures. Its events are in `store`
    (PostgreSQL: the database the `POSTGRES_*` environment names); `settings_given` are
    more `ServerSettings`."""
    settings = ServerSettings(**{
        "store": StoreSettings(data_dir, store), "engine": options, "port": 0,
        "max_body_bytes": 64 * 1024, "ping_interval": 1.0, "config": config or Config(),
        **settings_given})
    app = create_app(settings)
    server = TestServer(app, port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as session:
            async with session.get("/api/openapi.json") as resp:
                document = await resp.json()
            yield Api(session, app[DASHBOARD_SECRET], document), server
    finally:
        await server.close()


@dataclass
class ServerProcess:
    """`stratexec serve` in a real process, for restarts and kills. Its stderr (the log,
    a line per request) is read all along, so that a full pipe never stops the server."""

    process: subprocess.Popen[str]
    url: str
    token: str
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, data_dir: Path, *options: str, script: bool = False,
              port: int = 0) -> ServerProcess:
        """`stratexec serve`, or with `script` its twin `python server.py`; on `port`, or
        on any free port when it is 0 (a restart on the same port needs `free_port()`)."""
        command = ["server.py"] if script else ["-m", "stratexec", "serve"]
        process = subprocess.Popen(
            [sys.executable, *command, "--port", str(port), "--data-dir", str(data_dir),
             *options],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://[\d.]+:\d+)/\?token=(\S+)", line)
        if found is None:
            process.kill()
            raise AssertionError(f"no dashboard link in {line!r}: {process.communicate()[1]}")
        server = cls(process, found.group(1), found.group(2))
        server.reader = threading.Thread(target=server._read_log, daemon=True)
        server.reader.start()
        return server

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        with suppress(ValueError, OSError):  # the pipe was closed under the reader
            for line in self.process.stderr:
                self.log.append(line)

    def log_lines(self, contains: str, timeout: float = 10) -> list[str]:
        """The log lines holding `contains`, once there is at least one."""
        deadline = time.monotonic() + timeout
        while not (found := [line for line in list(self.log) if contains in line]):
            assert time.monotonic() < deadline, f"no log line with {contains!r}: {self.log}"
            time.sleep(0.02)
        return found

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(30)

    def close(self) -> None:
        """Stop it with SIGTERM (as a person's Ctrl-C or a service manager would) if it
        still runs, and close its pipes."""
        if self.process.poll() is None:
            self.stop()
        if self.reader is not None:
            self.reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def free_port() -> int:
    """A TCP port nothing listens on now, for a server that must come back on the same one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
