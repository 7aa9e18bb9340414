"""The live streams over real HTTP: SSE and WebSocket on a real event store, views and runner.

Events come from driving an Execution aggregate and saving it, as its actor would; the
running ProjectionRunner turns them into feed rows, and the streams carry them. The view's
rows are the expected sequence: each stream must deliver exactly those, once, in order.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from helpers import chain_strategy
from pytest_aiohttp import AiohttpClient
from yarl import URL

from stratexec.api.stream_guard import OpenStreams, StreamGuard
from stratexec.api.streams import (
    StreamHub,
    StreamItem,
    sse_response,
    stream_event,
    websocket_response,
)
from stratexec.domain.application import StratexecApp
from stratexec.domain.execution import Execution
from stratexec.projections.queries import feed_since, get_execution, list_executions, list_tasks
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore, read_tracking
from stratexec.settings import ServerSettings

T = TypeVar("T")
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
A = "a:research"  # the first task of chain_strategy(["a", "b"])
WAIT = 10.0  # seconds any one frame may take before the test fails
BIG = 40_000  # characters per progress message when a slow client must stall the server:
# 50 of them are well beyond what the buffers between server and client hold (~600 KB)
HUB = web.AppKey("hub", StreamHub)
COMMANDS_SEEN = web.AppKey("commands", list[str])


@dataclass
class World:
    app: StratexecApp
    views: ViewStore
    runner: ProjectionRunner


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    app = StratexecApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                            "SQLITE_DBNAME": str(tmp_path / "events.sqlite")})
    views = ViewStore(str(tmp_path / "views.sqlite"))
    runner = ProjectionRunner(app, views)
    runner.start()
    yield World(app, views, runner)
    runner.stop()
    views.close()
    app.close()


# ------------------------------------------------------------------ the events

async def run(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


def begin(app: StratexecApp, workspace: str = "w") -> Execution:
    """A saved execution whose first task is in progress."""
    strategy, _ = app.define_strategy(chain_strategy(["a", "b"], workspace=workspace))
    execution, _ = app.create_execution(strategy)
    execution.assign_ready_tasks(T0)
    execution.start_task(A, 1)
    app.save(execution)
    return execution


def progress(app: StratexecApp, execution: Execution, count: int, size: int = 0) -> int:
    """`count` task-progress events, saved one by one; returns the last one's position."""
    for step in range(count):
        execution.report_progress(A, 1, step / count, f"step {step} " + "x" * size)
        app.save(execution)
    return app.recorder.max_notification_id() or 0


async def started(world: World, workspace: str = "w") -> Execution:
    """`begin`, with every event it made already in the views (and so in the snapshots)."""
    execution = await run(begin, world.app, workspace)
    await caught_up(world)
    return execution


async def caught_up(world: World) -> int:
    """Wait until the views have applied every saved event; returns that position."""
    position = world.app.recorder.max_notification_id() or 0
    assert await run(world.runner.wait_for, position, WAIT)
    return position


async def feed_rows(world: World, after: int, execution_id: UUID | None = None,
                    workspace: str | None = None) -> list[dict[str, Any]]:
    await caught_up(world)
    workspaces = None if workspace is None else [workspace]
    return await run(feed_since, world.views, after, execution_id, workspaces)


# ------------------------------------------------------------ a small server

def execution_snapshot(views: ViewStore, execution_id: str) -> tuple[dict[str, Any], int]:
    with views.read() as cur:  # the nested reads share this transaction's snapshot
        position = min(read_tracking(cur).values(), default=0)
        return {"execution": get_execution(views, execution_id),
                "tasks": list_tasks(views, execution_id)}, position


def workspace_snapshot(views: ViewStore, workspace: str) -> tuple[dict[str, Any], int]:
    with views.read() as cur:
        position = min(read_tracking(cur).values(), default=0)
        return {"executions": list_executions(views, [workspace])}, position


def cramp(request: web.Request) -> None:
    """Tiny server-side send buffers, so a client that stops reading holds the handler up."""
    transport = request.transport
    assert transport is not None
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport.set_write_buffer_limits(high=4096)


async def token_always_valid(max_age: float) -> bool:
    return True


