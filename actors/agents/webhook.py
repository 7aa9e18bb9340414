"""The `webhook` handler: POSTs each attempt as JSON to a URL; the answer is the result.

Options: `url` (required), `secret_env` (the environment variable holding the HMAC secret;
without it nothing is signed), `timeout` (seconds for the whole call, default 10) and
`retry_after_max` (seconds, default 30: see `net`). Headers: `Idempotency-Key:
<execution>:<task>:<attempt>` and, with a secret, `X-Stratexec-Signature: sha256=<hex>`, the
HMAC-SHA256 of the exact body bytes. A 2xx answer's JSON object is the result (an empty body
is `{}`); failures are `net`'s kinds with the prefix `webhook_`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from stratexec.actors.agents.base import AgentError, TaskContext
from stratexec.actors.agents.net import HttpCall, Redactor, excerpt, http_url, json_bytes
from stratexec.actors.agents.options import Options
from stratexec.actors.messages import AgentTask

SIGNATURE_HEADER = "X-Stratexec-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def payload(task: AgentTask) -> dict[str, Any]:
    """What the receiver gets: the attempt, its item's inputs and its upstream results."""
    return {
        "executionId": str(task.execution_id), "workspaceId": task.workspace_id,
        "taskId": task.task_id, "itemId": task.item_id, "agent": task.agent,
        "title": task.title, "description": task.description, "priority": task.priority,
        "attempt": task.attempt, "idempotencyKey": task.idempotency_key,
        "inputs": task.inputs, "upstream": task.upstream,
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookAgent:
    def __init__(self, agent_type: str, options: Mapping[str, Any] | None = None) -> None:
        read = Options(options)
        url = http_url("url", read.required_text("url"))
        self._secret = read.environment("secret_env")
        timeout = read.seconds("timeout", 10.0)
        wait = read.number("retry_after_max", 30.0)
        read.done()
        self.agent_type = agent_type
        self.redactor = Redactor([self._secret])
        self.call = HttpCall(url, "webhook", timeout, wait or 0.0)

    def __repr__(self) -> str:
        return f"WebhookAgent({self.agent_type!r}, {self.call.where!r})"

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        with self.redactor.guard(self.agent_type, task.idempotency_key):
            return self._run(task, context)

    def _run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        body = json_bytes(payload(task))
        headers = {IDEMPOTENCY_HEADER: task.idempotency_key}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        answer = self.call.post_json(body, headers, context)
        if not answer.body.strip():
            return {}
        try:
            result = json.loads(answer.body)
        except ValueError:
            result = None
        if not isinstance(result, dict):
            raise AgentError("webhook_bad_response",
                             f"{self.call.where} answered {answer.status} with a body that is"
                             f" not a JSON object{excerpt(answer.body)}")
        redacted: dict[str, Any] = self.redactor.value(result)
        return redacted
