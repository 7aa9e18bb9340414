"""`/healthz` of a server whose attempts run on Celery workers: the workers seen, the
queues they serve, and the attempts in flight per agent type; and the dashboard's line."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from api_support import ServerProcess, running_server
from e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import expect, sync_playwright
from worker_support import ON_CELERY, CeleryEnv

from stratexec.config import load

HEALTH_TIMEOUT = 60.0


async def _health_until(api: Any, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        answer = await api.get("/healthz")
        assert answer.status == 200, answer.body
        if check(answer.body["workers"]):
            return dict(answer.body["workers"])
        await asyncio.sleep(0.2)
    raise AssertionError(f"/healthz never showed it: {answer.body}")


async def test_healthz_shows_the_workers_their_queues_and_the_attempts_in_flight(
        celery_env: CeleryEnv, tmp_path: Path) -> None:
    config = celery_env.config(concurrency=1, duration=60, types=("research",))
    worker = celery_env.start_worker(config, 2)
    async with running_server(tmp_path / "data", ON_CELERY, load(config)) as (api, _):
        research = celery_env.settings.queue("research")
        seen = await _health_until(api, lambda w: any(
            entry["name"] == worker.name for entry in w["workers"]))
        served = next(entry for entry in seen["workers"] if entry["name"] == worker.name)
        assert research in served["queues"]
        assert research in seen["queues"]
        assert seen["agentsOn"] == "celery"
        assert seen["error"] is None
        execution_id = await api.start("Small demo: customer newsletter")
        busy = await _health_until(api, lambda w: w["inFlight"].get("research") == 1)
        assert set(busy["inFlight"]) <= {"research", "analysis", "scheduling", "content",
                                         "email"}
        assert (await api.post(f"/api/executions/{execution_id}/cancel")).status == 200
        await _health_until(api, lambda w: w["inFlight"] == {})


def test_the_dashboard_shows_the_workers(celery_env: CeleryEnv, tmp_path: Path) -> None:
    """`stratexec serve --agents-on celery` in a real process, the dashboard in Chromium."""
    config = celery_env.config(concurrency=1, duration=0.01, types=("research",))
    worker = celery_env.start_worker(config, 1)
    server = ServerProcess.start(tmp_path / "data", "--agents-on", "celery", "--config",
                                 str(config))
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                tmp_path / "profile", executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                headless=True)
            try:
                page = context.new_page()
                page.goto(f"{server.url}/?token={server.token}")
                line = page.get_by_test_id("workers-text")
                expect(line).to_contain_text(worker.name, timeout=HEALTH_TIMEOUT * 1000)
                expect(line).to_contain_text("in flight: nothing")
            finally:
                context.close()
    finally:
        server.close()
