"""The dashboard on large plans and in the cases people misread: Debian's Chromium driven by
Playwright against real `stratexec serve` processes, with plans generated here (a 300-task
plan that runs to the end, a 9,000-task one that opens folded). Every check waits for a
condition on the page or reads the server's own answers; each test saves screenshots under
var/screenshots/. STRATEXEC_E2E_LARGE_TASKS sets the size of the large plan (default 9000)."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api_support import ServerProcess
from playwright.sync_api import BrowserContext, Page, Route, expect

Shot = Callable[[Page, str], Path]
AGENTS = ["research", "analysis"]  # two tasks per item, the second after the first
CHAINS = 3  # each plan's items form this many chains
FLAKY = ("--demo-duration", "0.005:0.02", "--demo-failure-rate", "0.1", "--max-attempts", "20",
         "--retry-interval", "0.01", "--health-interval", "0.2")
SLOW = ("--demo-duration", "0.5:1.0", "--demo-failure-rate", "0", "--concurrency", "1",
        "--health-interval", "0.5")
STILL = ("--demo-duration", "60:90", "--demo-failure-rate", "0", "--concurrency", "1")
LARGE_TASKS = int(os.environ.get("STRATEXEC_E2E_LARGE_TASKS", "9000"))
RUN_TIMEOUT = 120_000  # ms
LAUNCH = "Launch Acme Insights 2.0"
NARROW = {"width": 390, "height": 844}


# ------------------------------------------------------------------ plans and server

def plan_items(plans: int, per_plan: int) -> list[dict[str, Any]]:
    """A strategy's items: `plans` L3 parents of `per_plan` L4 items each, in CHAINS chains
    per plan (an item depends on the one CHAINS before it), two tasks per item. The titles
    differ only at their end, as generated plans' titles do."""
    items: list[dict[str, Any]] = [
        {"id": "goal", "level": 1, "parentId": None, "title": "Goal"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Area"}]
    for p in range(plans):
        items.append({"id": f"p{p}", "level": 3, "parentId": "area", "title": f"Region {p}"})
        items += [{"id": f"i{p}-{k}", "level": 4, "parentId": f"p{p}", "agents": AGENTS,
                   "title": f"Compile the quarterly regional report for region {p}, step {k}",
                   "dependsOn": [f"i{p}-{k - CHAINS}"] if k >= CHAINS else []}
                  for k in range(per_plan)]
    return items


@contextmanager
def serving(data_dir: Path, *options: str) -> Iterator[ServerProcess]:
    server = ServerProcess.start(data_dir, *options)
    try:
        yield server
    finally:
        server.close()


def call(server: ServerProcess, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        server.url + path, method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def start_plan(server: ServerProcess, name: str, items: list[dict[str, Any]]) -> str:
    strategy = call(server, "/api/strategies",
                    {"name": name, "workspaceId": "demo", "items": items})["strategy"]
    started = call(server, "/api/executions/start",
                   {"strategyId": strategy["id"], "workspaceId": "demo"})
    execution_id: str = started["executionId"]
    return execution_id


def start_named(server: ServerProcess, name: str) -> str:
    strategies = call(server, "/api/strategies?workspaceId=demo")["strategies"]
    strategy = next(s for s in strategies if s["name"] == name)
    execution_id: str = call(server, "/api/executions/start", {
        "strategyId": strategy["id"], "workspaceId": "demo"})["executionId"]
    return execution_id


def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `check()` until it returns something true, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)  # the interval between two polls of the condition
    return found


def history(server: ServerProcess, execution_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = call(server, f"/api/executions/{execution_id}/history?after={after}&limit=1000")
        events += page["events"]
        if page["nextAfter"] is None:
            return events
        after = page["nextAfter"]


def open_execution(browser: BrowserContext, server: ServerProcess, execution_id: str,
                   viewport: dict[str, int] | None = None) -> Page:
    page = browser.new_page()
    if viewport:
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
    page.goto(f"{server.url}/?token={server.token}")
    expect(page).to_have_url(f"{server.url}/")
    page.goto(f"{server.url}/executions/{execution_id}")
    expect(page.get_by_test_id("connection")).to_have_text("connected")
    return page


# ------------------------------------------------------------------ what the page shows

OFF_CENTRE = """(box, taskId) => {
    const edge = box.getBoundingClientRect();
    const chip = box.querySelector(`.dag-chip[data-task-id="${CSS.escape(taskId)}"]`);
    const node = chip.closest(".dag-node").querySelector(".dag-node-box").getBoundingClientRect();
    return [(node.left + node.right - edge.left - edge.right) / 2,
            (node.top + node.bottom - edge.top - edge.bottom) / 2];
}"""


FITS = """box => {
    const edge = box.getBoundingClientRect();
    const nodes = [...box.querySelectorAll(".dag-node-box")].map(n => n.getBoundingClientRect());
    const outside = nodes.filter(n => n.left < edge.left - 1 || n.right > edge.right + 1
        || n.top < edge.top - 1 || n.bottom > edge.bottom + 1);
    return [nodes.length, outside.length];
}"""


def assert_graph_fits(page: Page) -> int:
    """Every node drawn lies inside the graph's box (measured at one instant: the page may
    move, as when the history card appears above the graph); the number of nodes."""
    nodes, outside = page.get_by_test_id("dag").evaluate(FITS)
    assert nodes
    assert outside == 0, f"{outside} of {nodes} nodes outside the box"
    return int(nodes)


def scale(page: Page) -> float:
    return float(page.get_by_test_id("dag").get_attribute("data-scale") or "0")


def world_transform(page: Page) -> str:
    return page.locator("[data-testid=dag] .dag-world").get_attribute("transform") or ""


def assert_centred(page: Page, task_id: str) -> None:
    """The node holding the task's chip is in the middle of the graph's box, readable."""
    dx, dy = page.get_by_test_id("dag").evaluate(OFF_CENTRE, task_id)
    assert abs(dx) < 2
    assert abs(dy) < 2
    assert scale(page) >= 1


def set_slider(page: Page, version: int) -> None:
    page.get_by_test_id("history-slider").evaluate(
        "(slider, v) => { slider.value = v; slider.dispatchEvent(new Event('input')); }",
        version)
    expect(page.get_by_test_id("history-version")).to_have_text(re.compile(rf"^{version} of "))


def assert_no_horizontal_overflow(page: Page) -> None:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    cards = page.locator(".card").evaluate_all(
        "cards => cards.filter(c => c.offsetParent).map(c => { const r ="
        " c.getBoundingClientRect(); return [r.left, r.right, c.scrollWidth - c.clientWidth]; })")
    assert cards
    assert [c for c in cards if c[0] < 0 or c[1] > width or c[2] > 1] == []


# ------------------------------------------------------------------------------ tests

def check_zoom_and_pan(page: Page, fitted: float) -> None:
    """Keyboard, buttons, mouse wheel and drag zoom and pan; 0 and Fit fit it again."""
    page.get_by_test_id("dag").focus()
    page.keyboard.press("+")
    assert abs(scale(page) - fitted * 1.25) < 1e-3
    before = world_transform(page)
    page.keyboard.press("ArrowLeft")
    assert world_transform(page) != before
    page.keyboard.press("0")
    assert abs(scale(page) - fitted) < 1e-3
    page.get_by_test_id("dag-zoom-in").click()
    page.get_by_test_id("dag-zoom-in").click()
    assert scale(page) > fitted * 1.5
    page.get_by_test_id("dag-fit").click()
    box = page.get_by_test_id("dag").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 5)
    page.mouse.wheel(0, -400)
    expect(page.get_by_test_id("dag")).not_to_have_attribute("data-scale", f"{fitted:.4f}")
    before = world_transform(page)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + 60, steps=4)
    page.mouse.up()
    assert world_transform(page) != before
    page.get_by_test_id("dag-fit").click()
    assert_graph_fits(page)


def check_search(page: Page, server: ServerProcess, execution_id: str
                 ) -> dict[str, Any]:
    """Search by id (or title) centres the match and opens its task beside the graph;
    the task found, one that failed once at least."""
    status = call(server, f"/api/executions/{execution_id}/status")
    retried: dict[str, Any] = next(
        t for t in status["tasks"] if t["failures"] and t["agent"] == "analysis")
    page.get_by_test_id("dag-search").fill(retried["taskId"])
    expect(page.get_by_test_id("dag-found")).to_have_text(
        re.compile(r"^1 of 1: Compile the quarterly regional report"))
    assert_centred(page, retried["taskId"])
    panel = page.get_by_test_id("task-detail")
    expect(panel.locator("dl")).to_contain_text(retried["taskId"])
    graph_box, panel_box = page.get_by_test_id("dag").bounding_box(), panel.bounding_box()
    assert graph_box is not None
    assert panel_box is not None
    assert panel_box["x"] >= graph_box["x"] + graph_box["width"]  # beside, not below
    assert panel_box["y"] < graph_box["y"] + graph_box["height"]
    page.get_by_test_id("dag-search").fill("step 14")  # a title: ten regions have one
    expect(page.get_by_test_id("dag-found")).to_have_text(re.compile(r"^1 of 20: "))
    page.get_by_test_id("dag-search").press("Enter")
    expect(page.get_by_test_id("dag-found")).to_have_text(re.compile(r"^2 of 20: "))
    return retried


def check_attempts(page: Page, events: list[dict[str, Any]], retried: dict[str, Any]
                   ) -> None:
    """The attempt list: every attempt of the task, as the audit history recorded them."""
    page.get_by_test_id("dag-search").fill(retried["taskId"])
    mine = [e for e in events if e["data"].get("taskId") == retried["taskId"]]
    failures = [e for e in mine if e["type"] == "Execution.TaskFailed"]
    assigned = [e for e in mine if e["type"] == "Execution.TaskAssigned"]
    rows = page.get_by_test_id("task-detail").get_by_test_id("task-attempts").locator("li")
    expect(rows).to_have_count(len(assigned))
    outcomes = rows.evaluate_all("rows => rows.map(r => r.dataset.outcome)")
    assert outcomes[-1] == "completed"
    assert outcomes.count("failed, retried") == len(failures) == retried["failures"]
    for failure in failures:
        expect(rows.filter(has_text=failure["data"]["errorMessage"])).not_to_have_count(0)
    clock = re.compile(r"\d\d:\d\d:\d\d\.\d{3}")
    for fields in rows.evaluate_all("rows => rows.map(r => Object.fromEntries([...r"
                                    ".querySelectorAll('[data-field]')].map(f =>"
                                    " [f.dataset.field, f.textContent])))"):
        assert clock.fullmatch(fields["started"])
        assert clock.fullmatch(fields["ended"])
        assert re.fullmatch(r"\d+ ms|\d+\.\d s", fields["took"])
        assert fields["detail"]  # its result or its error


def check_plots(page: Page, server: ServerProcess, execution_id: str) -> None:
    """One point per recorded assessment, every finished task in a bar."""
    snapshots = call(server, f"/api/executions/{execution_id}/health")["snapshots"]
    expect(page.get_by_test_id("health-plot").locator("circle")).to_have_count(len(snapshots))
    bars = page.get_by_test_id("throughput-plot").locator("rect title").all_text_contents()
    assert sum(int(text.split()[0]) for text in bars) == 300


def check_slider(page: Page, server: ServerProcess, execution_id: str,
                 events: list[dict[str, Any]], screenshot: Shot) -> None:
    """The slider drives the whole page: status, its time, health, progress, graph,
    timeline."""
    versions = {e["version"]: e for e in events if e["type"].startswith("Execution.")}
    latest = max(versions)
    middle = latest // 2
    at = versions[middle]
    state = call(server, f"/api/executions/{execution_id}/state?version={middle}")["state"]
    assert state["status"] == "running"
    set_slider(page, middle)
    expect(page.get_by_test_id("status")).to_have_text("running")
    expect(page.get_by_test_id("status-version")).to_have_text(f"· as at version {middle}")
    expect(page.get_by_test_id("history-time")).to_have_attribute("datetime", at["timestamp"])
    expect(page.get_by_test_id("duration")).to_have_text(re.compile(r"^running for "))
    expect(page.get_by_test_id("progress-completed")).to_have_text(
        str(state["counts"]["completed"]))
    expect(page.locator('[data-testid=dag] [data-task-id][data-status="completed"]')
           ).to_have_count(state["counts"]["completed"])
    assessed = [e for e in events if e["type"] == "ExecutionHealth.Assessed"
                and e["position"] <= at["position"]]
    expect(page.get_by_test_id("health-score")).to_have_text(
        str(assessed[-1]["data"]["score"]) if assessed else "—")
    newest = page.get_by_test_id("timeline").locator("li").first
    shown = [e["position"] for e in events if e["position"] <= at["position"]
             and e["type"] != "ExecutionHealth.Watched"]
    expect(newest).to_have_attribute("data-position", str(max(shown)))
    screenshot(page, "replayed")
    set_slider(page, 1)
    expect(page.get_by_test_id("status")).to_have_text("pending")
    expect(page.get_by_test_id("health-band")).to_have_text("not assessed")
    expect(page.get_by_test_id("progress-pending")).to_have_text("300")
    set_slider(page, latest)
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_test_id("status-version")).to_have_text("")
    expect(page.get_by_test_id("progress-pct")).to_have_text("100%")


