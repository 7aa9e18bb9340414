"""Who is asking: bearer tokens (or the dashboard's cookie) mapped to granted workspaces.

A request without a valid token answers 401. A resource in a workspace the token does not
grant answers 404, exactly as one that does not exist, so that a token cannot even learn
what exists elsewhere: handlers call `require_workspace` on every resource they touch.
Tokens are looked up in the event store (through a short cache, so a revocation made by
another process takes effect within `CACHE_SECONDS`). What outlives the request that opened
it (a stream) asks again with `token_check`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from stratexec import usecases
from stratexec.api.errors import ApiError, Handler, not_found
from stratexec.domain.application import StratexecApp

COOKIE = "stratexec_token"
CACHE_SECONDS = 2.0
PUBLIC_PATHS = frozenset({"/healthz", "/api/openapi.json", "/docs", "/"})
PUBLIC_PREFIXES = ("/static/", "/executions/")  # the dashboard's pages hold no data


@dataclass(frozen=True)
class Grant:
    user: str
    workspaces: frozenset[str]

    def allows(self, workspace_id: str) -> bool:
        return workspace_id in self.workspaces


GRANT = web.RequestKey("grant", Grant)
EVENT_APP = web.AppKey("event_app", StratexecApp)


class TokenCache:
    """Grants by secret, each as the store gave it at most `max_age` seconds ago. Callers
    asking for the same secret while it is being looked up share that one read, so that a
    token holding a thousand open streams costs one read per check, not a thousand."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Grant | None]] = {}
        self._lookups: dict[str, asyncio.Future[Grant | None]] = {}

    async def grant_for(self, app: StratexecApp, secret: str,
                        max_age: float = CACHE_SECONDS) -> Grant | None:
        cached = self._entries.get(secret)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        lookup = self._lookups.get(secret)
        if lookup is None:
            lookup = self._lookups[secret] = asyncio.ensure_future(self._look_up(app, secret))
            lookup.add_done_callback(lambda _: self._lookups.pop(secret, None))
        return await asyncio.shield(lookup)

    async def _look_up(self, app: StratexecApp, secret: str) -> Grant | None:
        now = time.monotonic()
        token = await asyncio.to_thread(usecases.find_token, app, secret)
        grant = None if token is None else Grant(token.user, frozenset(token.workspaces))
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[secret] = (now, grant)
        return grant


TOKENS = web.AppKey("tokens", TokenCache)


TokenCheck = Callable[[float], Awaitable[bool]]


def token_check(request: web.Request) -> TokenCheck:
    """For what outlives the request's own check (an open stream): whether its token is
    still valid, as the store said at most `max_age` seconds before."""
    secret, cache, app = presented_secret(request), request.app[TOKENS], request.app[EVENT_APP]

    async def still_valid(max_age: float) -> bool:
        return secret is not None and await cache.grant_for(app, secret, max_age) is not None

    return still_valid


def presented_secret(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return secret.strip()
    return request.cookies.get(COOKIE)


def is_public(request: web.Request) -> bool:
    return request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_public(request):
        return await handler(request)
    secret = presented_secret(request)
    grant = None
    if secret is not None:
        grant = await request.app[TOKENS].grant_for(request.app[EVENT_APP], secret)
    if grant is None:
        reason = "no token" if secret is None else "the token is unknown or revoked"
        raise ApiError(401, "unauthorized",
                       f"{reason}: send Authorization: Bearer <token>")
    request[GRANT] = grant
    return await handler(request)


def require_workspace(request: web.Request, workspace_id: str | None, what: str) -> str:
    """The workspace if the token grants it; otherwise 404, as if nothing were there."""
    if workspace_id is None or not request[GRANT].allows(workspace_id):
        raise not_found(what)
    return workspace_id
