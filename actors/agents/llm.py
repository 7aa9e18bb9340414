"""The `llm` handler: one chat completion per attempt, from an OpenAI-compatible endpoint.

The prompt is the task's title, its item's description and inputs, and the results of the
tasks it depends on (a result's `text` as it is, any other result as JSON). The result is
`{"text", "model", "usage": {"prompt_tokens", "completion_tokens"}}`, and `cost` when
`price_per_1k_tokens` is set: the metrics view sums usage and cost per agent type.

Options: `model` (required), `base_url` (default OpenAI's), `api_key_env`, `system_prompt`,
`temperature`, `max_tokens`, `timeout` (default 60 s), `retry_after_max` (default 30 s) and
`price_per_1k_tokens`: a number for every token, or a table `{prompt = .., completion = ..}`.
Failures are `net`'s kinds with the prefix `llm_`; an answer that is not a chat completion is
`llm_bad_response` (retried).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stratexec.actors.agents.base import AgentError, OptionError, TaskContext
from stratexec.actors.agents.net import HttpCall, Redactor, excerpt, http_url, json_bytes
from stratexec.actors.agents.options import Options
from stratexec.actors.messages import AgentTask

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_SYSTEM_PROMPT = (
    "You are the {agent} agent of a business strategy's execution. Do the task you are"
    " given, using its inputs and the results of the tasks before it, and answer with the"
    " result only.")


def prompt(task: AgentTask) -> str:
    """The user message: what the task is, and what it has to work from."""
    parts = [f"Task: {task.title}"]
    if task.description:
        parts.append(f"Description: {task.description}")
    if task.inputs:
        parts.append("Inputs:\n" + json.dumps(task.inputs, indent=2, ensure_ascii=False,
                                              default=str))
    for task_id, result in task.upstream.items():
        text = result.get("text") if isinstance(result, dict) else None
        shown = text if isinstance(text, str) else json.dumps(
            result, indent=2, ensure_ascii=False, default=str)
        parts.append(f"Result of {task_id}:\n{shown}")
    return "\n\n".join(parts)


class LlmAgent:
    def __init__(self, agent_type: str, options: Mapping[str, Any] | None = None) -> None:
        read = Options(options)
        base = http_url("base_url", read.text("base_url", DEFAULT_BASE_URL) or "")
        self.model = read.required_text("model")
        self._api_key = read.environment("api_key_env")
        if self._api_key is not None and not self._api_key.isprintable():
            raise OptionError("api_key_env", "the variable's value holds a line break or"
                                             " another control character")
        system = read.text("system_prompt", DEFAULT_SYSTEM_PROMPT) or ""
        self.temperature = read.number("temperature", None, maximum=2.0)
        self.max_tokens = read.integer("max_tokens", None, minimum=1)
        timeout = read.seconds("timeout", 60.0)
        wait = read.number("retry_after_max", 30.0)
        self.prices = _prices(read)
        read.done()
        self.agent_type = agent_type
        self.system_prompt = system.replace("{agent}", agent_type)
        url = base._replace(path=base.path.rstrip("/") + "/chat/completions")
        self.redactor = Redactor([self._api_key])
        self.call = HttpCall(url, "llm", timeout, wait or 0.0)

    def __repr__(self) -> str:
        return f"LlmAgent({self.agent_type!r}, {self.model!r}, {self.call.where!r})"

    def request(self, task: AgentTask) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": prompt(task)}]}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        with self.redactor.guard(self.agent_type, task.idempotency_key):
            return self._run(task, context)

    def _run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        headers = {"Idempotency-Key": task.idempotency_key}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        answer = self.call.post_json(json_bytes(self.request(task)), headers, context)
        try:
            text, model, usage = _completion(answer.body)
        except ValueError as problem:
            raise AgentError("llm_bad_response", f"{self.call.where} answered {answer.status}"
                             f" but {problem}{excerpt(answer.body)}") from None
        result: dict[str, Any] = {"text": self.redactor.text(text), "model": model or self.model,
                                  "usage": usage}
        if self.prices is not None:
            prompt_price, completion_price = self.prices
            result["cost"] = round((usage["prompt_tokens"] * prompt_price
                                    + usage["completion_tokens"] * completion_price) / 1000, 8)
        return result


def _prices(read: Options) -> tuple[float, float] | None:
    """(prompt, completion) price per 1,000 tokens, from a number or a table."""
    key = "price_per_1k_tokens"
    table = read.raw(key)  # a number or a table: checked below
    if table is None:
        return None
    if isinstance(table, Mapping):
        unknown = set(table) - {"prompt", "completion"}
        if unknown or len(table) != 2:
            raise OptionError(key, "a table must have exactly the keys prompt and completion")
        inner = Options(table)
        try:
            prompt_price = inner.number("prompt", None)
            completion_price = inner.number("completion", None)
        except OptionError as error:
            raise OptionError(f"{key}.{error.key}", error.problem) from None
        assert prompt_price is not None
        assert completion_price is not None
        return prompt_price, completion_price
    one = Options({key: table}).number(key, None)
    assert one is not None
    return one, one


def _completion(body: bytes) -> tuple[str, str | None, dict[str, int]]:
    """The text, model and token usage of a chat completion; ValueError says what is wrong."""
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("not with JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not with a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("with no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ValueError("its first choice has no message content")
    model = data.get("model")
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return content, model if isinstance(model, str) else None, {
        name: _count(usage.get(name)) for name in ("prompt_tokens", "completion_tokens")}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

