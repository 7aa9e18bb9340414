"""The live streams: feed rows from the projection runner, fanned out to SSE and WebSocket clients.

The runner calls the hub in its own thread after each committed batch; the hub hands the rows
to the event loop with `call_soon_threadsafe`, encodes each row once, and puts it in the
bounded queue of every subscription it matches. A subscription whose queue is full is closed
rather than waited for: its client gets a `slow_consumer` error and reconnects with
`Last-Event-ID`, and neither the engine nor the other clients ever wait for it.

A stream subscribes before it reads anything, then sends a snapshot (unless the client
resumes), replays the feed view after the snapshot's (or the client's) position, and then
follows the live rows, skipping any position at or before the last one sent: every event
arrives once and in order across the replay, the live rows and any reconnection.

The rows of an agent type's circuit breaker (`agent-type-paused`, `agent-type-resumed`) belong
to no workspace (their workspace is the feed's `EVERY_WORKSPACE`): every workspace stream
delivers them, in log order among its own rows, and no execution stream does. They are told
apart only among the rows no subscription matched, so the others cost nothing more.

Wiring: `await hub.start()` once the loop runs, and `await hub.stop()` in `on_shutdown`, which
runs before aiohttp waits for open handlers: stopping the hub ends every stream. What bounds a
stream from outside (its send timeout, its token's revocation, the shutdown of a stream whose
client stopped reading) is each stream's `StreamGuard` (api/stream_guard.py).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from aiohttp_sse import EventSourceResponse

from stratexec.api.errors import error_body
from stratexec.api.stream_guard import REVOKED_CLOSE_CODE, StreamGuard, token_revoked_error
from stratexec.domain.errors import DomainError
from stratexec.projections.feed import EVERY_WORKSPACE
from stratexec.projections.queries import feed_since
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import ViewStore
from stratexec.projections.values import to_json, uuid_text

logger = logging.getLogger(__name__)

Snapshot = Callable[[], Awaitable[tuple[dict[str, Any], int]]]
CommandHandler = Callable[[str], Awaitable[str]]
Send = Callable[[list["Chunk"]], Awaitable[None]]  # in order
COMMANDS = ("pause", "resume", "cancel", "retry")
REPLAY_PAGE = 1000
_POSITION = re.compile(r"[0-9]{1,19}")
MAX_POSITION = 2**63 - 1  # log positions are 64-bit signed integers in every store
_string: Callable[[str], str] = json.encoder.encode_basestring  # a JSON string literal


def stream_event(row: dict[str, Any]) -> dict[str, Any]:
    """A feed row (from `feed_since` or the runner) as the StreamEvent that clients receive."""
    return {"position": row["position"], "type": row["type"],
            "executionId": row["executionId"], "workspaceId": row["workspaceId"],
            "recordedAt": row["recordedAt"], "data": json.loads(row["data"])}


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One event ready to send, encoded once for every client: `text` is its StreamEvent
    JSON (a WebSocket message), `frame` its whole SSE frame."""

    position: int
    type: str
    execution_id: str
    workspace_id: str
    text: str
    frame: bytes

    @classmethod
    def of(cls, row: dict[str, Any]) -> StreamItem:
        # `stream_event(row)` as compact JSON (one line, so one `data:` line), written around
        # the row's `data`, which is JSON text already: parsing it only to write it out again
        # cost more than the rest of the fan-out together.
        text = (f'{{"position":{int(row["position"])},"type":{_string(row["type"])},'
                f'"executionId":{_string(row["executionId"])},'
                f'"workspaceId":{_string(row["workspaceId"])},'
                f'"recordedAt":{_string(row["recordedAt"])},"data":{row["data"]}}}')
        frame = f"id: {row['position']}\r\nevent: {row['type']}\r\ndata: {text}\r\n\r\n"
        return cls(row["position"], row["type"], row["executionId"], row["workspaceId"],
                   text, frame.encode())


class Chunk:
    """Consecutive items for a client, as sent: every subscriber of the same rows shares one
    Chunk, so their SSE frames are joined once however many clients receive them."""

    __slots__ = ("_frames", "items")

    def __init__(self, items: list[StreamItem]) -> None:
        self.items = items
        self._frames: bytes | None = None

    @property
    def frames(self) -> bytes:
        if self._frames is None:
            self._frames = b"".join(item.frame for item in self.items)
        return self._frames

    def after(self, position: int) -> Chunk:
        """The items after `position` (this chunk itself when that is all of them)."""
        if self.items[0].position > position:
            return self
        return Chunk([item for item in self.items if item.position > position])


