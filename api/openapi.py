"""The OpenAPI 3.1 document of the HTTP API: `openapi_document()`.

Built from small pieces (schema shorthands, parameters, error responses) so that each shape
of the contract is written once. Schemas are JSON Schema 2020-12: a nullable field has
`type: [..., "null"]`, every object lists its required keys, and an object whose keys the
contract fixes forbids any other, so that a test validating a response catches a stray key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stratexec.domain.execution import ExecutionStatus, TaskStatus
from stratexec.domain.strategy import AGENT_TYPES, PRIORITIES

Schema = dict[str, Any]

API_VERSION = "0.1.0"
MAX_PAGE = 1000
COOKIE = "stratexec_token"
EXECUTION_STATUSES = tuple(str(status) for status in ExecutionStatus)
TASK_STATUSES = tuple(str(status) for status in TaskStatus)
HEALTH_STATUSES = ("Excellent", "Good", "Degraded", "Critical")
COMMANDS = ("pause", "resume", "cancel")
FEED_EVENT_TYPES = (
    "execution-started", "task-assigned", "task-progress", "task-completed", "task-failed",
    "task-skipped", "health-update", "metrics-update", "execution-paused",
    "execution-resumed", "execution-completed", "execution-cancelled",
)
ERROR_RESPONSES = {
    400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 413: "PayloadTooLarge", 422: "UnprocessableEntity", 500: "InternalError",
}

DESCRIPTION = """\
Executes business strategies with many agents. JSON keys are camelCase.

**Authentication.** Every operation needs `Authorization: Bearer <token>` or the HttpOnly
cookie `stratexec_token` (set when a dashboard page is opened with `?token=<token>`), except
`GET /healthz`, `GET /api/openapi.json` and the dashboard's pages and static files.

**Errors** are `{"error": {"code", "message", "details"}}`: `bad_request` 400 (details.problems
lists `{path, message}`), `unauthorized` 401 (with `WWW-Authenticate: Bearer`), `not_found` 404
(also for anything in a workspace the token does not grant), `method_not_allowed` 405 (any
method not documented on a documented path), `invalid_transition` 409, `payload_too_large`
413, `invalid_strategy` or `dependency_cycle` 422. `internal` 500 is never expected.
"""

SSE_FORMAT = """\
A stream of Server-Sent Events, one frame per event:

    id: <position>
    event: <type>
    data: <StreamEvent as one line of JSON>

