"""The webhook handler against a real HTTP server started by each test."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from agent_servers import Reply, Request, context, free_port, http_server, task, verified

from stratexec.actors.agents.base import AgentError, OptionError
from stratexec.actors.agents.net import retry_after
from stratexec.actors.agents.webhook import WebhookAgent

SECRET = "whsec-7f3a9c0e5b1d4e2f"


def ok(request: Request) -> Reply:
    return Reply(200, {"accepted": True, "ticket": 17}, {"Content-Type": "application/json"})


def fail_with(kind: str, call: Any) -> AgentError:
    with pytest.raises(AgentError) as raised:
        call()
    assert raised.value.kind == kind, raised.value.message
    return raised.value


def test_posts_the_attempt_signed_and_returns_the_json_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    attempt = task("coordination", attempt=2, description="Tell the team",
                   inputs={"channel": "#launch"}, upstream={"l4-a:content": {"text": "Hello"}})
    with http_server(ok) as server:
        agent = WebhookAgent("coordination", {"url": server.url("/hooks/tasks?team=7"),
                                              "secret_env": "HOOK_SECRET"})
        result = agent.run(attempt, context())
    assert result == {"accepted": True, "ticket": 17}
    (request,) = server.requests
    assert request.path == "/hooks/tasks?team=7"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == f"{attempt.execution_id}:l4-item:coordination:2"
    assert verified(SECRET, request)
    assert request.json() == {
        "executionId": str(attempt.execution_id), "workspaceId": "demo",
        "taskId": "l4-item:coordination", "itemId": "l4-item", "agent": "coordination",
        "title": "Write the launch note", "description": "Tell the team", "priority": "high",
        "attempt": 2, "idempotencyKey": attempt.idempotency_key,
        "inputs": {"channel": "#launch"}, "upstream": {"l4-a:content": {"text": "Hello"}}}


def test_unsigned_without_a_secret_and_an_empty_answer_is_an_empty_result() -> None:
    with http_server(lambda request: Reply(204)) as server:
        result = WebhookAgent("coordination", {"url": server.url()}).run(task(), context())
    assert result == {}
    assert "x-stratexec-signature" not in server.requests[0].headers


def test_a_signature_over_other_bytes_does_not_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with http_server(ok) as server:
        WebhookAgent("email", {"url": server.url(), "secret_env": "HOOK_SECRET"}).run(
            task(), context())
    (request,) = server.requests
    assert not verified("another secret", request)
    assert not verified(SECRET, Request(request.method, request.path, request.headers,
                                        request.body + b" "))


def test_unreachable_is_retryable_and_names_the_endpoint() -> None:
    port = free_port()
    agent = WebhookAgent("email", {"url": f"http://127.0.0.1:{port}/hook?token=abc"})
    error = fail_with("webhook_unreachable", lambda: agent.run(task(), context()))
    assert error.retryable
    assert error.message == f"http://127.0.0.1:{port}/hook: connection refused"


def test_no_answer_within_the_timeout_is_a_retryable_timeout() -> None:
    with http_server(lambda request: Reply(200, {}, delay=5)) as server:
        agent = WebhookAgent("email", {"url": server.url("/slow"), "timeout": 0.3})
        began = time.monotonic()
        error = fail_with("webhook_timeout", lambda: agent.run(task(), context()))
    assert time.monotonic() - began < 2
    assert error.retryable
    assert error.message == f"http://127.0.0.1:{server.port}/slow: no answer within 0.3 s"


@pytest.mark.parametrize(("status", "kind", "retryable"), [
    (500, "webhook_http_5xx", True), (503, "webhook_http_5xx", True),
    (429, "webhook_rate_limited", True), (400, "webhook_http_4xx", False),
    (404, "webhook_http_4xx", False), (422, "webhook_http_4xx", False),
    (301, "webhook_http_3xx", False),
])
def test_statuses(status: int, kind: str, retryable: bool) -> None:
    body = {"error": "nope"}
    with http_server(lambda request: Reply(status, body, {"Location": "http://x.test/y?s=1"})
                     ) as server:
        agent = WebhookAgent("email", {"url": server.url("/hook")})
        error = fail_with(kind, lambda: agent.run(task(), context()))
    assert error.retryable is retryable
    assert error.message.startswith(f"http://127.0.0.1:{server.port}/hook answered {status}")
    assert '{"error": "nope"}' in error.message
    if status == 301:
        assert "(to http://x.test:80/y); redirects are not followed" in error.message


def test_a_relative_redirect_names_its_path() -> None:
    with http_server(lambda request: Reply(308, b"", {"Location": "/v2/hook?key=1"})
                     ) as server:
        agent = WebhookAgent("email", {"url": server.url("/hook")})
        error = fail_with("webhook_http_3xx", lambda: agent.run(task(), context()))
    assert error.message.endswith("308 Permanent Redirect (to /v2/hook); redirects are not"
                                  " followed")


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]", b'"text"', b"{broken"])
def test_a_2xx_answer_that_is_not_a_json_object_is_a_bad_response(body: bytes) -> None:
    with http_server(lambda request: Reply(200, body)) as server:
        agent = WebhookAgent("email", {"url": server.url()})
        error = fail_with("webhook_bad_response", lambda: agent.run(task(), context()))
    assert error.retryable
    assert error.message == (f"http://127.0.0.1:{server.port}/ answered 200 with a body that"
                             f" is not a JSON object: {body.decode()}")


def test_a_short_retry_after_is_waited_out_inside_the_attempt() -> None:
    with http_server(lambda request: Reply(429, b"slow down", {"Retry-After": "1"})) as server:
        agent = WebhookAgent("email", {"url": server.url(), "retry_after_max": 5})
        attempt_context = context()
        began = time.monotonic()
        error = fail_with("webhook_rate_limited", lambda: agent.run(task(), attempt_context))
    assert time.monotonic() - began >= 1.0
    assert error.retryable
    assert error.message.endswith("slow down; waited 1 s as its Retry-After asked")
    reports = attempt_context._report.reports  # type: ignore[attr-defined]
    assert reports == [(0.0, f"waiting 1 s: http://127.0.0.1:{server.port}/ asked so"
                             " (Retry-After)")]


def test_a_long_retry_after_is_reported_not_waited_for() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    with http_server(lambda request: Reply(503, b"", {"Retry-After": later})) as server:
        agent = WebhookAgent("email", {"url": server.url(), "retry_after_max": 5})
        began = time.monotonic()
        error = fail_with("webhook_http_5xx", lambda: agent.run(task(), context()))
    assert time.monotonic() - began < 1
    assert re.search(r"; Retry-After (599|600) s is more than", error.message), error.message
    assert "is more than retry_after_max (5 s): not waited for" in error.message


def test_retry_after_zero_disables_the_wait() -> None:
    with http_server(lambda request: Reply(429, b"", {"Retry-After": "1"})) as server:
        agent = WebhookAgent("email", {"url": server.url(), "retry_after_max": 0})
        began = time.monotonic()
        fail_with("webhook_rate_limited", lambda: agent.run(task(), context()))
    assert time.monotonic() - began < 1


def test_cancelling_ends_a_wait_for_an_answer_and_a_retry_after_wait() -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with http_server(lambda request: Reply(200, {}, delay=10)) as server:
        agent = WebhookAgent("email", {"url": server.url(), "timeout": 30})
        began = time.monotonic()
        error = fail_with("cancelled", lambda: agent.run(task(), context(cancel)))
        assert time.monotonic() - began < 2
        assert not error.retryable

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with http_server(lambda request: Reply(429, b"", {"Retry-After": "20"})) as server:
        agent = WebhookAgent("email", {"url": server.url(), "retry_after_max": 30})
        began = time.monotonic()
        fail_with("cancelled", lambda: agent.run(task(), context(cancel)))
        assert time.monotonic() - began < 2


def test_retry_after_values() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after("7", now) == 7.0
    assert retry_after(" 0 ", now) == 0.0
    assert retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past
    assert retry_after("soon", now) is None
    assert retry_after("-3", now) is None
    assert retry_after(None, now) is None


@pytest.mark.parametrize(("options", "key", "problem"), [
    ({}, "url", "is required"),
    ({"url": "ftp://example.test/x"}, "url", "must be an http:// or https:// URL with a host"),
    ({"url": "https://user:hunter2@example.test/"}, "url", "must not carry credentials"),
    ({"url": "http://example.test:http/"}, "url", "has a port that is not a number"),
    ({"url": "http://example.test/", "secret_env": "STRATEXEC_TEST_UNSET"}, "secret_env",
     "the environment variable STRATEXEC_TEST_UNSET is not set"),
    ({"url": "http://example.test/", "secret_env": "not a name"}, "secret_env",
     "must name an environment variable"),
    ({"url": "http://example.test/", "timeout": 0}, "timeout", "must be above 0, got 0"),
    ({"url": "http://example.test/", "timeout": "10"}, "timeout", "must be a number"),
    ({"url": "http://example.test/", "retry_after_max": -1}, "retry_after_max",
     "must be at least 0"),
    ({"url": "http://example.test/", "secret": "inline"}, "secret", "unknown option; known:"),
])
def test_options_are_checked_at_construction(options: dict[str, Any], key: str,
                                             problem: str) -> None:
    with pytest.raises(OptionError) as raised:
        WebhookAgent("email", options)
    assert raised.value.key == key
    assert raised.value.problem.startswith(problem), raised.value.problem
    assert "hunter2" not in str(raised.value)
