"""Retry and Resume in the dashboard, as a person uses them: Debian's Chromium driven by
Playwright against real `stratexec serve` processes on one data directory. The agents fail
in the first server; the second, on the same data, runs agents that work."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from api_support import ServerProcess
from playwright.sync_api import BrowserContext, Page, expect

SMALL = "Small demo: customer newsletter"
LAUNCH = "Launch Acme Insights 2.0"
RESEARCH = "l4-research-topics:research"
WORKING = ("--demo-duration", "0.05:0.2", "--demo-failure-rate", "0", "--health-interval",
           "0.2")
BROKEN = ("--demo-duration", "0.02:0.05", "--demo-failure-rate", "1", "--max-attempts", "1",
          "--health-interval", "0.2")
TRIPPING = ("--demo-duration", "0.02:0.05", "--demo-failure-rate", "1", "--max-attempts", "5",
            "--retry-interval", "0.05", "--circuit-window", "2", "--circuit-cool-down", "3600",
            "--health-interval", "0.2")
RUN_TIMEOUT = 60_000  # ms


def api(server: ServerProcess, path: str) -> Any:
    request = urllib.request.Request(server.url + path,
                                     headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def serve(data_dir: Path, *options: str) -> ServerProcess:
    return ServerProcess.start(data_dir, *options)


def sign_in(browser: BrowserContext, server: ServerProcess, path: str = "/") -> Page:
    page = browser.new_page()
    page.goto(f"{server.url}{path}?token={server.token}")
    expect(page.get_by_test_id("connection")).to_have_text("connected")
    return page


def start(page: Page, name: str) -> str:
    page.get_by_role("button", name=f"Start {name}").click()
    page.wait_for_url(re.compile(r"/executions/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_retry_one_failed_task_then_the_rest_from_the_execution_page(
        browser: BrowserContext, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = serve(data_dir, *BROKEN)
    try:
        page = sign_in(browser, server)
        execution_id = start(page, SMALL)
        expect(page.get_by_test_id("status")).to_have_text("failed", timeout=RUN_TIMEOUT)
    finally:
        server.close()

    server = serve(data_dir, *WORKING)
    try:
        page = sign_in(browser, server, f"/executions/{execution_id}")
        status, retry = page.get_by_test_id("status"), page.get_by_test_id("retry")
        failed = page.get_by_test_id("failed-tasks").get_by_test_id("retry-task")
        expect(status).to_have_text("failed")
        expect(failed).to_have_count(2)
        expect(retry).to_be_enabled()

        page.locator(f'[data-testid="retry-task"][data-task-id="{RESEARCH}"]').click()
        # Its dependents run too; the other failed task still fails the execution.
        expect(status).to_have_text("failed", timeout=RUN_TIMEOUT)
        expect(failed).to_have_count(1)
        expect(page.get_by_test_id("progress-completed")).to_have_text("4")
        timeline = page.get_by_test_id("timeline")
        expect(timeline.locator("li.type-execution-resumed").first).to_contain_text(
            "Retried by hand: Research trending topics [research]")

        retry.click()
        expect(status).to_have_text("completed", timeout=RUN_TIMEOUT)
        expect(page.get_by_test_id("progress-completed")).to_have_text("6")
        expect(retry).to_be_disabled()
        expect(page.get_by_test_id("failed-tasks")).to_have_text("None")
        tasks = api(server, f"/api/executions/{execution_id}/status")["tasks"]
        assert {t["status"] for t in tasks} == {"completed"}
        assert {t["taskId"]: t["attempt"] for t in tasks}[RESEARCH] == 2
        page.screenshot(path=str(tmp_path / "retried.png"), full_page=True)
    finally:
        server.close()


def test_a_paused_agent_type_shows_a_banner_with_resume(browser: BrowserContext,
                                                        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = serve(data_dir, *TRIPPING)
    try:
        page = sign_in(browser, server)
        start(page, LAUNCH)
        banner = page.get_by_test_id("agent-banner")
        expect(banner).to_be_visible(timeout=RUN_TIMEOUT)  # live, from the stream
        expect(banner.get_by_test_id("resume-agent").first).to_be_enabled()
    finally:
        server.close()

    server = serve(data_dir, *WORKING)  # the agents work now, but the types stay paused
    try:
        paused = {p["agentType"] for p in api(server, "/healthz")["pausedAgentTypes"]}
        assert paused
        page = sign_in(browser, server)
        banner = page.get_by_test_id("agent-banner")
        expect(banner.get_by_test_id("resume-agent")).to_have_count(len(paused))
        page.screenshot(path=str(tmp_path / "paused.png"), full_page=True)
        for agent_type in sorted(paused):
            expect(banner).to_contain_text(f"{agent_type} is paused: 2 of its last 2 attempts")
            banner.get_by_role("button", name=f"Resume {agent_type}").click()
        expect(banner).to_be_hidden()
        assert api(server, "/healthz")["pausedAgentTypes"] == []
        page.get_by_test_id("executions").locator("tr a").first.click()
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=RUN_TIMEOUT)
        expect(page.get_by_test_id("agent-banner")).to_be_hidden()
    finally:
        server.close()
