"""The dashboard as a person uses it: Debian's Chromium, driven by Playwright, against a real
`stratexec serve` process. Every check waits for a condition on the page (or on the server's
own status endpoint) rather than for a fixed time; each test saves a screenshot of the page
it checked under var/screenshots/ (the `screenshot` fixture)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api_support import ROOT, ServerProcess, free_port
from playwright.sync_api import BrowserContext, Page, expect

LAUNCH = "Launch Acme Insights 2.0"
LAUNCH_TASKS = 38
LIVE = ("--demo-duration", "0.1:0.3", "--demo-failure-rate", "0", "--health-interval", "0.2")
FAST = ("--demo-duration", "0.02:0.1", "--demo-failure-rate", "0", "--retry-interval", "0.05",
        "--health-interval", "0.2")
SLOW = ("--demo-duration", "0.5:1.0", "--demo-failure-rate", "0", "--concurrency", "1",
        "--health-interval", "0.5")
LONGEST_ATTEMPT = 1.0  # seconds, the upper end of SLOW's --demo-duration
RUN_TIMEOUT = 120_000  # ms: a whole slow run of the product launch
PROGRESS_PARTS = ("completed", "running", "queued", "pending", "failed", "skipped", "cancelled")
Shot = Callable[[Page, str], Path]
UNFINISHED = ("pending", "assigned", "in_progress")


# ------------------------------------------------------------------ fixtures and helpers

@contextmanager
def serving(data_dir: Path, *options: str, port: int = 0) -> Iterator[ServerProcess]:
    server = ServerProcess.start(data_dir, *options, port=port)
    try:
        yield server
    finally:
        server.close()


def api(server: ServerProcess, path: str, method: str = "GET") -> Any:
    """The server's own answer, with the dashboard's token as a bearer token."""
    request = urllib.request.Request(server.url + path, method=method,
                                     headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def strategy_id(server: ServerProcess, name: str) -> str:
    strategies = api(server, "/api/strategies?workspaceId=demo")["strategies"]
    found: str = next(s["id"] for s in strategies if s["name"] == name)
    return found


def open_dashboard(browser: BrowserContext, server: ServerProcess) -> Page:
    """Open the link `stratexec serve` printed: it sets the cookie and drops the token."""
    page = browser.new_page()
    page.goto(f"{server.url}/?token={server.token}")
    expect(page).to_have_url(f"{server.url}/")
    expect(page.get_by_test_id("connection")).to_have_text("connected")
    return page


def start_from_dashboard(page: Page, name: str) -> str:
    """Press the strategy's Start button; the page goes to the new execution's page."""
    page.get_by_role("button", name=f"Start {name}").click()
    page.wait_for_url(re.compile(r"/executions/[0-9a-f-]{36}$"))
    expect(page.get_by_test_id("connection")).to_have_text("connected")
    return page.url.rsplit("/", 1)[1]


def mark_page(page: Page) -> Callable[[], None]:
    """A check that the page was never reloaded after this call."""
    page.evaluate("window.__notReloaded = true")
    return lambda: assert_not_reloaded(page)


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


WATCH_TEXT = """testId => {
    const element = document.querySelector(`[data-testid="${testId}"]`);
    window.__seen = [element.textContent];
    new MutationObserver(() => window.__seen.push(element.textContent))
        .observe(element, {childList: true, characterData: true, subtree: true});
}"""


def watch_text(page: Page, test_id: str) -> Callable[[], list[str]]:
    """Record every text the element shows from now on; returns a reader of that list."""
    page.evaluate(WATCH_TEXT, test_id)
    return lambda: list(page.evaluate("window.__seen"))


def shown_counts(page: Page) -> dict[str, int]:
    """The progress card's counts; running and queued together (the server's split of the
    two is its own helper's, and the pages compare them where both are 0)."""
    shown = {part: int(page.get_by_test_id(f"progress-{part}").inner_text())
             for part in PROGRESS_PARTS}
    shown["underway"] = shown.pop("running") + shown.pop("queued")
    return shown


def server_counts(execution: dict[str, Any]) -> dict[str, int]:
    return {"completed": execution["completedTasks"],
            "underway": execution["assignedTasks"] + execution["inProgressTasks"],
            "pending": execution["pendingTasks"], "failed": execution["failedTasks"],
            "skipped": execution["skippedTasks"], "cancelled": execution["cancelledTasks"]}


def cancel_from_page(page: Page) -> None:
    """Press Cancel and confirm it in the dialog it opens."""
    page.get_by_test_id("cancel").click()
    page.get_by_test_id("confirm-cancel-yes").click()


