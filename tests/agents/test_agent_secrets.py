"""No secret (HMAC secret, API key, SMTP password) in what the built-in handlers report: the
results and failures an AgentActor sends its execution, their progress messages, and the
logs, even when a server echoes the secret back in an answer, an error or a reply."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from agent_servers import (
    ChatModel,
    Reply,
    Request,
    completion,
    free_port,
    http_server,
    smtp_server,
    task,
)
from helpers import Collector, Inbox

from stratexec.actors.agent import AgentActor
from stratexec.actors.agents import webhook
from stratexec.actors.agents.base import AgentHandler
from stratexec.actors.agents.llm import LlmAgent
from stratexec.actors.agents.smtp import SmtpAgent
from stratexec.actors.agents.webhook import WebhookAgent
from stratexec.actors.messages import RecordTaskFailure, RecordTaskSuccess, RunTask

HOOK_SECRET, API_KEY, PASSWORD = "hook-6f5e4d3c2b1a", "sk-0123abcd4567ef", "pw-a1b2c3d4e5"


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("TEST_API_KEY", API_KEY)
    monkeypatch.setenv("TEST_SMTP_USER", "robot")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)


@pytest.fixture
def reports(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Everything said: add the reports of each run; checked at the end with the logs."""
    caplog.set_level(logging.DEBUG)
    said: list[str] = []
    yield said
    told = "\n".join(said) + caplog.text
    for secret in (HOOK_SECRET, API_KEY, PASSWORD):
        assert secret not in told
    pykka.ActorRegistry.stop_all()


def attempts(handler: AgentHandler, count: int, inputs: dict[str, Any] | None = None
             ) -> list[Any]:
    """`count` attempts through a real AgentActor; every message it sent back."""
    inbox = Inbox()
    collector = Collector.start(inbox)
    agent = AgentActor.start(handler, 2)
    for attempt in range(1, count + 1):
        agent.tell(RunTask(task(handler.agent_type, attempt, inputs=inputs or {}), collector))
    messages = inbox.wait_until(lambda ms: sum(
        isinstance(m, RecordTaskSuccess | RecordTaskFailure) for m in ms) >= count)
    agent.stop()
    collector.stop()
    return messages


def echo(request: Request) -> Reply:
    """A careless server: it answers with what it got, and the secret it knows."""
    said = {"headers": request.headers, "body": request.body.decode(),
            "mine": f"{HOOK_SECRET} is my secret"}
    attempt = json.loads(request.body).get("attempt", 1) if request.body else 1
    if attempt == 1:
        return Reply(200, said)
    return Reply(400 if attempt == 2 else 500, said)


def test_webhook(reports: list[str]) -> None:
    with http_server(echo) as server:
        agent = WebhookAgent("coordination", {"url": server.url(),
                                              "secret_env": "TEST_HOOK_SECRET"})
        messages = attempts(agent, 3)
    reports.append(repr(messages))
    results = [m for m in messages if isinstance(m, RecordTaskSuccess | RecordTaskFailure)]
    assert sorted(type(m).__name__ for m in results) == [
        "RecordTaskFailure", "RecordTaskFailure", "RecordTaskSuccess"]
    (success,) = [m for m in results if isinstance(m, RecordTaskSuccess)]
    assert success.result["mine"].startswith("*** ")
    reports.append(repr(attempts(WebhookAgent("coordination", {
        "url": f"http://127.0.0.1:{free_port()}/", "secret_env": "TEST_HOOK_SECRET"}), 1)))


def test_llm(reports: list[str]) -> None:
    def careless(request: Request) -> Reply:
        header = request.headers.get("authorization", "")
        asked = request.json()["messages"][1]["content"]
        if "fail" in asked:
            return Reply(502, f"upstream said: {header}")
        if "garbage" in asked:
            return Reply(200, f"<html>{header}</html>")
        return Reply(200, completion(f"your key is {header}"))

    with http_server(careless) as server:
        agent = LlmAgent("content", {"base_url": server.url("/v1"), "model": "m",
                                     "api_key_env": "TEST_API_KEY"})
        for word in ("fine", "fail", "garbage"):
            messages = attempts(agent, 1, {"word": word})
            reports.append(repr(messages))
            assert "Bearer ***" in repr(messages[-1])
    with http_server(ChatModel("sk-another")) as server:
        messages = attempts(LlmAgent("content", {
            "base_url": server.url("/v1"), "model": "m", "api_key_env": "TEST_API_KEY"}), 1)
        reports.append(repr(messages))
        assert "Bearer ***" in messages[-1].error_message


def test_smtp(reports: list[str]) -> None:
    options = {"host": "127.0.0.1", "sender": "robot@example.test",
               "username_env": "TEST_SMTP_USER", "password_env": "TEST_SMTP_PASSWORD"}
    inputs = {"to": ["ann@example.test"], "body": "hello"}
    with smtp_server(credentials=("robot", PASSWORD)) as (mailbox, port):
        agent = SmtpAgent("email", {**options, "port": port})
        reports.append(repr(attempts(agent, 1, inputs)))
        mailbox.data_reply = f"554 5.7.1 {PASSWORD} is not welcome here"
        messages = attempts(agent, 1, inputs)
        reports.append(repr(messages))
        assert messages[-1].error_message.endswith("DATA: 554 5.7.1 *** is not welcome here")
    with smtp_server(credentials=("robot", "something else")) as (mailbox, port):
        messages = attempts(SmtpAgent("email", {**options, "port": port}), 1, inputs)
        reports.append(repr(messages))
        assert messages[-1].error_kind == "smtp_auth_failed"
    reports.append(repr(attempts(SmtpAgent("email", {**options, "port": free_port()}), 1,
                                 inputs)))


def test_an_unexpected_exception_is_a_retryable_failure_with_the_secret_masked(
        reports: list[str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(value: Any) -> bytes:
        raise ValueError(f"cannot encode with {HOOK_SECRET}")

    monkeypatch.setattr(webhook, "json_bytes", broken)
    agent = WebhookAgent("coordination", {"url": "http://127.0.0.1:9/",
                                          "secret_env": "TEST_HOOK_SECRET"})
    messages = attempts(agent, 1)
    reports.append(repr(messages))
    failure = messages[-1]
    assert (failure.error_kind, failure.retryable) == ("exception", True)
    assert failure.error_message == "ValueError: cannot encode with ***"
    assert "Traceback" in caplog.text
    assert "ValueError: cannot encode with ***" in caplog.text
