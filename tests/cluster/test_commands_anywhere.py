"""Commands sent to any node reach the execution's owner and answer as on the owner itself:
200 with the new status, 409 when the state forbids it."""

from __future__ import annotations

import aiohttp
import pytest
from cluster_support import Client, Cluster, until

pytestmark = pytest.mark.postgres
SLOW = ("--demo-duration", "2:3", "--concurrency", "1")  # still running while commanded


async def test_pause_on_b_an_execution_of_a_and_resume_it_on_c(
        cluster: Cluster, session: aiohttp.ClientSession) -> None:
    a, b, c = (Client(session, cluster.start(*SLOW)) for _ in range(3))
    (execution_id,) = await a.start_executions(1)
    command = f"/api/executions/{execution_id}"

    status, paused = await b.call("POST", f"{command}/pause")
    assert (status, paused["execution"]["status"]) == (200, "paused")
    status, on_a = await a.call("GET", f"{command}/status")
    assert on_a["execution"]["status"] == "paused"  # the owner's own state, on any node
    status, again = await c.call("POST", f"{command}/pause")
    assert (status, again["error"]["code"]) == (409, "invalid_transition")

    status, resumed = await c.call("POST", f"{command}/resume")
    assert (status, resumed["execution"]["status"]) == (200, "running")
    status, cancelled = await b.call("POST", f"{command}/cancel")
    assert (status, cancelled["execution"]["status"]) == (200, "cancelled")
    status, refused = await c.call("POST", f"{command}/resume")
    assert (status, refused["error"]["code"]) == (409, "invalid_transition")
    for node in (a, b, c):
        status, seen = await node.call("GET", f"{command}/status")
        assert (status, seen["execution"]["status"]) == (200, "cancelled")


async def test_new_executions_started_on_one_node_spread_over_the_live_nodes(
        cluster: Cluster, session: aiohttp.ClientSession) -> None:
    a, b = (Client(session, cluster.start(*SLOW)) for _ in range(2))
    ids = await a.start_executions(6)

    async def both_run_some() -> list[int]:
        owned = [(await node.healthz())["ownedExecutions"] for node in (a, b)]
        return owned if sum(owned) == len(ids) and min(owned) >= 2 else []

    owned = await until(both_run_some, 20, "each node runs a share of the new executions")
    assert max(owned) - min(owned) <= 2
