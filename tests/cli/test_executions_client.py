"""`stratexec executions ...` against a real `stratexec serve`, and `stratexec token list`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import ServerProcess, free_port
from cli_support import ROOT, command, start_example, stratexec

from stratexec.client import Client

SLOW = ["--demo-duration", "1:1.2", "--demo-failure-rate", "0", "--concurrency", "1",
        "--health-interval", "0.2"]  # 38 tasks take over 10 s: the commands act on a live run
QUICK = ["--demo-duration", "0.3:0.5", "--demo-failure-rate", "0", "--health-interval",
         "0.2", "--concurrency", "1"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess.start(tmp_path / "data", *SLOW)
    try:
        yield running
    finally:
        running.close()


def environment(server: ServerProcess, **more: str) -> dict[str, str]:
    return {**os.environ, "STRATEXEC_SERVER": server.url, "STRATEXEC_TOKEN": server.token,
            **more}


def executions(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return stratexec("executions", *args, env=environment(server))


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr.strip()


def test_list_and_status_as_tables_and_as_json(server: ServerProcess) -> None:
    execution_id = start_example(server)
    Client(server.url, server.token).post(f"/api/executions/{execution_id}/pause")
    listed = executions(server, "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "STRATEGY", "FINISHED", "HEALTH", "STARTED"]
    assert row.startswith(f"{execution_id}  paused")
    page = json.loads(executions(server, "list", "--json", "--status", "paused").stdout)
    assert [e["id"] for e in page["executions"]] == [execution_id]
    assert json.loads(executions(server, "list", "--json", "--status", "completed").stdout)[
        "executions"] == []

    shown = executions(server, "status", execution_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"execution {execution_id} (")
    assert lines[0].endswith("workspace demo): paused")
    assert lines[1].startswith("tasks: ")
    assert "AGENT" in shown.stdout
    answer = json.loads(executions(server, "status", execution_id, "--json").stdout)
    assert answer["execution"]["id"] == execution_id
    assert set(answer) >= {"execution", "health", "tasks", "metrics", "position"}


def test_pause_resume_cancel_and_a_refusal(server: ServerProcess) -> None:
    execution_id = start_example(server)
    paused = executions(server, "pause", execution_id)
    assert (paused.returncode, paused.stdout) == (0, f"execution {execution_id}: paused\n")
    refused = one_error_line(executions(server, "pause", execution_id), 1)
    assert refused.startswith("stratexec: 409 invalid_transition: ")
    assert "paused" in refused
    resumed = executions(server, "resume", execution_id, "--json")
    assert json.loads(resumed.stdout)["execution"] == {"id": execution_id, "status": "running"}
    cancelled = executions(server, "cancel", execution_id)
    assert cancelled.stdout == f"execution {execution_id}: cancelled\n"
    retried = one_error_line(executions(server, "retry", execution_id), 1)
    assert retried.startswith("stratexec: 409 invalid_transition: ")

    watched = executions(server, "watch", execution_id, "--json")  # it has ended already
    assert watched.returncode == 1, watched.stderr
    assert json.loads(watched.stdout.splitlines()[-1])["status"] == "cancelled"
    summary = watched.stderr.splitlines()[-1]
    assert summary.startswith(f"execution {execution_id} cancelled: ")
    assert "health" not in summary  # a cancelled execution is not "Excellent"
    row = executions(server, "list").stdout.splitlines()[1]
    assert row.startswith(f"{execution_id}  cancelled  ")
    assert "  -  " in row  # its health column: not a score
    assert "Excellent" not in row


@pytest.mark.parametrize(("args", "code", "message"), [
    (["status", "not-an-id"], 2, "stratexec: not an execution id: 'not-an-id'"),
    (["pause", "00000000-0000-0000-0000-000000000000"], 2,
     "stratexec: 404 not_found: execution not found"),
    (["retry", "00000000-0000-0000-0000-000000000000", "--task", "a/b"], 2,
     "stratexec: 404 not_found: execution not found"),
])
def test_mistakes_are_one_line_with_the_server_s_message(
        server: ServerProcess, args: list[str], code: int, message: str) -> None:
    assert one_error_line(executions(server, *args), code) == message


def test_a_wrong_token_a_missing_one_and_a_server_that_is_not_there(
        server: ServerProcess, tmp_path: Path) -> None:
    wrong = stratexec("executions", "list", "--token", "sx_wrong", "--server", server.url)
    assert one_error_line(wrong, 2).startswith("stratexec: 401 unauthorized: the token is "
                                               "unknown or revoked")
    bare = {k: v for k, v in os.environ.items() if not k.startswith("STRATEXEC_")}
    missing = stratexec("executions", "list", "--server", server.url, "--data-dir",
                        str(tmp_path / "elsewhere"), env=bare)
    assert one_error_line(missing, 2).startswith("stratexec: no token: give --token")
    local = stratexec("executions", "list", "--server", server.url, "--data-dir",
                      str(tmp_path / "data"), env=bare)  # the server's own dashboard token
    assert local.returncode == 0, local.stderr
    nobody = f"http://127.0.0.1:{free_port()}"
    gone = stratexec("executions", "list", "--server", nobody, "--token", server.token)
    assert one_error_line(gone, 3).startswith(f"stratexec: no answer from {nobody}: ")


def test_watch_follows_to_the_end_across_a_server_restart(tmp_path: Path) -> None:
    """The stream is taken up again with Last-Event-ID after the server comes back; the
    execution (recovered by the new server) completes and watch exits 0 with its summary."""
    data_dir, port = tmp_path / "data", free_port()
    first = ServerProcess.start(data_dir, *QUICK, "--concurrency", "1", port=port)
    execution_id = start_example(first)
    watch = subprocess.Popen(command("executions", "watch", execution_id, "--json"),
                             cwd=ROOT, env=environment(first), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    second: ServerProcess | None = None
    try:
        first.log_lines(f"/api/executions/{execution_id}/status")
        first.close()
        assert not [line for line in first.log if "execution finished" in line]
        second = ServerProcess.start(data_dir, *QUICK, port=port)
        stdout, stderr = watch.communicate(timeout=180)
        assert watch.returncode == 0, stderr
        summary: dict[str, Any] = json.loads(stdout.splitlines()[-1])
        assert summary["status"] == "completed"
        assert summary["completedTasks"] == summary["totalTasks"] == 38
        second.log_lines(f"path=/api/executions/{execution_id}/status")  # it reconnected
        assert f"execution {execution_id} completed: 38/38 completed" in stderr
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
        first.close()
        if second is not None:
            second.close()


def test_token_list_shows_every_token_but_never_a_secret(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    alice = stratexec("token", "create", "--user", "alice", "--workspace", "acme",
                      "--workspace", "beta", "--label", "ci", *data)
    bob = stratexec("token", "create", "--user", "bob", "--workspace", "acme", *data)
    secrets = [alice.stdout.strip(), bob.stdout.strip()]
    assert stratexec("token", "revoke", secrets[1], *data).returncode == 0
    listed = stratexec("token", "list", *data)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "USER", "WORKSPACES", "LABEL", "CREATED", "REVOKED"]
    assert [row.split()[1:3] for row in rows] == [["alice", "acme,beta"], ["bob", "acme"]]
    assert rows[0].split()[-1] == "no"
    assert rows[1].split()[-1] != "no"
    tokens = json.loads(stratexec("token", "list", "--json", *data).stdout)["tokens"]
    assert [(t["user"], t["label"], t["revoked"]) for t in tokens] == [
        ("alice", "ci", False), ("bob", "", True)]
    assert tokens[1]["revokedAt"] >= tokens[1]["createdAt"]
    for secret in secrets:
        assert secret not in listed.stdout + listed.stderr
        assert secret not in json.dumps(tokens)
