"""Schema fuzzing: schemathesis generates requests from the live server's own
`/api/openapi.json` (valid ones and invalid ones, every phase: examples, coverage,
fuzzing, stateful) with a valid token, and runs every check on each answer: never a 500,
every status, content type, header and body as the document says, invalid data refused,
valid data accepted, a bogus credential refused. `STRATEXEC_FUZZ_EXAMPLES` sets the
examples per operation.

It runs the `schemathesis` command (the pytest plug-in's lazy loader is broken on pytest 9)
against a real `stratexec serve`, with a configuration file naming a strategy, an
execution, a task and an agent type that exist, so that requests get past the 404s."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from api_support import ServerProcess
from helpers import count_from_env

EXAMPLES = count_from_env("STRATEXEC_FUZZ_EXAMPLES", 10)
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
OPTIONS = ("--demo-duration", "0.01:0.05", "--demo-failure-rate", "0", "--seed", "1",
           "--health-interval", "0.5")

# A 422 is the documented answer of a strategy the domain rejects: what JSON Schema cannot
# say (an L4 item to execute, parents one level up, dependencies without a cycle). A valid
# shape refused so is no broken promise; any other refusal of valid data still fails. The
# WebSocket route answers a plain GET (schemathesis speaks no WebSocket) with its documented
# 400. An event stream never ends: schemathesis reads it for its whole request timeout, so
# the streams get a short one.
CONFIG = """\
headers = {{ Authorization = "Bearer {token}" }}
generation.max-examples = {examples}
max-stream-events = 5
request-timeout = 20

[parameters]
"path.workspaceId" = "demo"
"path.strategyId" = "{strategy_id}"
"path.executionId" = "{execution_id}"
"path.taskId" = "{task_id}"
"path.agentType" = "email"

[[operations]]
include-path = "/api/strategies"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2XX", 401, 404, 409, 422]

[[operations]]
include-path = "/api/executions/{{executionId}}/ws"
checks.positive_data_acceptance.expected-statuses = [400, 401, 404]

[[operations]]
include-path-regex = "/events$"
request-timeout = 1
"""


def call(server: ServerProcess, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        server.url + path, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def existing_resources(server: ServerProcess) -> dict[str, str]:
    """A strategy of the demo workspace, an execution of it, and one of its tasks."""
    strategies = call(server, "/api/strategies?workspaceId=demo")["strategies"]
    strategy_id = strategies[0]["id"]
    started = call(server, "/api/executions/start",
                   {"strategyId": strategy_id, "workspaceId": "demo"})
    status = call(server, f"/api/executions/{started['executionId']}/status")
    return {"strategy_id": strategy_id, "execution_id": started["executionId"],
            "task_id": status["tasks"][0]["taskId"]}


def test_the_live_api_keeps_every_promise_of_its_document(tmp_path: Path) -> None:
    server = ServerProcess.start(tmp_path / "data", *OPTIONS)
    try:
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG.format(token=server.token, examples=EXAMPLES,
                                        **existing_resources(server)))
        result = subprocess.run(
            [str(SCHEMATHESIS), "--config-file", str(config), "run",
             f"{server.url}/api/openapi.json", "--checks", "all", "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
        assert "passed" in result.stdout
        assert server.process.poll() is None  # and the server lived through it
    finally:
        server.close()
