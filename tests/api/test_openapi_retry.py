"""The OpenAPI document declares retry by hand and the agent types' circuit breaker: the
operations with their statuses, and schemas that take real answers and refuse stray ones."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_check import schema_errors, validate_response, validate_stream_event

from stratexec.api.openapi import openapi_document

EXECUTION_ID = "6f1c2a52-8a1e-4f7e-9c57-2d4b8d0f6a11"
CIRCUIT_ID = "0b7e4f39-2d6c-4d3a-a1f5-7f0e8c2b9d40"
NOW = "2025-06-02T09:30:00.123456+00:00"
OPERATIONS = [
    ("post", "/api/executions/{executionId}/retry", {"200", "401", "404", "409"}),
    ("post", "/api/executions/{executionId}/tasks/{taskId}/retry",
     {"200", "401", "404", "409"}),
    ("post", "/api/agents/{agentType}/resume", {"200", "401", "404", "409"}),
]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def paused_event() -> dict[str, Any]:
    return {"position": 40, "type": "agent-type-paused", "executionId": CIRCUIT_ID,
            "workspaceId": "", "recordedAt": NOW, "data": {
                "agentType": "email", "failureRate": 0.5, "window": 10,
                "attempts": [f"{EXECUTION_ID}:l4-send:email:{n}" for n in range(5)],
                "probeAt": NOW}}


def resumed_event() -> dict[str, Any]:
    return {"position": 41, "type": "agent-type-resumed", "executionId": CIRCUIT_ID,
            "workspaceId": "", "recordedAt": NOW,
            "data": {"agentType": "email", "by": "operator", "attempt": None}}


def test_the_operations_are_documented_with_their_statuses(document: dict[str, Any]) -> None:
    for method, path, statuses in OPERATIONS:
        operation = document["paths"][path][method]
        assert statuses == set(operation["responses"]), path
        assert operation["description"]


def test_answers_validate(document: dict[str, Any]) -> None:
    validate_response(document, "POST", f"/api/executions/{EXECUTION_ID}/retry", 200, {
        "success": True, "execution": {"id": EXECUTION_ID, "status": "running"}})
    validate_response(document, "POST", f"/api/executions/{EXECUTION_ID}/tasks/a:email/retry",
                      409, {"error": {"code": "invalid_transition", "message": "not failed",
                                      "details": {"status": "failed", "command": "retry"}}})
    validate_response(document, "POST", "/api/agents/email/resume", 200, {
        "success": True, "agentType": {"name": "email", "state": "closed"}})
    validate_response(document, "POST", "/api/agents/email/resume", 409, {
        "error": {"code": "invalid_transition", "message": "not paused",
                  "details": {"agentType": "email", "state": "closed"}}})
    with pytest.raises(AssertionError):  # the execution's conflict is not the agent type's
        validate_response(document, "POST", "/api/agents/email/resume", 409, {
            "error": {"code": "invalid_transition", "message": "no",
                      "details": {"status": "failed", "command": "retry"}}})


def test_agent_type_events_are_stream_events_of_their_own(document: dict[str, Any]) -> None:
    for event in (paused_event(), resumed_event()):
        validate_stream_event(document, event)
        assert schema_errors(document, "AgentTypeEvent", event) == []
        assert schema_errors(document, "FeedEvent", event)  # not an execution's event
        assert schema_errors(document, "AgentTypeEvent", event | {"workspaceId": "demo"})
        assert schema_errors(document, "AgentTypeEvent", event | {"stray": 1})
    wrong = paused_event()
    wrong["data"]["failureRate"] = 1.5
    assert schema_errors(document, "AgentTypeEvent", wrong)
    feed_types = document["components"]["schemas"]["FeedEvent"]["properties"]["type"]["enum"]
    assert "agent-type-paused" not in feed_types
    assert "execution-resumed" in feed_types
