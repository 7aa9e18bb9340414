"""The measured workloads, each run in a fresh process by `bench.report` and printing one
JSON object: the engine's throughput (with stream subscribers in another process, for the
latency run), and replaying the read models from position 0.

The engine run is the real service: the aiohttp app from `server.create_app`, the embedded
SQLite store (or a PostgreSQL database, `--database`), every projection live, and a
subscriber on the workspace's SSE stream. The clock runs from the start request until
`execution-completed` arrives on that stream. Agents are the demo agents with a zero
duration: they return at once. With `--peer` (PostgreSQL), a second `stratexec serve`
process on the same database starts first: it runs the projections, and the measured
process, which runs the execution, follows it (two processes on two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
from aiohttp import web

from stratexec.actors.memory import release_memory
from stratexec.api.handlers import SERVICES
from stratexec.api.services import Services
from stratexec.bench.databases import server_environment, store_settings
from stratexec.config import AGENTS_ON
from stratexec.domain.strategy import parse_strategy
from stratexec.projections import queries
from stratexec.projections.store import ViewStore
from stratexec.projections.verify import rebuild
from stratexec.server import DASHBOARD_SECRET, create_app, freeze_startup_objects
from stratexec.settings import EngineOptions, ServerSettings

INSTANT = EngineOptions(demo_duration=(0.0, 0.0), demo_failure_rate=0.0, seed=1,
                        concurrency=8, health_interval=1.0)
WORKSPACE = "demo"
FORGET_TIMEOUT = 60.0


def chains_strategy(n: int) -> dict[str, Any]:
    """N L4 items, each made by the research rule into a chain of two tasks (2N tasks)."""
    items: list[dict[str, Any]] = [
        {"id": "goal", "level": 1, "parentId": None, "title": "Benchmark"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Throughput"},
        {"id": "plan", "level": 3, "parentId": "area", "title": "Chains"},
    ]
    items += [{"id": f"item-{k}", "level": 4, "parentId": "plan",
               "title": f"Research topic {k}"} for k in range(n)]
    return {"name": f"bench-{n}", "workspaceId": WORKSPACE, "items": items}


def rss_kib() -> int:
    """The resident set size now (not the peak), in KiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


def settled_rss_kib() -> int:
    """The RSS once garbage is collected and freed memory handed back, as the runtime does
    after each execution: before and after a run are measured alike."""
    gc.collect()
    release_memory()
    return rss_kib()


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def engine_run(n: int, data_dir: Path, subscribers: int, again: bool = False,
                     database: str | None = None, agents_on: str = "local") -> dict[str, Any]:
    """One execution of `chains_strategy(n)`, measured; with `again`, a second one after it,
    for the memory it leaves (`rssAfterAgainKiB`). `database`: a PostgreSQL database
    instead of SQLite. With `agents_on="celery"` the attempts run on the Celery workers the
    caller started."""
    settings = ServerSettings(store=store_settings(data_dir, database),
                              engine=replace(INSTANT, agents_on=agents_on), port=0)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    freeze_startup_objects()  # as `stratexec serve` does
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    services = app[SERVICES]
    engine = services.engine
    token = app[DASHBOARD_SECRET]
    strategy, _ = await asyncio.to_thread(
        engine.app.define_strategy, parse_strategy(chains_strategy(n)))
    await services.caught_up()
    clients = await asyncio.to_thread(_start_clients, url, token, subscribers) \
        if subscribers else None
    rss_before = settled_rss_kib()
    saves: list[float] = []
    engine.app.save_observers.append(saves.append)
    first_position = await asyncio.to_thread(engine.app.recorder.max_notification_id) or 0
    execution_id, elapsed, cpu = await _execute(url, token, strategy.id)
    last_position = await asyncio.to_thread(engine.app.recorder.max_notification_id) or 0
    save_count = len(saves)
    peak = peak_rss_kib()
    events = last_position - first_position
    latency = await asyncio.to_thread(_finish_clients, clients) if clients else None
    expected = await asyncio.to_thread(_feed_positions, engine.views, execution_id) \
        if clients else []
    rss_after = await _rss_once_forgotten(services, execution_id)
    rss_after_again = None
    if again:  # the same execution once more: what the first left must be reused, not grow
        again_id, _, _ = await _execute(url, token, strategy.id)
        rss_after_again = await _rss_once_forgotten(services, again_id)
    await runner.cleanup()
    return {
        "n": n, "executionId": execution_id, "tasks": 2 * n, "seconds": elapsed,
        "cpuSeconds": cpu, "events": events,
        "saves": save_count, "eventsPerSave": events / max(1, save_count),
        "tasksPerSecond": 2 * n / elapsed, "microsecondsPerTask": elapsed * 1e6 / (2 * n),
        "eventsPerSecond": events / elapsed,
        "rssBeforeKiB": rss_before, "rssAfterKiB": rss_after, "peakRssKiB": peak,
        "rssAfterAgainKiB": rss_after_again,
        "rssPerThousandTasksKiB": (peak - rss_before) / (2 * n / 1000),
        "liveExecutionsAfter": len(engine.runtime.live_execution_ids()),
        "latency": None if latency is None else _latency_summary(latency, expected),
    }


