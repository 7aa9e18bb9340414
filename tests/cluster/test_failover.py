"""Executions survive their process: `kill -9` a node mid-run and the others take its
executions over, continue them from their events, and every stream on another node sees
every event exactly once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import aiohttp
import psycopg
import pytest
from api_support import Frame
from cluster_support import EXECUTIONS, Client, Cluster, until
from helpers import stratexec, terminal_events_per_task

from stratexec.settings import postgres_conninfo

pytestmark = pytest.mark.postgres
FINISHED = ("completed", "failed", "cancelled")


def feed_positions(postgres_env: dict[str, str]) -> list[int]:
    with psycopg.connect(postgres_conninfo(postgres_env)) as connection:
        return [row[0] for row in connection.execute(
            "SELECT position FROM stratexec_views.event_feed WHERE workspace_id IN ('demo', '')"
            " ORDER BY position")]


@pytest.mark.parametrize("nodes", [2, 3])
async def test_kill_9_of_a_node_mid_run_its_executions_complete_on_the_others(
        cluster: Cluster, session: aiohttp.ClientSession, postgres_env: dict[str, str],
        nodes: int) -> None:
    a = Client(session, cluster.start())
    others = [Client(session, cluster.start()) for _ in range(nodes - 1)]
    b = others[0]
    seen: list[Frame] = []
    subscriber = asyncio.create_task(b.stream("/api/workspaces/demo/events?lastEventId=0",
                                              seen))
    ids = await a.start_executions(EXECUTIONS)

    async def some_progress() -> bool:
        return sum(frame.event == "task-completed" for frame in seen) >= EXECUTIONS

    await until(some_progress, 60, "tasks completed before the kill")
    a.node.process.send_signal(signal.SIGKILL)
    a.node.process.wait(10)
    unfinished = [e for e in await b.executions() if e["status"] not in FINISHED]
    assert unfinished, "the kill came too late: every execution had finished"

    async def all_finished() -> list[dict[str, object]]:
        executions = await b.executions()
        done = [e for e in executions if e["id"] in ids and e["status"] in FINISHED]
        return executions if len(done) == len(ids) else []

    executions = await until(all_finished, 90, "every execution finished on the others")
    assert {e["status"] for e in executions if e["id"] in ids} == {"completed"}
    interrupted = 0
    for execution_id in ids:
        events = await b.history(execution_id)
        interrupted += sum(e["type"] == "Execution.TaskInterrupted" for e in events)
        ends = terminal_events_per_task(events)
        assert set(ends.values()) == {1}, (execution_id, ends)
        successes = Counter(e["data"]["taskId"] for e in events
                            if e["type"] == "Execution.TaskSucceeded")
        assert max(successes.values()) == 1, (execution_id, successes)
    assert interrupted > 0  # attempts under way at the kill got a new, recorded attempt
    survivors = [await other.healthz() for other in others]
    assert sum(node["takeovers"] for node in survivors) > 0  # (the views may lag the kill)
    assert [node["runsProjections"] for node in survivors].count(True) == 1

    expected = feed_positions(postgres_env)

    async def stream_caught_up() -> bool:
        return bool(seen) and seen[-1].id == expected[-1]

    await until(stream_caught_up, 30, "the stream on a surviving node caught up")
    subscriber.cancel()
    positions = [frame.id for frame in seen]
    assert positions == expected  # every event once, in log order, across the takeover


async def test_kill_9_of_the_projection_leader_another_leads_and_the_views_equal_a_rebuild(
        cluster: Cluster, session: aiohttp.ClientSession, postgres_env: dict[str, str]
        ) -> None:
    leader = Client(session, cluster.start())
    assert (await leader.healthz())["runsProjections"]
    follower = Client(session, cluster.start())
    assert not (await follower.healthz())["runsProjections"]
    ids = await follower.start_executions(EXECUTIONS)  # the follower runs them

    async def some_finished() -> bool:
        executions = await follower.executions()
        return any(e["status"] in FINISHED for e in executions)

    await until(some_finished, 60, "executions finished before the kill")
    leader.node.process.send_signal(signal.SIGKILL)
    leader.node.process.wait(10)

    async def follower_leads() -> bool:
        return bool((await follower.healthz())["runsProjections"])

    await until(follower_leads, 10, "the follower runs the projections")

    async def all_finished() -> bool:
        executions = await follower.executions()
        return len([e for e in executions if e["id"] in ids and e["status"] in FINISHED]) \
            == len(ids)

    await until(all_finished, 90, "every execution finished")
    verified = await asyncio.to_thread(
        stratexec, "replay", ids[0], "--verify", data_dir=cluster.tmp_path / "verify",
        env=cluster.env)
    assert verified.returncode == 0, verified.stderr
    assert "identical" in verified.stderr



async def test_a_hung_node_loses_its_executions_when_its_idle_session_ends(
        cluster: Cluster, session: aiohttp.ClientSession) -> None:
    """SIGSTOP keeps a process's sockets open, so PostgreSQL would never free its locks on
    its own: the lock connections' idle_session_timeout ends them, another node takes the
    (paused, so that the hung node holds no save open) executions over, resumes and
    completes them, and the hung node, woken, owns nothing and records nothing more."""
    cluster.env["STRATEXEC_LOCK_IDLE_TIMEOUT"] = "3"
    a = Client(session, cluster.start())
    b = Client(session, cluster.start())
    ids = await a.start_executions(4)
    for execution_id in ids:
        status, answer = await a.call("POST", f"/api/executions/{execution_id}/pause")
        assert status in (200, 409), answer  # 409: it had finished already

    async def settled() -> bool:
        executions = await b.executions()
        return sum(e["id"] in ids and e["status"] in ("paused", *FINISHED)
                   for e in executions) == 4

    await until(settled, 30, "every execution paused (or finished)")
    paused = [e["id"] for e in await b.executions() if e["id"] in ids and e["status"] == "paused"]
    owned_by_a = (await a.healthz())["ownedExecutions"]
    assert owned_by_a, "node A owned none of the paused executions"
    a.node.process.send_signal(signal.SIGSTOP)
    try:
        async def b_owns_them() -> bool:
            return bool((await b.healthz())["ownedExecutions"] >= len(paused))

        await until(b_owns_them, 30, "node B took over the hung node's executions")
        for execution_id in paused:
            status, answer = await b.call("POST", f"/api/executions/{execution_id}/resume")
            assert status == 200, answer

        async def all_finished() -> bool:
            executions = await b.executions()
            return sum(e["id"] in ids and e["status"] in FINISHED for e in executions) == 4

        await until(all_finished, 90, "every execution finished on node B")
        assert (await b.healthz())["takeovers"] > 0
    finally:
        a.node.process.send_signal(signal.SIGCONT)

    async def a_owns_none() -> bool:
        return not (await a.healthz())["ownedExecutions"]

    await until(a_owns_none, 30, "the woken node A owns nothing")
    for execution_id in ids:
        events = await b.history(execution_id)
        assert set(terminal_events_per_task(events).values()) == {1}, execution_id
        successes = Counter(e["data"]["taskId"] for e in events
                            if e["type"] == "Execution.TaskSucceeded")
        assert max(successes.values()) == 1, (execution_id, successes)
