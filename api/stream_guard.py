"""What ends an open stream from outside its feed: a client that stops reading, a token
revoked while the stream is open, and the server stopping.

- **Send timeout.** Every write to a stream (SSE frames and pings, WebSocket messages) must
  be taken by the client within `ServerSettings.stream_send_timeout` seconds; a client that
  does not drain its connection is dropped (the connection is aborted: a graceful close
  would wait on it too).
- **Revocation.** `StreamGuard.watch` asks every `REVOCATION_INTERVAL` seconds whether the
  stream's token is still valid, through the token cache: the store is read once per token
  every `REVOCATION_MAX_AGE` seconds however many streams the token holds open, never per
  event. A revoked token's stream is sent an `error` event (`token_revoked`) and closed; a
  WebSocket also checks the store itself before each command, and is closed with
  `REVOKED_CLOSE_CODE`.
- **Shutdown.** `OpenStreams` knows every open stream. Once the hub has ended them all, a
  stream still writing after `SHUTDOWN_GRACE` seconds (to a client that stopped reading) has
  its connection aborted, so that a graceful stop never waits on a client.

Kept apart from the hub (api/streams.py), which decides what a stream carries; this module
only bounds how long it may take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from stratexec.api.auth import TokenCheck
from stratexec.api.errors import error_body

logger = logging.getLogger(__name__)

REVOCATION_INTERVAL = 0.5
REVOCATION_MAX_AGE = 1.0  # so a revocation ends a stream within about 1.5 s
SHUTDOWN_GRACE = 1.0
REVOKED_CLOSE_CODE = 4401  # a WebSocket closed because its token was revoked (as HTTP 401)


def token_revoked_error(last_sent: int) -> dict[str, Any]:
    """The `error` StreamEvent sent before closing a stream whose token was revoked."""
    return {"type": "error", **error_body(
        "token_revoked", "the token of this stream was revoked, so the stream is closed; "
        "open it again with a valid token (Last-Event-ID set to details.lastEventId resumes "
        "where it ended)", {"lastEventId": last_sent})}


class StreamGuard:
    """The bounds of one open stream: its send timeout, its token's revocation, and the
    server's shutdown. `watch` when the stream starts, `end` when it ends."""

    def __init__(self, request: web.Request, token_valid: TokenCheck, send_timeout: float,
                 streams: OpenStreams) -> None:
        self.send_timeout = send_timeout
        self.revoked = False
        self.ended = asyncio.Event()
        self._request = request
        self._token_valid = token_valid
        self._streams = streams
        self._watcher: asyncio.Task[None] | None = None

    async def send(self, write: Awaitable[None]) -> None:
        """`write`; TimeoutError once it took `send_timeout`, the connection then aborted."""
        try:
            async with asyncio.timeout(self.send_timeout):
                await write
        except TimeoutError:
            self.abort()
            raise

    def watch(self, on_revoked: Callable[[], None]) -> None:
        """Follow the token while the stream is open: `on_revoked()` once it is revoked."""
        self._streams.add(self)
        self._watcher = asyncio.create_task(self._watch(on_revoked))

    async def still_authorized(self) -> bool:
        """Before acting for the client: the store's own answer, not the cache's."""
        if not self.revoked and not await self._token_valid(0.0):
            self.revoked = True
        return not self.revoked

    def abort(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    def end(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        self._streams.discard(self)
        self.ended.set()

    async def _watch(self, on_revoked: Callable[[], None]) -> None:
        while not self.revoked:
            await asyncio.sleep(REVOCATION_INTERVAL)
            try:
                self.revoked = not await self._token_valid(REVOCATION_MAX_AGE)
            except Exception as error:  # the store is unreachable: that revokes nothing
                logger.warning("could not check an open stream's token: %s", error)
        on_revoked()


class OpenStreams:
    """Every open stream of the server, for its shutdown."""

    def __init__(self) -> None:
        self._guards: set[StreamGuard] = set()

    def add(self, guard: StreamGuard) -> None:
        self._guards.add(guard)

    def discard(self, guard: StreamGuard) -> None:
        self._guards.discard(guard)

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Once the hub has ended every stream: give them `grace` seconds to finish their
        last writes, then abort the connections of those still writing."""
        endings = [asyncio.create_task(guard.ended.wait()) for guard in self._guards]
        if endings:
            await asyncio.wait(endings, timeout=grace)
        for ending in endings:
            ending.cancel()
        for guard in list(self._guards):
            guard.abort()


OPEN_STREAMS = web.AppKey("open_streams", OpenStreams)
