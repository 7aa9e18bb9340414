"""The OpenAPI 3.1 document of the HTTP API: `openapi_document()`.

Every schema under `components/schemas` is generated from the model that checks or
serialises that shape (api/models.py, and the strategy document in domain/strategy.py), so
that the contract and the code cannot drift apart. What is written here by hand is what is
not a body: the paths and their operations, parameters, statuses and descriptions; the error
responses, each narrowing the generated `Error` to its codes; and the two unions of the
streams (`StreamEvent`, `WebSocketMessage`), around the generated event schemas.
The schemas are JSON Schema 2020-12: a nullable field is `anyOf [..., {"type": "null"}]`,
every object lists its required keys and forbids any other, so that a test validating a
response catches a stray key.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from stratexec.api import models
from stratexec.api.models import EXECUTION_STATUSES
from stratexec.api.streams import COMMANDS, MAX_POSITION
from stratexec.api.validation import MAX_OFFSET, MAX_PAGE
from stratexec.domain.strategy import StrategyDocument

Schema = dict[str, Any]
Model = type[BaseModel]

DOCS_PAGE = Path(__file__).resolve().parents[1] / "static" / "docs.html"
API_VERSION = "0.1.0"
COOKIE = "stratexec_token"
REF = "#/components/schemas/{model}"
ERROR_RESPONSES = {
    400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 413: "PayloadTooLarge", 422: "UnprocessableEntity", 500: "InternalError",
}

DESCRIPTION = """\
Executes business strategies with many agents. JSON keys are camelCase.

**Authentication.** Every operation needs `Authorization: Bearer <token>` or the HttpOnly
cookie `stratexec_token` (set when a dashboard page is opened with `?token=<token>`), except
`GET /healthz`, `GET /api/openapi.json`, `GET /docs` (this reference) and the dashboard's
pages and static files.

**Errors** are `{"error": {"code", "message", "details"}}`: `bad_request` 400 (details.problems
lists `{path, message}` for every problem, e.g. `body.items[3].level`), `unauthorized` 401
(with `WWW-Authenticate: Bearer`), `not_found` 404 (also for anything in a workspace the
token does not grant), `method_not_allowed` 405 (any method not documented on a documented
path), `invalid_transition` 409, `payload_too_large` 413, `invalid_strategy` or
`dependency_cycle` 422 (a strategy of the right shape that breaks a rule: levels, parents,
dependencies), `idempotency_key_reused` 422 (a start's Idempotency-Key sent with another
body). `internal` 500 is never expected.
"""

SSE_FORMAT = """\
A stream of Server-Sent Events, one frame per event:

    id: <position>
    event: <type>
    data: <StreamEvent as one line of JSON>