class Subscription:
    """The live rows of one execution, or of a set of workspaces, queued for one client.

    An execution's rows count only in the given workspaces too. Rows arrive a committed
    batch at a time and leave the same way (`take`), so that a client is sent a batch in
    one write however many subscribers there are. `take()` until the subscription closes:
    by `close()`, by the hub stopping, or by overflowing.
    """

    def __init__(self, hub: StreamHub, execution_id: str | None,
                 workspace_ids: frozenset[str], queue_size: int) -> None:
        self.execution_id = execution_id
        self.workspace_ids = workspace_ids
        self.closed = False
        self.overflowed = False  # fell `queue_size` rows behind: what was queued is dropped
        self._hub = hub
        self._limit = queue_size
        self._queued: list[Chunk] = []
        self._queued_rows = 0
        self._ready = asyncio.Event()

    def offer(self, chunk: Chunk) -> None:
        """Queue `chunk` without waiting; past the limit the subscription closes instead."""
        if self.closed:
            return
        if self._queued_rows + len(chunk.items) > self._limit:
            self.overflowed = True
            self._hub.overflows += 1
            self._queued.clear()
            self.close()
            return
        self._queued.append(chunk)
        self._queued_rows += len(chunk.items)
        self._ready.set()

    def close(self) -> None:
        """End the iteration (after the rows already queued) and leave the hub."""
        if self.closed:
            return
        self.closed = True
        self._ready.set()
        self._hub._discard(self)

    async def take(self) -> list[Chunk] | None:
        """Every chunk queued now (waiting for one), or None once closed and drained."""
        while not self._queued:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        chunks, self._queued, self._queued_rows = self._queued, [], 0
        return chunks


