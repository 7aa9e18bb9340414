"""The HTTP handlers: translate requests into use cases (`stratexec.usecases`) and back.

Reads come from the read models (the projections); only the audit endpoints read the event
log itself. Every blocking call (SQL, actor asks) runs in a worker thread. Every resource is
checked against the token's workspaces with `require_workspace` (404 when not granted).
Writes wait until the read models hold them, so a client reads its own writes.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any
from uuid import UUID

from aiohttp import web

from stratexec import usecases
from stratexec.api import models
from stratexec.api.auth import GRANT, require_workspace, token_check
from stratexec.api.errors import ApiError, bad_request, not_found
from stratexec.api.services import Services
from stratexec.api.stream_guard import OPEN_STREAMS, StreamGuard
from stratexec.api.streams import sse_response, websocket_response
from stratexec.api.validation import (
    MAX_OFFSET,
    MAX_PAGE,
    answer,
    query_choice,
    query_int,
    read_json,
)
from stratexec.domain import idempotency
from stratexec.domain.errors import NotFound, UnknownTask
from stratexec.domain.execution import ExecutionStatus
from stratexec.domain.idempotency import IdempotentRequest
from stratexec.domain.strategy import StrategyDocument
from stratexec.settings import ServerSettings

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", ServerSettings)
STATUSES = tuple(str(status) for status in ExecutionStatus)
REPLAYED = "Idempotent-Replayed"  # on an answer that an Idempotency-Key repeats


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


def _uuid(text: str, what: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise not_found(what) from None


async def me(request: web.Request) -> web.Response:
    grant = request[GRANT]
    return answer(models.Me, {"user": grant.user, "workspaces": sorted(grant.workspaces)})


# ------------------------------------------------------------------- strategies

async def create_strategy(request: web.Request) -> web.Response:
    services = services_of(request)
    document = await read_json(request, StrategyDocument)
    grant = request[GRANT]
    workspace_id = document.workspace_id
    if workspace_id is None:
        if len(grant.workspaces) != 1:
            raise bad_request("body.workspaceId",
                              "required when the token grants several workspaces")
        workspace_id = next(iter(grant.workspaces))
    require_workspace(request, workspace_id, "workspace")
    definition = await asyncio.to_thread(document.definition, workspace_id)
    engine = services.engine
    defined = await asyncio.to_thread(
        usecases.define_strategy, engine.app, definition, engine.rules)
    await services.reads_reach(defined.position)
    detail = await asyncio.to_thread(
        usecases.strategy_detail, engine.views, defined.strategy_id, defined.plan)
    return answer(models.StrategyAnswer, {"strategy": detail}, status=201)


async def list_strategies(request: web.Request) -> web.Response:
    views = services_of(request).engine.views
    limit, offset = _page(request)
    strategies = await asyncio.to_thread(
        usecases.list_strategies, views, _workspaces(request), limit, offset)
    return answer(models.StrategyPage,
                  {"strategies": strategies, "limit": limit, "offset": offset})


async def get_strategy(request: web.Request) -> web.Response:
    engine = services_of(request).engine
    strategy_id = _uuid(request.match_info["strategyId"], "strategy")
    detail = await asyncio.to_thread(
        usecases.strategy_detail, engine.views, strategy_id, None, engine.rules)
    require_workspace(request, detail["workspaceId"] if detail else None, "strategy")
    return answer(models.StrategyAnswer, {"strategy": detail})


# ------------------------------------------------------------------- executions

async def start_execution(request: web.Request) -> web.Response:
    """With an `Idempotency-Key`, a retry answers what the first request did (the same
    201 and body, marked `Idempotent-Replayed: true`); see `domain.idempotency`."""
    services = services_of(request)
    body = await read_json(request, models.StartExecution)
    workspace_id = require_workspace(request, body.workspace_id, "workspace")
    strategy_id = _uuid(body.strategy_id, "strategy")
    try:
        started = await asyncio.to_thread(
            usecases.start_execution, services.engine, strategy_id, workspace_id,
            _idempotent(request, workspace_id, body))
    except NotFound:
        raise not_found("strategy") from None
    if started.replayed:  # started by another request, maybe one still answering
        await services.caught_up()
    else:
        await services.reads_reach(started.position)
    answered = answer(models.ExecutionStarted, {
        "success": True, "executionId": str(started.id),
        "execution": {"id": str(started.id), "status": started.status,
                      "strategyId": str(started.strategy_id),
                      "totalTasks": started.total_tasks,
                      "startedAt": started.started_at.isoformat()},
    }, status=201)
    if started.replayed:
        answered.headers[REPLAYED] = "true"
    return answered


def _idempotent(request: web.Request, workspace_id: str, body: models.StartExecution
                ) -> IdempotentRequest | None:
    """The request as made under its Idempotency-Key, if it has one (400 for a bad key)."""
    key = request.headers.get(idempotency.HEADER)
    if key is None:
        return None
    problem = idempotency.key_problem(key)
    if problem is not None:
        raise bad_request(f"header.{idempotency.HEADER}", problem)
    return IdempotentRequest(request[GRANT].user, workspace_id, key,
                             body.model_dump(mode="json", by_alias=True))


async def list_executions(request: web.Request) -> web.Response:
    views = services_of(request).engine.views
    limit, offset = _page(request)
    status = query_choice(request, "status", STATUSES)
    strategy_id = request.query.get("strategyId")
    executions = await asyncio.to_thread(
        usecases.list_executions, views, _workspaces(request), status=status,
        strategy_id=strategy_id, limit=limit, offset=offset)
    return answer(models.ExecutionPage,
                  {"executions": executions, "limit": limit, "offset": offset})


async def execution_status(request: web.Request) -> web.Response:
    execution = await _execution(request)
    body = await asyncio.to_thread(
        usecases.execution_status, services_of(request).engine.views, execution["id"])
    if body is None:  # only a rebuild of the read models can remove an execution
        raise not_found("execution")
    return answer(models.ExecutionStatusAnswer, body)


async def pause(request: web.Request) -> web.Response:
    return await _command(request, "pause")


async def resume(request: web.Request) -> web.Response:
    return await _command(request, "resume")


async def cancel(request: web.Request) -> web.Response:
    return await _command(request, "cancel")


async def retry(request: web.Request) -> web.Response:
    return await _command(request, "retry")


async def retry_task(request: web.Request) -> web.Response:
    execution = await _execution(request)
    services = services_of(request)
    try:
        transition = await asyncio.to_thread(
            usecases.retry_execution, services.engine, UUID(execution["id"]),
            request.match_info["taskId"])
    except UnknownTask:
        raise not_found("task") from None
    await services.reads_reach(transition.position)
    return answer(models.CommandDone, {"success": True, "execution": {
        "id": execution["id"], "status": transition.status}})


async def resume_agent_type(request: web.Request) -> web.Response:
    """Agent types are the engine's, not a workspace's: any valid token may resume one."""
    services = services_of(request)
    resumed = await asyncio.to_thread(
        usecases.resume_agent_type, services.engine, request.match_info["agentType"])
    await services.reads_reach(resumed.position)
    return answer(models.AgentTypeDone, {"success": True, "agentType": {
        "name": resumed.agent_type, "state": resumed.state}})


async def _command(request: web.Request, command: str) -> web.Response:
    execution = await _execution(request)
    status = await run_command(services_of(request), execution["id"], command)
    return answer(models.CommandDone, {"success": True,
                                       "execution": {"id": execution["id"], "status": status}})


async def run_command(services: Services, execution_id: str, command: str) -> str:
    """Pause, resume, cancel or retry; the new status, once the read models hold it."""
    transition = await asyncio.to_thread(
        usecases.COMMANDS[command], services.engine, UUID(execution_id))
    await services.reads_reach(transition.position)
    return transition.status


async def _execution(request: web.Request) -> dict[str, Any]:
    """The execution named in the path, if it exists in a workspace the token grants."""
    views = services_of(request).engine.views
    row = await asyncio.to_thread(
        usecases.find_execution, views, request.match_info["executionId"])
    require_workspace(request, row["workspaceId"] if row else None, "execution")
    assert row is not None
    return row


# ---------------------------------------------------------------------- streams

async def execution_events(request: web.Request) -> web.StreamResponse:
    execution = await _execution(request)
    services = services_of(request)
    return await sse_response(
        request, services.hub, execution_id=execution["id"],
        workspace_ids=frozenset({execution["workspaceId"]}),
        snapshot=lambda: asyncio.to_thread(
            usecases.execution_snapshot, services.engine.views, execution["id"]),
        guard=_guard(request), ping_interval=request.app[SETTINGS].ping_interval)


async def workspace_events(request: web.Request) -> web.StreamResponse:
    workspace_id = require_workspace(request, request.match_info["workspaceId"], "workspace")
    services = services_of(request)
    return await sse_response(
        request, services.hub, execution_id=None, workspace_ids=frozenset({workspace_id}),
        snapshot=lambda: asyncio.to_thread(
            usecases.workspace_snapshot, services.engine.views, workspace_id),
        guard=_guard(request), ping_interval=request.app[SETTINGS].ping_interval)


async def execution_socket(request: web.Request) -> web.StreamResponse:
    execution = await _execution(request)
    services = services_of(request)

    async def on_command(command: str) -> str:
        return await run_command(services, execution["id"], command)

    return await websocket_response(
        request, services.hub, execution_id=execution["id"],
        workspace_ids=frozenset({execution["workspaceId"]}),
        snapshot=lambda: asyncio.to_thread(
            usecases.execution_snapshot, services.engine.views, execution["id"]),
        on_command=on_command, guard=_guard(request))


def _guard(request: web.Request) -> StreamGuard:
    """What bounds the stream this request opens: its send timeout, its token, shutdown."""
    return StreamGuard(request, token_check(request),
                       request.app[SETTINGS].stream_send_timeout, request.app[OPEN_STREAMS])


# ------------------------------------------------------------------------ audit

async def execution_history(request: web.Request) -> web.Response:
    execution = await _execution(request)
    after = query_int(request, "after", 0, 0, MAX_OFFSET)
    limit = query_int(request, "limit", 500, 1, MAX_PAGE)
    app = services_of(request).engine.app
    events = await asyncio.to_thread(
        usecases.history, app, UUID(execution["id"]), after, limit)
    next_after = events[-1]["position"] if len(events) == limit else None
    return answer(models.HistoryPage, {"events": events, "nextAfter": next_after},
                  dumps=_dumps)


async def execution_state(request: web.Request) -> web.Response:
    execution = await _execution(request)
    latest = execution["version"]
    version = query_int(request, "version", latest, 1, MAX_OFFSET)
    if version > latest:  # a version that does not exist (yet): as any missing resource
        raise ApiError(404, "not_found", f"execution version {version} not found: the "
                       f"latest is {latest}", {"latestVersion": latest})
    app = services_of(request).engine.app
    aggregate = await asyncio.to_thread(
        usecases.execution_at, app, UUID(execution["id"]), version)
    state = usecases.execution_state(aggregate) | {"latestVersion": latest}
    return answer(models.StateAnswer, {"state": state}, dumps=_dumps)


async def execution_health(request: web.Request) -> web.Response:
    execution = await _execution(request)
    limit = query_int(request, "limit", MAX_PAGE, 1, MAX_PAGE)
    snapshots = await asyncio.to_thread(
        usecases.health_snapshots, services_of(request).engine.views, execution["id"], limit)
    return answer(models.HealthSnapshots, {"snapshots": snapshots})


# ---------------------------------------------------------------------- helpers

def _page(request: web.Request) -> tuple[int, int]:
    return (query_int(request, "limit", 100, 1, MAX_PAGE),
            query_int(request, "offset", 0, 0, MAX_OFFSET))


def _workspaces(request: web.Request) -> frozenset[str]:
    """The `workspaceId` filter if given (and granted), else every granted workspace."""
    wanted = request.query.get("workspaceId")
    if wanted is None:
        return request[GRANT].workspaces
    return frozenset({require_workspace(request, wanted, "workspace")})


_dumps = functools.partial(json.dumps, default=str)  # history data holds UUIDs and datetimes
