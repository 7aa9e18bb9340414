"""The HTTP handlers: translate requests into runtime commands and view queries.

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

from stratexec.api import models
from stratexec.api.auth import GRANT, require_workspace
from stratexec.api.errors import bad_request, not_found
from stratexec.api.services import Services
from stratexec.api.streams import sse_response, websocket_response
from stratexec.api.validation import answer, query_choice, query_int, read_json
from stratexec.domain.execution import ExecutionStatus
from stratexec.domain.health import HealthInputs, assess
from stratexec.domain.propagation import propagate
from stratexec.domain.strategy import StrategyDocument, parse_strategy
from stratexec.projections import audit, queries
from stratexec.projections.store import read_tracking

SERVICES = web.AppKey("services", Services)
STATUSES = tuple(str(status) for status in ExecutionStatus)
MAX_PAGE = 1000


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
    strategy = await asyncio.to_thread(services.app.define_strategy, definition)
    await services.caught_up()
    return answer(models.StrategyAnswer,
                  {"strategy": await _strategy_detail(services, strategy.id)}, status=201)


async def list_strategies(request: web.Request) -> web.Response:
    services = services_of(request)
    limit, offset = _page(request)
    strategies = await asyncio.to_thread(
        queries.list_strategies, services.views, _workspaces(request), limit, offset)
    return answer(models.StrategyPage,
                  {"strategies": strategies, "limit": limit, "offset": offset})


async def get_strategy(request: web.Request) -> web.Response:
    services = services_of(request)
    strategy_id = _uuid(request.match_info["strategyId"], "strategy")
    detail = await _strategy_detail(services, strategy_id)
    require_workspace(request, detail["workspaceId"] if detail else None, "strategy")
    return answer(models.StrategyAnswer, {"strategy": detail})


async def _strategy_detail(services: Services, strategy_id: UUID) -> dict[str, Any] | None:
    return await asyncio.to_thread(_strategy_with_plan, services, strategy_id)


def _strategy_with_plan(services: Services, strategy_id: UUID) -> dict[str, Any] | None:
    row = queries.get_strategy(services.views, strategy_id)
    if row is None:
        return None
    plan = propagate(parse_strategy(row["document"]).items)
    return {**row, "plan": {"tasks": [task.as_record() for task in plan.tasks],
                            "decisions": [d.as_record() for d in plan.decisions]}}


# ------------------------------------------------------------------- executions

async def start_execution(request: web.Request) -> web.Response:
    services = services_of(request)
    body = await read_json(request, models.StartExecution)
    workspace_id = require_workspace(request, body.workspace_id, "workspace")
    strategy_id = _uuid(body.strategy_id, "strategy")
    strategy = await asyncio.to_thread(queries.get_strategy, services.views, strategy_id)
    if strategy is None or strategy["workspaceId"] != workspace_id:
        raise not_found("strategy")
    started = await asyncio.to_thread(services.runtime.start_execution, strategy_id)
    await services.caught_up()
    return answer(models.ExecutionStarted, {
        "success": True, "executionId": str(started.id),
        "execution": {"id": str(started.id), "status": started.status,
                      "strategyId": str(started.strategy_id),
                      "totalTasks": started.total_tasks,
                      "startedAt": started.started_at.isoformat()},
    }, status=201)


async def list_executions(request: web.Request) -> web.Response:
    services = services_of(request)
    limit, offset = _page(request)
    status = query_choice(request, "status", STATUSES)
    strategy_id = request.query.get("strategyId")
    executions = await asyncio.to_thread(
        queries.list_executions, services.views, _workspaces(request), status=status,
        strategy_id=strategy_id, limit=limit, offset=offset)
    return answer(models.ExecutionPage,
                  {"executions": executions, "limit": limit, "offset": offset})


async def execution_status(request: web.Request) -> web.Response:
    services = services_of(request)
    execution = await _execution(request)
    body = await asyncio.to_thread(_status_body, services, execution)
    return answer(models.ExecutionStatusAnswer, body)


def _status_body(services: Services, execution: dict[str, Any]) -> dict[str, Any]:
    with services.views.read() as cursor:  # one read: the rows agree with the position
        current = queries.get_execution(services.views, execution["id"]) or execution
        metrics = queries.agent_metrics(services.views, execution["id"])
        return {
            "execution": current,
            "health": _health(services, current, metrics),
            "tasks": queries.list_tasks(services.views, execution["id"]),
            "metrics": {"agents": metrics},
            "position": views_position(cursor),
        }


def views_position(cursor: Any) -> int:
    """The log position every read model has reached."""
    return min(read_tracking(cursor).values(), default=0)


def _health(services: Services, execution: dict[str, Any], metrics: list[dict[str, Any]]
            ) -> dict[str, Any]:
    """The latest recorded assessment, or (before the first) one computed from the views."""
    latest = queries.latest_health(services.views, execution["id"])
    if latest is not None:
        return {key: latest[key] for key in ("score", "status", "completionRate", "errorRate",
                                             "avgTaskDurationMs", "issues", "recordedAt")
                } | {"healthy": latest["score"] >= 50}
    completed = sum(m["completed"] for m in metrics)
    durations = sum((m["meanDurationMs"] or 0.0) * m["completed"] for m in metrics)
    assessment = assess(HealthInputs(
        total=execution["totalTasks"], completed=execution["completedTasks"],
        failed=execution["failedTasks"], skipped=execution["skippedTasks"],
        cancelled=execution["cancelledTasks"], attempts=sum(m["attempts"] for m in metrics),
        failed_attempts=sum(m["failedAttempts"] for m in metrics),
        mean_duration_ms=durations / completed if completed else 0.0))
    return assessment.as_record() | {"healthy": assessment.healthy, "recordedAt": None}


async def pause(request: web.Request) -> web.Response:
    return await _command(request, "pause")


async def resume(request: web.Request) -> web.Response:
    return await _command(request, "resume")


async def cancel(request: web.Request) -> web.Response:
    return await _command(request, "cancel")


async def _command(request: web.Request, command: str) -> web.Response:
    execution = await _execution(request)
    status = await run_command(services_of(request), execution["id"], command)
    return answer(models.CommandDone, {"success": True,
                                       "execution": {"id": execution["id"], "status": status}})


async def run_command(services: Services, execution_id: str, command: str) -> str:
    runtime = services.runtime
    action = {"pause": runtime.pause, "resume": runtime.resume, "cancel": runtime.cancel}
    status = await asyncio.to_thread(action[command], UUID(execution_id))
    await services.caught_up()
    return status


async def _execution(request: web.Request) -> dict[str, Any]:
    """The execution named in the path, if it exists in a workspace the token grants."""
    services = services_of(request)
    execution_id = request.match_info["executionId"]
    row = await asyncio.to_thread(queries.get_execution, services.views, execution_id)
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
        snapshot=lambda: asyncio.to_thread(_execution_snapshot, services, execution["id"]))


async def workspace_events(request: web.Request) -> web.StreamResponse:
    workspace_id = require_workspace(request, request.match_info["workspaceId"], "workspace")
    services = services_of(request)
    return await sse_response(
        request, services.hub, execution_id=None, workspace_ids=frozenset({workspace_id}),
        snapshot=lambda: asyncio.to_thread(_workspace_snapshot, services, workspace_id))


async def execution_socket(request: web.Request) -> web.StreamResponse:
    execution = await _execution(request)
    services = services_of(request)

    async def on_command(command: str) -> str:
        return await run_command(services, execution["id"], command)

    return await websocket_response(
        request, services.hub, execution_id=execution["id"],
        workspace_ids=frozenset({execution["workspaceId"]}),
        snapshot=lambda: asyncio.to_thread(_execution_snapshot, services, execution["id"]),
        on_command=on_command)


def _execution_snapshot(services: Services, execution_id: str) -> tuple[dict[str, Any], int]:
    execution = queries.get_execution(services.views, execution_id)
    assert execution is not None
    status = _status_body(services, execution)
    return {"position": status["position"], "type": "snapshot",
            "execution": status["execution"], "tasks": status["tasks"],
            "health": status["health"]}, status["position"]


def _workspace_snapshot(services: Services, workspace_id: str) -> tuple[dict[str, Any], int]:
    with services.views.read() as cursor:
        position = views_position(cursor)
        executions = queries.list_executions(services.views, {workspace_id}, limit=MAX_PAGE)
    return {"position": position, "type": "snapshot", "executions": executions}, position


# ------------------------------------------------------------------------ audit

async def execution_history(request: web.Request) -> web.Response:
    execution = await _execution(request)
    after = query_int(request, "after", 0, 0, 2**62)
    limit = query_int(request, "limit", 500, 1, MAX_PAGE)
    services = services_of(request)
    events = await asyncio.to_thread(
        audit.history, services.app, UUID(execution["id"]), after, limit)
    next_after = events[-1]["position"] if len(events) == limit else None
    return answer(models.HistoryPage, {"events": events, "nextAfter": next_after},
                  dumps=_dumps)


async def execution_state(request: web.Request) -> web.Response:
    execution = await _execution(request)
    latest = execution["version"]
    version = query_int(request, "version", latest, 1, latest)
    services = services_of(request)
    aggregate = await asyncio.to_thread(
        services.app.get_execution, UUID(execution["id"]), version)
    state = audit.execution_state(aggregate) | {"latestVersion": latest}
    return answer(models.StateAnswer, {"state": state}, dumps=_dumps)


async def execution_health(request: web.Request) -> web.Response:
    execution = await _execution(request)
    limit = query_int(request, "limit", MAX_PAGE, 1, MAX_PAGE)
    snapshots = await asyncio.to_thread(
        queries.health_snapshots, services_of(request).views, execution["id"], limit)
    return answer(models.HealthSnapshots, {"snapshots": snapshots})


# ---------------------------------------------------------------------- helpers

def _page(request: web.Request) -> tuple[int, int]:
    return (query_int(request, "limit", 100, 1, MAX_PAGE),
            query_int(request, "offset", 0, 0, 2**62))


def _workspaces(request: web.Request) -> frozenset[str]:
    """The `workspaceId` filter if given (and granted), else every granted workspace."""
    wanted = request.query.get("workspaceId")
    if wanted is None:
        return request[GRANT].workspaces
    return frozenset({require_workspace(request, wanted, "workspace")})


_dumps = functools.partial(json.dumps, default=str)  # history data holds UUIDs and datetimes
