"""The OpenAPI document is valid and strict enough for the API tests to trust it."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_check import (
    operation_for,
    schema_errors,
    validate_response,
    validate_schema,
    validate_stream_event,
    validate_ws_message,
)
from openapi_spec_validator import validate as validate_openapi

from stratexec.api.openapi import openapi_document
from stratexec.api.streams import MAX_POSITION
from stratexec.api.validation import MAX_OFFSET
from stratexec.domain.health import HealthInputs, assess
from stratexec.domain.propagation import propagate
from stratexec.domain.strategy import parse_strategy
from stratexec.projections.wire import camel
from stratexec.usecases import plan_answer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXECUTION_ID = "6f1c2a52-8a1e-4f7e-9c57-2d4b8d0f6a11"
STRATEGY_ID = "0b7e4f39-2d6c-4d3a-a1f5-7f0e8c2b9d40"
NOW = "2025-06-02T09:30:00.123456+00:00"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

CONTRACT_OPERATIONS = [
    ("post", "/api/strategies", {"201", "400", "401", "404", "413", "422"}),
    ("get", "/api/strategies", {"200", "400", "401", "404"}),
    ("get", "/api/strategies/{strategyId}", {"200", "401", "404"}),
    ("post", "/api/executions/start", {"201", "400", "401", "404", "413", "422"}),
    ("get", "/api/executions", {"200", "400", "401", "404"}),
    ("get", "/api/executions/{executionId}/status", {"200", "401", "404"}),
    ("post", "/api/executions/{executionId}/pause", {"200", "401", "404", "409"}),
    ("post", "/api/executions/{executionId}/resume", {"200", "401", "404", "409"}),
    ("post", "/api/executions/{executionId}/cancel", {"200", "401", "404", "409"}),
    ("get", "/api/executions/{executionId}/events", {"200", "401", "404"}),
    ("get", "/api/workspaces/{workspaceId}/events", {"200", "401", "404"}),
    ("get", "/api/executions/{executionId}/ws", {"101", "401", "404"}),
    ("get", "/api/executions/{executionId}/history", {"200", "400", "401", "404"}),
    ("get", "/api/executions/{executionId}/state", {"200", "400", "401", "404"}),
    ("get", "/api/executions/{executionId}/health", {"200", "401", "404"}),
    ("get", "/healthz", {"200", "503"}),
    ("get", "/metrics", {"200", "401"}),
    ("get", "/api/openapi.json", {"200"}),
    ("get", "/docs", {"200"}),
    ("get", "/", {"200", "303"}),
    ("get", "/executions/{executionId}", {"200", "303"}),
]
PUBLIC = {"/healthz", "/api/openapi.json", "/docs", "/", "/executions/{executionId}",
          "/static/{file}"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


# ------------------------------------------------------------------------ examples

def execution() -> dict[str, Any]:
    return {
        "id": EXECUTION_ID, "workspaceId": "demo", "strategyId": STRATEGY_ID,
        "strategyName": "Small demo", "status": "running", "totalTasks": 6,
        "pendingTasks": 2, "assignedTasks": 1, "queuedTasks": 1, "inProgressTasks": 1,
        "finishedTasks": 2, "completedTasks": 1, "failedTasks": 0, "skippedTasks": 0,
        "cancelledTasks": 1, "retries": 1,
        "startedAt": NOW, "finishedAt": None, "updatedAt": NOW, "version": 9,
        "healthScore": 85, "healthStatus": "Excellent", "interruptedAt": None,
    }


def task() -> dict[str, Any]:
    return {
        "executionId": EXECUTION_ID, "taskId": "l4-write:content", "itemId": "l4-write",
        "title": "Write the newsletter", "agent": "content", "priority": "high",
        "dependsOn": ["l4-research:research"], "order": 2, "status": "in_progress",
        "attempt": 2, "failures": 1, "progress": 0.5, "errorKind": "transient",
        "errorMessage": "timeout", "retryAt": None, "result": None, "durationMs": None,
        "assignedAt": NOW, "startedAt": NOW, "finishedAt": None,
    }


def agent_metrics() -> dict[str, Any]:
    return {"agent": "research", "tasks": 2, "completed": 1, "failed": 0, "skipped": 0,
            "cancelled": 0, "attempts": 2, "failedAttempts": 1, "retries": 1,
            "successRate": 1.0, "failureRate": 0.5, "retryRate": 0.5,
            "meanDurationMs": 120.5, "p50DurationMs": 120.5, "p90DurationMs": 120.5,
            "p95DurationMs": None, "promptTokens": 0, "completionTokens": 0, "cost": 0.0,
            "running": 1, "queued": 3, "concurrency": 4, "utilisation": 0.25}


def eta() -> dict[str, Any]:
    return {"seconds": 12.5, "p90Seconds": 20.25, "estimatedAt": NOW, "remainingTasks": 3,
            "criticalPath": ["l4-write:content", "l4-write:analysis"]}


def token_usage() -> dict[str, Any]:
    return {"promptTokens": 1200, "completionTokens": 300, "cost": 0.0045}


def health() -> dict[str, Any]:
    inputs = HealthInputs(total=6, completed=3, failed=1, skipped=0, cancelled=0, attempts=5,
                          failed_attempts=2, mean_duration_ms=140.0)
    assessment = assess(inputs)
    return {key: value for key, value in camel(assessment.as_event()).items() if key != "eta"
            } | {"healthy": assessment.healthy, "recordedAt": None, "outcome": None}


def health_snapshot() -> dict[str, Any]:
    record = {key: value for key, value in health().items()
              if key not in ("healthy", "outcome")}
    return {"position": 42, "executionId": EXECUTION_ID, "workspaceId": "demo",
            **record, "recordedAt": NOW, "eta": eta()}


def strategy_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / "small-demo.json").read_text())
    return document


def strategy_summary() -> dict[str, Any]:
    return {"id": STRATEGY_ID, "workspaceId": "demo", "name": "Small demo", "itemCount": 5,
            "leafCount": 2, "taskCount": 4, "definedAt": NOW}


def strategy_detail() -> dict[str, Any]:
    document = strategy_document()
    document["items"][3]["inputs"] = {"audience": "customers"}  # its tasks carry it
    definition = parse_strategy(document)
    plan = propagate(definition.items)
    document = {"name": definition.name, "workspaceId": definition.workspace_id,
                "items": [item.as_document() for item in definition.items]}
    return strategy_summary() | {"document": document, "plan": plan_answer(plan)}


def history_event() -> dict[str, Any]:
    return {"position": 17, "version": 4, "timestamp": NOW, "type": "Execution.TaskAssigned",
            "data": {"taskId": "l4-write:content", "attempt": 1}}


def execution_state() -> dict[str, Any]:
    return {
        "executionId": EXECUTION_ID, "version": 3, "latestVersion": 9, "status": "running",
        "strategyId": STRATEGY_ID, "workspaceId": "demo", "strategyName": "Small demo",
        "counts": {"pending": 5, "assigned": 1, "in_progress": 0, "completed": 0,
                   "failed": 0, "skipped": 0, "cancelled": 0},
        "tasks": [{"id": "l4-write:content", "agent": "content", "status": "assigned",
                   "attempt": 1, "failures": 0, "error": None, "result": None}],
    }


def feed_event() -> dict[str, Any]:
    return {"position": 18, "type": "task-progress", "executionId": EXECUTION_ID,
            "workspaceId": "demo", "recordedAt": NOW,
            "data": {"executionId": EXECUTION_ID, "taskId": "l4-write:content",
                     "progress": 0.25}}


def execution_snapshot() -> dict[str, Any]:
    return {"position": 17, "type": "snapshot", "execution": execution(), "tasks": [task()],
            "health": health()}


def workspace_snapshot() -> dict[str, Any]:
    return {"position": 0, "type": "snapshot", "executions": [execution()],
            "totalExecutions": 1, "truncated": False}


def stream_error() -> dict[str, Any]:
    return {"type": "error", "error": {"code": "slow_subscriber", "message": "too slow",
                                       "details": {}}}


def error() -> dict[str, Any]:
    return {"error": {"code": "not_found", "message": "execution not found", "details": {}}}


def service_status() -> dict[str, Any]:
    return {"status": "ok", "store": {"kind": "sqlite", "ok": True, "position": 120},
            "projections": {"position": 118, "lag": 2, "error": None}, "subscribers": 3,
            "pausedAgentTypes": [{
                "agentType": "email", "state": "open", "failureRate": 0.6, "window": 10,
                "attempts": [f"{EXECUTION_ID}:l4-send:email:{n}" for n in range(1, 7)],
                "pausedAt": NOW, "probeAt": NOW}]}


SCHEMA_EXAMPLES = {
    "Execution": execution, "Task": task, "AgentMetrics": agent_metrics, "Health": health,
    "TokenUsage": token_usage, "Eta": eta,
    "HealthSnapshot": health_snapshot, "StrategySummary": strategy_summary,
    "StrategyDetail": strategy_detail, "StrategyDocument": strategy_document,
    "HistoryEvent": history_event, "ExecutionState": execution_state,
    "FeedEvent": feed_event, "ExecutionSnapshot": execution_snapshot,
    "WorkspaceSnapshot": workspace_snapshot, "StreamError": stream_error, "Error": error,
    "ServiceStatus": service_status,
}


# ------------------------------------------------------------------ the document

def test_document_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)
    json.dumps(document)  # served as JSON: nothing but JSON types


@pytest.mark.parametrize("name", sorted(openapi_document()["components"]["schemas"]))
def test_every_component_schema_is_a_valid_2020_12_schema(name: str) -> None:
    Draft202012Validator.check_schema(openapi_document()["components"]["schemas"][name])


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = list(_refs(document))
    assert len(refs) > 50
    for target in refs:
        assert target.startswith("#/"), target
        node: Any = document
        for part in target[2:].split("/"):
            assert part in node, f"{target} does not resolve"
            node = node[part]


def test_contract_operations_are_documented_with_their_statuses(
        document: dict[str, Any]) -> None:
    for method, path, statuses in CONTRACT_OPERATIONS:
        responses = document["paths"][path][method]["responses"]
        assert statuses <= set(responses), f"{method} {path}: missing {statuses - set(responses)}"


def test_every_operation_is_complete(document: dict[str, Any]) -> None:
    ids = []
    for path, item in document["paths"].items():
        declared_in_path = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in _operations(item):
            ids.append(operation["operationId"])
            assert operation["responses"], f"{method} {path} lists no response"
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status)
                assert "description" in response or "$ref" in response
            parameters = operation.get("parameters", [])
            assert {p["name"] for p in parameters if p["in"] == "path"} == declared_in_path
            assert all(p["required"] for p in parameters if p["in"] == "path")
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_only_documented_public_operations_skip_authentication(
        document: dict[str, Any]) -> None:
    assert document["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == schemes["bearerAuth"] | {"type": "http", "scheme": "bearer"}
    assert schemes["cookieAuth"] | {"type": "apiKey", "in": "cookie",
                                    "name": "stratexec_token"} == schemes["cookieAuth"]
    for path, item in document["paths"].items():
        for method, operation in _operations(item):
            if path in PUBLIC:
                assert operation["security"] == [], f"{method} {path} should be public"
            else:
                assert "security" not in operation, f"{method} {path} should need a token"
                assert "401" in operation["responses"]


def test_error_responses_use_the_error_schema(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    for name, response in responses.items():
        schema = response["content"]["application/json"]["schema"]
        assert schema["allOf"][0] == {"$ref": "#/components/schemas/Error"}, name
    assert "WWW-Authenticate" in responses["Unauthorized"]["headers"]


def test_an_event_streams_schema_describes_each_event_as_a_parser_reads_it(
        document: dict[str, Any]) -> None:
    """OpenAPI 3.1 has no itemSchema: schemathesis checks each SSE event against `schema`."""
    for path in ("/api/executions/{executionId}/events", "/api/workspaces/{workspaceId}/events"):
        schema = document["paths"][path]["get"]["responses"]["200"]["content"][
            "text/event-stream"]["schema"]
        validator = Draft202012Validator(schema)
        for frame in ({"id": "3", "event": "snapshot", "data": "{}"},
                      {"id": "4", "event": "task-assigned", "data": '{"position": 4}'},
                      {"event": "error", "data": '{"code": "slow_consumer"}'}):
            assert validator.is_valid(frame), frame
        for broken in ({"id": "4", "event": "task-assigned"}, {"id": "four", "data": "{}"}):
            assert not validator.is_valid(broken), broken


def test_media_types_of_streams_pages_and_metrics(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path in ("/api/executions/{executionId}/events", "/api/workspaces/{workspaceId}/events"):
        media = paths[path]["get"]["responses"]["200"]["content"]["text/event-stream"]
        assert media["x-data-schema"] == {"$ref": "#/components/schemas/StreamEvent"}
        assert "Last-Event-ID" in {p["name"] for p in paths[path]["get"]["parameters"]}
    socket = paths["/api/executions/{executionId}/ws"]["get"]["responses"]["101"]
    assert "WebSocket" in socket["description"]
    assert "text/plain; version=0.0.4" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    for page in ("/", "/executions/{executionId}", "/docs"):
        assert "text/html" in paths[page]["get"]["responses"]["200"]["content"]
    for page in ("/", "/executions/{executionId}"):  # a refused token link: the page says so
        assert "text/html" in paths[page]["get"]["responses"]["401"]["content"]


def test_query_parameters_carry_ranges_and_enums(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p["schema"]
                  for p in document["paths"]["/api/executions"]["get"]["parameters"]}
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000,
                                   "default": 100}
    assert (parameters["offset"]["minimum"], parameters["offset"]["maximum"]) == (0, MAX_OFFSET)
    assert "paused" in parameters["status"]["enum"]
    history = {p["name"]: p["schema"] for p in
               document["paths"]["/api/executions/{executionId}/history"]["get"]["parameters"]}
    assert history["limit"]["default"] == 500
    assert history["after"] == {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET,
                                "default": 0}
    state = document["paths"]["/api/executions/{executionId}/state"]["get"]
    (version,) = (p for p in state["parameters"] if p["name"] == "version")
    assert "404" in version["description"]
    assert "404" in state["responses"]
    socket = document["paths"]["/api/executions/{executionId}/ws"]["get"]["parameters"]
    assert {p["name"]: p["schema"] for p in socket}["lastEventId"]["maximum"] == MAX_POSITION


# -------------------------------------------------------------------- the schemas

@pytest.mark.parametrize("name", sorted(SCHEMA_EXAMPLES))
def test_schema_accepts_a_realistic_example(document: dict[str, Any], name: str) -> None:
    validate_schema(document, name, SCHEMA_EXAMPLES[name]())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_every_example_strategy_is_a_strategy_document(document: dict[str, Any], path: Path
                                                       ) -> None:
    validate_schema(document, "StrategyDocument", json.loads(path.read_text()))


@pytest.mark.parametrize("name", sorted(SCHEMA_EXAMPLES))
def test_schema_rejects_a_stray_key(document: dict[str, Any], name: str) -> None:
    example = SCHEMA_EXAMPLES[name]() | {"stray": 1}
    assert any("'stray' was unexpected" in e for e in schema_errors(document, name, example))


@pytest.mark.parametrize("name", sorted(SCHEMA_EXAMPLES))
def test_schema_rejects_every_missing_required_key(document: dict[str, Any], name: str) -> None:
    example = SCHEMA_EXAMPLES[name]()
    for key in example:
        partial = {k: v for k, v in example.items() if k != key}
        if name == "StrategyDocument" and key == "workspaceId":
            assert schema_errors(document, name, partial) == []
        else:
            assert schema_errors(document, name, partial), f"{name} accepts no {key!r}"


@pytest.mark.parametrize("name", sorted(SCHEMA_EXAMPLES))
def test_every_field_has_a_type(document: dict[str, Any], name: str) -> None:
    example = SCHEMA_EXAMPLES[name]()
    for key in example:
        rejected = [value for value in ({"x": 1}, "text", 1.5, [1], True, None)
                    if schema_errors(document, name, example | {key: value})]
        assert len(rejected) >= 4, f"{name}.{key} accepts almost anything"


@pytest.mark.parametrize(("name", "path", "value"), [
    ("Execution", ["totalTasks"], "6"),
    ("Execution", ["status"], "sleeping"),
    ("Execution", ["finishedAt"], "yesterday"),
    ("Execution", ["id"], "not-a-uuid"),
    ("Execution", ["healthScore"], 101),
    ("Task", ["progress"], 1.5),
    ("Task", ["agent"], "Plumber!"),
    ("Task", ["dependsOn"], ["a", 2]),
    ("Health", ["score"], 85.5),
    ("Health", ["healthy"], "yes"),
    ("AgentMetrics", ["successRate"], -0.1),
    ("StrategyDocument", ["items", 0, "level"], 5),
    ("StrategyDocument", ["items", 0, "priority"], "urgent"),
    ("StrategyDetail", ["plan", "tasks", 0, "order"], "1"),
    ("HistoryEvent", ["type"], "stratexec:Execution.Started"),
    ("ExecutionState", ["counts", "in_progress"], None),
    ("ExecutionSnapshot", ["execution", "version"], 0),
    ("WorkspaceSnapshot", ["executions", 0, "healthStatus"], "Fine"),
    ("FeedEvent", ["type"], "task-exploded"),
    ("Error", ["error", "details"], []),
    ("ServiceStatus", ["store", "ok"], False),
])
def test_schema_rejects_a_wrong_value(document: dict[str, Any], name: str,
                                      path: list[str | int], value: Any) -> None:
    example = _with(SCHEMA_EXAMPLES[name](), path, value)
    assert schema_errors(document, name, example), f"{name} accepts {path} = {value!r}"


@pytest.mark.parametrize(("name", "path"), [
    ("StrategyDocument", ["items", 0]),
    ("StrategyDetail", ["plan"]),
    ("StrategyDetail", ["document", "items", 1]),
    ("ExecutionSnapshot", ["health"]),
    ("ExecutionState", ["tasks", 0]),
    ("Error", ["error"]),
])
def test_nested_objects_reject_a_stray_key(document: dict[str, Any], name: str,
                                           path: list[str | int]) -> None:
    example = SCHEMA_EXAMPLES[name]()
    _at(example, path)["stray"] = 1
    assert any("'stray' was unexpected" in e for e in schema_errors(document, name, example))


def test_nullable_fields_accept_null_and_a_value(document: dict[str, Any]) -> None:
    for key, value in (("finishedAt", NOW), ("healthScore", None), ("healthStatus", None),
                       ("interruptedAt", NOW)):
        validate_schema(document, "Execution", execution() | {key: value})
    for outcome in ("completed", "failed", "cancelled"):
        validate_schema(document, "Health", health() | {"outcome": outcome})
    validate_schema(document, "HealthSnapshot", health_snapshot() | {"eta": None})
    validate_schema(document, "AgentMetrics",
                    agent_metrics() | {"concurrency": None, "utilisation": None})
    validate_schema(document, "Task", task() | {"result": {"sent": 3}, "durationMs": 12.5})


def test_stream_events_are_told_apart(document: dict[str, Any]) -> None:
    for event in (feed_event(), execution_snapshot(), workspace_snapshot(), stream_error()):
        validate_stream_event(document, event)
        validate_ws_message(document, event)
    validate_ws_message(document, {"type": "command-result", "command": "pause",
                                   "status": "paused"})
    mixed = workspace_snapshot() | {"tasks": []}
    with pytest.raises(AssertionError, match="'tasks' was unexpected"):
        validate_stream_event(document, mixed)
    with pytest.raises(AssertionError, match="StreamEvent"):
        validate_stream_event(document, {"type": "command-result", "command": "pause",
                                         "status": "paused"})


# ----------------------------------------------------------- the response checks

def test_validate_response_accepts_documented_answers(document: dict[str, Any]) -> None:
    validate_response(document, "GET", "/api/executions/{executionId}/status", 200, {
        "execution": execution(), "health": health(), "eta": eta(), "tasks": [task()],
        "metrics": {"agents": [agent_metrics()], "usage": token_usage()}, "position": 12})
    validate_response(document, "GET", "/api/executions/{executionId}/status", 200, {
        "execution": execution() | {"status": "cancelled"},
        "health": health() | {"outcome": "cancelled"}, "eta": None, "tasks": [],
        "metrics": {"agents": [], "usage": token_usage()}, "position": 12})
    validate_response(document, "POST", "/api/strategies", 201,
                      {"strategy": strategy_detail()})
    validate_response(document, "POST", f"/api/executions/{EXECUTION_ID}/pause", 409, {
        "error": {"code": "invalid_transition", "message": "cannot pause",
                  "details": {"status": "completed", "command": "pause"}}})
    validate_response(document, "POST", "/api/strategies", 422, {"error": {
        "code": "dependency_cycle", "message": "cycle", "details": {
            "problems": [{"path": "items (a).dependsOn", "message": "cycle", "itemId": "a"}],
            "cycle": ["a", "b", "a"]}}})
    validate_response(document, "GET", "/healthz", 503, {
        "status": "unavailable", "store": {"kind": "postgres", "ok": False, "error": "down"}})
    validate_response(document, "GET", "/metrics", 200, "# HELP x y\n")
    validate_response(document, "GET", "/", 200, "<!doctype html>")
    validate_response(document, "GET", "/executions/abc", 303, "")


def test_validate_response_names_what_is_wrong(document: dict[str, Any]) -> None:
    body = {"execution": {"id": EXECUTION_ID, "status": "paused", "extra": True},
            "success": True}
    with pytest.raises(AssertionError, match=r"\$\.execution.*'extra' was unexpected"):
        validate_response(document, "POST", "/api/executions/x/pause", 200, body)
    with pytest.raises(AssertionError, match="status 409 is not documented"):
        validate_response(document, "GET", "/api/strategies", 409, error())
    with pytest.raises(AssertionError, match="'not_found' was expected"):
        validate_response(document, "GET", "/api/strategies/x", 404,
                          {"error": {"code": "gone", "message": "", "details": {}}})
    with pytest.raises(AssertionError, match="'problems' is a required property"):
        validate_response(document, "GET", "/api/executions", 400, {
            "error": {"code": "bad_request", "message": "query.limit", "details": {}}})
    with pytest.raises(AssertionError, match="expected text"):
        validate_response(document, "GET", "/metrics", 200, {"not": "text"})


def test_undocumented_methods_and_paths(document: dict[str, Any]) -> None:
    not_allowed = {"error": {"code": "method_not_allowed", "message": "no", "details": {}}}
    validate_response(document, "DELETE", "/api/strategies", 405, not_allowed)
    validate_response(document, "GET", "/api/executions/x/pause", 405, not_allowed)
    validate_response(document, "GET", "/api/nothing", 404, error())
    with pytest.raises(AssertionError, match="DELETE is not documented"):
        validate_response(document, "DELETE", "/api/strategies", 200, {})
    with pytest.raises(AssertionError, match="no documented path"):
        validate_response(document, "GET", "/api/nothing", 200, {})


def test_operation_for_maps_concrete_paths(document: dict[str, Any]) -> None:
    cases = {
        "/api/executions/start": "/api/executions/start",
        f"/api/executions/{EXECUTION_ID}/events?lastEventId=3":
            "/api/executions/{executionId}/events",
        "/api/workspaces/demo/events": "/api/workspaces/{workspaceId}/events",
        "/executions/abc": "/executions/{executionId}",
        "/": "/",
    }
    for path, template in cases.items():
        method = "post" if path.endswith("start") else "get"
        found, operation = operation_for(document, method, path)
        assert found == template
        assert operation is document["paths"][template][method]


# ---------------------------------------------------------------------- helpers

def _refs(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _operations(item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(method, operation) for method, operation in item.items() if method in HTTP_METHODS]


def _at(example: Any, path: list[str | int]) -> Any:
    for part in path:
        example = example[part]
    return example


def _with(example: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(example)
    _at(changed, path[:-1])[path[-1]] = value
    return changed
