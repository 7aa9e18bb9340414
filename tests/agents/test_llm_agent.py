"""The llm handler against a small OpenAI-compatible server started by each test."""

from __future__ import annotations

from typing import Any

import pytest
from agent_servers import ChatModel, Reply, completion, context, free_port, http_server, task

from stratexec.actors.agents.base import AgentError, OptionError
from stratexec.actors.agents.llm import LlmAgent, prompt

API_KEY = "sk-test-4b1f0c9a8e7d6c5b"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEST_LLM_KEY", API_KEY)
    return API_KEY


def agent(base_url: str, **options: Any) -> LlmAgent:
    return LlmAgent("content", {"base_url": base_url, "model": "tiny-1", **options})


def test_a_completion_is_the_result(api_key: str) -> None:
    attempt = task(description="For the June newsletter", inputs={"tone": "warm"})
    with http_server(ChatModel(api_key)) as server:
        result = agent(server.url("/v1/"), api_key_env="TEST_LLM_KEY", temperature=0.2,
                       max_tokens=300).run(attempt, context())
    (request,) = server.requests
    body = request.json()
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {api_key}"
    assert request.headers["idempotency-key"] == attempt.idempotency_key
    assert body["model"] == "tiny-1"
    assert (body["temperature"], body["max_tokens"]) == (0.2, 300)
    system, user = body["messages"]
    assert system["role"] == "system"
    assert "content agent" in system["content"]
    assert user == {"role": "user", "content": prompt(attempt)}
    words = len(system["content"].split()) + len(user["content"].split())
    assert result == {"text": "Draft: Write the launch note", "model": "tiny-1",
                      "usage": {"prompt_tokens": words, "completion_tokens": 5}}


def test_the_prompt_holds_the_title_description_inputs_and_upstream_results() -> None:
    attempt = task(description="Two paragraphs.", inputs={"audience": "customers"},
                   upstream={"l4-r:research": {"text": "Price matters most."},
                             "l4-a:analysis": {"reach": 1200}})
    assert prompt(attempt) == (
        "Task: Write the launch note\n\nDescription: Two paragraphs.\n\n"
        'Inputs:\n{\n  "audience": "customers"\n}\n\n'
        "Result of l4-r:research:\nPrice matters most.\n\n"
        'Result of l4-a:analysis:\n{\n  "reach": 1200\n}')
    assert prompt(task()) == "Task: Write the launch note"


def test_no_temperature_or_max_tokens_unless_set_and_a_system_prompt_of_ones_own() -> None:
    with http_server(ChatModel()) as server:
        agent(server.url("/v1"), system_prompt="You write for {agent}.").run(task(), context())
    body = server.requests[0].json()
    assert "temperature" not in body
    assert "max_tokens" not in body
    assert body["messages"][0] == {"role": "system", "content": "You write for content."}
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize(("price", "cost"), [
    (0.5, (100 + 20) * 0.5 / 1000),
    ({"prompt": 0.25, "completion": 2.0}, (100 * 0.25 + 20 * 2.0) / 1000),
])
def test_priced_usage_has_a_cost(price: Any, cost: float) -> None:
    with http_server(lambda request: Reply(200, completion("hi", "big-2", 100, 20))) as server:
        result = agent(server.url("/v1"), price_per_1k_tokens=price).run(task(), context())
    assert result == {"text": "hi", "model": "big-2", "cost": pytest.approx(cost),
                      "usage": {"prompt_tokens": 100, "completion_tokens": 20}}


def test_a_completion_without_usage_counts_no_tokens() -> None:
    answer = completion("hi")
    del answer["usage"]
    del answer["model"]
    with http_server(lambda request: Reply(200, answer)) as server:
        result = agent(server.url("/v1")).run(task(), context())
    assert result == {"text": "hi", "model": "tiny-1",
                      "usage": {"prompt_tokens": 0, "completion_tokens": 0}}


