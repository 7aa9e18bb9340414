"""Live streams against a real server: reconnecting with Last-Event-ID after a disconnect
and after a server restart delivers every event exactly once, in order; the WebSocket twin;
a hundred subscribers at once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from api_support import (
    FAST,
    Api,
    Frame,
    ServerProcess,
    collect_until,
    running_server,
    sse_frames,
)
from openapi_check import validate_ws_message

from stratexec import usecases
from stratexec.circuit_settings import CircuitSettings
from stratexec.domain.retry import RetryPolicy
from stratexec.settings import EngineOptions

STEADY = EngineOptions(demo_duration=(0.02, 0.08), demo_failure_rate=0.2, seed=3,
                       concurrency=2, retry=RetryPolicy(maximum_attempts=8, initial_interval=0.05),
                       health_interval=0.1,  # a type may be paused by chance: briefly
                       circuit=CircuitSettings(cool_down=0.05))


def positions(frames: list[Frame]) -> list[int]:
    return [f.id for f in frames if f.id is not None and f.event != "snapshot"]


async def full_sequence(api: Api, path: str) -> list[int]:
    """Every event of the stream from the start of the log, read in one go."""
    async with api.session.get(path, headers={**api.headers(), "Last-Event-ID": "0"}) as resp:
        return positions(await collect_until(sse_frames(resp), api.document))


async def test_a_client_that_disconnects_mid_run_resumes_exactly_once(tmp_path: Path) -> None:
    async with running_server(tmp_path, STEADY) as (api, _):
        execution_id = await api.start("Launch Acme Insights 2.0")
        path = f"/api/executions/{execution_id}/events"
        seen: list[Frame] = []
        async with api.session.get(path, headers=api.headers()) as resp:
            frames = sse_frames(resp)
            async for frame in frames:
                seen.append(frame)
                if len(seen) == 20:
                    break
        assert seen[0].event == "snapshot"
        last = positions(seen)[-1]
        async with api.session.get(f"{path}?lastEventId={last}", headers=api.headers()
                                   ) as resp:
            rest = await collect_until(sse_frames(resp), api.document)
        assert rest[0].event != "snapshot"  # a resumed stream starts where it left off
        received = positions(seen) + positions(rest)
        assert len(received) == len(set(received))
        snapshot_position = seen[0].id
        assert snapshot_position is not None
        expected = [p for p in await full_sequence(api, path) if p > snapshot_position]
        assert received == expected


async def test_reconnecting_across_a_server_restart_misses_nothing(tmp_path: Path) -> None:
    options = ["--demo-duration", "0.05:0.15", "--concurrency", "2", "--seed", "4",
               "--demo-failure-rate", "0", "--health-interval", "0.2"]
    server = ServerProcess.start(tmp_path, *options)
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            api = Api(session, server.token, await (await session.get(
                "/api/openapi.json")).json())
            execution_id = await api.start("Launch Acme Insights 2.0")
            path = f"/api/executions/{execution_id}/events"
            before: list[Frame] = []
            async with session.get(path, headers={**api.headers(), "Last-Event-ID": "0"}
                                   ) as resp:
                async for frame in sse_frames(resp):
                    before.append(frame)
                    if len(before) == 25:
                        break
        assert server.stop() == 0
        server = ServerProcess.start(tmp_path, *options, script=True)
        async with aiohttp.ClientSession(base_url=server.url) as session:
            api = Api(session, server.token, api.document)
            last = positions(before)[-1]
            async with session.get(path, headers={**api.headers(), "Last-Event-ID": str(last)}
                                   ) as resp:
                after = await collect_until(sse_frames(resp), api.document, timeout=60)
            received = positions(before) + positions(after)
            assert received == await full_sequence(api, path)
            assert len(received) == len(set(received))
            status = (await api.get(f"/api/executions/{execution_id}/status")).body
            assert status["execution"]["status"] == "completed"
            assert status["execution"]["completedTasks"] == 38
    finally:
        server.stop()


async def test_the_websocket_twin_streams_the_same_events_and_takes_commands(
        tmp_path: Path) -> None:
    async with running_server(tmp_path, STEADY) as (api, _):
        execution_id = await api.start("Launch Acme Insights 2.0")
        received: list[dict[str, object]] = []
        async with api.session.ws_connect(f"/api/executions/{execution_id}/ws",
                                          headers=api.headers()) as ws:
            await ws.send_json({"command": "pause"})
            await ws.send_json({"command": "dance"})
            replies: list[dict[str, object]] = []
            resumed = False

            async def read() -> None:
                nonlocal resumed
                async for message in ws:
                    data = json.loads(message.data)
                    validate_ws_message(api.document, data)
                    if data["type"] in ("command-result", "error"):
                        replies.append(data)
                        if len(replies) == 2 and not resumed:
                            resumed = True
                            await ws.send_json({"command": "resume"})
                        continue
                    received.append(data)
                    if data["type"] == "execution-completed":
                        return

            await asyncio.wait_for(read(), 30)
        assert replies[0] == {"type": "command-result", "command": "pause", "status": "paused"}
        error = replies[1]["error"]
        assert isinstance(error, dict)
        assert error["code"] == "bad_request"
        assert {"type": "command-result", "command": "resume", "status": "running"} in replies
        assert received[0]["type"] == "snapshot"
        types = [event["type"] for event in received]
        assert "execution-paused" in types
        assert "execution-resumed" in types
        ws_positions = [event["position"] for event in received[1:]]
        snapshot_position = received[0]["position"]
        assert isinstance(snapshot_position, int)
        sse = [p for p in await full_sequence(api, f"/api/executions/{execution_id}/events")
               if p > snapshot_position]
        assert ws_positions == sse


async def test_a_hundred_subscribers_receive_the_same_sequence(tmp_path: Path) -> None:
    async with running_server(tmp_path, FAST) as (api, server), aiohttp.ClientSession(
            base_url=str(server.make_url("")),
            connector=aiohttp.TCPConnector(limit=0)) as listeners:
        streams = [await listeners.get("/api/workspaces/demo/events", headers=api.headers())
                   for _ in range(100)]
        try:
            iterators = [sse_frames(stream) for stream in streams]
            for frames in iterators:  # each opened with its snapshot
                assert (await asyncio.wait_for(anext(frames), 10)).event == "snapshot"
            await api.start("Small demo: customer newsletter")
            sequences = await asyncio.gather(*(
                collect_until(frames, api.document, timeout=60) for frames in iterators))
        finally:
            for stream in streams:
                stream.close()
        first = positions(sequences[0])
        assert len(first) > 10
        assert all(positions(sequence) == first for sequence in sequences)


async def test_a_workspace_snapshot_says_when_it_holds_only_the_newest_executions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "MAX_SNAPSHOT_EXECUTIONS", 2)
    async with running_server(tmp_path, FAST) as (api, _):
        started = [await api.start("Small demo: customer newsletter") for _ in range(3)]
        async with api.session.get("/api/workspaces/demo/events",
                                   headers=api.headers()) as stream:
            snapshot = await anext(sse_frames(stream))
    assert snapshot.event == "snapshot"
    assert [e["id"] for e in snapshot.data["executions"]] == started[:0:-1]  # newest first
    assert (snapshot.data["totalExecutions"], snapshot.data["truncated"]) == (3, True)