async def _execute(url: str, token: str, strategy_id: UUID) -> tuple[str, float, float]:
    """Start an execution and follow the workspace stream until it completes; returns its
    id, the seconds from the start request to `execution-completed`, and the CPU seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(url, headers=headers) as session, session.get(
            f"/api/workspaces/{WORKSPACE}/events") as stream:
        await stream.content.readuntil(b"\r\n\r\n")  # the snapshot: subscribed
        cpu_start, started = time.process_time(), time.perf_counter()
        async with session.post("/api/executions/start", json={
                "strategyId": str(strategy_id), "workspaceId": WORKSPACE}) as answer:
            execution_id: str = (await answer.json())["executionId"]
        await _until_completed(stream)
        return execution_id, time.perf_counter() - started, time.process_time() - cpu_start


async def _rss_once_forgotten(services: Services, execution_id: str) -> int:
    """RSS once the runtime has forgotten the execution and handed its memory back:
    `execution-completed` arrives while the actor may still hold the aggregate."""
    runtime = services.engine.runtime
    if not await asyncio.to_thread(runtime.wait, UUID(execution_id), FORGET_TIMEOUT):
        raise RuntimeError(f"execution {execution_id} was still live {FORGET_TIMEOUT} s after"
                           " it completed")
    return settled_rss_kib()


def _feed_positions(views: ViewStore, execution_id: str) -> list[int]:
    """The positions a subscriber must receive: the execution's events up to its end (the
    health monitor's last assessment may come after it, and subscribers stop there)."""
    positions: list[int] = []
    after = 0
    while page := queries.feed_since(views, after, execution_id=execution_id, limit=10_000):
        for row in page:
            positions.append(row["position"])
            if row["type"] == "execution-completed":
                return positions
        after = page[-1]["position"]
    return positions


async def _until_completed(stream: aiohttp.ClientResponse) -> None:
    """Read the stream until the execution-completed frame (cheaply: a byte search)."""
    tail = b""
    async for chunk in stream.content.iter_any():
        tail = tail[-64:] + chunk
        if b"event: execution-completed" in tail:
            return
    raise RuntimeError("the stream ended before execution-completed")


def _start_clients(url: str, token: str, subscribers: int) -> subprocess.Popen[str]:
    """Subscribers in their own process, so that their parsing does not slow the server."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stratexec.bench.clients", url, token, WORKSPACE, str(subscribers)],
        stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ready = process.stdout.readline().strip()
    if ready != "ready":
        raise RuntimeError(f"the stream clients did not start: {ready!r}")
    return process


def _finish_clients(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = process.communicate(timeout=600)
    received: list[dict[str, Any]] = json.loads(out)
    return received


def _latency_summary(received: list[dict[str, Any]], expected: list[int]) -> dict[str, Any]:
    """Latency from each event's recorded time to its arrival, over every subscriber."""
    latencies = sorted(ms for client in received for ms in client["latenciesMs"])
    wanted = set(expected)
    missing = [len(wanted - set(client["positions"])) for client in received]
    duplicated = [len(client["positions"]) - len(set(client["positions"]))
                  for client in received]

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return {"subscribers": len(received), "events": len(expected),
            "p50Ms": percentile(0.50), "p99Ms": percentile(0.99),
            "maxMs": latencies[-1] if latencies else 0.0,
            "missingPerSubscriber": max(missing, default=0),
            "duplicatedPerSubscriber": max(duplicated, default=0)}


def replay(data_dir: Path, database: str | None = None) -> dict[str, Any]:
    """Rebuild every read model from position 0 into a fresh store."""
    store = store_settings(data_dir, database)
    app = store.open_app()
    events = app.recorder.max_notification_id() or 0
    with store.scratch_views() as views:
        started = time.perf_counter()
        rebuild(app, views)
        elapsed = time.perf_counter() - started
    app.close()
    return {"events": events, "seconds": elapsed, "eventsPerSecond": events / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workloads")
    parser.add_argument("workload", choices=("engine", "replay"))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=0)
    parser.add_argument("--again", action="store_true",
                        help="run the execution a second time, for the memory it leaves")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--database", help="a PostgreSQL database instead of SQLite")
    parser.add_argument("--peer", action="store_true",
                        help="with --database: a second server process runs the projections")
    parser.add_argument("--agents-on", choices=AGENTS_ON, default="local")
    args = parser.parse_args()
    if args.workload == "engine":
        with _peer(Path(args.data_dir), args.database if args.peer else None):
            result = asyncio.run(engine_run(args.n, Path(args.data_dir), args.subscribers,
                                            args.again, args.database, args.agents_on))
        result["processes"] = 2 if args.peer else 1
    else:
        result = replay(Path(args.data_dir), args.database)
    print(json.dumps(result))


@contextmanager
def _peer(data_dir: Path, database: str | None) -> Iterator[None]:
    """A `stratexec serve` process on `database`, listening (and so leading the
    projections, as the first process there) before the measured one starts; none
    without a database."""
    if database is None:
        yield
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "stratexec", "serve", "--port", "0", "--data-dir",
         str(data_dir / "peer")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env={**os.environ, **server_environment(database)})
    assert process.stdout is not None
    if "http://" not in process.stdout.readline():
        process.kill()
        raise RuntimeError("the peer server did not start")
    try:
        yield
    finally:
        process.terminate()
        process.wait(60)


if __name__ == "__main__":
    main()