def guard(request: web.Request) -> StreamGuard:
    """These streams have no token to revoke; their other bounds are the server's."""
    return StreamGuard(request, token_always_valid, ServerSettings.stream_send_timeout,
                       OpenStreams())


def stream_app(world: World, queue_size: int = 1000) -> web.Application:
    """Routes over the streams, with every execution's stream granted workspace "w"."""
    hub = StreamHub(world.runner, world.views, queue_size)
    app = web.Application()
    app[HUB] = hub
    app[COMMANDS_SEEN] = []

    async def start(_: web.Application) -> None:
        await hub.start()

    async def stop(_: web.Application) -> None:
        await hub.stop()

    async def execution_events(request: web.Request) -> web.StreamResponse:
        execution_id = request.match_info["id"]
        return await sse_response(
            request, hub, execution_id=execution_id, workspace_ids=frozenset({"w"}),
            snapshot=lambda: run(execution_snapshot, world.views, execution_id),
            guard=guard(request), ping_interval=float(request.query.get("ping", "15")))

    async def workspace_events(request: web.Request) -> web.StreamResponse:
        workspace = request.match_info["workspace"]
        return await sse_response(
            request, hub, execution_id=None, workspace_ids=frozenset({workspace}),
            snapshot=lambda: run(workspace_snapshot, world.views, workspace),
            guard=guard(request))

    async def several_workspaces_events(request: web.Request) -> web.StreamResponse:
        workspaces = request.query.getall("w")
        return await sse_response(
            request, hub, execution_id=None, workspace_ids=frozenset(workspaces),
            snapshot=lambda: run(workspace_snapshot, world.views, workspaces[0]),
            guard=guard(request))

    async def execution_socket(request: web.Request) -> web.WebSocketResponse:
        execution_id = request.match_info["id"]

        def command(name: str) -> str:
            execution = world.app.get_execution(UUID(execution_id))
            getattr(execution, name)()
            world.app.save(execution)
            return str(execution.status)

        async def on_command(name: str) -> str:
            app[COMMANDS_SEEN].append(name)
            return await run(command, name)

        return await websocket_response(
            request, hub, execution_id=execution_id, workspace_ids=frozenset({"w"}),
            snapshot=lambda: run(execution_snapshot, world.views, execution_id),
            on_command=on_command, guard=guard(request))

    async def slow_events(request: web.Request) -> web.StreamResponse:
        cramp(request)
        return await execution_events(request)

    async def slow_socket(request: web.Request) -> web.WebSocketResponse:
        cramp(request)
        return await execution_socket(request)

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.router.add_get("/executions/{id}/events", execution_events)
    app.router.add_get("/workspaces/{workspace}/events", workspace_events)
    app.router.add_get("/workspaces/events", several_workspaces_events)
    app.router.add_get("/executions/{id}/ws", execution_socket)
    app.router.add_get("/slow/executions/{id}/events", slow_events)
    app.router.add_get("/slow/executions/{id}/ws", slow_socket)
    return app


# ------------------------------------------------------------- an SSE client

@dataclass(frozen=True)
class Frame:
    id: str | None
    event: str | None
    data: str
    comments: tuple[str, ...]

    def json(self) -> Any:
        return json.loads(self.data)