def test_a_300_task_plan_opens_fitted_zooms_pans_finds_and_replays(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    with serving(tmp_path / "data", *FLAKY) as server:
        execution_id = start_plan(server, "Three hundred", plan_items(10, 15))
        page = open_execution(browser, server, execution_id)
        expect(page.locator("[data-testid=dag] [data-task-id]")).to_have_count(300)
        expect(page.locator("[data-testid=dag] .dag-item")).to_have_count(150)
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=RUN_TIMEOUT)
        assert assert_graph_fits(page) == 150
        fitted = scale(page)
        assert 0 < fitted < 1
        screenshot(page, "fitted")
        check_zoom_and_pan(page, fitted)
        retried = check_search(page, server, execution_id)
        page.get_by_test_id("dag-search").fill(retried["taskId"])
        events = history(server, execution_id)
        check_attempts(page, events, retried)
        screenshot(page, "found")
        check_plots(page, server, execution_id)
        check_slider(page, server, execution_id, events, screenshot)


def test_a_large_plan_opens_folded_and_unfolds_what_is_looked_for(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    per_plan = 50
    plans = max(1, LARGE_TASKS // (per_plan * len(AGENTS)))
    with serving(tmp_path / "data", *STILL) as server:
        execution_id = start_plan(server, "Large", plan_items(plans, per_plan))
        page = open_execution(browser, server, execution_id)
        groups = page.get_by_test_id("dag-group")
        expect(groups).to_have_count(plans, timeout=60_000)
        expect(page.get_by_test_id("dag-fold")).to_have_value("l3")
        layers = (per_plan + CHAINS - 1) // CHAINS
        expect(page.get_by_test_id("dag-fold").locator("option")).to_have_text([
            f"Every item ({plans * per_plan} nodes)", f"Folded by L3 parent ({plans} nodes)",
            f"Folded by layer ({layers} nodes)"])
        expect(page.locator("[data-testid=dag] [data-task-id]")).to_have_count(0)
        assert page.evaluate("document.getElementsByTagName('*').length") < 4000
        assert_graph_fits(page)
        tasks = per_plan * len(AGENTS)
        expect(groups.first).to_contain_text(f"{tasks} tasks:")
        expect(page.get_by_test_id("dag-summary")).to_contain_text(
            f"{plans * tasks} tasks · {plans * per_plan} items · {plans} folded groups")
        screenshot(page, "folded")

        # A click opens one group: its items, with their chips, among the others.
        groups.nth(1).click()
        expect(page.locator("[data-testid=dag] .dag-item")).to_have_count(per_plan)
        expect(page.locator("[data-testid=dag] [data-task-id]")).to_have_count(tasks)
        expect(groups).to_have_count(plans - 1)
        page.get_by_role("button", name="Fold again").click()
        expect(groups).to_have_count(plans)

        # By layer: one node per layer of items, with its count.
        page.get_by_test_id("dag-fold").select_option("layer")
        expect(groups).to_have_count(layers)
        expect(groups.first).to_contain_text(f"{plans * CHAINS * len(AGENTS)} tasks:")
        assert_graph_fits(page)
        screenshot(page, "by-layer")

        # Search finds a task folded away, opens its group and centres it.
        wanted = f"i{plans - 1}-{per_plan - 1}:analysis"
        page.get_by_test_id("dag-fold").select_option("l3")
        page.get_by_test_id("dag-search").fill(wanted)
        expect(page.locator(f'[data-testid=dag] [data-task-id="{wanted}"]')).to_have_count(1)
        expect(groups).to_have_count(plans - 1)
        assert_centred(page, wanted)
        expect(page.get_by_test_id("task-detail").locator("dl")).to_contain_text(wanted)
        screenshot(page, "found")


def test_a_cancelled_execution_reads_cancelled_everywhere_in_one_colour(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    with serving(tmp_path / "data", *SLOW) as server:
        execution_id = start_named(server, LAUNCH)
        page = open_execution(browser, server, execution_id)
        expect(page.get_by_test_id("progress-completed")).not_to_have_text("0")

        # Cancel asks first: "Keep it running" changes nothing.
        page.get_by_test_id("cancel").click()
        expect(page.get_by_test_id("confirm-cancel")).to_be_visible()
        page.get_by_test_id("confirm-cancel-no").click()
        expect(page.get_by_test_id("confirm-cancel")).to_be_hidden()
        assert call(server, f"/api/executions/{execution_id}/status")[
            "execution"]["status"] == "running"
        page.get_by_test_id("cancel").click()
        page.get_by_test_id("confirm-cancel-yes").click()
        expect(page.get_by_test_id("status")).to_have_text("cancelled")
        execution = call(server, f"/api/executions/{execution_id}/status")["execution"]
        finished = sum(execution[f"{state}Tasks"]
                       for state in ("completed", "failed", "skipped", "cancelled"))
        assert execution["cancelledTasks"] > 0
        assert finished == execution["totalTasks"]

        expect(page.get_by_test_id("progress-pct")).to_have_text("cancelled")
        expect(page.get_by_test_id("progress-note")).to_have_text(
            f"{finished} of {execution['totalTasks']} planned tasks finished: "
            f"{execution['completedTasks']} completed, {execution['cancelledTasks']} cancelled.")
        expect(page.get_by_test_id("health-band")).to_have_text("cancelled")
        expect(page.get_by_test_id("health-score")).to_have_text("—")
        expect(page.get_by_test_id("duration")).to_have_text(re.compile(r"^took "))
        expect(page).to_have_title(f"{LAUNCH}: cancelled · stratexec")
        for card in ("summary", "health", "progress"):  # the timeline keeps what it said then
            text = page.locator(f'.card[aria-labelledby="{card}-title"]').inner_text()
            assert "100%" not in text
            assert "Excellent" not in text
        colour = page.evaluate("getComputedStyle(document.documentElement)"
                               ".getPropertyValue('--cancelled').trim()")
        rgb = page.evaluate("""hex => { const n = parseInt(hex.slice(1), 16);
            return `rgb(${n >> 16}, ${(n >> 8) & 255}, ${n & 255})`; }""", colour)
        detail = colours(page, ["[data-testid=status] .badge", "[data-testid=health-band]",
                                ".bar-part.part-cancelled"])
        screenshot(page, "detail")

        page.get_by_role("link", name="All executions").click()
        row = page.get_by_test_id("executions").locator(f'tr[data-execution-id="{execution_id}"]')
        expect(row.get_by_test_id("execution-status")).to_have_text("cancelled")
        expect(row.get_by_test_id("execution-health")).to_have_text("cancelled")
        expect(row.get_by_test_id("execution-progress")).to_have_text(
            f"{finished}/{execution['totalTasks']} finished: {execution['completedTasks']} "
            f"completed, {execution['cancelledTasks']} cancelled")
        listed = colours(page, [f'tr[data-execution-id="{execution_id}"] {cell} .badge'
                                for cell in ("[data-testid=execution-status]",
                                             "[data-testid=execution-health]")]
                         + [f'tr[data-execution-id="{execution_id}"] .part-cancelled'])
        assert detail[0] == detail[1] == listed[0] == listed[1] == rgb
        assert rgb in detail[2]
        assert detail[2] == listed[2]  # the bars' pattern, the same on both pages
        screenshot(page, "list")


def colours(page: Page, selectors: list[str]) -> list[str]:
    """A badge's text colour, a bar's background pattern: what each element is drawn in."""
    return [page.locator(selector).first.evaluate(
        "e => e.classList.contains('badge') ? getComputedStyle(e).color"
        " : getComputedStyle(e).backgroundImage") for selector in selectors]


def test_a_390_px_screen_shows_every_card_and_a_refused_link_is_the_friendly_page(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    with serving(tmp_path / "data", *FLAKY) as server:
        execution_id = start_named(server, LAUNCH)
        page = open_execution(browser, server, execution_id, viewport=NARROW)
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=RUN_TIMEOUT)
        page.locator("[data-testid=dag] [data-task-id]").first.click()
        expect(page.get_by_test_id("task-attempts")).to_be_visible()
        expect(page.get_by_test_id("history-slider")).to_be_visible()
        assert_no_horizontal_overflow(page)
        assert_graph_fits(page)
        screenshot(page, "detail")
        page.get_by_role("link", name="All executions").click()
        expect(page.get_by_test_id("executions").locator("tbody tr")).to_have_count(1)
        assert_no_horizontal_overflow(page)
        screenshot(page, "list")

        refused = browser.new_page()
        refused.set_viewport_size(NARROW)  # type: ignore[arg-type]
        response = refused.goto(f"{server.url}/?token=sx_not-a-token")
        assert response is not None
        assert response.status == 401
        expect(refused.get_by_test_id("signin")).to_have_attribute("data-why", "refused")
        expect(refused.get_by_test_id("signin")).to_contain_text("does not work")
        expect(refused).to_have_url(f"{server.url}/")  # the secret left the address bar
        expect(refused).to_have_title("Sign-in link refused · stratexec")
        assert_no_horizontal_overflow(refused)
        screenshot(refused, "refused-link")


# After the stream's snapshot, one metrics-update event for each execution in it, with the
# data given (as a server with the status helper's fields sends them), then the stream as is,
# less its own metrics-update events: the running execution's would replace the data given.
METRICS_AFTER_SNAPSHOT = """(() => {
    const data = %s;
    const Real = window.EventSource;
    window.EventSource = class extends Real {
        constructor(...args) {
            super(...args);
            this.heard = {};
        }
        addEventListener(type, listener, options) {
            if (type !== "metrics-update") super.addEventListener(type, listener, options);
            this.heard[type] = listener;
            if (type !== "snapshot") return;
            super.addEventListener("snapshot", (message) => {
                const { executions } = JSON.parse(message.data);
                executions.forEach((execution, i) => {
                    const position = Number(message.lastEventId) + 0.001 * (i + 1);
                    this.heard["metrics-update"](new MessageEvent("metrics-update", {
                        lastEventId: String(position), data: JSON.stringify({
                            type: "metrics-update", executionId: execution.id, position,
                            data: { executionId: execution.id, ...data } }) }));
                });
            });
        }
    };
})()"""


def check_list_eta(page: Page, server: ServerProcess, execution_id: str,
                   metrics: dict[str, Any]) -> None:
    """The list reads the ETA and the agents' use from the stream's metrics-update events."""
    page.add_init_script(METRICS_AFTER_SNAPSHOT % json.dumps(metrics))
    page.goto(f"{server.url}/")
    row = page.get_by_test_id("executions").locator(f'tr[data-execution-id="{execution_id}"]')
    expect(row.get_by_test_id("execution-eta")).to_have_text(
        "ETA about 1 min 40 s (p90 2 min 30 s) · 3 running, 6 queued (75% of 4 slots)")


def test_the_eta_and_the_agents_use_show_when_the_server_sends_them(
        browser: BrowserContext, tmp_path: Path, screenshot: Shot) -> None:
    """The fields the status helper adds (issue 13), set here in the server's own answers:
    the page shows them when present, and nothing while they are absent."""
    eta = {"seconds": 100.0, "p90Seconds": 150.0, "estimatedAt": "2026-01-01T00:00:00+00:00",
           "remainingTasks": 12, "criticalPath": ["a", "b", "c"]}
    use = {"running": 1, "queued": 3, "concurrency": 2, "utilisation": 0.5}

    def status_with(present: bool) -> Callable[[Route], None]:
        def change(route: Route) -> None:
            answer = json.loads(route.fetch().text())
            answer.pop("eta", None)
            for agent in answer["metrics"]["agents"]:
                for key in use:
                    agent.pop(key, None)
                if present:
                    agent.update(use)
            route.fulfill(json=answer | ({"eta": eta} if present else {}))
        return change

    def health_with(present: bool) -> Callable[[Route], None]:
        def change(route: Route) -> None:
            answer = json.loads(route.fetch().text())
            for snapshot in answer["snapshots"]:
                snapshot.pop("eta", None)
                if present:
                    snapshot["eta"] = eta
            route.fulfill(json=answer)
        return change

    with serving(tmp_path / "data", *SLOW) as server:
        execution_id = start_named(server, LAUNCH)
        until(lambda: call(server, f"/api/executions/{execution_id}/health")["snapshots"])
        page = browser.new_page()
        page.route("**/api/executions/*/status", status_with(True))
        page.route("**/api/executions/*/health", health_with(True))
        page.goto(f"{server.url}/?token={server.token}")
        page.goto(f"{server.url}/executions/{execution_id}")
        expect(page.get_by_test_id("eta")).to_have_text(re.compile(
            r"^Finishes in about 1 min 40 s \(p90 2 min 30 s\) · 12 tasks to go"
            r" · critical path 3 tasks"))
        table = page.get_by_test_id("agent-table")
        expect(table.locator("th[data-use]")).to_have_text(["Running", "Queued", "Use"])
        row = table.locator("tbody tr").first
        expect(row.locator("td[data-use]")).to_have_text(["1/2", "3", "50%"])
        estimates = page.get_by_test_id("estimates").locator("tbody tr").first
        expect(estimates.locator("td")).to_have_text(
            [re.compile(r"^\d\d:"), "1 min 40 s", "2 min 30 s", "not finished"])
        screenshot(page, "eta")

        listed = browser.new_page()
        check_list_eta(listed, server, execution_id,
                       {"eta": eta, "agents": [use, {**use, "running": 2}]})
        screenshot(listed, "list-eta")

        # Without them (a server before issue 13; a cancelled execution has no ETA either).
        call(server, f"/api/executions/{execution_id}/cancel", {})
        plain = browser.new_page()
        plain.route("**/api/executions/*/status", status_with(False))
        plain.route("**/api/executions/*/health", health_with(False))
        plain.goto(f"{server.url}/executions/{execution_id}")
        expect(plain.get_by_test_id("status")).to_have_text("cancelled")
        expect(plain.get_by_test_id("agent-table").locator("tbody tr")).not_to_have_count(0)
        expect(plain.get_by_test_id("eta")).to_be_hidden()
        expect(plain.get_by_test_id("agent-table").locator("th[data-use]")).to_have_count(0)
        expect(plain.get_by_test_id("health-plot")).to_be_visible()
        expect(plain.get_by_test_id("estimates")).to_have_count(0)
