"""Retry by hand and the circuit breaker over real HTTP, against the real app: every answer and
stream event is checked against /api/openapi.json."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from api_support import FAST, Api, Frame, collect_until, running_server, sse_frames

from stratexec.circuit_settings import CircuitSettings
from stratexec.domain.retry import RetryPolicy
from stratexec.projections.feed import EVERY_WORKSPACE

SMALL = "Small demo: customer newsletter"
LAUNCH = "Launch Acme Insights 2.0"
BROKEN = replace(FAST, demo_failure_rate=1.0, retry=RetryPolicy(maximum_attempts=1))
FLAKY = replace(FAST, demo_failure_rate=1.0, concurrency=1,
                retry=RetryPolicy(maximum_attempts=3, initial_interval=0.01),
                circuit=CircuitSettings(window=2, failure_rate=0.5, cool_down=3600.0))


async def status(api: Api, execution_id: str) -> dict[str, Any]:
    answer = await api.get(f"/api/executions/{execution_id}/status")
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.body
    return body


async def failed_execution(tmp_path: Path) -> str:
    """An execution of the small demo whose first tasks failed for good (every attempt of
    the agents fails, and a task has one attempt); the server is stopped afterwards."""
    async with running_server(tmp_path, BROKEN) as (api, _):
        execution_id = await api.start(SMALL)
        await api.until_finished(execution_id)
        assert (await status(api, execution_id))["execution"]["status"] == "failed"
    return execution_id


async def test_retry_reopens_a_failed_execution_and_the_stream_shows_it(tmp_path: Path) -> None:
    execution_id = await failed_execution(tmp_path)
    async with running_server(tmp_path, FAST) as (api, _):  # the agents work again
        before = await status(api, execution_id)
        failed = sorted(t["taskId"] for t in before["tasks"] if t["status"] == "failed")
        skipped = sorted(t["taskId"] for t in before["tasks"] if t["status"] == "skipped")
        assert failed
        assert skipped
        base = f"/api/executions/{execution_id}"
        async with api.session.get(f"/api/workspaces/demo/events?lastEventId="
                                   f"{before['position']}", headers=api.headers()) as stream:
            frames = sse_frames(stream)
            retried = await api.post(f"{base}/retry")
            assert (retried.status, retried.body) == (200, {
                "success": True, "execution": {"id": execution_id, "status": "running"}})
            seen = await collect_until(frames, api.document)

        resumed = next(f for f in seen if f.event == "execution-resumed")
        assert resumed.data["executionId"] == execution_id
        assert sorted(resumed.data["data"]["taskIds"]) == failed
        assert sorted(resumed.data["data"]["unskippedTaskIds"]) == skipped
        assigned = [f for f in seen if f.event == "task-assigned"]
        assert seen.index(resumed) < seen.index(assigned[0])
        attempts = {f.data["data"]["taskId"]: f.data["data"]["attempt"] for f in assigned}
        assert {attempts[t] for t in failed} == {2}  # attempt numbers go on upward
        assert {attempts[t] for t in skipped} == {1}
        after = await status(api, execution_id)
        assert after["execution"]["status"] == "completed"
        assert after["execution"]["finishedAt"] is not None
        assert {t["status"] for t in after["tasks"]} == {"completed"}

        again = await api.post(f"{base}/retry")
        assert again.status == 409
        assert again.body["error"]["details"] == {"status": "completed", "command": "retry"}


async def test_retry_of_one_task_and_what_is_refused(tmp_path: Path) -> None:
    execution_id = await failed_execution(tmp_path)
    async with running_server(tmp_path, FAST) as (api, _):
        before = await status(api, execution_id)
        failed = [t["taskId"] for t in before["tasks"] if t["status"] == "failed"]
        base = f"/api/executions/{execution_id}"
        unknown = await api.post(f"{base}/tasks/nope:email/retry")
        assert (unknown.status, unknown.body["error"]["code"]) == (404, "not_found")
        missing = await api.post("/api/executions/00000000-0000-0000-0000-000000000000/retry")
        assert missing.status == 404

        async with api.session.get(f"{base}/events?lastEventId={before['position']}",
                                   headers=api.headers()) as stream:
            one = await api.post(f"{base}/tasks/{failed[0]}/retry")
            assert one.body["execution"] == {"id": execution_id, "status": "running"}
            frames = await collect_until(sse_frames(stream), api.document)
        retried = [f for f in frames if f.event == "execution-resumed"]
        assert [f.data["data"]["taskIds"] for f in retried] == [[failed[0]]]
        after = await status(api, execution_id)
        states = {t["taskId"]: (t["status"], t["failures"]) for t in after["tasks"]}
        assert states[failed[0]] == ("completed", 0)
        assert all(states[t] == ("failed", 1) for t in failed[1:])
        assert after["execution"]["status"] == ("failed" if failed[1:] else "completed")
        done = next(t["taskId"] for t in after["tasks"] if t["status"] == "completed")
        refused = await api.post(f"{base}/tasks/{done}/retry")
        assert refused.status == 409
        assert "not failed" in refused.body["error"]["message"]


def paused_frames(frames: list[Frame]) -> list[dict[str, Any]]:
    return [f.data for f in frames if f.event == "agent-type-paused"]


async def test_a_failing_agent_type_pauses_on_every_workspace_stream_and_resumes_by_hand(
        tmp_path: Path) -> None:
    async with running_server(tmp_path, FLAKY) as (api, _):
        async with api.session.get("/api/workspaces/demo/events",
                                   headers=api.headers()) as stream:
            frames = sse_frames(stream)
            execution_id = await api.start(LAUNCH)
            seen = await collect_until(frames, api.document, done="agent-type-paused")
        (paused,) = paused_frames(seen)
        agent_type = paused["data"]["agentType"]
        assert paused["workspaceId"] == EVERY_WORKSPACE
        assert paused["data"]["window"] == 2
        assert paused["data"]["failureRate"] == 1.0
        assert all(key.startswith(f"{execution_id}:") for key in paused["data"]["attempts"])

    # The agents work again after a restart, but what the breaker paused stays paused.
    async with running_server(tmp_path, FAST) as (api, _):
        health = (await api.with_token(None).get("/healthz")).body
        listed = {p["agentType"]: p for p in health["pausedAgentTypes"]}
        assert listed[agent_type]["state"] == "open"
        assert listed[agent_type]["attempts"] == paused["data"]["attempts"]
        assert health["status"] == "ok"
        async with api.session.get(f"/api/workspaces/demo/events?lastEventId={paused['position']}",
                                   headers=api.headers()) as stream:
            for name in listed:
                resumed = await api.post(f"/api/agents/{name}/resume")
                assert (resumed.status, resumed.body) == (200, {
                    "success": True, "agentType": {"name": name, "state": "closed"}})
            seen = await collect_until(sse_frames(stream), api.document)
        assert (await api.with_token(None).get("/healthz")).body["pausedAgentTypes"] == []
        by_operator = [f.data["data"] for f in seen if f.event == "agent-type-resumed"]
        assert {"agentType": agent_type, "by": "operator", "attempt": None} in by_operator
        assert (await status(api, execution_id))["execution"]["status"] == "completed"

        again = await api.post(f"/api/agents/{agent_type}/resume")
        assert again.status == 409
        assert again.body["error"]["details"] == {"agentType": agent_type, "state": "closed"}
        unknown = await api.post("/api/agents/plumbing/resume")
        assert (unknown.status, unknown.body["error"]["code"]) == (404, "not_found")
