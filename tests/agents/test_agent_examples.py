"""examples/agents.toml builds the built-in handlers, and examples/agents-demo.json is a
strategy whose content task's text flows into its email task, then to a webhook."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from stratexec.actors.agents.llm import LlmAgent
from stratexec.actors.agents.smtp import SmtpAgent
from stratexec.actors.agents.webhook import WebhookAgent
from stratexec.domain.propagation import propagate
from stratexec.domain.strategy import parse_strategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HANDLERS: dict[str, type[Any]] = {"llm": LlmAgent, "smtp": SmtpAgent, "webhook": WebhookAgent}
AGENT_KEYS = {"handler", "concurrency", "timeout", "max_attempts", "options"}


def test_the_example_config_builds_each_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATEXEC_WEBHOOK_SECRET", "s3cret")
    agents = tomllib.loads((EXAMPLES / "agents.toml").read_text())["agents"]
    assert {name: table["handler"] for name, table in agents.items()} == {
        "content": "llm", "email": "smtp", "coordination": "webhook"}
    for name, table in agents.items():
        assert set(table) <= AGENT_KEYS, name
        handler = HANDLERS[table["handler"]](name, table["options"])
        assert handler.agent_type == name
        # The attempt's timeout leaves room for one call and the longest Retry-After wait.
        options = table["options"]
        assert table["timeout"] >= options.get("timeout", 0) + options.get(
            "retry_after_max", 30 if table["handler"] != "smtp" else 0), name


def test_the_example_strategy_chains_content_email_and_webhook() -> None:
    strategy = parse_strategy(json.loads((EXAMPLES / "agents-demo.json").read_text()))
    tasks = propagate(strategy.items).tasks
    assert [(t.id, t.depends_on) for t in tasks] == [
        ("l4-draft-note:content", ()),
        ("l4-email-note:email", ("l4-draft-note:content",)),
        ("l4-tell-team:coordination", ("l4-email-note:email",))]
    email = tasks[1].inputs
    assert email is not None
    assert "body" not in email  # the draft's text is the body
    assert email["to"] == ["customers@example.com"]