@pytest.mark.parametrize(("body", "problem"), [
    (b"<html>Bad gateway</html>", "not with JSON"),
    (b"[]", "not with a JSON object"),
    (b'{"choices": []}', "with no choices"),
    (b'{"choices": [{"message": {"content": null, "tool_calls": []}}]}',
     "its first choice has no message content"),
])
def test_garbage_is_a_retryable_bad_response(body: bytes, problem: str) -> None:
    with http_server(lambda request: Reply(200, body)) as server, pytest.raises(
            AgentError) as raised:
        agent(server.url("/v1")).run(task(), context())
    assert (raised.value.kind, raised.value.retryable) == ("llm_bad_response", True)
    assert raised.value.message == (f"http://127.0.0.1:{server.port}/v1/chat/completions"
                                    f" answered 200 but {problem}: {body.decode()}")


@pytest.mark.parametrize(("status", "kind", "retryable"), [
    (500, "llm_http_5xx", True), (502, "llm_http_5xx", True),
    (429, "llm_rate_limited", True), (400, "llm_http_4xx", False),
])
def test_http_errors(status: int, kind: str, retryable: bool) -> None:
    with http_server(lambda request: Reply(status, {"error": {"message": "model overloaded"}})
                     ) as server, pytest.raises(AgentError) as raised:
        agent(server.url("/v1")).run(task(), context())
    assert (raised.value.kind, raised.value.retryable) == (kind, retryable)
    assert raised.value.message.startswith(
        f"http://127.0.0.1:{server.port}/v1/chat/completions answered {status} ")
    assert "model overloaded" in raised.value.message


def test_a_wrong_key_is_not_retried_and_an_echoed_key_is_masked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", API_KEY)
    with http_server(ChatModel("sk-the-right-one")) as server, pytest.raises(
            AgentError) as raised:
        agent(server.url("/v1"), api_key_env="TEST_LLM_KEY").run(task(), context())
    assert (raised.value.kind, raised.value.retryable) == ("llm_http_4xx", False)
    assert "Incorrect API key provided: Bearer ***" in raised.value.message
    assert API_KEY not in raised.value.message


def test_an_unreachable_endpoint_is_retryable() -> None:
    port = free_port()
    with pytest.raises(AgentError) as raised:
        agent(f"http://127.0.0.1:{port}/v1").run(task(), context())
    assert (raised.value.kind, raised.value.retryable) == ("llm_unreachable", True)
    assert raised.value.message == (f"http://127.0.0.1:{port}/v1/chat/completions:"
                                    " connection refused")


def test_an_api_key_with_a_line_break_is_refused_without_showing_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", API_KEY + "\n")
    with pytest.raises(OptionError) as raised:
        LlmAgent("content", {"model": "m", "api_key_env": "TEST_LLM_KEY"})
    assert raised.value.key == "api_key_env"
    assert API_KEY not in str(raised.value)


def test_the_base_url_defaults_to_openai() -> None:
    assert LlmAgent("content", {"model": "gpt-4o-mini"}).call.where == (
        "https://api.openai.com:443/v1/chat/completions")


@pytest.mark.parametrize(("options", "key", "problem"), [
    ({}, "model", "is required"),
    ({"model": "m", "api_key_env": "STRATEXEC_TEST_UNSET"}, "api_key_env",
     "the environment variable STRATEXEC_TEST_UNSET is not set"),
    ({"model": "m", "base_url": "localhost:8000"}, "base_url", "must be an http://"),
    ({"model": "m", "temperature": 3}, "temperature", "must be at least 0 and at most 2"),
    ({"model": "m", "max_tokens": 0}, "max_tokens", "must be at least 1"),
    ({"model": "m", "max_tokens": 1.5}, "max_tokens", "must be an integer"),
    ({"model": "m", "price_per_1k_tokens": -1}, "price_per_1k_tokens", "must be at least 0"),
    ({"model": "m", "price_per_1k_tokens": {"prompt": 1}}, "price_per_1k_tokens",
     "a table must have exactly the keys prompt and completion"),
    ({"model": "m", "price_per_1k_tokens": {"prompt": 1, "completion": "x"}},
     "price_per_1k_tokens.completion",
     "must be a number"),
    ({"model": "m", "api_key": "sk-inline"}, "api_key", "unknown option"),
])
def test_options_are_checked_at_construction(options: dict[str, Any], key: str,
                                             problem: str) -> None:
    with pytest.raises(OptionError) as raised:
        LlmAgent("content", options)
    assert raised.value.key == key
    assert raised.value.problem.startswith(problem), raised.value.problem
    assert "sk-inline" not in str(raised.value)
