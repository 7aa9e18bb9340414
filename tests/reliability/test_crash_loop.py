"""A crash loop: a real `stratexec serve` killed with SIGKILL at random moments while
executions started over HTTP run and SSE subscribers follow them, reconnecting with
`Last-Event-ID` to each new server. `STRATEXEC_CRASH_KILLS` sets how many kills (20 by
default). Afterwards, on the last server:

- every execution acknowledged with a 201 exists, and every execution reached exactly one
  terminal state; its events' versions run 1, 2, 3, ... with no gap;
- every task of every execution reached exactly one terminal outcome, and succeeded at
  most once;
- every subscriber received the feed's positions strictly increasing, with no gap and no
  duplicate, against the feed the stream replays from position 0;
- `stratexec replay --verify` finds the read models identical to a rebuild from the log,
  and `PRAGMA integrity_check` is ok on both SQLite files.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from api_support import ROOT, ServerProcess, sse_frames
from helpers import count_from_env, terminal_events_per_task

from stratexec.projections.feed import EVERY_WORKSPACE

KILLS = count_from_env("STRATEXEC_CRASH_KILLS", 20)
OPTIONS = ("--demo-duration", "0.05:0.3", "--demo-failure-rate", "0.1", "--max-attempts", "8",
           "--retry-interval", "0.05", "--health-interval", "0.3", "--concurrency", "3",
           "--circuit-cool-down", "0.05")  # a type paused by a run of bad luck: briefly
STRATEGIES = ("Launch Acme Insights 2.0", "Small demo: customer newsletter")
FINISHED = ("completed", "failed", "cancelled")
EXECUTION_ENDS = ("Execution.Completed", "Execution.Failed", "Execution.Cancelled")
NO_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5)


class Servers:
    """The `stratexec serve` of the moment on one data directory: started, killed,
    started again. `up` is set while one serves; its stderr is kept for failure messages."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.up = asyncio.Event()
        self.changed = asyncio.Condition()
        self.generation = 0
        self.server: ServerProcess | None = None
        self.drain: threading.Thread | None = None
        self.logs: list[str] = []

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def headers(self) -> dict[str, str]:
        assert self.server is not None
        return {"Authorization": f"Bearer {self.server.token}"}

    async def start(self) -> None:
        server = await asyncio.to_thread(ServerProcess.start, self.data_dir, *OPTIONS)
        stderr = server.process.stderr
        assert stderr is not None
        self.drain = threading.Thread(target=self.logs.extend, args=(stderr,), daemon=True)
        self.drain.start()
        async with self.changed:
            self.server, self.generation = server, self.generation + 1
            self.up.set()
            self.changed.notify_all()

    async def kill(self) -> None:
        assert self.server is not None
        self.up.clear()
        self.server.process.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(self.server.process.wait, 30) == -signal.SIGKILL
        await self.closed()

    async def stop(self) -> None:
        """SIGTERM, as a service manager stops it: a graceful stop exits 0."""
        assert self.server is not None
        self.up.clear()
        assert await asyncio.to_thread(self.server.stop) == 0, self.tail()
        await self.closed()

    async def closed(self) -> None:
        assert self.server is not None
        assert self.drain is not None
        await asyncio.to_thread(self.drain.join, 30)  # its stderr ended with it
        self.server.close()

    async def successor(self, generation: int) -> None:
        """Until a server later than `generation` serves."""
        async with self.changed:
            await self.changed.wait_for(
                lambda: self.generation != generation and self.up.is_set())

    def abandon(self) -> None:
        """After a failure: kill the server if it still runs, and close its pipes."""
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.kill()
            self.server.process.wait(30)
            self.server.close()

    def tail(self) -> str:
        return "".join(self.logs[-40:])