class StreamHub:
    """Hands each committed feed row to every subscription that matches it, in the loop."""

    def __init__(self, runner: ProjectionRunner, views: ViewStore, queue_size: int = 1000,
                 ) -> None:
        self.runner, self.views, self.queue_size = runner, views, queue_size
        self.overflows = 0  # subscriptions closed for falling behind, since start
        self._subscriptions: set[Subscription] = set()
        self._by_execution: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._by_workspace: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._stopped = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        if self._unsubscribe is None:
            self._loop = asyncio.get_running_loop()
            self._stopped = False
            self._unsubscribe = self.runner.subscribe(self._on_committed)

    async def stop(self) -> None:
        """Stop following the runner and close every subscription, ending their streams."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopped = True
        for subscription in list(self._subscriptions):
            subscription.close()

    def subscribe(self, execution_id: str | None, workspace_ids: frozenset[str],
                  ) -> Subscription:
        """In the loop. Once the hub has stopped, the subscription comes back closed."""
        key = None if execution_id is None else uuid_text(execution_id) or execution_id
        subscription = Subscription(self, key, frozenset(workspace_ids), self.queue_size)
        if self._stopped:
            subscription.close()
            return subscription
        self._subscriptions.add(subscription)
        for index, index_key in self._index_entries(subscription):
            index[index_key].add(subscription)
        return subscription

    def _discard(self, subscription: Subscription) -> None:
        if subscription not in self._subscriptions:
            return
        self._subscriptions.discard(subscription)
        for index, index_key in self._index_entries(subscription):
            index[index_key].discard(subscription)
            if not index[index_key]:
                del index[index_key]

    def _index_entries(self, subscription: Subscription,
                       ) -> list[tuple[defaultdict[str, set[Subscription]], str]]:
        """Where the hub files it: under its execution, else under each of its workspaces."""
        if subscription.execution_id is not None:
            return [(self._by_execution, subscription.execution_id)]
        return [(self._by_workspace, workspace) for workspace in subscription.workspace_ids]

    def _on_committed(self, rows: list[dict[str, Any]], position: int) -> None:
        # The runner's thread. With no subscription now, none was made before this commit,
        # so any made later reads these rows from the views instead.
        loop = self._loop
        if not rows or not self._subscriptions or loop is None:
            return
        with suppress(RuntimeError):  # the loop has closed: nobody is listening any more
            loop.call_soon_threadsafe(self._deliver, rows)

    def _deliver(self, rows: list[dict[str, Any]]) -> None:
        """Each row once into the chunk of its workspace and of its execution (or, for every
        workspace, into one chunk for all); each subscription is offered the chunks it
        follows (merged in position order when it follows several)."""
        by_workspace: dict[str, list[StreamItem]] = {}
        by_execution: dict[str, list[StreamItem]] = {}
        everyone: list[StreamItem] = []
        for row in rows:
            workspace_id, execution_id = row["workspaceId"], row["executionId"]
            to_workspace = workspace_id in self._by_workspace
            to_execution = execution_id in self._by_execution
            if to_workspace or to_execution:
                item = StreamItem.of(row)
                if to_workspace:
                    by_workspace.setdefault(workspace_id, []).append(item)
                if to_execution:
                    by_execution.setdefault(execution_id, []).append(item)
            elif workspace_id == EVERY_WORKSPACE:
                everyone.append(StreamItem.of(row))
        offers: defaultdict[Subscription, list[Chunk]] = defaultdict(list)
        if everyone and self._by_workspace:
            chunk = Chunk(everyone)
            for subscription in self._subscriptions:
                if subscription.execution_id is None:
                    offers[subscription].append(chunk)
        for workspace_id, items in by_workspace.items():
            chunk = Chunk(items)
            for subscription in self._by_workspace[workspace_id]:
                offers[subscription].append(chunk)
        for execution_id, items in by_execution.items():
            chunk = Chunk(items)  # an execution's events all carry its one workspace
            for subscription in self._by_execution[execution_id]:
                if items[0].workspace_id in subscription.workspace_ids:
                    offers[subscription].append(chunk)
        for subscription, chunks in offers.items():
            subscription.offer(chunks[0] if len(chunks) == 1 else Chunk(list(heapq.merge(
                *(chunk.items for chunk in chunks), key=lambda item: item.position))))


class _Follower:
    """Sends one client every event after a position: replayed from the views, then live."""

    def __init__(self, hub: StreamHub, execution_id: str | None,
                 workspace_ids: frozenset[str]) -> None:
        self._hub, self._execution_id, self._workspace_ids = hub, execution_id, workspace_ids
        self.subscription = hub.subscribe(execution_id, workspace_ids)  # before any read
        self.last_sent = 0
        self._stopped = False

    async def run(self, after: int, send: Send) -> bool:
        """Send until the subscription closes; True if it closed for falling behind."""
        self.last_sent = after
        await self._catch_up(send)
        while (chunks := await self.subscription.take()) is not None:
            await self._send(chunks, send)
        return self.subscription.overflowed

    def stop(self) -> None:
        self._stopped = True
        self.subscription.close()

    async def _catch_up(self, send: Send) -> None:
        while True:
            rows = await asyncio.to_thread(feed_since, self._hub.views, self.last_sent,
                                           self._execution_id, self._workspace_ids, REPLAY_PAGE)
            if rows:
                await self._send([Chunk([StreamItem.of(row) for row in rows])], send)
            if len(rows) == REPLAY_PAGE:
                continue
            if not self.subscription.overflowed or self._stopped:
                return
            # Overflowed while replaying: the views hold every row, so subscribe again and
            # read on from there rather than give up on a client that is keeping up.
            self.subscription = self._hub.subscribe(self._execution_id, self._workspace_ids)

    async def _send(self, chunks: list[Chunk], send: Send) -> None:
        fresh = [chunk for chunk in (c.after(self.last_sent) for c in chunks) if chunk.items]
        if fresh:
            await send(fresh)
            self.last_sent = fresh[-1].items[-1].position


def last_event_id(request: web.BaseRequest) -> int | None:
    """The position a client resumes after: `Last-Event-ID`, else `?lastEventId=` (blank: none).

    Raises ValueError when either one given is not a non-negative integer, the one that does
    not count too: a request with a broken parameter is refused, not half read.
    """
    header = _position(request.headers.get("Last-Event-ID"))
    query = _position(request.query.get("lastEventId"))
    return query if header is None else header


def _position(value: str | None) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not _POSITION.fullmatch(value) or int(value) > MAX_POSITION:
        raise ValueError("lastEventId must be a non-negative integer of at most "
                         f"{MAX_POSITION}: the position of the last event received")
    return int(value)


def slow_consumer_error(last_sent: int, queue_size: int) -> dict[str, Any]:
    """The `error` StreamEvent sent before closing a stream that fell behind."""
    return {"type": "error", **error_body(
        "slow_consumer",
        f"this stream fell more than {queue_size} events behind and was closed; reconnect"
        " with Last-Event-ID (or ?lastEventId=) set to details.lastEventId to resume",
        {"lastEventId": last_sent})}


def _bad_last_event_id(error: ValueError) -> dict[str, Any]:
    return error_body("bad_request", str(error),
                      {"problems": [{"path": "lastEventId", "message": str(error)}]})


async def _snapshot_text(snapshot: Snapshot) -> tuple[str, int]:
    event, position = await snapshot()
    rest = {key: value for key, value in event.items() if key not in ("position", "type")}
    return to_json({"position": position, "type": "snapshot", **rest}), position


def _disconnected(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def sse_response(request: web.Request, hub: StreamHub, *, execution_id: str | None,
                       workspace_ids: frozenset[str], snapshot: Snapshot, guard: StreamGuard,
                       ping_interval: float = 15.0) -> web.StreamResponse:
    """The SSE stream of one execution (or of `workspace_ids` when `execution_id` is None).

    Frames: `id: <position>`, `event: <type>`, `data: <StreamEvent JSON>`; the snapshot's id
    is the position it was read at. Pings are `: ping` comments, and the `error` frame sent
    before closing a slow consumer (or a stream whose token was revoked) has no id.
    `snapshot()` runs before the response starts, so its errors still become HTTP errors.
    """
    try:
        after = last_event_id(request)
    except ValueError as error:
        return web.json_response(_bad_last_event_id(error), status=400)
    follower = _Follower(hub, execution_id, workspace_ids)
    response = EventSourceResponse(ping_interval=ping_interval,
                                   send_timeout=guard.send_timeout)  # pings too
    try:
        first = None
        if after is None:
            first, after = await _snapshot_text(snapshot)
        await response.prepare(request)
        guard.watch(follower.stop)
        # Pings stop once the client has gone: that ends an idle stream too.
        watcher = asyncio.create_task(response.wait())
        watcher.add_done_callback(lambda _: follower.stop())
        try:
            await _stream_sse(response, follower, first, after, hub.queue_size, guard)
        except (ConnectionResetError, TimeoutError):  # gone, or stalled past send_timeout
            logger.debug("an event stream's client went away")
        finally:
            watcher.cancel()
            response.stop_streaming()
    finally:
        follower.stop()
        guard.end()
    return web.Response() if _disconnected(request) else response


async def _stream_sse(response: EventSourceResponse, follower: _Follower, first: str | None,
                      after: int, queue_size: int, guard: StreamGuard) -> None:
    if first is not None:
        await response.send(first, id=str(after), event="snapshot")

    def send(chunks: list[Chunk]) -> Awaitable[None]:
        if len(chunks) == 1:
            return guard.send(response.write(chunks[0].frames))
        return guard.send(response.write(b"".join(chunk.frames for chunk in chunks)))

    if await follower.run(after, send):
        await response.send(to_json(slow_consumer_error(follower.last_sent, queue_size)),
                            event="error")
    elif guard.revoked:
        await response.send(to_json(token_revoked_error(follower.last_sent)), event="error")


async def websocket_response(request: web.Request, hub: StreamHub, *, execution_id: str,
                             workspace_ids: frozenset[str], snapshot: Snapshot,
                             on_command: CommandHandler, guard: StreamGuard,
                             heartbeat: float = 15.0) -> web.WebSocketResponse:
    """The WebSocket twin of `sse_response`: StreamEvent JSON text messages, plus commands.

    A client message `{"command": "pause"|"resume"|"cancel"|"retry"}` is answered with
    `{"type": "command-result", "command", "status"}` (the status `on_command` returns), or
    with `{"type": "error", "error": {...}}` for a DomainError or a malformed message. A slow
    consumer gets the `slow_consumer` error and close code 1013; server shutdown closes 1001.
    Once the token is revoked (checked before every command, and while the socket is open),
    no command runs: the client gets the `token_revoked` error and close code 4401.
    """
    try:
        after = last_event_id(request)
    except ValueError as error:
        raise _http_bad_request(_bad_last_event_id(error)) from None
    ws = web.WebSocketResponse(heartbeat=heartbeat)
    if not ws.can_prepare(request).ok:
        raise _http_bad_request(error_body("bad_request", "expected a WebSocket upgrade", {
            "problems": [{"path": "Upgrade", "message": "expected a WebSocket upgrade"}]}))
    follower = _Follower(hub, execution_id, workspace_ids)
    sender: asyncio.Task[None] | None = None
    try:
        first = None
        if after is None:
            first, after = await _snapshot_text(snapshot)
        await ws.prepare(request)
        guard.watch(follower.stop)
        sender = asyncio.create_task(_send_ws_events(ws, follower, first, after,
                                                     hub.queue_size, guard))
        async for message in ws:
            if message.type is WSMsgType.ERROR or not await guard.still_authorized():
                break  # revoked: the sender says so and closes
            await guard.send(ws.send_str(await _command_reply(message, on_command)))
        follower.stop()
        await sender  # at once: its subscription is closed, or it is finishing its close
    except (ConnectionResetError, TimeoutError):  # gone, or stalled past the send timeout
        logger.debug("a WebSocket client went away")
    finally:
        follower.stop()
        guard.end()
        if sender is not None and not sender.done():
            sender.cancel()
    return ws


def _http_bad_request(body: dict[str, Any]) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=to_json(body), content_type="application/json")


async def _send_ws_events(ws: web.WebSocketResponse, follower: _Follower, first: str | None,
                          after: int, queue_size: int, guard: StreamGuard) -> None:
    async def send_all(chunks: list[Chunk]) -> None:
        for chunk in chunks:
            for item in chunk.items:
                await ws.send_str(item.text)

    def send(chunks: list[Chunk]) -> Awaitable[None]:
        return guard.send(send_all(chunks))

    try:
        if first is not None:
            await guard.send(ws.send_str(first))
        if await follower.run(after, send):
            await guard.send(ws.send_str(to_json(
                slow_consumer_error(follower.last_sent, queue_size))))
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"slow consumer")
        elif guard.revoked:
            await guard.send(ws.send_str(to_json(token_revoked_error(follower.last_sent))))
            await ws.close(code=REVOKED_CLOSE_CODE, message=b"token revoked")
        else:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"stream closed")
    except (ConnectionResetError, TimeoutError):  # gone, or stalled past the send timeout
        logger.debug("a WebSocket client went away")  # the receiving loop ends by itself


class _BadMessage(Exception):
    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['path']}: {p['message']}" for p in problems))
        self.problems = problems


def _command_of(message: WSMessage) -> str:
    """The command a client message asks for; _BadMessage says what is wrong with it."""
    if message.type is not WSMsgType.TEXT:
        raise _BadMessage([{"path": "$", "message": "expected a JSON text message"}])
    try:
        body = json.loads(message.data)
    except ValueError:
        raise _BadMessage([{"path": "$", "message": "not valid JSON"}]) from None
    if not isinstance(body, dict):
        raise _BadMessage([{"path": "$", "message": "expected a JSON object"}])
    problems = [{"path": key, "message": "unknown field"} for key in body if key != "command"]
    command = body.get("command")
    if command not in COMMANDS:
        problems.insert(0, {"path": "command", "message": "expected one of " + ", ".join(COMMANDS)})
    if problems:
        raise _BadMessage(problems)
    return str(command)


async def _command_reply(message: WSMessage, on_command: CommandHandler) -> str:
    try:
        command = _command_of(message)
    except _BadMessage as error:
        return to_json({"type": "error", **error_body(
            "bad_request", str(error), {"problems": error.problems})})
    try:
        status = await on_command(command)
    except DomainError as error:
        return to_json({"type": "error", **error_body(error.code, error.message, error.details)})
    except Exception:
        logger.exception("the %s command failed unexpectedly", command)
        return to_json({"type": "error", **error_body(
            "internal", f"the {command} command failed unexpectedly", {})})
    return to_json({"type": "command-result", "command": command, "status": status})
