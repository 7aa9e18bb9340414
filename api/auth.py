"""Who is asking: bearer tokens (or the dashboard's cookie) mapped to granted workspaces.

A request without a valid token answers 401. A resource in a workspace the token does not
grant answers 404, exactly as one that does not exist, so that a token cannot even learn
what exists elsewhere: handlers call `require_workspace` on every resource they touch.
Tokens are looked up in the event store (through a short cache, so a revocation made by
another process takes effect within `CACHE_SECONDS`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from stratexec import usecases
from stratexec.api.errors import ApiError, Handler, not_found
from stratexec.domain.application import StratexecApp
from stratexec.projections.security import reading_for

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
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Grant | None]] = {}

    async def grant_for(self, app: StratexecApp, secret: str) -> Grant | None:
        now = time.monotonic()
        cached = self._entries.get(secret)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        token = await asyncio.to_thread(usecases.find_token, app, secret)
        grant = None if token is None else Grant(token.user, frozenset(token.workspaces))
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[secret] = (now, grant)
        return grant


TOKENS = web.AppKey("tokens", TokenCache)


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
    with reading_for(grant.workspaces):  # PostgreSQL: row-level security by workspace
        return await handler(request)


def require_workspace(request: web.Request, workspace_id: str | None, what: str) -> str:
    """The workspace if the token grants it; otherwise 404, as if nothing were there."""
    if workspace_id is None or not request[GRANT].allows(workspace_id):
        raise not_found(what)
    return workspace_id