@dataclass
class Subscriber:
    """An SSE client that follows the demo workspace's stream (or one execution's) across
    every server, resuming each time with the last id it received; without `from_start`
    its first connection begins with a snapshot."""

    from_start: bool
    execution_id: str | None = None
    ids: list[int] = field(default_factory=list)
    snapshot_at: int | None = None
    connections: int = 0
    refusals: list[int] = field(default_factory=list)

    @property
    def path(self) -> str:
        if self.execution_id is None:
            return "/api/workspaces/demo/events"
        return f"/api/executions/{self.execution_id}/events"

    def last_id(self) -> int | None:
        if self.ids:
            return self.ids[-1]
        return 0 if self.from_start else self.snapshot_at

    async def follow(self, servers: Servers) -> None:
        async with aiohttp.ClientSession(timeout=NO_TIMEOUT) as session:
            while True:
                await servers.up.wait()
                generation = servers.generation
                if not await self.read(session, servers):
                    await asyncio.wait_for(servers.successor(generation), 120)

    async def read(self, session: aiohttp.ClientSession, servers: Servers) -> bool:
        """One connection, until the server dies or ends the stream; False if refused."""
        last = self.last_id()
        headers = servers.headers | ({} if last is None else {"Last-Event-ID": str(last)})
        self.connections += 1
        with suppress(aiohttp.ClientError, ConnectionError):
            async with session.get(servers.url + self.path, headers=headers) as response:
                if response.status != 200:
                    self.refusals.append(response.status)
                    return False
                async for frame in sse_frames(response):
                    if frame.event == "snapshot":
                        assert self.snapshot_at is None, "a resumed stream sent a snapshot"
                        assert not self.ids
                        self.snapshot_at = frame.id
                    elif frame.id is not None:
                        self.ids.append(frame.id)
        return True


async def strategy_ids(servers: Servers, session: aiohttp.ClientSession) -> list[str]:
    async with session.get(f"{servers.url}/api/strategies?workspaceId=demo",
                           headers=servers.headers) as response:
        by_name = {s["name"]: s["id"] for s in (await response.json())["strategies"]}
    return [by_name[name] for name in STRATEGIES]


async def start_execution(servers: Servers, strategy_id: str) -> str | None:
    """POST /api/executions/start; the id when it was acknowledged (201), None when the
    answer was lost to a kill."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        with suppress(aiohttp.ClientError, ConnectionError):
            async with session.post(f"{servers.url}/api/executions/start",
                                    headers=servers.headers,
                                    json={"strategyId": strategy_id, "workspaceId": "demo"}
                                    ) as response:
                assert response.status == 201, await response.text()
                execution_id: str = (await response.json())["executionId"]
                return execution_id
    return None


async def get_json(servers: Servers, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(
            servers.url + path, headers=servers.headers) as response:
        assert response.status == 200, (path, await response.text())
        return await response.json()


async def executions(servers: Servers) -> list[dict[str, Any]]:
    page = await get_json(servers, "/api/executions?workspaceId=demo&limit=1000")
    listed: list[dict[str, Any]] = page["executions"]
    return listed


async def until_all_finished(servers: Servers, timeout: float = 240) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        listed = await executions(servers)
        if all(e["status"] in FINISHED for e in listed):
            return listed
        assert time.monotonic() < deadline, (
            [e["status"] for e in listed], servers.tail())
        await asyncio.sleep(0.2)


async def history(servers: Servers, execution_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page = await get_json(
            servers, f"/api/executions/{execution_id}/history?after={after}&limit=1000")
        events += page["events"]
        after = page["nextAfter"]
    return events


def feed_positions(views: Path, execution_id: str | None = None) -> list[int]:
    """The event feed's positions as the views file holds them: a workspace stream's (its
    rows and those for every workspace), or one execution's."""
    with sqlite3.connect(f"file:{views}?mode=ro", uri=True, timeout=10) as connection:
        if execution_id is None:
            rows = connection.execute(
                "SELECT position FROM event_feed WHERE workspace_id IN ('demo', ?)"
                " ORDER BY position", (EVERY_WORKSPACE,)).fetchall()
        else:
            rows = connection.execute(
                "SELECT position FROM event_feed WHERE execution_id = ? ORDER BY position",
                (execution_id,)).fetchall()
    return [position for (position,) in rows]


async def replayed_from_zero(servers: Servers, path: str, through: int) -> list[int]:
    """The stream's ids read in one go from position 0, up to position `through`."""
    ids: list[int] = []
    async with aiohttp.ClientSession(timeout=NO_TIMEOUT) as session, session.get(
            servers.url + path, headers=servers.headers | {"Last-Event-ID": "0"}) as response:

        async def read() -> None:
            async for frame in sse_frames(response):
                if frame.id is not None:
                    ids.append(frame.id)
                    if frame.id >= through:
                        return

        await asyncio.wait_for(read(), 60)
    return ids


