"""The dashboard's per-agent table: a tokens and a cost column, only once some agent reported
any. The demo agents report none, so the page's /status answer is given tokens on its way."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

from api_support import ServerProcess
from playwright.sync_api import BrowserContext, Page, Route, expect

FAST = ("--demo-duration", "0.02:0.1", "--demo-failure-rate", "0", "--health-interval", "0.2")
SMALL = "Small demo: customer newsletter"


def call(server: ServerProcess, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        server.url + path, method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def finished_execution(server: ServerProcess) -> str:
    strategies = call(server, "/api/strategies?workspaceId=demo")["strategies"]
    strategy = next(s["id"] for s in strategies if s["name"] == SMALL)
    execution_id: str = call(server, "/api/executions/start",
                             {"strategyId": strategy, "workspaceId": "demo"})["executionId"]
    deadline = time.monotonic() + 30
    while call(server, f"/api/executions/{execution_id}/status")["execution"]["status"] != (
            "completed"):
        assert time.monotonic() < deadline, "the demo execution did not finish"
        time.sleep(0.1)
    return execution_id


def with_tokens(route: Route) -> None:
    """The real answer, as if the content agent had been an llm handler."""
    answer = route.fetch()
    status = answer.json()
    for agent in status["metrics"]["agents"]:
        if agent["agent"] == "content":
            agent.update(promptTokens=1200, completionTokens=345, cost=0.0123)
    route.fulfill(response=answer, json=status)


def open_execution(browser: BrowserContext, server: ServerProcess, execution_id: str,
                   tokens: bool) -> Page:
    page = browser.new_page()
    if tokens:
        page.route("**/api/executions/*/status", with_tokens)
    page.goto(f"{server.url}/?token={server.token}")
    expect(page).to_have_url(f"{server.url}/")
    page.goto(f"{server.url}/executions/{execution_id}")
    expect(page.locator('[data-testid=agent-table] tr[data-agent="content"]')).to_be_visible()
    return page


def test_tokens_and_cost_columns_show_only_when_some_agent_used_tokens(
        tmp_path: Path, browser: BrowserContext) -> None:
    server = ServerProcess.start(tmp_path, *FAST)
    try:
        execution_id = finished_execution(server)
        plain = open_execution(browser, server, execution_id, tokens=False)
        table = plain.get_by_test_id("agent-table")
        expect(table.locator("th[data-usage]")).to_have_count(0)
        expect(table.locator('tr[data-agent="content"] td:not([data-use])')).to_have_count(6)
        expect(table.locator("td[data-usage]")).to_have_count(0)

        priced = open_execution(browser, server, execution_id, tokens=True)
        table = priced.get_by_test_id("agent-table")
        expect(table.locator('th[data-usage="tokens"]')).to_have_text("Tokens")
        expect(table.locator('th[data-usage="cost"]')).to_have_text("Cost")
        content = table.locator('tr[data-agent="content"]')
        expect(content.locator('td[data-usage="tokens"]')).to_have_text(
            re.compile(r"^1\D?545$"))  # in the browser's locale
        expect(content.locator('td[data-usage="tokens"]')).to_have_attribute(
            "title", "1200 prompt + 345 completion")
        expect(content.locator('td[data-usage="cost"]')).to_have_text("0.0123")
        research = table.locator('tr[data-agent="research"]')
        expect(research.locator("td[data-usage]")).to_have_text(["—", "—"])
    finally:
        server.close()