class SseReader:
    """Frames from a text/event-stream body: blank-line separated `id:`, `event:`, `data:`."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def frame(self) -> Frame | None:
        """The next frame, pings included; None at the end of the stream."""
        return await asyncio.wait_for(self._frame(), WAIT)

    async def event(self) -> Frame:
        """The next frame that is not a ping."""
        while True:
            frame = await self.frame()
            assert frame is not None, "the stream ended"
            if frame.id is not None or frame.event is not None or frame.data:
                return frame

    async def events(self, count: int) -> list[Frame]:
        return [await self.event() for _ in range(count)]

    async def rest(self) -> list[Frame]:
        """Every frame until the server ends the stream."""
        frames = []
        while (frame := await self.frame()) is not None:
            frames.append(frame)
        return frames

    async def _frame(self) -> Frame | None:
        fields: dict[str, list[str]] = {}
        comments: list[str] = []
        while line := await self.response.content.readline():
            text = line.decode().rstrip("\r\n")
            if text.startswith(":"):
                comments.append(text[1:].strip())
            elif text:
                name, _, value = text.partition(":")
                fields.setdefault(name, []).append(value.removeprefix(" "))
            elif fields or comments:
                return Frame(("\n".join(fields["id"]) if "id" in fields else None),
                             ("\n".join(fields["event"]) if "event" in fields else None),
                             "\n".join(fields.get("data", [])), tuple(comments))
        return None


@asynccontextmanager
async def open_stream(session: aiohttp.ClientSession, url: URL,
                      headers: dict[str, str] | None = None) -> AsyncIterator[SseReader]:
    async with session.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        yield SseReader(response)


def small_receive_buffer(addr_info: aiohttp.AddrInfoType) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def slow_session() -> aiohttp.ClientSession:
    """A client whose socket holds little, so that not reading soon stalls the server."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(socket_factory=small_receive_buffer),
        read_bufsize=2**15)


def assert_frames_are(frames: list[Frame], rows: list[dict[str, Any]]) -> None:
    assert [(f.id, f.event, f.json()) for f in frames] == [
        (str(r["position"]), r["type"], stream_event(r)) for r in rows]


async def receive_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    message = await asyncio.wait_for(ws.receive(), WAIT)
    assert message.type is WSMsgType.TEXT, message
    return json.loads(message.data)


async def reply_to(ws: aiohttp.ClientWebSocketResponse, message: Any,
                   events: list[dict[str, Any]]) -> dict[str, Any]:
    """Send `message`; returns the reply, keeping the stream events met on the way."""
    if isinstance(message, str):
        await ws.send_str(message)
    elif isinstance(message, bytes):
        await ws.send_bytes(message)
    else:
        await ws.send_json(message)
    while True:
        received: dict[str, Any] = await receive_json(ws)
        if received["type"] in ("command-result", "error"):
            return received
        events.append(received)


# -------------------------------------------------------------------- tests

async def test_a_new_stream_sends_a_snapshot_then_the_live_events_in_order(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    position = await caught_up(world)
    client = await aiohttp_client(stream_app(world))
    url = client.make_url(f"/executions/{execution.id}/events")
    async with open_stream(client.session, url) as stream:
        snapshot = await stream.event()
        assert (snapshot.event, snapshot.id) == ("snapshot", str(position))
        body = snapshot.json()
        assert (body["type"], body["position"]) == ("snapshot", position)
        assert body["execution"]["id"] == str(execution.id)
        assert [t["status"] for t in body["tasks"]] == ["in_progress", "pending"]
        await run(progress, world.app, execution, 5)
        frames = await stream.events(5)
    rows = await feed_rows(world, position, execution.id)
    assert [r["type"] for r in rows] == ["task-progress"] * 5
    assert_frames_are(frames, rows)
    assert set(frames[0].json()) == {"position", "type", "executionId", "workspaceId",
                                     "recordedAt", "data"}


def test_an_item_is_the_stream_event_as_one_line_of_json() -> None:
    row = {"position": 12, "type": "task-progress", "executionId": "e-\"quoted\"",
           "workspaceId": "w\\back\nslash", "recordedAt": "2026-01-01T12:00:00+00:00",
           "data": '{"message":"d\u00e9j\u00e0 vu \\u2028","progress":0.5}'}
    item = StreamItem.of(row)
    assert json.loads(item.text) == stream_event(row)
    assert not {"\n", "\r"} & set(item.text)
    assert item.frame == f"id: 12\r\nevent: task-progress\r\ndata: {item.text}\r\n\r\n".encode()


async def test_keep_alive_pings_are_comments_without_an_id(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world))
    url = client.make_url(f"/executions/{execution.id}/events").with_query(ping="0.05")
    async with open_stream(client.session, url) as stream:
        await stream.event()
        ping = await stream.frame()
    assert ping == Frame(id=None, event=None, data="", comments=("ping",))


