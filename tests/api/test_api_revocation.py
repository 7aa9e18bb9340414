"""A token revoked with `stratexec token revoke` (another process) reaches the streams it
holds open: each SSE stream (an execution's, a workspace's) gets the `token_revoked` error
and ends, and a WebSocket closes with 4401, on both stores, while the streams of other tokens
go on. A WebSocket also asks the store before each command: the first command after a
revocation is refused, however soon it comes."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from api_support import ROOT, SLOW, Api, Frame, collect_until, running_server, sse_frames
from openapi_check import validate_stream_event, validate_ws_message

from stratexec import usecases
from stratexec.api.handlers import SERVICES
from stratexec.api.stream_guard import REVOKED_CLOSE_CODE

ENDS_WITHIN = 10.0  # the watcher's bound is about 1.5 s; the rest is room for a loaded machine


async def stratexec(*arguments: str) -> str:
    """Run the `stratexec` command (another process, as an operator would); its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stratexec", *arguments, cwd=ROOT, env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def frames_until_error(frames: AsyncIterator[Frame], document: dict[str, object],
                             ) -> tuple[list[Frame], Frame]:
    """Every frame up to the `error` one, and that one; the stream must end after it."""
    seen: list[Frame] = []
    async for frame in frames:
        if frame.event == "error":
            async for late in frames:
                raise AssertionError(f"a frame after the error: {late}")
            return seen, frame
        if frame.event != "snapshot":
            validate_stream_event(document, frame.data)
        seen.append(frame)
    raise AssertionError(f"the stream ended without an error after {len(seen)} frames")


async def test_a_revoked_token_ends_its_open_streams(tmp_path: Path, server_store: str) -> None:
    async with running_server(tmp_path, SLOW, store=server_store) as (api, server):
        execution_id = await api.start("Launch Acme Insights 2.0")
        secret = (await stratexec("token", "create", "--user", "rita", "--workspace", "demo",
                                  "--data-dir", str(tmp_path))).strip()
        rita = api.with_token(secret)
        streams = (f"/api/executions/{execution_id}/events", "/api/workspaces/demo/events")
        async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as session:
            responses = [await session.get(path, headers=rita.headers()) for path in streams]
            kept = await session.get(streams[0], headers=api.headers())  # another token's
            socket = await session.ws_connect(f"/api/executions/{execution_id}/ws",
                                              headers=rita.headers())
            try:
                for response in (*responses, kept):
                    assert response.status == 200
                readers = [asyncio.create_task(frames_until_error(sse_frames(response),
                                                                  api.document))
                           for response in responses]
                assert (await socket.receive_json(timeout=ENDS_WITHIN))["type"] == "snapshot"
                closing = asyncio.create_task(refused_and_closed(socket, api))  # reading on

                await stratexec("token", "revoke", secret, "--data-dir", str(tmp_path))
                done, _ = await asyncio.wait(readers, timeout=ENDS_WITHIN)
                assert len(done) == len(readers), "an SSE stream outlived its token"
                for reader in readers:
                    seen, error = reader.result()
                    assert error.data["error"]["code"] == "token_revoked"
                    last = max((f.id for f in seen if f.id is not None), default=0)
                    assert error.data["error"]["details"]["lastEventId"] == last
                await asyncio.wait_for(closing, ENDS_WITHIN)
                assert (await rita.get("/api/me")).status == 401

                # The dashboard token's stream goes on, to the end of the execution.
                assert server.app[SERVICES].hub.subscriber_count == 1
                frames = await collect_until(sse_frames(kept), api.document, timeout=120)
                assert frames[-1].data["data"]["status"] == "completed"
            finally:
                for response in (*responses, kept):
                    response.close()
                await socket.close()


async def test_a_websocket_refuses_the_first_command_after_a_revocation(
        tmp_path: Path, server_store: str) -> None:
    async with running_server(tmp_path, SLOW, store=server_store) as (api, server):
        execution_id = await api.start("Launch Acme Insights 2.0")
        app = server.app[SERVICES].engine.app
        _, secret = await asyncio.to_thread(usecases.issue_token, app, "rob", ["demo"])
        rob = api.with_token(secret)
        async with api.session.ws_connect(f"/api/executions/{execution_id}/ws",
                                          headers=rob.headers()) as socket:
            assert (await socket.receive_json(timeout=ENDS_WITHIN))["type"] == "snapshot"
            await asyncio.to_thread(usecases.revoke_token, app, secret)
            await socket.send_json({"command": "pause"})  # before any watcher looked
            await refused_and_closed(socket, api)
        status = await api.get(f"/api/executions/{execution_id}/status")
        assert status.body["execution"]["status"] == "running"  # the pause was refused
        assert not await paused_in_history(api, execution_id)


async def refused_and_closed(socket: aiohttp.ClientWebSocketResponse, api: Api) -> None:
    """The socket's messages until it closes: the last is the `token_revoked` error, and
    no command was answered; the close code is 4401. (Read as a client would, at once:
    the server waits 10 s at most for the answer to its close.)"""
    last: dict[str, object] = {}
    while True:
        message = await socket.receive(timeout=30)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
        body = message.json()
        validate_ws_message(api.document, body)
        assert body["type"] != "command-result", body
        last = body
    assert last["type"] == "error"
    assert last["error"] == {**last["error"], "code": "token_revoked"}  # type: ignore[dict-item]
    assert socket.close_code == REVOKED_CLOSE_CODE


async def paused_in_history(api: Api, execution_id: str) -> bool:
    history = (await api.get(f"/api/executions/{execution_id}/history?limit=1000")).body
    return any(event["type"] == "Execution.Paused" for event in history["events"])