def expect_agent_table(page: Page, metrics: dict[str, Any]) -> None:
    """Tasks, completed, failed and retries per agent as the server counts them, then the
    mean and p95 durations; the utilisation columns after them change by the moment."""
    table = page.get_by_test_id("agent-table")
    for agent in metrics["agents"]:
        cells = table.locator(f'tr[data-agent="{agent["agent"]}"] td')
        duration = re.compile(r"^(\d.*|—)$")
        wanted: list[str | re.Pattern[str]] = [
            str(agent[key]) for key in ("tasks", "completed", "failed", "retries")]
        for index, text in enumerate([*wanted, duration, duration]):
            expect(cells.nth(index)).to_have_text(text)


def dag_nodes(page: Page, status: str | None = None) -> Any:
    selector = "[data-testid=dag] [data-task-id]"
    return page.locator(selector if status is None else f'{selector}[data-status="{status}"]')


# ----------------------------------------------------------------------------- tests

def test_start_from_the_dashboard_and_watch_it_complete(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    with serving(tmp_path / "data", *LIVE) as server:
        page = open_dashboard(browser, server)
        launch = page.get_by_test_id("strategies").locator("tr", has_text=LAUNCH)
        expect(launch.get_by_test_id("task-count")).to_have_text(f"{LAUNCH_TASKS} tasks")

        execution_id = start_from_dashboard(page, LAUNCH)
        not_reloaded = mark_page(page)
        seen = watch_text(page, "progress-pct")
        expect(page.get_by_test_id("progress-pct")).to_have_text("100%", timeout=RUN_TIMEOUT)
        expect(page.get_by_test_id("status")).to_have_text("completed")
        expect(page.get_by_test_id("progress-completed")).to_have_text(str(LAUNCH_TASKS))
        expect(dag_nodes(page, "completed")).to_have_count(LAUNCH_TASKS)
        expect(page.get_by_test_id("health-score")).to_have_text(re.compile(r"^\d{1,3}$"))
        expect(page.get_by_test_id("health-band")).to_have_text(
            re.compile("^(Excellent|Good|Degraded|Critical)$"))
        for command in ("pause", "resume", "cancel"):
            expect(page.get_by_test_id(command)).to_be_disabled()
        rows = page.get_by_test_id("agent-table").locator("tbody tr")
        expect(rows).to_have_count(6)  # the product launch uses all six agent types
        not_reloaded()
        shown = seen()
        assert shown[0] != "100%", f"finished before the page could follow it: {shown}"
        assert len(set(shown)) > 2, f"the progress did not move live: {shown}"

        # A finished execution can be replayed: version 1 is the plan, nothing run yet.
        slider = page.get_by_test_id("history-slider")
        expect(slider).to_be_visible()
        latest = api(server, f"/api/executions/{execution_id}/status")["execution"]["version"]
        expect(slider).to_have_attribute("max", str(latest))
        slider.focus()
        page.keyboard.press("Home")
        expect(page.get_by_test_id("history-version")).to_have_text(f"1 of {latest}")
        expect(dag_nodes(page, "pending")).to_have_count(LAUNCH_TASKS)
        expect(page.get_by_test_id("progress-pending")).to_have_text(str(LAUNCH_TASKS))
        expect(page.get_by_test_id("progress-pct")).to_have_text("0%")
        page.keyboard.press("End")
        expect(dag_nodes(page, "completed")).to_have_count(LAUNCH_TASKS)
        expect(page.get_by_test_id("progress-pct")).to_have_text("100%")
        screenshot(page, "completed")

        # Opened again, the page fills its timeline from the audit history (camelCase data).
        page.reload()
        timeline = page.get_by_test_id("timeline")
        expect(timeline.locator("li.type-task-completed").first).to_contain_text(
            re.compile(r"\S completed in \d"))
        texts = timeline.locator(".timeline-text").all_inner_texts()
        assert [t for t in texts if "undefined" in t or "—" in t] == []

        # The dashboard lists it, newest first, finished.
        page.get_by_role("link", name="All executions").click()
        row = page.get_by_test_id("executions").locator(f'tr[data-execution-id="{execution_id}"]')
        expect(row.get_by_test_id("execution-status")).to_have_text("completed")
        expect(row.get_by_test_id("execution-progress")).to_have_text(
            f"{LAUNCH_TASKS}/{LAUNCH_TASKS} finished: {LAUNCH_TASKS} completed")
        expect(page).to_have_title("Executions in workspace demo · stratexec")
        screenshot(page, "dashboard")


def test_pause_holds_completions_until_resume_and_cancel_cancels_the_rest(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    with serving(tmp_path / "data", *SLOW) as server:
        page = open_dashboard(browser, server)
        execution_id = start_from_dashboard(page, LAUNCH)
        status = page.get_by_test_id("status")
        expect(status).to_have_text("running")
        expect(page.get_by_test_id("progress-completed")).not_to_have_text("0")

        page.get_by_test_id("pause").click()
        expect(status).to_have_text("paused")
        expect(page.get_by_test_id("pause")).to_be_disabled()
        expect(page.get_by_test_id("resume")).to_be_enabled()
        expect(page.get_by_test_id("cancel")).to_be_enabled()
        # Running attempts finish and are recorded; queued ones are handed back.
        expect(page.get_by_test_id("progress-running")).to_have_text("0")
        expect(page.get_by_test_id("progress-queued")).to_have_text("0")
        expect(page.get_by_test_id("duration")).to_have_text(
            re.compile(r"^paused, .+ since it started$"))
        held = page.get_by_test_id("progress-completed").inner_text()
        assert_nothing_moves_while_paused(page, server, execution_id, int(held))
        screenshot(page, "paused")

        page.get_by_test_id("resume").click()
        expect(status).to_have_text("running")
        expect(page.get_by_test_id("progress-completed")).not_to_have_text(held)
        expect(status).to_have_text("completed", timeout=RUN_TIMEOUT)
        expect(page.get_by_test_id("progress-completed")).to_have_text(str(LAUNCH_TASKS))

        # Another execution, cancelled while it runs.
        page.get_by_role("link", name="All executions").click()
        cancelled_id = start_from_dashboard(page, LAUNCH)
        expect(page.get_by_test_id("progress-completed")).not_to_have_text("0")
        cancel_from_page(page)
        expect(status).to_have_text("cancelled")
        for command in ("pause", "resume", "cancel"):
            expect(page.get_by_test_id(command)).to_be_disabled()
        status_now = api(server, f"/api/executions/{cancelled_id}/status")
        execution = status_now["execution"]
        assert execution["status"] == "cancelled"
        assert execution["cancelledTasks"] > 0
        expect(dag_nodes(page, "cancelled")).to_have_count(execution["cancelledTasks"])
        for unfinished in UNFINISHED:
            expect(dag_nodes(page, unfinished)).to_have_count(0)
        expect(page.get_by_test_id("progress-cancelled")).to_have_text(
            str(execution["cancelledTasks"]))
        assert shown_counts(page) == server_counts(execution)
        expect_agent_table(page, status_now["metrics"])
        screenshot(page, "cancelled")


def assert_nothing_moves_while_paused(page: Page, server: ServerProcess, execution_id: str,
                                      completed: int) -> None:
    """The page and the server agree on the completed count, and the server is paused with
    nothing in flight. Then, for twice the longest attempt, the execution records nothing
    at all (its version stays put: no assignment, no completion) and the page keeps showing
    the same count."""
    def settled() -> dict[str, Any]:
        execution = api(server, f"/api/executions/{execution_id}/status")["execution"]
        return {key: execution[key] for key in (
            "status", "version", "completedTasks", "assignedTasks", "inProgressTasks")}

    held = settled()
    assert held["status"] == "paused"
    assert held["assignedTasks"] + held["inProgressTasks"] == 0
    assert held["completedTasks"] == completed
    deadline = time.monotonic() + 2 * LONGEST_ATTEMPT
    while time.monotonic() < deadline:
        assert settled() == held, "the paused execution moved"
        expect(page.get_by_test_id("progress-completed")).to_have_text(str(completed))
        page.wait_for_timeout(100)  # the interval between two observations


def test_a_refused_command_shows_the_servers_message(browser: BrowserContext,
                                                     tmp_path: Path, screenshot: Shot) -> None:
    with serving(tmp_path / "data", *SLOW) as server:
        page = open_dashboard(browser, server)
        execution_id = start_from_dashboard(page, LAUNCH)
        expect(page.get_by_test_id("status")).to_have_text("running")
        # A second tab whose stream is connected but delivers nothing (its EventSource
        # drops every event) still believes the execution runs...
        stale = browser.new_page()
        stale.add_init_script(DEAF_EVENT_SOURCE)
        stale.goto(f"{server.url}/executions/{execution_id}")
        expect(stale.get_by_test_id("status")).to_have_text("running")
        expect(stale.get_by_test_id("connection")).to_have_text("connected")
        # ...when the first tab cancels it.
        cancel_from_page(page)
        expect(page.get_by_test_id("status")).to_have_text("cancelled")
        stale.get_by_test_id("pause").click()
        expect(stale.get_by_test_id("error-message")).to_have_text(
            "Pause refused: cannot pause an execution that is cancelled")
        screenshot(stale, "refused")


DEAF_EVENT_SOURCE = """(() => {
    const Real = window.EventSource;
    window.EventSource = class extends Real {
        addEventListener(type, listener, options) {
            if (type === "error") super.addEventListener(type, listener, options);
        }
    };
})()"""


def test_the_page_reconnects_after_a_server_restart_and_misses_nothing(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    """And while the server is down, both pages say that the engine stopped."""
    data_dir = tmp_path / "data"
    port = free_port()
    options = ("--demo-duration", "0.2:0.5", "--demo-failure-rate", "0", "--health-interval",
               "0.5")
    server = ServerProcess.start(data_dir, *options, port=port)
    try:
        page = open_dashboard(browser, server)
        execution_id = start_from_dashboard(page, LAUNCH)
        listing = open_dashboard(browser, server)  # the list of executions, beside it
        not_reloaded = mark_page(page)
        expect(page.get_by_test_id("progress-completed")).not_to_have_text(
            re.compile(r"^[0-4]$"))
        expect(page.get_by_test_id("interrupted")).to_have_count(0)
        server.close()  # SIGTERM: the engine records that it stopped, and the pages show it
        expect(page.get_by_test_id("interrupted")).to_be_visible()
        expect(page.get_by_test_id("interrupted")).to_contain_text("engine stopped")
        row = listing.locator(f'tr[data-execution-id="{execution_id}"]')
        expect(row.get_by_test_id("interrupted")).to_be_visible()
        expect(page.get_by_test_id("connection")).to_have_text("disconnected")
        assert page.get_by_test_id("status").inner_text() != "completed"
        screenshot(page, "engine-stopped")
        for command in ("pause", "cancel"):  # allowed while it runs, but not without a stream
            expect(page.get_by_test_id(command)).to_be_disabled()
        expect(page.get_by_test_id("controls-note")).to_contain_text("live connection")

        server = ServerProcess.start(data_dir, *options, port=port)
        expect(page.get_by_test_id("connection")).to_have_text("connected", timeout=30_000)
        expect(page.get_by_test_id("interrupted")).to_have_count(0)  # taken up again
        expect(row.get_by_test_id("interrupted")).to_have_count(0, timeout=30_000)
        if page.get_by_test_id("status").inner_text() == "running":
            expect(page.get_by_test_id("pause")).to_be_enabled()  # may finish meanwhile
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=RUN_TIMEOUT)
        status = api(server, f"/api/executions/{execution_id}/status")
        assert shown_counts(page) == server_counts(status["execution"])
        expect(dag_nodes(page, "completed")).to_have_count(LAUNCH_TASKS)
        expect_agent_table(page, status["metrics"])
        positions = page.get_by_test_id("timeline").locator("li").evaluate_all(
            "items => items.map(item => item.dataset.position)")
        assert len(positions) == len(set(positions)), "an event was shown twice"
        not_reloaded()
        screenshot(page, "reconnected")
    finally:
        server.close()


def test_the_dag_has_a_chip_per_planned_task_on_its_items_node_and_edges_point_down(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    with serving(tmp_path / "data", *FAST) as server:
        page = open_dashboard(browser, server)
        start_from_dashboard(page, LAUNCH)
        plan = api(server, f"/api/strategies/{strategy_id(server, LAUNCH)}")["strategy"]["plan"]
        assert len(plan["tasks"]) == LAUNCH_TASKS
        expect(dag_nodes(page)).to_have_count(LAUNCH_TASKS)
        placed = dag_nodes(page).evaluate_all("""chips => chips.map(chip => {
            const node = chip.closest(".dag-node");
            return [chip.dataset.taskId, node.dataset.node, Number(node.dataset.layer),
                    node.querySelectorAll(".dag-node-title").length];
        })""")
        node_of = {task: node for task, node, _, _ in placed}
        layer_of = {node: layer for _, node, layer, _ in placed}
        item_of = {task["id"]: task["itemId"] for task in plan["tasks"]}
        assert {task: node.removeprefix("item:") for task, node in node_of.items()} == item_of
        expect(page.locator("[data-testid=dag] .dag-item")).to_have_count(
            len(set(item_of.values())))
        # The item's title is written once per item, and every edge points down.
        items = page.locator("[data-testid=dag] .dag-item")
        assert {lines for _, _, _, lines in placed} <= {1, 2}  # one title, in one or two lines
        expect(items.first.locator(".dag-chip")).not_to_have_count(0)
        crossing = {(node_of[dep], node_of[task["id"]]) for task in plan["tasks"]
                    for dep in task["dependsOn"] if node_of[dep] != node_of[task["id"]]}
        assert all(layer_of[a] < layer_of[b] for a, b in crossing)
        edges = page.locator("[data-testid=dag] path.dag-edge")
        expect(edges).to_have_count(len(crossing))
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=RUN_TIMEOUT)
        first = page.locator('[data-testid=dag] .dag-item[data-layer="0"] .dag-chip').first
        first.focus()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("task-detail")).to_contain_text("completed")
        screenshot(page, "dag")


def test_without_the_token_the_page_says_to_open_the_printed_link(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    with serving(tmp_path / "data", *FAST) as server:
        page = browser.new_page()
        page.goto(f"{server.url}/")
        message = page.get_by_test_id("signin")
        expect(message).to_contain_text("stratexec serve")
        expect(message).to_contain_text("printed")
        screenshot(page, "signin")


def test_a_token_for_several_workspaces_gets_a_workspace_selector(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir, *FAST) as server:
        secret = subprocess.run(
            [sys.executable, "-m", "stratexec", "token", "create", "--user", "bo", "--workspace",
             "demo", "--workspace", "empty", "--data-dir", str(data_dir)],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        page = browser.new_page()
        page.goto(f"{server.url}/?token={secret}")
        selector = page.get_by_label("Workspace")
        expect(selector.locator("option")).to_have_text(["demo", "empty"])
        expect(page.get_by_role("button", name=f"Start {LAUNCH}")).to_be_visible()
        selector.select_option("empty")
        expect(page).to_have_url(f"{server.url}/?workspace=empty")
        expect(page.get_by_test_id("strategies")).to_contain_text("No strategies")
        expect(page.get_by_test_id("connection")).to_have_text("connected")
        screenshot(page, "workspaces")


def post(server: ServerProcess, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


PANEL_INPUTS = {"audience": "<i>beta</i> testers", "limits": {"max": 500}, "tags": ["a", "b"]}


def test_the_task_panel_shows_a_finished_tasks_inputs_result_and_last_failure(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    """Twenty tasks failing half their attempts: one of them completes after a failure."""
    items: list[dict[str, Any]] = [
        {"id": "goal", "level": 1, "parentId": None, "title": "Goal"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Area"},
        {"id": "plan", "level": 3, "parentId": "area", "title": "Plan"}]
    items += [{"id": f"send-{n}", "level": 4, "parentId": "plan", "agents": ["email"],
               "title": f"Invite <b>cohort {n}</b>", "inputs": PANEL_INPUTS}
              for n in range(20)]
    flaky = ("--demo-duration", "0.01:0.05", "--demo-failure-rate", "0.5",
             "--max-attempts", "30", "--retry-interval", "0.01", "--health-interval", "0.2",
             "--circuit-cool-down", "0.05")  # half its attempts failing pauses the type
    with serving(tmp_path / "data", *flaky) as server:
        strategy = post(server, "/api/strategies", {"name": "Panel", "workspaceId": "demo",
                                                   "items": items})["strategy"]
        execution_id = post(server, "/api/executions/start", {
            "strategyId": strategy["id"], "workspaceId": "demo"})["executionId"]
        page = open_dashboard(browser, server)
        page.goto(f"{server.url}/executions/{execution_id}")
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=RUN_TIMEOUT)
        tasks = api(server, f"/api/executions/{execution_id}/status")["tasks"]
        task = next(t for t in tasks if t["failures"] and t["status"] == "completed")

        dag_nodes(page).and_(page.locator(f'[data-task-id="{task["taskId"]}"]')).click()
        panel = page.get_by_test_id("task-detail")
        expect(panel.locator("h3")).to_have_text(task["title"])
        expect(panel.get_by_test_id("task-result")).to_have_text(
            json.dumps(task["result"], indent=2, ensure_ascii=False))
        expect(panel.get_by_test_id("task-inputs")).to_have_text(
            json.dumps(PANEL_INPUTS, indent=2, ensure_ascii=False))
        expect(panel.get_by_test_id("task-error")).to_have_text(
            f"{task['errorKind']}: {task['errorMessage']}")
        assert "<b>cohort" in panel.get_by_test_id("task-result").inner_text()
        expect(panel.locator("b, i")).to_have_count(0)  # shown as text, never as markup
        screenshot(page, "task-panel")
