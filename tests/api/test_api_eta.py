"""The completion estimate, utilisation and honest counts of a real server's executions:
the status answer, the stream's metrics-update and health-update events, and the recorded
health snapshots."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from api_support import SLOW, Api, collect_until, running_server, sse_frames

from stratexec.domain.retry import RetryPolicy
from stratexec.settings import EngineOptions

LAUNCH = "Launch Acme Insights 2.0"  # 38 tasks on six agent types
# Two slots per type, so that tasks queue: 38 tasks of 0.1-0.2 s take a few seconds.
PACED = EngineOptions(demo_duration=(0.1, 0.2), demo_failure_rate=0.0, seed=7,
                      concurrency=2, retry=RetryPolicy(initial_interval=0.05),
                      health_interval=0.1)


async def follow(api: Api, execution_id: str) -> list[Any]:
    async with api.session.get(f"/api/executions/{execution_id}/events?lastEventId=0",
                               headers=api.headers()) as stream:
        return await collect_until(sse_frames(stream), api.document, timeout=60)


HOPELESS = EngineOptions(demo_duration=(0.01, 0.02), demo_failure_rate=1.0, seed=1,
                         retry=RetryPolicy(maximum_attempts=1), health_interval=0.1)


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


async def test_the_eta_of_a_running_demo_execution_falls_and_ends_near_zero(
        tmp_path: Path) -> None:
    async with running_server(tmp_path, PACED) as (api, _):
        execution_id = await api.start(LAUNCH)
        frames = await follow(api, execution_id)
        snapshots = (await api.get(f"/api/executions/{execution_id}/health")).body["snapshots"]
        status = (await api.get(f"/api/executions/{execution_id}/status")).body

    estimates = [s["eta"] for s in snapshots if s["eta"] is not None]
    assert len(estimates) >= 4, snapshots
    remaining = [e["remainingTasks"] for e in estimates]
    assert remaining == sorted(remaining, reverse=True)  # no failures: tasks only finish
    assert remaining[0] > remaining[-1]
    seconds = [e["seconds"] for e in estimates]
    third = len(seconds) // 3
    assert sum(seconds[:third]) / third > 2 * sum(seconds[-third:]) / third, seconds
    assert seconds[-1] < 1.0, seconds  # the last one or two tasks: a fraction of a second
    assert all(e["p90Seconds"] >= e["seconds"] for e in estimates)
    assert all(e["criticalPath"] for e in estimates)
    assert snapshots[-1]["eta"] is None  # the last assessment: it had finished

    # An estimate made once some tasks finished was of the right size: within a factor
    # of three of what the rest of the run really took (concurrency ignored, it would
    # be about half; each slot's queue ignored, far less).
    finished_at = at(status["execution"]["finishedAt"])
    middle = next(e for e in estimates if e["remainingTasks"] <= 25)
    took = (finished_at - at(middle["estimatedAt"])).total_seconds()
    assert middle["seconds"] / 3 < took < middle["seconds"] * 3, (middle, took)

    updates = [f.data["data"] for f in frames if f.event == "metrics-update"]
    assert any(u["eta"] is not None for u in updates)
    agents = [a for u in updates for a in u["agents"].values()]
    assert {a["concurrency"] for a in agents} == {2}
    assert all(a["running"] <= 2 and 0 <= a["utilisation"] <= 1 for a in agents)
    assert any(a["queued"] > 0 for a in agents)  # two slots: tasks waited for them
    health_updates = [f.data["data"] for f in frames if f.event == "health-update"]
    assert any(h["eta"] is not None for h in health_updates)

    assert status["eta"] is None  # finished
    assert status["health"]["outcome"] == "completed"
    execution = status["execution"]
    assert (execution["finishedTasks"], execution["queuedTasks"],
            execution["inProgressTasks"]) == (38, 0, 0)
    assert {(a["concurrency"], a["running"], a["queued"], a["utilisation"])
            for a in status["metrics"]["agents"]} == {(2, 0, 0, 0.0)}
    assert all(a["p50DurationMs"] <= a["p90DurationMs"] <= a["p95DurationMs"]
               for a in status["metrics"]["agents"])


async def test_a_paused_execution_has_no_eta_and_a_cancelled_one_reads_cancelled(
        tmp_path: Path) -> None:
    async with running_server(tmp_path, SLOW) as (api, _):
        execution_id = await api.start(LAUNCH)
        base = f"/api/executions/{execution_id}"
        assert (await api.post(f"{base}/pause")).status == 200
        paused = (await api.get(f"{base}/status")).body
        assert (paused["eta"], paused["health"]["outcome"]) == (None, None)
        assert (await api.post(f"{base}/cancel")).status == 200
        status = (await api.get(f"{base}/status")).body

    execution = status["execution"]
    assert status["eta"] is None
    assert status["health"]["outcome"] == "cancelled"
    assert execution["cancelledTasks"] > 0
    assert execution["finishedTasks"] == execution["totalTasks"] == 38
    assert (execution["queuedTasks"], execution["inProgressTasks"]) == (0, 0)


async def test_a_failed_execution_reads_failed(tmp_path: Path) -> None:
    async with running_server(tmp_path, HOPELESS) as (api, _):
        execution_id = await api.start("Small demo: customer newsletter")
        await api.until_finished(execution_id)
        status = (await api.get(f"/api/executions/{execution_id}/status")).body

    assert status["execution"]["status"] == "failed"
    assert (status["health"]["outcome"], status["eta"]) == ("failed", None)
    execution = status["execution"]
    assert execution["finishedTasks"] == (
        execution["failedTasks"] + execution["skippedTasks"]) == execution["totalTasks"]
