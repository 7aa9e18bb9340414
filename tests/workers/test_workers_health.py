"""`/healthz` of a server whose attempts run on Celery workers: the workers seen, the
queues they serve, and the attempts in flight per agent type."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from api_support import running_server
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
