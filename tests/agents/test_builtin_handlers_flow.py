"""The built-in handlers in the real engine, through the HTTP API: an llm content task's
text becomes the body of the email the smtp task sends, a webhook hears of it after a 503
that the retry policy retries, token usage reaches the status answer, /metrics and the
per-agent metrics; no secret is in the event store, the read models or the logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from agent_servers import ChatModel, Reply, Request, http_server, smtp_server, verified
from api_support import FAST, metric_families, running_server

from stratexec.config import parse

SECRETS = {"LLM_KEY": "sk-flow-3c2b1a09f8e7", "SMTP_PASSWORD": "smtp-pw-5e4d3c2b1a",
           "HOOK_SECRET": "hook-secret-0a9b8c7d6e"}
DRAFT, SEND, NOTIFY = "l4-draft:content", "l4-send:email", "l4-notify:coordination"

STRATEGY = {"name": "Built-in handlers", "workspaceId": "demo", "items": [
    {"id": "goal", "level": 1, "parentId": None, "title": "Tell customers about June"},
    {"id": "l2", "level": 2, "parentId": "goal", "title": "Newsletter"},
    {"id": "l3", "level": 3, "parentId": "l2", "title": "June issue"},
    {"id": "l4-draft", "level": 4, "parentId": "l3", "title": "Write the June newsletter",
     "description": "Three short paragraphs.", "agents": ["content"],
     "inputs": {"topic": "the new dashboard"}},
    {"id": "l4-send", "level": 4, "parentId": "l3", "title": "Send the newsletter",
     "agents": ["email"], "dependsOn": ["l4-draft"],
     "inputs": {"to": ["ann@example.test", "bob@example.test"], "subject": "June news"}},
    {"id": "l4-notify", "level": 4, "parentId": "l3", "title": "Tell the team it went out",
     "agents": ["coordination"], "dependsOn": ["l4-send"], "inputs": {"channel": "#launch"}},
]}


class FlakyHook:
    """The webhook's receiver: 503 to a first attempt, then it takes the task."""

    def __call__(self, request: Request) -> Reply:
        if request.json()["attempt"] == 1:
            return Reply(503, b"warming up")
        return Reply(200, {"posted": True, "signed": verified(SECRETS["HOOK_SECRET"], request)})


async def test_llm_text_is_emailed_usage_is_counted_and_no_secret_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    caplog.set_level(logging.DEBUG)
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"TEST_FLOW_{name}", value)
    with http_server(ChatModel(SECRETS["LLM_KEY"])) as llm, http_server(FlakyHook()) as hook, \
            smtp_server(credentials=("robot", SECRETS["SMTP_PASSWORD"])) as (mailbox, port):
        monkeypatch.setenv("TEST_FLOW_SMTP_USER", "robot")
        config = parse({"agents": {
            "content": {"handler": "llm", "options": {
                "base_url": llm.url("/v1"), "model": "tiny-1",
                "api_key_env": "TEST_FLOW_LLM_KEY", "price_per_1k_tokens": 0.5}},
            "email": {"handler": "smtp", "options": {
                "host": "127.0.0.1", "port": port, "sender": "robot@example.test",
                "username_env": "TEST_FLOW_SMTP_USER",
                "password_env": "TEST_FLOW_SMTP_PASSWORD"}},
            "coordination": {"handler": "webhook", "options": {
                "url": hook.url("/hooks"), "secret_env": "TEST_FLOW_HOOK_SECRET"}},
        }}, "flow.toml")
        async with running_server(tmp_path, FAST, config) as (api, _):
            defined = await api.post("/api/strategies", STRATEGY)
            assert defined.status == 201, defined.body
            started = await api.post("/api/executions/start", {
                "strategyId": defined.body["strategy"]["id"], "workspaceId": "demo"})
            execution_id = started.body["executionId"]
            await api.until_finished(execution_id)
            status = (await api.get(f"/api/executions/{execution_id}/status")).body
            scrape = await api.get("/metrics")

    tasks = {t["taskId"]: t for t in status["tasks"]}
    assert status["execution"]["status"] == "completed", tasks
    draft = tasks[DRAFT]["result"]
    assert draft["text"] == "Draft: Write the June newsletter"
    assert draft["cost"] == pytest.approx(0.5 * sum(draft["usage"].values()) / 1000)

    (sent,) = mailbox.sent
    assert sent.body == draft["text"] + "\n"
    assert sent.message["Subject"] == "June news"
    assert tasks[SEND]["result"]["messageId"] == sent.message["Message-ID"]
    assert mailbox.logins == [("robot", SECRETS["SMTP_PASSWORD"])]

    assert (tasks[NOTIFY]["attempt"], tasks[NOTIFY]["result"]) == (
        2, {"posted": True, "signed": True})
    first, second = (request.json() for request in hook.requests)
    assert first["attempt"] == 1
    assert second["upstream"] == {SEND: tasks[SEND]["result"]}
    assert second["inputs"] == {"channel": "#launch"}

    agents = {m["agent"]: m for m in status["metrics"]["agents"]}
    usage = draft["usage"]
    assert (agents["content"]["promptTokens"], agents["content"]["completionTokens"]) == (
        usage["prompt_tokens"], usage["completion_tokens"])
    assert agents["content"]["cost"] == pytest.approx(draft["cost"])
    assert agents["email"]["promptTokens"] == agents["coordination"]["cost"] == 0
    assert agents["coordination"]["failedAttempts"] == 1
    assert status["metrics"]["usage"] == {
        "promptTokens": usage["prompt_tokens"], "completionTokens": usage["completion_tokens"],
        "cost": pytest.approx(draft["cost"])}

    families = metric_families(scrape.body)
    tokens = {(s.labels["agent"], s.labels["kind"]): s.value
              for s in families["stratexec_llm_tokens"].samples}
    assert tokens == {("content", "prompt"): usage["prompt_tokens"],
                      ("content", "completion"): usage["completion_tokens"]}
    (cost,) = families["stratexec_llm_cost"].samples
    assert cost.labels == {"agent": "content"}
    assert cost.value == pytest.approx(draft["cost"])

    kept = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert draft["text"].encode() in kept  # the files are searchable: not compressed
    told = repr(status).encode() + caplog.text.encode() + scrape.body.encode()
    for secret in SECRETS.values():
        assert secret.encode() not in kept
        assert secret.encode() not in told