@pytest.mark.parametrize("resume_by", ["header", "query"])
async def test_resuming_sends_exactly_the_events_after_the_last_event_id(
        world: World, aiohttp_client: AiohttpClient, resume_by: str) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world))
    url = client.make_url(f"/executions/{execution.id}/events")
    async with open_stream(client.session, url) as stream:
        await stream.event()
        await run(progress, world.app, execution, 3)
        seen = await stream.events(3)
    await run(progress, world.app, execution, 4)  # while nobody is listening
    resume_after = seen[1].id
    assert resume_after is not None
    headers = {"Last-Event-ID": resume_after} if resume_by == "header" else None
    if resume_by == "query":
        url = url.with_query(lastEventId=resume_after)
    async with open_stream(client.session, url, headers) as stream:
        rows = await feed_rows(world, int(resume_after), execution.id)
        assert len(rows) == 5
        assert_frames_are(await stream.events(5), rows)  # no snapshot first
        last = await run(progress, world.app, execution, 1)
        live = await stream.event()
    assert live.id == str(last)


async def test_a_client_that_drops_mid_stream_and_resumes_sees_every_event_once(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world))
    url = client.make_url(f"/executions/{execution.id}/events")
    async with open_stream(client.session, url) as stream:
        snapshot = await stream.event()
        producer = asyncio.create_task(run(progress, world.app, execution, 60))
        received = await stream.events(20)
    last_seen = received[-1].id
    assert last_seen is not None
    async with open_stream(client.session, url, {"Last-Event-ID": last_seen}) as stream:
        last = await producer
        while received[-1].id != str(last):
            received.append(await stream.event())
    assert snapshot.id is not None
    rows = await feed_rows(world, int(snapshot.id), execution.id)
    assert len(rows) == 60
    assert_frames_are(received, rows)


async def test_streams_carry_only_their_execution_or_workspace(
        world: World, aiohttp_client: AiohttpClient) -> None:
    x, y, z = await started(world, "w"), await started(world, "w"), await started(world, "v")
    client = await aiohttp_client(stream_app(world))
    session = client.session
    async with AsyncExitStack() as stack:
        of_x = await stack.enter_async_context(
            open_stream(session, client.make_url(f"/executions/{x.id}/events")))
        of_w, of_v = [await stack.enter_async_context(open_stream(
            session, client.make_url(f"/workspaces/{w}/events").with_query(lastEventId=0)))
            for w in ("w", "v")]
        snapshot = await of_x.event()
        assert snapshot.id is not None
        for execution in (z, y, x, z):
            await run(progress, world.app, execution, 2)
        x_rows = await feed_rows(world, int(snapshot.id), x.id)
        w_rows = await feed_rows(world, 0, workspace="w")
        v_rows = await feed_rows(world, 0, workspace="v")
        assert {r["executionId"] for r in w_rows} == {str(x.id), str(y.id)}
        assert {r["executionId"] for r in v_rows} == {str(z.id)}
        assert_frames_are(await of_x.events(len(x_rows)), x_rows)
        assert_frames_are(await of_w.events(len(w_rows)), w_rows)
        assert_frames_are(await of_v.events(len(v_rows)), v_rows)
        # Nothing else was on its way: the next frame of each is the next event it owns.
        x_last = await run(progress, world.app, x, 1)
        z_last = await run(progress, world.app, z, 1)
        assert (await of_x.event()).id == str(x_last)
        assert (await of_w.event()).id == str(x_last)
        assert (await of_v.event()).id == str(z_last)


async def test_a_stream_of_several_workspaces_gets_their_events_merged_in_order(
        world: World, aiohttp_client: AiohttpClient) -> None:
    """One page of the runner with both workspaces' events interleaved (the runner is
    stopped while they are saved), delivered to one subscriber of both."""
    in_w, in_v = await started(world, "w"), await started(world, "v")
    position = await caught_up(world)
    client = await aiohttp_client(stream_app(world))
    url = client.make_url("/workspaces/events").with_query([("w", "w"), ("w", "v")])
    async with open_stream(client.session, url) as stream:
        await stream.event()  # the snapshot
        world.runner.stop()
        for execution in (in_v, in_w, in_v, in_w, in_v):
            await run(progress, world.app, execution, 1)
        world.runner.start()
        frames = await stream.events(5)
    rows = await feed_rows(world, position)
    assert [r["workspaceId"] for r in rows] == ["v", "w", "v", "w", "v"]
    assert_frames_are(frames, rows)