The `data` of every frame is a `StreamEvent` (`#/components/schemas/StreamEvent`). Without
`Last-Event-ID` (header) or `lastEventId` (query), a `snapshot` frame comes first; with it,
the stream resumes after that position and misses nothing. Before closing a subscriber that
cannot keep up (`slow_consumer`), or whose token was revoked (`token_revoked`), the server
sends an `error` frame (without `id`). Lines starting with `:` are keep-alive comments.
"""

WEBSOCKET_FORMAT = """\
Switching Protocols: the connection is a WebSocket. The server sends each `StreamEvent` as a
JSON text message (a `snapshot` first unless `?lastEventId=` is given). The client may send
`{"command": "pause" | "resume" | "cancel" | "retry"}` (`WebSocketCommand`) and gets
`{"type": "command-result", "command", "status"}` (`CommandResult`) or an `error` message.
Every server message is a `WebSocketMessage`. Close codes: 1001 when the server stops, 1013
for a client that fell too far behind (after the `slow_consumer` error), and 4401 once the
token is revoked (after the `token_revoked` error; a command sent after the revocation is
not run).
"""


# ------------------------------------------------------------------ generated schemas

class OpenApiSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, less its noise: no titles (the component's name is its
    title), and no `default: null` on a field that may be left out but is never null."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        result = super().model_schema(schema)
        result.pop("title", None)
        return result

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        result = super().default_schema(schema)
        if result.get("default", ...) is None and not _allows_null(result):
            del result["default"]
        return result


def _allows_null(schema: JsonSchemaValue) -> bool:
    return {"type": "null"} in schema.get("anyOf", ()) or schema.get("type") == "null"


MODELS: tuple[Model, ...] = (*models.REQUESTS, *models.ANSWERS, *models.STREAM_EVENTS)


@functools.cache
def _generated() -> dict[str, Schema]:
    _, definitions = models_json_schema([(model, "validation") for model in MODELS],
                                        ref_template=REF, schema_generator=OpenApiSchema)
    generated: dict[str, Schema] = definitions["$defs"]
    return generated


def ref(model: Model | str) -> Schema:
    return {"$ref": REF.format(model=model if isinstance(model, str) else model.__name__)}


def one_of(*choices: Model | str, description: str) -> Schema:
    return {"description": description, "oneOf": [ref(choice) for choice in choices]}


def schemas() -> dict[str, Schema]:
    return {
        **copy.deepcopy(_generated()),
        "StreamEvent": one_of(
            models.FeedEvent, models.AgentTypeEvent, models.WorkspaceSnapshot,
            models.ExecutionSnapshot, models.StreamError, description="The data of an SSE "
            "frame, or one WebSocket message from the server."),
        "WebSocketMessage": one_of("StreamEvent", models.CommandResult,
                                   description="A message the server sends on the WebSocket."),
    }


# ------------------------------------------------------- parameter schema shorthands

def string(**keywords: Any) -> Schema:
    return {"type": "string", **keywords}


def integer(minimum: int | None = 0, **keywords: Any) -> Schema:
    bound = {} if minimum is None else {"minimum": minimum}
    return {"type": "integer", **bound, **keywords}


def enum(values: Iterable[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


def const(value: str) -> Schema:
    return {"type": "string", "const": value}


def any_object() -> Schema:
    return {"type": "object"}


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
    return {"allOf": [ref(models.Error),
                      {"properties": {"error": {"properties": narrowed}}}]}


def error_response(description: str, *codes: str, details: Schema | None = None,
                   headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response = json_response(description, error_schema(codes, details))
    return response | ({"headers": headers} if headers else {})


def error_responses() -> dict[str, Any]:
    return {
        "BadRequest": error_response(
            "Malformed JSON, a wrong type, an unknown field or a bad query parameter.",
            "bad_request", details=ref(models.BadRequestDetails)),
        "Unauthorized": error_response(
            "No token, or an unknown or revoked one.", "unauthorized",
            details=ref(models.NoDetails),
            headers={"WWW-Authenticate": {"schema": const("Bearer")}}),
        "NotFound": error_response(
            "Not found, or in a workspace the token does not grant.", "not_found"),
        "MethodNotAllowed": error_response(
            "The path exists but not with this method.", "method_not_allowed"),
        "Conflict": error_response(
            "The execution's status forbids the command.", "invalid_transition",
            details=ref(models.ConflictDetails)),
        "PayloadTooLarge": error_response("The body is too large.", "payload_too_large"),
        "UnprocessableEntity": error_response(
            "The strategy breaks a rule of the domain (levels, parents, dependencies).",
            "invalid_strategy", "dependency_cycle",
            details=ref(models.InvalidStrategyDetails)),
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
            query_param("offset", integer(maximum=MAX_OFFSET, default=0), "How many to skip.")]


def workspace_filter() -> Schema:
    return query_param("workspaceId", string(),
                       "Only this workspace (404 if the token does not grant it); "
                       "by default every workspace the token grants.")


def resume_params() -> list[Schema]:
    description = "Resume after this log position instead of starting with a snapshot."
    return [
        {"name": "Last-Event-ID", "in": "header", "required": False,
         "description": f"{description} Blank: none (then `lastEventId` counts).",
         "schema": string(pattern=r"^\d{0,19}$")},
        query_param("lastEventId", integer(maximum=MAX_POSITION), description),
    ]


EXECUTION_ID = path_param("executionId", "The execution's id (a UUID).")
RETRY = """\
Retry by hand (dead-letter): every task of the execution that failed for good gets a fresh
retry budget (its attempt numbers go on upward, so no idempotency key repeats) and goes back
to pending, with the tasks skipped because of it that nothing else holds back; a failed
execution reopens as running. The stream shows `execution-resumed` (with `taskIds` and
`unskippedTaskIds`), then `task-assigned` as the attempts start. 409 when no task has
failed, or the execution is neither failed nor running."""
COMMAND_DESCRIPTIONS = {"retry": RETRY}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes the start safe to retry (1 to 255 printable ASCII characters; a "
                   "UUID does): see the operation.",
    "schema": string(minLength=1, maxLength=255)}
IDEMPOTENT_START = """\
With an `Idempotency-Key` header (as Stripe has them), a client that lost the answer may
send the same request again: within 24 hours of the first, the same key with the same body
answers the execution the first request started, with the same status and body (201, the
status it started with) and the header `Idempotent-Replayed: true`, and starts nothing.
Two requests racing with one key start one execution; both answer it. The same key with
another body is a 422 `idempotency_key_reused` (`details.header` names the header). A key
is scoped to the token's user and the body's workspace, is kept in the event log with the
execution it started (so it holds across restarts and crashes), and is free again after
24 hours."""


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
    one = ref(models.StrategyAnswer)
    return {
        "/api/strategies": {
            "post": operation(
                "createStrategy", "strategies", "Define a strategy",
                {"201": json_response("Defined.", one), **errors(400, 404, 413, 422)},
                body=ref(StrategyDocument)),
            "get": operation(
                "listStrategies", "strategies", "List strategies, by name",
                {"200": json_response("A page of strategies.", ref(models.StrategyPage)),
                 **errors(400, 404)},
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
    done = ref(models.CommandDone)
    return {"post": operation(
        f"{command}Execution", "executions", f"{command.capitalize()} an execution",
        {"200": json_response("Done; the new status.", done), **errors(404, 409)},
        parameters=[EXECUTION_ID], description=COMMAND_DESCRIPTIONS.get(command))}


def retry_task_path() -> dict[str, Any]:
    return {"post": operation(
        "retryTask", "executions", "Retry one task that failed for good",
        {"200": json_response("Done; the new status.", ref(models.CommandDone)),
         **errors(404, 409)},
        parameters=[EXECUTION_ID, path_param("taskId", "The task's id (`item:agent`).")],
        description="As `retryExecution`, for this task only (and the skipped tasks only it "
                    "held back). 404 for a task the execution does not have; 409 when it "
                    "has not failed.")}


def execution_paths() -> dict[str, Any]:
    started = ref(models.ExecutionStarted)
    status = ref(models.ExecutionStatusAnswer)
    return {
        "/api/executions/start": {"post": operation(
            "startExecution", "executions", "Start an execution of a strategy",
            {"201": json_response("Started (or, for a repeated Idempotency-Key, started "
                                  "before: the same answer).", started)
             | {"headers": {"Idempotent-Replayed": {
                 "description": "`true` on an answer repeated for an Idempotency-Key.",
                 "schema": const("true")}}},
             "422": json_response(
                 "The strategy names an agent type this engine does not run, or the "
                 "Idempotency-Key started an execution with another body.",
                 {"oneOf": [error_schema(("invalid_strategy", "dependency_cycle"),
                                         ref(models.InvalidStrategyDetails)),
                            error_schema(("idempotency_key_reused",),
                                         ref(models.IdempotencyKeyDetails))]}),
             **errors(400, 404, 413)},
            parameters=[IDEMPOTENCY_KEY], body=ref(models.StartExecution),
            description=IDEMPOTENT_START)},
        "/api/executions": {"get": operation(
            "listExecutions", "executions", "List executions, newest first",
            {"200": json_response("A page of executions.", ref(models.ExecutionPage)),
             **errors(400, 404)},
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
        "/api/executions/{executionId}/tasks/{taskId}/retry": retry_task_path(),
    }


def sse_response() -> dict[str, Any]:
    """Before OpenAPI 3.2's `itemSchema`, the `schema` of an event stream describes each
    event as an SSE parser reads it (schemathesis checks every event against it); the
    StreamEvent its `data` holds is `x-data-schema`."""
    return {"description": SSE_FORMAT, "content": {"text/event-stream": {
        "schema": {"type": "object", "required": ["data"], "properties": {
            "id": string(pattern="^[0-9]+$", description="The event's log position (the "
                         "snapshot's: the position it reflects); none on an `error` frame."),
            "event": string(description="The StreamEvent's type: `snapshot`, `error` or one "
                            "of the event types."),
            "data": string(contentMediaType="application/json",
                           description="The StreamEvent, as one line of JSON.")}},
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
                                    "client": ref(models.WebSocketCommand)}},
             "400": json_response("Not a WebSocket upgrade, or a bad lastEventId.",
                                  error_schema(("bad_request",))),
             **errors(404)},
            parameters=[EXECUTION_ID, query_param(
                "lastEventId", integer(maximum=MAX_POSITION),
                "Resume after this log position.")])},
    }


def audit_paths() -> dict[str, Any]:
    return {
        "/api/executions/{executionId}/history": {"get": operation(
            "getExecutionHistory", "audit", "Recorded events of an execution, by position",
            {"200": json_response("A page of events; `nextAfter` is null on the last page.",
                                  ref(models.HistoryPage)),
             **errors(400, 404)},
            parameters=[EXECUTION_ID,
                        query_param("after", integer(maximum=MAX_OFFSET, default=0),
                                    "Only after this position."),
                        page_limit(500)])},
        "/api/executions/{executionId}/state": {"get": operation(
            "getExecutionState", "audit", "An execution as it was at a version",
            {"200": json_response("The state.", ref(models.StateAnswer)),
             **errors(400, 404)},
            parameters=[EXECUTION_ID, query_param(
                "version", integer(1, maximum=MAX_OFFSET),
                "1 to the latest version; default the latest. A version past the latest "
                "answers 404 `not_found`, with `details.latestVersion`.")])},
        "/api/executions/{executionId}/health": {"get": operation(
            "getExecutionHealth", "audit", "Recorded health assessments, oldest first",
            {"200": json_response("The most recent `limit` assessments.",
                                  ref(models.HealthSnapshots)),
             **errors(400, 404)},
            parameters=[EXECUTION_ID, page_limit(MAX_PAGE)])},
    }


def agent_paths() -> dict[str, Any]:
    not_paused = error_response("The agent type is not paused.", "invalid_transition",
                                details=ref(models.AgentTypeConflictDetails))
    return {"/api/agents/{agentType}/resume": {"post": operation(
        "resumeAgentType", "operations", "Resume an agent type its circuit breaker paused",
        {"200": json_response("Resumed: its attempts start again.", ref(models.AgentTypeDone)),
         "409": not_paused, **errors(404)},
        parameters=[path_param("agentType", "An agent type the engine runs (`email`, ...).")],
        description="An agent type whose attempts failed too often (a share of its last "
                    "attempts, across executions) is paused: none of its attempts start, and "
                    "after a cool-down one probes. This closes its breaker at once. Agent "
                    "types are the engine's, not a workspace's: any token may. 404 for a "
                    "type the engine does not run.")}}


def operations_paths() -> dict[str, Any]:
    return {
        "/api/me": {"get": operation(
            "me", "operations", "Who the token belongs to, and the workspaces it grants",
            {"200": json_response("The token's user and workspaces.", ref(models.Me))})},
        "/healthz": {"get": operation(
            "healthz", "operations", "Liveness and readiness",
            {"200": json_response("The store can be read.", ref(models.ServiceStatus)),
             "503": json_response("The store cannot be read.", ref(models.ServiceUnavailable))},
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
        "/docs": {"get": operation(
            "docs", "operations", "This document as a page to read",
            {"200": text_response("The API reference: Redoc (vendored under /static/vendor/) "
                                  "renders /api/openapi.json.", "text/html")}, public=True)},
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
         "401": {"description": "The token in `?token=` is unknown or revoked: the dashboard "
                                "page, which says so to the person who opened the link (the "
                                "JSON error when the dashboard is not installed).",
                 "content": {"text/html": {"schema": string()},
                             **json_content(ref("Error"))}},
         **errors(404)},
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
                       "description": "A token made with `stratexec token create`."},
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
                  **audit_paths(), **agent_paths(), **operations_paths(),
                  **dashboard_paths()},
        "components": {"schemas": schemas(), "responses": error_responses(),
                       "securitySchemes": security_schemes()},
    }


async def docs_page(request: web.Request) -> web.FileResponse:
    """GET /docs: this document as a page to read (static/docs.html, which loads the
    vendored Redoc and nothing from elsewhere)."""
    return web.FileResponse(DOCS_PAGE)
