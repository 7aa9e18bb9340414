"""Every node serves every stream: a subscriber on one node sees the events of executions
another node runs, in log order, and resumes on a third node from its Last-Event-ID without
missing or repeating anything."""

from __future__ import annotations

import asyncio

import aiohttp
import psycopg
import pytest
from api_support import Frame, sse_frames
from cluster_support import Client, Cluster, until

from stratexec.settings import postgres_conninfo

pytestmark = pytest.mark.postgres


def execution_feed(postgres_env: dict[str, str], execution_id: str) -> list[int]:
    with psycopg.connect(postgres_conninfo(postgres_env)) as connection:
        return [row[0] for row in connection.execute(
            "SELECT position FROM stratexec_views.event_feed WHERE execution_id = %s"
            " ORDER BY position", (execution_id,))]


async def frames_until(client: Client, path: str, headers: dict[str, str], stop: int,
                       ) -> list[Frame]:
    """The frames with an id of a stream, up to the one that has `stop` frames in all."""
    seen: list[Frame] = []
    async with client.session.get(client.node.url + path,
                                  headers={**client.headers, **headers}) as response:
        assert response.status == 200
        async for frame in sse_frames(response):
            if frame.id is not None:
                seen.append(frame)
            if len(seen) >= stop or frame.event == "execution-completed":
                break
    return seen


async def test_a_stream_resumed_on_another_node_misses_nothing_and_repeats_nothing(
        cluster: Cluster, session: aiohttp.ClientSession, postgres_env: dict[str, str]
        ) -> None:
    a, b, c = (Client(session, cluster.start()) for _ in range(3))
    (execution_id,) = await a.start_executions(1)
    path = f"/api/executions/{execution_id}/events"
    first = await frames_until(b, path + "?lastEventId=0", {}, stop=4)
    assert len(first) == 4
    rest = await asyncio.wait_for(frames_until(
        c, path, {"Last-Event-ID": str(first[-1].id)}, stop=10_000), 60)
    assert rest[-1].event == "execution-completed"

    async def projected() -> list[int]:
        return execution_feed(postgres_env, execution_id)

    expected = await until(projected, 10, "the feed rows")
    completed = rest[-1].id
    assert completed is not None
    assert [frame.id for frame in first + rest] == [p for p in expected if p <= completed]