async def test_a_slow_subscriber_is_cut_off_without_holding_up_the_others(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world, queue_size=5))
    path = f"/executions/{execution.id}/events"
    async with slow_session() as slow_client, \
            open_stream(client.session, client.make_url(path)) as normal, \
            open_stream(slow_client, client.make_url("/slow" + path)) as slow:
        snapshot = await normal.event()
        assert (await slow.event()).id == snapshot.id  # subscribed; it reads no more for now
        received = []
        for _ in range(50):  # in step with the normal subscriber, which keeps up
            position = await run(progress, world.app, execution, 1, BIG)
            received.append(await normal.event())
            assert received[-1].id == str(position)
        assert client.app[HUB].subscriber_count == 1
        assert client.app[HUB].overflows == 1
        cut_off = await slow.rest()
    assert snapshot.id is not None
    rows = await feed_rows(world, int(snapshot.id), execution.id)
    assert len(rows) == 50
    assert_frames_are(received, rows)
    *sent, error = [frame for frame in cut_off if frame.event is not None]
    assert (error.event, error.id) == ("error", None)
    body = error.json()
    assert body["type"] == "error"
    assert body["error"]["code"] == "slow_consumer"
    last_sent = int(sent[-1].id) if sent and sent[-1].id else int(snapshot.id)
    assert body["error"]["details"] == {"lastEventId": last_sent}
    assert len(sent) < 50
    assert_frames_are(sent, rows[:len(sent)])
    headers = {"Last-Event-ID": str(last_sent)}
    async with open_stream(client.session, client.make_url(path), headers) as resumed:
        assert_frames_are(await resumed.events(50 - len(sent)), rows[len(sent):])


@pytest.mark.parametrize(("path", "headers"), [
    ("/executions/{id}/events", {"Last-Event-ID": "abc"}),
    ("/executions/{id}/events?lastEventId=-1", {}),
    ("/workspaces/w/events?lastEventId=1.5", {}),
    ("/executions/{id}/ws?lastEventId=x", {}),
    ("/executions/{id}/events", {"Last-Event-ID": str(2**63)}),  # past every store's range
    ("/workspaces/w/events?lastEventId=9999999999999999999", {}),
    ("/executions/{id}/events?lastEventId=-5", {"Last-Event-ID": "1"}),  # both checked
])
async def test_a_bad_last_event_id_is_refused_before_the_stream_starts(
        world: World, aiohttp_client: AiohttpClient, path: str,
        headers: dict[str, str]) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world))
    response = await client.get(path.format(id=execution.id), headers=headers)
    assert response.status == 400
    assert response.content_type == "application/json"
    error = (await response.json())["error"]
    assert error["code"] == "bad_request"
    assert error["details"]["problems"][0]["path"] == "lastEventId"
    assert client.app[HUB].subscriber_count == 0


async def test_a_websocket_route_refuses_a_plain_request(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world))
    response = await client.get(f"/executions/{execution.id}/ws")
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
    assert client.app[HUB].subscriber_count == 0


async def test_a_hundred_subscribers_receive_the_same_sequence(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world))
    url = client.make_url(f"/executions/{execution.id}/events")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session, \
            AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(open_stream(session, url))
                   for _ in range(100)]
        snapshots = await asyncio.gather(*(stream.event() for stream in streams))
        assert client.app[HUB].subscriber_count == 100
        await run(progress, world.app, execution, 20)
        received = await asyncio.gather(*(stream.events(20) for stream in streams))
    assert len({snapshot.id for snapshot in snapshots}) == 1
    assert snapshots[0].id is not None
    rows = await feed_rows(world, int(snapshots[0].id), execution.id)
    for frames in received:
        assert_frames_are(frames, rows)


