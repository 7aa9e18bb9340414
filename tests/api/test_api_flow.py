"""The seed's flow over real HTTP: define, start, watch, pause, resume, cancel; bad input;
first start; operations endpoints. Every JSON answer is checked against /api/openapi.json."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from api_support import (
    FAST,
    SLOW,
    ServerProcess,
    collect_until,
    metric_families,
    openmetrics_families,
    running_server,
    sse_frames,
)

from stratexec.api.validation import MAX_OFFSET

ROOT = Path(__file__).resolve().parents[2]
METRIC_TYPES = {
    "stratexec_executions": "gauge", "stratexec_tasks": "gauge",
    "stratexec_event_append_seconds": "histogram", "stratexec_projection_position": "gauge",
    "stratexec_projection_lag_events": "gauge", "stratexec_stream_subscribers": "gauge",
    "stratexec_live_executions": "gauge"}


async def test_first_start_creates_the_demo_workspace_and_later_starts_reuse_it(
        tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        first_token = api.token
        strategies = (await api.get("/api/strategies")).body["strategies"]
        assert sorted(s["name"] for s in strategies) == [
            "Launch Acme Insights 2.0", "Small demo: customer newsletter"]
        assert {s["workspaceId"] for s in strategies} == {"demo"}
    async with running_server(tmp_path) as (api, _):
        assert api.token == first_token
        assert len((await api.get("/api/strategies")).body["strategies"]) == 2


async def test_the_seed_flow_runs_an_execution_to_completion(tmp_path: Path) -> None:
    async with running_server(tmp_path, FAST) as (api, _):
        strategies = (await api.get("/api/strategies")).body["strategies"]
        launch = next(s for s in strategies if s["name"].startswith("Launch"))
        detail = (await api.get(f"/api/strategies/{launch['id']}")).body["strategy"]
        assert len(detail["plan"]["tasks"]) == launch["taskCount"] == 38
        async with api.session.get("/api/workspaces/demo/events", headers=api.headers()
                                   ) as stream:
            frames = sse_frames(stream)
            started = await api.post("/api/executions/start",
                                     {"strategyId": launch["id"], "workspaceId": "demo"})
            assert started.status == 201
            execution = started.body["execution"]
            assert (execution["status"], execution["totalTasks"]) == ("pending", 38)
            execution_id = started.body["executionId"]
            seen = await collect_until(frames, api.document)
        assert seen[0].event == "snapshot"
        types = {frame.event for frame in seen}
        assert {"execution-started", "task-assigned", "task-progress", "task-completed",
                "execution-completed"} <= types
        positions = [frame.id or 0 for frame in seen]
        assert positions == sorted(set(positions))
        status = (await api.get(f"/api/executions/{execution_id}/status")).body
        assert status["execution"]["status"] == "completed"
        assert status["execution"]["completedTasks"] == 38
        assert len(status["tasks"]) == 38
        assert {m["agent"] for m in status["metrics"]["agents"]} == {
            "email", "content", "research", "scheduling", "analysis", "coordination"}
        assert 0 <= status["health"]["score"] <= 100
        listed = (await api.get("/api/executions?status=completed")).body["executions"]
        assert [e["id"] for e in listed] == [execution_id]


async def test_pause_resume_and_cancel_answer_with_the_new_status_or_409(
        tmp_path: Path) -> None:
    async with running_server(tmp_path, SLOW) as (api, _):
        execution_id = await api.start("Launch Acme Insights 2.0")
        base = f"/api/executions/{execution_id}"
        paused = await api.post(f"{base}/pause")
        assert (paused.status, paused.body["execution"]["status"]) == (200, "paused")
        again = await api.post(f"{base}/pause")
        assert again.status == 409
        assert again.body["error"]["code"] == "invalid_transition"
        assert (await api.get(f"{base}/status")).body["execution"]["status"] == "paused"
        resumed = await api.post(f"{base}/resume")
        assert resumed.body["execution"]["status"] == "running"
        cancelled = await api.post(f"{base}/cancel")
        assert cancelled.body["execution"]["status"] == "cancelled"
        assert (await api.post(f"{base}/resume")).status == 409
        assert (await api.post(f"{base}/cancel")).status == 409
        status = (await api.get(f"{base}/status")).body
        unfinished = [t for t in status["tasks"] if t["status"] != "completed"]
        assert unfinished
        assert {t["status"] for t in unfinished} == {"cancelled"}
        assert status["execution"]["cancelledTasks"] == len(unfinished)


async def test_bad_input_gets_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        before = (await api.get("/api/strategies")).body["strategies"]
        malformed = await api.call("POST", "/api/strategies", raw=b"{not json")
        assert (malformed.status, malformed.body["error"]["code"]) == (400, "bad_request")
        assert malformed.body["error"]["details"]["problems"][0]["path"] == "body"
        unknown = await api.post("/api/strategies", {"name": "x", "items": [
            {"id": "a", "level": 1, "title": "A", "colour": "red"}]})
        assert unknown.status == 400
        assert unknown.body["error"]["details"]["problems"][0]["path"] == "body.items[0].colour"
        mistyped = await api.post("/api/strategies", {"name": "x", "items": [
            {"id": "a", "level": "1", "title": "A"}]})
        assert mistyped.body["error"]["message"] == (
            "body.items[0].level: expected an integer, got a string")
        cyclic = json.loads((ROOT / "examples" / "cyclic-dependencies.json").read_text())
        rejected = await api.post("/api/strategies", cyclic)
        assert (rejected.status, rejected.body["error"]["code"]) == (422, "dependency_cycle")
        assert rejected.body["error"]["details"]["cycle"] == [
            "l4-draft-agenda", "l4-book-venue", "l4-email-invitations", "l4-draft-agenda"]
        orphan = await api.post("/api/strategies", {"name": "x", "items": [
            {"id": "a", "level": 4, "parentId": "nowhere", "title": "Send it"}]})
        assert orphan.status == 422
        assert "unknown parent id 'nowhere'" in orphan.body["error"]["message"]
        huge = await api.call("POST", "/api/strategies", raw=b" " * (65 * 1024))
        assert (huge.status, huge.body["error"]["code"]) == (413, "payload_too_large")
        missing = await api.post("/api/executions/start", {"strategyId": "nope"})
        assert missing.body["error"]["details"]["problems"][0]["path"] == "body.workspaceId"
        unknown_strategy = await api.post(
            "/api/executions/start",
            {"strategyId": "00000000-0000-0000-0000-000000000000", "workspaceId": "demo"})
        assert unknown_strategy.status == 404
        paging = await api.get("/api/executions?limit=abc")
        assert paging.body["error"]["details"]["problems"][0]["path"] == "query.limit"
        assert (await api.get("/api/executions?status=sleeping")).status == 400
        assert (await api.get("/api/executions/not-a-uuid/status")).status == 404
        assert (await api.get("/api/no/such/route")).status == 404
        assert (await api.call("DELETE", "/api/strategies")).status == 405
        assert (await api.get("/api/strategies")).body["strategies"] == before
        assert (await api.get("/api/executions")).body["executions"] == []


async def test_requests_without_a_valid_token_are_refused(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        for token in (None, "sx_not-a-token"):
            answer = await api.with_token(token).get("/api/strategies")
            assert answer.status == 401
            assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert (await api.with_token(None).get("/healthz")).status == 200
        assert (await api.with_token(None).get("/api/openapi.json")).status == 200


async def test_the_dashboard_link_sets_an_http_only_cookie(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, server):
        jar = aiohttp.CookieJar(unsafe=True)  # a browser keeps cookies of 127.0.0.1 too
        async with aiohttp.ClientSession(base_url=str(server.make_url("")),
                                         cookie_jar=jar) as browser:
            async with browser.get(f"/?token={api.token}", allow_redirects=False) as resp:
                assert resp.status == 303
                assert resp.headers["Location"] == "/"
                cookie = resp.headers["Set-Cookie"]
                assert "HttpOnly" in cookie
                assert "stratexec_token=" in cookie
            async with browser.get("/api/strategies") as resp:  # the cookie now authenticates
                assert resp.status == 200
            async with browser.get("/?token=sx_forged", allow_redirects=False) as resp:
                assert resp.status == 401


async def test_audit_endpoints_show_history_and_past_states(tmp_path: Path) -> None:
    async with running_server(tmp_path, FAST) as (api, _):
        execution_id = await api.start("Small demo: customer newsletter")
        await api.until_finished(execution_id)
        base = f"/api/executions/{execution_id}"
        history = (await api.get(f"{base}/history?limit=5")).body
        assert len(history["events"]) == 5  # the execution's events and its health's
        own = [e["version"] for e in history["events"] if e["type"].startswith("Execution.")]
        assert own == list(range(1, len(own) + 1))
        assert history["events"][0]["type"] == "Execution.Started"
        rest = (await api.get(f"{base}/history?after={history['nextAfter']}&limit=1000")).body
        assert rest["nextAfter"] is None
        everything = history["events"] + rest["events"]
        positions = [e["position"] for e in everything]
        assert positions == sorted(set(positions))
        first = (await api.get(f"{base}/state?version=1")).body["state"]
        assert (first["version"], first["status"]) == (1, "pending")
        assert {t["status"] for t in first["tasks"]} == {"pending"}
        latest = (await api.get(f"{base}/state")).body["state"]
        assert latest["status"] == "completed"
        assert latest["version"] == latest["latestVersion"]
        too_far = await api.get(f"{base}/state?version={latest['latestVersion'] + 1}")
        assert too_far.status == 404  # as documented: a version that does not exist
        assert too_far.body["error"]["details"] == {"latestVersion": latest["latestVersion"]}
        for beyond in ("offset", "after"):  # past the documented maximum: a 400 naming it
            path = "/api/executions" if beyond == "offset" else f"{base}/history"
            answer = await api.get(f"{path}?{beyond}={MAX_OFFSET + 1}")
            assert answer.status == 400
            assert answer.body["error"]["details"]["problems"][0]["path"] == f"query.{beyond}"
        snapshots = (await api.get(f"{base}/health")).body["snapshots"]
        assert snapshots
        assert snapshots[-1]["status"] in ("Excellent", "Good", "Degraded", "Critical")


async def test_health_and_metrics_report_the_engine(tmp_path: Path) -> None:
    async with running_server(tmp_path, FAST) as (api, _):
        execution_id = await api.start("Small demo: customer newsletter")
        await api.until_finished(execution_id)
        health = (await api.with_token(None).get("/healthz")).body
        assert health["status"] == "ok"
        assert health["store"]["kind"] == "sqlite"
        assert health["projections"]["lag"] >= 0
        assert "position" not in health["store"]  # how busy the service is: for tokens only
        assert "position" not in health["projections"]
        with_token = (await api.get("/healthz")).body
        assert with_token["store"]["position"] >= with_token["projections"]["position"] > 0
        scrape = await api.get("/metrics")
        assert scrape.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        families = metric_families(scrape.body)
        assert {name: families[name].type for name in METRIC_TYPES} == METRIC_TYPES
        assert all(family.documentation for family in families.values())
        executions = {s.labels["status"]: s.value for s in families["stratexec_executions"].samples}
        assert executions["completed"] == 1
        tasks = {(s.labels["agent"], s.labels["status"]): s.value
                 for s in families["stratexec_tasks"].samples}
        assert tasks[("content", "completed")] >= 1
        append = {(s.name, s.labels.get("le")): s.value
                  for s in families["stratexec_event_append_seconds"].samples}
        buckets = [value for (name, _), value in append.items() if name.endswith("_bucket")]
        assert buckets == sorted(buckets)  # cumulative
        count = append[("stratexec_event_append_seconds_count", None)]
        assert count > 0
        assert append[("stratexec_event_append_seconds_bucket", "+Inf")] == count
        assert families["stratexec_stream_subscribers"].samples

        openmetrics = await api.call("GET", "/metrics", headers={
            "Accept": "application/openmetrics-text; version=1.0.0"})
        assert openmetrics.headers["Content-Type"].startswith(
            "application/openmetrics-text; version=1.0.0")
        assert openmetrics.body.endswith("# EOF\n")
        kinds = {name: f.type for name, f in openmetrics_families(openmetrics.body).items()}
        assert kinds.items() >= METRIC_TYPES.items()


async def test_tokens_created_and_revoked_from_the_command_line(tmp_path: Path) -> None:
    server = ServerProcess.start(tmp_path)
    try:
        created = subprocess.run(
            [sys.executable, "-m", "stratexec", "token", "create", "--user", "alice", "--workspace",
             "acme", "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
            check=True)
        secret = created.stdout.strip()
        assert secret.startswith("sx_")
        assert "alice" in created.stderr
        async with aiohttp.ClientSession(base_url=server.url) as session:
            headers = {"Authorization": f"Bearer {secret}"}
            async with session.get("/api/me", headers=headers) as resp:
                assert await resp.json() == {"user": "alice", "workspaces": ["acme"]}
            subprocess.run([sys.executable, "-m", "stratexec", "token", "revoke", secret,
                            "--data-dir", str(tmp_path)], cwd=ROOT, check=True)
            deadline = time.monotonic() + 10  # another process's revocation: within 2 s
            while True:
                async with session.get("/api/me", headers=headers) as resp:
                    if resp.status == 401:
                        break
                assert time.monotonic() < deadline, "the revoked token still works"
                await asyncio.sleep(0.1)
        stored = (tmp_path / "events.sqlite").read_bytes()
        assert secret.encode() not in stored  # only the hash is recorded
    finally:
        server.stop()