The `data` of every frame is a `StreamEvent` (`#/components/schemas/StreamEvent`). Without
`Last-Event-ID` (header) or `lastEventId` (query), a `snapshot` frame comes first; with it,
the stream resumes after that position and misses nothing. Before closing a subscriber that
cannot keep up, the server sends an `error` frame (without `id`). Lines starting with `:` are
keep-alive comments.
"""

WEBSOCKET_FORMAT = """\
Switching Protocols: the connection is a WebSocket. The server sends each `StreamEvent` as a
JSON text message (a `snapshot` first unless `?lastEventId=` is given). The client may send
`{"command": "pause" | "resume" | "cancel"}` (`WebSocketCommand`) and gets
`{"type": "command-result", "command", "status"}` (`CommandResult`) or an `error` message.
Every server message is a `WebSocketMessage`.
"""


# ------------------------------------------------------------------ schema shorthands

def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def string(**keywords: Any) -> Schema:
    return {"type": "string", **keywords}


def integer(minimum: int | None = 0, **keywords: Any) -> Schema:
    bound = {} if minimum is None else {"minimum": minimum}
    return {"type": "integer", **bound, **keywords}


def number(**keywords: Any) -> Schema:
    return {"type": "number", **keywords}


def rate() -> Schema:
    return number(minimum=0, maximum=1)


def boolean() -> Schema:
    return {"type": "boolean"}


def array(items: Schema, **keywords: Any) -> Schema:
    return {"type": "array", "items": items, **keywords}


def enum(values: Iterable[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


def const(value: str | bool) -> Schema:
    return {"type": "boolean" if isinstance(value, bool) else "string", "const": value}


def uuid() -> Schema:
    return string(format="uuid")


def timestamp() -> Schema:
    return string(format="date-time")


def any_object(description: str | None = None) -> Schema:
    return {"type": "object"} | ({"description": description} if description else {})


def nullable(schema: Schema) -> Schema:
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    result = {**schema, "type": [schema["type"], "null"]}
    if "enum" in result:
        result["enum"] = [*result["enum"], None]
    return result


def obj(required: Mapping[str, Schema], optional: Mapping[str, Schema] | None = None,
        description: str | None = None) -> Schema:
    """A closed object: the listed keys, the first group required, no other key allowed."""
    schema: Schema = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = {**required, **(optional or {})}
    schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


def one_of(*names: str, description: str) -> Schema:
    return {"description": description, "oneOf": [ref(name) for name in names]}


# ------------------------------------------------------------------ component schemas

def execution() -> Schema:
    counts = {f"{status}Tasks": integer() for status in (
        "pending", "assigned", "inProgress", "completed", "failed", "skipped", "cancelled")}
    return obj({
        "id": uuid(), "workspaceId": string(), "strategyId": uuid(), "strategyName": string(),
        "status": enum(EXECUTION_STATUSES), "totalTasks": integer(), **counts,
        "retries": integer(), "startedAt": timestamp(), "finishedAt": nullable(timestamp()),
        "updatedAt": timestamp(), "version": integer(1),
        "healthScore": nullable(integer(maximum=100)),
        "healthStatus": nullable(enum(HEALTH_STATUSES)),
    }, description="An execution of a strategy, as the read models hold it.")


def task() -> Schema:
    return obj({
        "executionId": uuid(), "taskId": string(), "itemId": string(), "title": string(),
        "agent": enum(AGENT_TYPES), "priority": enum(PRIORITIES), "dependsOn": array(string()),
        "order": integer(), "status": enum(TASK_STATUSES), "attempt": integer(),
        "failures": integer(), "progress": rate(), "errorKind": nullable(string()),
        "errorMessage": nullable(string()), "retryAt": nullable(timestamp()),
        "result": nullable(any_object()), "durationMs": nullable(number(minimum=0)),
        "assignedAt": nullable(timestamp()), "startedAt": nullable(timestamp()),
        "finishedAt": nullable(timestamp()),
    }, description="One task of an execution: an item of the strategy for one agent type.")


def agent_metrics() -> Schema:
    counters = {name: integer() for name in (
        "tasks", "completed", "failed", "skipped", "cancelled", "attempts", "failedAttempts",
        "retries")}
    return obj({
        "agent": enum(AGENT_TYPES), **counters,
        "successRate": nullable(rate()), "failureRate": nullable(rate()),
        "retryRate": nullable(rate()), "meanDurationMs": nullable(number(minimum=0)),
        "p95DurationMs": nullable(number(minimum=0)),
    }, description="Counters and rates of one agent type in one execution; a rate with "
                   "nothing to divide by is null.")


def assessment_fields() -> dict[str, Schema]:
    return {
        "score": integer(maximum=100), "status": enum(HEALTH_STATUSES),
        "completionRate": rate(), "errorRate": rate(), "avgTaskDurationMs": number(minimum=0),
        "issues": array(string()),
    }


def health() -> Schema:
    return obj({**assessment_fields(), "healthy": boolean(),
                "recordedAt": nullable(timestamp())},
               description="The latest health assessment (computed from the read models, "
                           "with recordedAt null, before the first one is recorded).")


def health_snapshot() -> Schema:
    return obj({"position": integer(1), "executionId": uuid(), "workspaceId": string(),
                **assessment_fields(), "recordedAt": timestamp()},
               description="One recorded health assessment, at its log position.")


def strategy_summary_fields() -> dict[str, Schema]:
    return {
        "id": uuid(), "workspaceId": string(), "name": string(), "itemCount": integer(),
        "leafCount": integer(), "taskCount": nullable(integer()), "definedAt": timestamp(),
    }


def strategy_detail() -> Schema:
    plan = obj({"tasks": array(ref("PlannedTask")),
                "decisions": array(ref("PropagationDecision"))})
    return obj({**strategy_summary_fields(), "document": ref("StrategyDocument"), "plan": plan},
               description="A strategy with its document and the plan propagated from it.")


def strategy_document() -> Schema:
    return obj({"name": string(minLength=1), "items": array(ref("StrategyItem"))},
               {"workspaceId": string()},
               description="A strategy as users write it. `workspaceId` defaults to the "
                           "token's only workspace; with several it is required.")


def strategy_item() -> Schema:
    return obj(
        {"id": string(minLength=1), "level": integer(1, maximum=4), "title": string()},
        {"parentId": nullable(string()), "description": string(), "dependsOn": array(string()),
         "agents": array(enum(AGENT_TYPES)), "priority": enum(PRIORITIES)},
        description="One item of the hierarchy (levels 1 to 4; tasks come from level 4). "
                    "`agents` and `priority` override the propagation rules.")


def planned_task() -> Schema:
    return obj({"id": string(), "itemId": string(), "title": string(),
                "agent": enum(AGENT_TYPES), "priority": enum(PRIORITIES),
                "dependsOn": array(string()), "order": integer()})


def propagation_decision() -> Schema:
    return obj({"itemId": string(), "rule": string(), "keyword": nullable(string()),
                "priority": enum(PRIORITIES), "taskIds": array(string())},
               description="Why an item became the tasks it did.")


def history_event() -> Schema:
    return obj({
        "position": integer(1), "version": integer(1), "timestamp": timestamp(),
        "type": string(pattern=r"^[A-Z][A-Za-z]*\.[A-Z][A-Za-z]*$",
                       examples=["Execution.TaskAssigned", "ExecutionHealth.Assessed"]),
        "data": any_object("The event's own fields, named in camelCase."),
    }, description="One recorded event of an execution or of its health, by log position.")


def execution_state() -> Schema:
    state_task = obj({"id": string(), "agent": enum(AGENT_TYPES),
                      "status": enum(TASK_STATUSES), "attempt": integer(),
                      "failures": integer(), "error": nullable(string()),
                      "result": nullable(any_object())})
    return obj({
        "executionId": uuid(), "version": integer(1), "latestVersion": integer(1),
        "status": enum(EXECUTION_STATUSES), "strategyId": uuid(), "workspaceId": string(),
        "strategyName": string(),
        "counts": obj({status: integer() for status in TASK_STATUSES}),
        "tasks": array(state_task),
    }, description="An execution as it was at `version`, rebuilt from the event log.")


def feed_event() -> Schema:
    return obj({"position": integer(1), "type": enum(FEED_EVENT_TYPES), "executionId": uuid(),
                "workspaceId": string(), "recordedAt": timestamp(),
                "data": any_object("What changed; its keys depend on the type.")},
               description="A change to an execution, at its log position.")


def workspace_snapshot() -> Schema:
    return obj({"position": integer(), "type": const("snapshot"),
                "executions": array(ref("Execution"))},
               description="The first event of a workspace stream: every execution.")


def execution_snapshot() -> Schema:
    return obj({"position": integer(), "type": const("snapshot"), "execution": ref("Execution"),
                "tasks": array(ref("Task")), "health": ref("Health")},
               description="The first event of an execution stream: its whole state.")


def stream_error() -> Schema:
    return obj({"type": const("error"), "error": ref("ErrorBody")},
               description="Sent before the server closes the stream (a slow subscriber).")


def service_status() -> Schema:
    return obj({
        "status": enum(("ok", "degraded")),
        "store": obj({"kind": enum(("sqlite", "postgres")), "ok": const(True),
                      "position": integer()}),
        "projections": obj({"position": integer(), "lag": integer(),
                            "error": nullable(string())}),
        "subscribers": integer(),
    }, description="`degraded` when the projections stopped on an error.")


def service_unavailable() -> Schema:
    return obj({"status": const("unavailable"),
                "store": obj({"kind": enum(("sqlite", "postgres")), "ok": const(False),
                              "error": string()})},
               description="The event store cannot be read.")


def schemas() -> dict[str, Schema]:
    return {
        "Execution": execution(),
        "Task": task(),
        "AgentMetrics": agent_metrics(),
        "Health": health(),
        "HealthSnapshot": health_snapshot(),
        "StrategySummary": obj(strategy_summary_fields(),
                               description="A strategy without its document."),
        "StrategyDetail": strategy_detail(),
        "StrategyDocument": strategy_document(),
        "StrategyItem": strategy_item(),
        "PlannedTask": planned_task(),
        "PropagationDecision": propagation_decision(),
        "StartExecution": obj({"strategyId": string(), "workspaceId": string()}),
        "HistoryEvent": history_event(),
        "ExecutionState": execution_state(),
        "StreamEvent": one_of("FeedEvent", "WorkspaceSnapshot", "ExecutionSnapshot",
                              "StreamError", description="The data of an SSE frame, or one "
                              "WebSocket message from the server."),
        "FeedEvent": feed_event(),
        "WorkspaceSnapshot": workspace_snapshot(),
        "ExecutionSnapshot": execution_snapshot(),
        "StreamError": stream_error(),
        "WebSocketCommand": obj({"command": enum(COMMANDS)}),
        "CommandResult": obj({"type": const("command-result"), "command": enum(COMMANDS),
                              "status": enum(EXECUTION_STATUSES)}),
        "WebSocketMessage": one_of("StreamEvent", "CommandResult",
                                   description="A message the server sends on the WebSocket."),
        "ServiceStatus": service_status(),
        "ServiceUnavailable": service_unavailable(),
        "Error": obj({"error": ref("ErrorBody")}),
        "ErrorBody": obj({"code": string(), "message": string(), "details": any_object()}),
    }


# ------------------------------------------------------------------------- responses

def json_content(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def json_response(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": json_content(schema)}


def text_response(description: str, media_type: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": string()}}}


def errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/{ERROR_RESPONSES[status]}"}
            for status in statuses}


def error_schema(codes: tuple[str, ...], details: Schema | None = None) -> Schema:
    """The Error schema, narrowed to these codes and (if given) this shape of details."""
    code = const(codes[0]) if len(codes) == 1 else enum(codes)
    narrowed = {"code": code} | ({"details": details} if details else {})
    return {"allOf": [ref("Error"),
                      {"properties": {"error": {"properties": narrowed}}}]}


def error_response(description: str, *codes: str, details: Schema | None = None,
                   headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response = json_response(description, error_schema(codes, details))
    return response | ({"headers": headers} if headers else {})


def problems(with_item: bool) -> Schema:
    problem = {"path": string(), "message": string()}
    if with_item:
        problem["itemId"] = nullable(string())
    return array(obj(problem), minItems=1)


def error_responses() -> dict[str, Any]:
    empty = obj({})
    return {
        "BadRequest": error_response(
            "Malformed JSON, a wrong type, an unknown field or a bad query parameter.",
            "bad_request", details=obj({"problems": problems(with_item=False)})),
        "Unauthorized": error_response(
            "No token, or an unknown or revoked one.", "unauthorized", details=empty,
            headers={"WWW-Authenticate": {"schema": const("Bearer")}}),
        "NotFound": error_response(
            "Not found, or in a workspace the token does not grant.", "not_found"),
        "MethodNotAllowed": error_response(
            "The path exists but not with this method.", "method_not_allowed"),
        "Conflict": error_response(
            "The execution's status forbids the command.", "invalid_transition",
            details=obj({"status": enum(EXECUTION_STATUSES), "command": enum(COMMANDS)})),
        "PayloadTooLarge": error_response("The body is too large.", "payload_too_large"),
        "UnprocessableEntity": error_response(
            "The strategy breaks a rule of the domain (levels, parents, dependencies).",
            "invalid_strategy", "dependency_cycle",
            details=obj({"problems": problems(with_item=True)},
                        {"cycle": array(string(), minItems=1)})),
        "InternalError": error_response(
            "A bug: logged, answered without internals. Never expected.", "internal"),
    }


# ------------------------------------------------------------------------ parameters

def path_param(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": string()}


def query_param(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def page_limit(default: int) -> Schema:
    return query_param("limit", integer(1, maximum=MAX_PAGE, default=default),
                       "How many to return at most.")


def pagination(default_limit: int = 100) -> list[Schema]:
    return [page_limit(default_limit),
            query_param("offset", integer(default=0), "How many to skip.")]


def workspace_filter() -> Schema:
    return query_param("workspaceId", string(),
                       "Only this workspace (404 if the token does not grant it); "
                       "by default every workspace the token grants.")


def resume_params() -> list[Schema]:
    description = "Resume after this log position instead of starting with a snapshot."
    return [
        {"name": "Last-Event-ID", "in": "header", "required": False,
         "description": description, "schema": string(pattern=r"^\d+$")},
        query_param("lastEventId", integer(), description),
    ]


EXECUTION_ID = path_param("executionId", "The execution's id (a UUID).")


# ------------------------------------------------------------------------ operations

def operation(operation_id: str, tag: str, summary: str, responses: dict[str, Any], *,
              parameters: list[Schema] | None = None, body: Schema | None = None,
              public: bool = False, description: str | None = None) -> dict[str, Any]:
    """An operation; unless `public`, it needs a token and so may answer 401."""
    result: dict[str, Any] = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if description:
        result["description"] = description
    if parameters:
        result["parameters"] = parameters
    if body is not None:
        result["requestBody"] = {"required": True, "content": json_content(body)}
    if public:
        result["security"] = []
    else:
        responses = responses | errors(401)
    result["responses"] = dict(sorted(responses.items()))
    return result


def strategy_paths() -> dict[str, Any]:
    one = obj({"strategy": ref("StrategyDetail")})
    return {
        "/api/strategies": {
            "post": operation(
                "createStrategy", "strategies", "Define a strategy",
                {"201": json_response("Defined.", one), **errors(400, 404, 413, 422)},
                body=ref("StrategyDocument")),
            "get": operation(
                "listStrategies", "strategies", "List strategies, by name",
                {"200": json_response("A page of strategies.", obj({
                    "strategies": array(ref("StrategySummary")),
                    "limit": integer(1), "offset": integer()})), **errors(400, 404)},
                parameters=[workspace_filter(), *pagination()]),
        },
        "/api/strategies/{strategyId}": {
            "get": operation(
                "getStrategy", "strategies", "A strategy, its document and its plan",
                {"200": json_response("The strategy.", one), **errors(404)},
                parameters=[path_param("strategyId", "The strategy's id (a UUID).")]),
        },
    }


def command_path(command: str) -> dict[str, Any]:
    done = obj({"success": const(True),
                "execution": obj({"id": uuid(), "status": enum(EXECUTION_STATUSES)})})
    return {"post": operation(
        f"{command}Execution", "executions", f"{command.capitalize()} an execution",
        {"200": json_response("Done; the new status.", done), **errors(404, 409)},
        parameters=[EXECUTION_ID])}


def execution_paths() -> dict[str, Any]:
    started = obj({
        "success": const(True), "executionId": uuid(),
        "execution": obj({"id": uuid(), "status": enum(EXECUTION_STATUSES),
                          "strategyId": uuid(), "totalTasks": integer(),
                          "startedAt": timestamp()})})
    status = obj({"execution": ref("Execution"), "health": ref("Health"),
                  "tasks": array(ref("Task")),
                  "metrics": obj({"agents": array(ref("AgentMetrics"))}),
                  "position": integer(description=(
                      "The log position these read models reflect: stream from it "
                      "(`?lastEventId=`) to follow on without a gap."))})
    return {
        "/api/executions/start": {"post": operation(
            "startExecution", "executions", "Start an execution of a strategy",
            {"201": json_response("Started.", started), **errors(400, 404, 413, 422)},
            body=ref("StartExecution"))},
        "/api/executions": {"get": operation(
            "listExecutions", "executions", "List executions, newest first",
            {"200": json_response("A page of executions.", obj({
                "executions": array(ref("Execution")), "limit": integer(1),
                "offset": integer()})), **errors(400, 404)},
            parameters=[workspace_filter(),
                        query_param("status", enum(EXECUTION_STATUSES), "Only this status."),
                        query_param("strategyId", string(), "Only this strategy's."),
                        *pagination()])},
        "/api/executions/{executionId}/status": {"get": operation(
            "getExecutionStatus", "executions", "An execution, its health, tasks and metrics",
            {"200": json_response("The execution.", status), **errors(404)},
            parameters=[EXECUTION_ID])},
        **{f"/api/executions/{{executionId}}/{command}": command_path(command)
           for command in COMMANDS},
    }


def sse_response() -> dict[str, Any]:
    return {"description": SSE_FORMAT, "content": {"text/event-stream": {
        "schema": string(description="`id:`, `event:` and `data:` lines; each `data:` is a "
                                     "StreamEvent as JSON."),
        "x-data-schema": ref("StreamEvent")}}}


def stream_paths() -> dict[str, Any]:
    return {
        "/api/executions/{executionId}/events": {"get": operation(
            "streamExecutionEvents", "streams", "Live events of one execution (SSE)",
            {"200": sse_response(), **errors(400, 404)},
            parameters=[EXECUTION_ID, *resume_params()])},
        "/api/workspaces/{workspaceId}/events": {"get": operation(
            "streamWorkspaceEvents", "streams", "Live events of every execution of a "
            "workspace (SSE)", {"200": sse_response(), **errors(400, 404)},
            parameters=[path_param("workspaceId", "A workspace the token grants."),
                        *resume_params()])},
        "/api/executions/{executionId}/ws": {"get": operation(
            "executionSocket", "streams", "Live events and commands of one execution "
            "(WebSocket)",
            {"101": {"description": WEBSOCKET_FORMAT,
                     "x-messages": {"server": ref("WebSocketMessage"),
                                    "client": ref("WebSocketCommand")}},
             "400": json_response("Not a WebSocket upgrade, or a bad lastEventId.",
                                  error_schema(("bad_request",))),
             **errors(404)},
            parameters=[EXECUTION_ID, query_param(
                "lastEventId", integer(), "Resume after this log position.")])},
    }


def audit_paths() -> dict[str, Any]:
    return {
        "/api/executions/{executionId}/history": {"get": operation(
            "getExecutionHistory", "audit", "Recorded events of an execution, by position",
            {"200": json_response("A page of events; `nextAfter` is null on the last page.",
                                  obj({"events": array(ref("HistoryEvent")),
                                       "nextAfter": nullable(integer())})),
             **errors(400, 404)},
            parameters=[EXECUTION_ID,
                        query_param("after", integer(default=0), "Only after this position."),
                        page_limit(500)])},
        "/api/executions/{executionId}/state": {"get": operation(
            "getExecutionState", "audit", "An execution as it was at a version",
            {"200": json_response("The state.", obj({"state": ref("ExecutionState")})),
             **errors(400, 404)},
            parameters=[EXECUTION_ID, query_param(
                "version", integer(1), "1 to the latest version (400 beyond); default latest.")])},
        "/api/executions/{executionId}/health": {"get": operation(
            "getExecutionHealth", "audit", "Recorded health assessments, oldest first",
            {"200": json_response("The most recent `limit` assessments.",
                                  obj({"snapshots": array(ref("HealthSnapshot"))})),
             **errors(400, 404)},
            parameters=[EXECUTION_ID, page_limit(MAX_PAGE)])},
    }


def operations_paths() -> dict[str, Any]:
    me = obj({"user": string(), "workspaces": array(string())})
    return {
        "/api/me": {"get": operation(
            "me", "operations", "Who the token belongs to, and the workspaces it grants",
            {"200": json_response("The token's user and workspaces.", me)})},
        "/healthz": {"get": operation(
            "healthz", "operations", "Liveness and readiness",
            {"200": json_response("The store can be read.", ref("ServiceStatus")),
             "503": json_response("The store cannot be read.", ref("ServiceUnavailable"))},
            public=True)},
        "/metrics": {"get": operation(
            "metrics", "operations", "Prometheus metrics",
            {"200": text_response(
                "Text format 0.0.4 (OpenMetrics if Accept asks): stratexec_executions{status}, "
                "stratexec_tasks{agent,status}, stratexec_event_append_seconds (histogram), "
                "stratexec_projection_position, stratexec_projection_lag_events, "
                "stratexec_stream_subscribers, stratexec_live_executions.",
                "text/plain; version=0.0.4")})},
        "/api/openapi.json": {"get": operation(
            "openapi", "operations", "This document",
            {"200": json_response("The OpenAPI 3.1 document.", any_object())}, public=True)},
    }


def page_operation(operation_id: str, summary: str, parameters: list[Schema]
                   ) -> dict[str, Any]:
    token = query_param("token", string(),
                        "Sets the HttpOnly cookie stratexec_token and redirects to the same "
                        "path without it.")
    redirect = {"description": "The cookie is set; go to the same path without `token`.",
                "headers": {"Location": {"schema": string()},
                            "Set-Cookie": {"schema": string()}}}
    return {"get": operation(
        operation_id, "dashboard", summary,
        {"200": text_response("The dashboard page.", "text/html"), "303": redirect,
         "401": {"$ref": "#/components/responses/Unauthorized"}, **errors(404)},
        parameters=[*parameters, token], public=True,
        description="401 only when `?token=` is unknown or revoked; 404 when the dashboard "
                    "is not installed.")}


def dashboard_paths() -> dict[str, Any]:
    return {
        "/": page_operation("dashboard", "The dashboard", []),
        "/executions/{executionId}": page_operation(
            "executionPage", "The dashboard page of one execution", [EXECUTION_ID]),
        "/static/{file}": {"get": operation(
            "staticFile", "dashboard", "A static file of the dashboard",
            {"200": {"description": "The file.", "content": {"*/*": {"schema": string()}}},
             **errors(404)},
            parameters=[path_param("file", "The file's path under static/.")], public=True)},
    }


# -------------------------------------------------------------------------- document

def security_schemes() -> dict[str, Any]:
    return {
        "bearerAuth": {"type": "http", "scheme": "bearer",
                       "description": "A token issued with `stratexec token issue`."},
        "cookieAuth": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                       "description": "Set by opening a dashboard page with `?token=`."},
    }


def tags() -> list[dict[str, str]]:
    return [
        {"name": "strategies", "description": "Strategy documents and their plans."},
        {"name": "executions", "description": "Start, read and command executions."},
        {"name": "streams", "description": "Live events: SSE and WebSocket."},
        {"name": "audit", "description": "Reads of the event log itself."},
        {"name": "operations", "description": "Health, metrics and this document."},
        {"name": "dashboard", "description": "The dashboard's pages (HTML)."},
    ]


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "stratexec", "version": API_VERSION, "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "tags": tags(),
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "paths": {**strategy_paths(), **execution_paths(), **stream_paths(),
                  **audit_paths(), **operations_paths(), **dashboard_paths()},
        "components": {"schemas": schemas(), "responses": error_responses(),
                       "securitySchemes": security_schemes()},
    }