async def test_the_websocket_twin_streams_the_same_events_and_takes_commands(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world))
    path = f"/executions/{execution.id}"
    async with client.ws_connect(f"{path}/ws") as ws, \
            open_stream(client.session, client.make_url(f"{path}/events")) as stream:
        snapshot = await receive_json(ws)
        assert snapshot["type"] == "snapshot"
        assert snapshot == (await stream.event()).json()
        await run(progress, world.app, execution, 3)
        assert [await receive_json(ws) for _ in range(3)] == [
            frame.json() for frame in await stream.events(3)]

        events: list[dict[str, Any]] = []
        assert await reply_to(ws, {"command": "pause"}, events) == {
            "type": "command-result", "command": "pause", "status": "paused"}
        refused = await reply_to(ws, {"command": "pause"}, events)
        assert refused["error"]["code"] == "invalid_transition"
        assert refused["error"]["details"] == {"status": "paused", "command": "pause"}
        for malformed, problem in [("not json", "$"), (b"\x00", "$"), ([1], "$"),
                                   ({"command": "explode"}, "command"),
                                   ({"command": "resume", "force": True}, "force")]:
            error = (await reply_to(ws, malformed, events))["error"]
            assert error["code"] == "bad_request"
            assert [p["path"] for p in error["details"]["problems"]] == [problem]
        assert await reply_to(ws, {"command": "resume"}, events) == {
            "type": "command-result", "command": "resume", "status": "running"}
        while len(events) < 2:
            events.append(await receive_json(ws))
        assert [e["type"] for e in events] == ["execution-paused", "execution-resumed"]
        assert [frame.json() for frame in await stream.events(2)] == events
    assert client.app[COMMANDS_SEEN] == ["pause", "pause", "resume"]


async def test_the_websocket_twin_resumes_after_last_event_id(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    after = await caught_up(world)
    last = await run(progress, world.app, execution, 3)
    client = await aiohttp_client(stream_app(world))
    url = f"/executions/{execution.id}/ws?lastEventId={after}"
    async with client.ws_connect(url) as ws:
        received = [await receive_json(ws) for _ in range(3)]
    rows = await feed_rows(world, after, execution.id)
    assert received == [stream_event(row) for row in rows]
    assert received[-1]["position"] == last


async def test_a_slow_websocket_gets_the_error_and_close_code_1013(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world, queue_size=5))
    path = f"/executions/{execution.id}"
    async with slow_session() as slow_client, \
            slow_client.ws_connect(client.make_url(f"/slow{path}/ws"), compress=0) as slow, \
            open_stream(client.session, client.make_url(f"{path}/events")) as normal:
        snapshot = await receive_json(slow)
        assert snapshot["type"] == "snapshot"
        await normal.event()
        for _ in range(50):
            position = await run(progress, world.app, execution, 1, BIG)
            assert (await normal.event()).id == str(position)
        messages = []
        while (message := await asyncio.wait_for(slow.receive(), WAIT)).type is WSMsgType.TEXT:
            messages.append(json.loads(message.data))
        # The close frame's code. aiohttp's client then reports 1006 in close_code: the server
        # drops the connection right after sending it, as aiohttp does when a task other
        # than the reading one closes a WebSocket.
        assert (message.type, message.data) == (WSMsgType.CLOSE, 1013)
    rows = await feed_rows(world, snapshot["position"], execution.id)
    *sent, error = messages
    assert error["type"] == "error"
    assert error["error"]["code"] == "slow_consumer"
    last_sent = sent[-1]["position"] if sent else snapshot["position"]
    assert error["error"]["details"] == {"lastEventId": last_sent}
    assert len(sent) < 50
    assert sent == [stream_event(row) for row in rows[:len(sent)]]


async def test_stopping_the_hub_ends_every_stream(
        world: World, aiohttp_client: AiohttpClient) -> None:
    execution = await started(world)
    client = await aiohttp_client(stream_app(world))
    path = f"/executions/{execution.id}"
    async with client.ws_connect(f"{path}/ws") as ws, \
            open_stream(client.session, client.make_url(f"{path}/events")) as stream:
        await stream.event()
        await receive_json(ws)
        assert client.app[HUB].subscriber_count == 2
        await client.app[HUB].stop()
        assert await stream.rest() == []
        closing = await asyncio.wait_for(ws.receive(), WAIT)
        assert (closing.type, closing.data) == (WSMsgType.CLOSE, 1001)
    assert client.app[HUB].subscriber_count == 0
