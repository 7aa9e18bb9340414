"""SIGTERM leaves no stale "running": a real `stratexec serve` stopped gracefully records that
the engine stopped (each attempt under way handed back without counting against its task's
attempts, and the execution marked interrupted), its open streams get that before they
close, the views say so while the server is down, and the next start takes the execution up
and runs it to the end, even with a single attempt per task."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
from api_support import Api, Frame, ServerProcess, sse_frames

from stratexec import usecases
from stratexec.projections.store import ViewStore
from stratexec.settings import StoreSettings

ENGINE = ("--demo-duration", "0.4:0.8", "--demo-failure-rate", "0", "--concurrency", "1",
          "--max-attempts", "1", "--health-interval", "0.2")
STRATEGY = "Launch Acme Insights 2.0"


async def started_with_work_under_way(api: Api) -> str:
    execution_id = await api.start(STRATEGY)
    deadline = time.monotonic() + 30
    while True:  # until an attempt has started: the stop must catch one under way
        status = (await api.get(f"/api/executions/{execution_id}/status")).body
        if any(task["status"] == "in_progress" for task in status["tasks"]):
            return execution_id
        assert time.monotonic() < deadline, "no attempt started"
        await asyncio.sleep(0.05)


async def until_stream_ends(response: aiohttp.ClientResponse, into: list[Frame]) -> None:
    async for frame in sse_frames(response):
        into.append(frame)


async def session_api(session: aiohttp.ClientSession, server: ServerProcess) -> Api:
    async with session.get("/api/openapi.json") as resp:
        return Api(session, server.token, await resp.json())


def recorded_events(tmp_path: Path, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
    app = StoreSettings(tmp_path).open_app()
    try:
        return [(event["type"], event["data"])
                for event in usecases.history(app, UUID(execution_id))]
    finally:
        app.close()


async def test_sigterm_marks_running_executions_interrupted_until_the_next_start(
        tmp_path: Path) -> None:
    server = ServerProcess.start(tmp_path, *ENGINE)
    frames: list[Frame] = []
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            api = await session_api(session, server)
            execution_id = await started_with_work_under_way(api)
            stream = await session.get(f"/api/executions/{execution_id}/events",
                                       headers=api.headers())
            reader = asyncio.create_task(until_stream_ends(stream, frames))
            server.process.terminate()
            assert await asyncio.to_thread(server.process.wait, 30) == 0
            await asyncio.wait_for(reader, 10)  # the stream ended with the server
    finally:
        server.close()

    interrupted = [frame for frame in frames if frame.event == "execution-interrupted"]
    assert len(interrupted) == 1, [frame.event for frame in frames]
    assert interrupted[0].data["data"]["status"] == "running"
    after = frames[frames.index(interrupted[0]) + 1:]
    assert not [f.event for f in after if f.event.startswith(("task-", "execution-"))]

    # While the server is down, the status answer (from the views) says it plainly.
    with ViewStore(str(StoreSettings(tmp_path).views_path)) as views:
        status = usecases.execution_status(views, execution_id)
    assert status is not None
    assert status["execution"]["status"] == "running"
    assert status["execution"]["interruptedAt"] is not None
    assert not [task for task in status["tasks"] if task["status"] in ("assigned",
                                                                         "in_progress")]
    events = recorded_events(tmp_path, execution_id)
    handed_back = [data for kind, data in events if kind == "Execution.TaskInterrupted"]
    assert handed_back
    assert not any(data["counted"] for data in handed_back)  # the stop was not the tasks'
    assert [kind for kind, _ in events if kind.startswith("Execution.")][-1] == \
        "Execution.Interrupted"

    again = ServerProcess.start(tmp_path, *ENGINE)
    try:
        async with aiohttp.ClientSession(base_url=again.url) as session:
            api = await session_api(session, again)
            finished = await api.until_finished(execution_id)
            completed = finished[-1].data["data"]
            assert (completed["status"], completed["failedTasks"]) == ("completed", 0)
            assert "execution-recovered" in {frame.event for frame in finished}
            row = (await api.get(f"/api/executions/{execution_id}/status")).body["execution"]
            assert row["interruptedAt"] is None
    finally:
        again.close()