async def caught_up(subscribers: list[Subscriber], followers: list[asyncio.Task[None]],
                    through: dict[str, int], timeout: float = 60) -> None:
    """Until every subscriber received position `through[its path]`; a follower that
    ended (an assertion of its own failed) fails the test with its error."""
    deadline = time.monotonic() + timeout
    while any((s.last_id() or 0) < through[s.path] for s in subscribers):
        for follower in followers:
            if follower.done():
                follower.result()
        assert time.monotonic() < deadline, [(s.path, s.last_id()) for s in subscribers]
        await asyncio.sleep(0.05)


async def stop_following(followers: list[asyncio.Task[None]]) -> None:
    for follower in followers:
        follower.cancel()
    await asyncio.gather(*followers, return_exceptions=True)


def check_execution(execution: dict[str, Any], events: list[dict[str, Any]]) -> None:
    own = [e for e in events if e["type"].startswith("Execution.")]
    assert [e["version"] for e in own] == list(range(1, len(own) + 1)), execution["id"]
    assert [e["type"] for e in own if e["type"] in EXECUTION_ENDS] == [
        f"Execution.{execution['status'].capitalize()}"], execution["id"]
    planned = {task["id"] for task in own[0]["data"]["tasks"]}
    ends = terminal_events_per_task(own)
    assert set(ends) == planned, execution["id"]
    assert set(ends.values()) == {1}, (execution["id"], ends)  # one outcome per task
    successes = Counter(e["data"]["taskId"] for e in own if e["type"] == "Execution.TaskSucceeded")
    assert all(count == 1 for count in successes.values()), successes


def check_files(data_dir: Path) -> None:
    for name in ("events.sqlite", "views.sqlite"):
        with sqlite3.connect(data_dir / name) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)], name


async def test_kill_9_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    servers = Servers(tmp_path)
    rng = random.Random()
    acknowledged: list[str] = []
    subscribers = [Subscriber(from_start=True), Subscriber(from_start=False)]
    await servers.start()
    async with aiohttp.ClientSession() as session:
        strategies = await strategy_ids(servers, session)
    followers = [asyncio.create_task(s.follow(servers)) for s in subscribers]
    try:
        for kill in range(KILLS):
            started = await start_execution(servers, strategies[kill % len(strategies)])
            if started is not None:
                acknowledged.append(started)
            if started is not None and len(subscribers) == 2:  # and one execution's stream
                subscribers.append(Subscriber(from_start=True, execution_id=started))
                followers.append(asyncio.create_task(subscribers[-1].follow(servers)))
            await asyncio.sleep(rng.uniform(0.0, 1.5))  # the random moment of the kill
            await servers.kill()
            await servers.start()

        finished = await until_all_finished(servers)
        assert {e["id"] for e in finished} >= set(acknowledged)  # no acknowledged write lost
        assert len(acknowledged) >= KILLS // 2, "too few starts were answered to prove much"
        for execution in finished:
            check_execution(execution, await history(servers, execution["id"]))

        views = tmp_path / "views.sqlite"
        feeds = {s.path: feed_positions(views, s.execution_id) for s in subscribers}
        await caught_up(subscribers, followers,
                        {path: feed[-1] for path, feed in feeds.items()})
        for path, feed in feeds.items():
            assert await replayed_from_zero(servers, path, feed[-1]) == feed
        for subscriber in subscribers:
            feed = feeds[subscriber.path]
            start = 0 if subscriber.from_start else subscriber.snapshot_at
            assert start is not None
            received = [p for p in subscriber.ids if p <= feed[-1]]
            assert received == [p for p in feed if p > start], subscriber.path
            assert subscriber.connections > KILLS // 2  # it did follow the servers
            assert subscriber.refusals == []
        await stop_following(followers)
        await servers.stop()
    finally:
        await stop_following(followers)
        servers.abandon()

    verified = subprocess.run(
        [sys.executable, "-m", "stratexec", "replay", acknowledged[0], "--verify",
         "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300,
        check=False)
    assert verified.returncode == 0, verified.stderr
    assert "identical" in verified.stderr
    check_files(tmp_path)
