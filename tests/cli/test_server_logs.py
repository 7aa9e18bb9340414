"""The server's log: a structured line per request, per execution started and finished,
and per start-up, in JSON or text, on stderr; never a token (header, cookie or query)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from api_support import ServerProcess
from cli_support import FAST, start_example


def call(server: ServerProcess, path: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(server.url + path, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(request, timeout=30) as response:
        return int(response.status)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_json_lines_for_requests_executions_and_the_start(tmp_path: Path) -> None:
    server = ServerProcess.start(tmp_path, "--log-format", "json", *FAST)
    try:
        with pytest.raises(urllib.error.HTTPError, match="303"):  # the link sets the cookie
            call(server, f"/?token={server.token}")
        assert call(server, "/api/me", {"Authorization": f"Bearer {server.token}"}) == 200
        assert call(server, "/healthz", {"Cookie": f"stratexec_token={server.token}"}) == 200
        execution_id = start_example(server, min)
        server.log_lines('"execution finished"', timeout=60)
    finally:
        server.close()
    lines = [json.loads(line) for line in server.log]  # every line is one JSON object
    assert "stopping; unfinished executions continue at the next start" in [
        line["message"] for line in lines]
    assert all(server.token not in line for line in server.log)

    (start,) = [line for line in lines if line["message"] == "started"]
    assert start["logger"] == "stratexec.server"
    assert start["level"] == "info"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", start["time"])
    assert (start["host"], start["store"], start["pid"]) == (
        "127.0.0.1", "sqlite", server.process.pid)
    assert f":{start['port']}" in server.url

    requests = [line for line in lines if line["message"] == "request"]
    by_path = {line["path"]: line for line in requests}
    assert by_path["/"]["status"] == 303
    assert by_path["/"]["query"] == "token=[redacted]"
    assert by_path["/api/me"]["method"] == "GET"
    assert by_path["/api/me"]["status"] == 200
    assert by_path["/api/executions/start"]["method"] == "POST"
    assert by_path["/api/executions/start"]["status"] == 201
    assert all(isinstance(line["durationMs"], float) and line["durationMs"] >= 0
               for line in requests)
    assert all(line["logger"] == "stratexec.http" for line in requests)

    lifecycle = [line for line in lines if line["logger"] == "stratexec.executions"]
    assert [(line["message"], line["executionId"]) for line in lifecycle] == [
        ("execution started", execution_id), ("execution finished", execution_id)]
    started, finished = lifecycle
    assert started["totalTasks"] == finished["totalTasks"] == finished["completedTasks"] > 0
    assert finished["outcome"] == "completed"


def test_text_lines_and_a_level_that_leaves_requests_out(tmp_path: Path) -> None:
    server = ServerProcess.start(tmp_path, "--log-level", "info", *FAST)
    try:
        assert call(server, "/healthz") == 200
        (line,) = server.log_lines("path=/healthz")
        assert re.fullmatch(
            r"\S+Z INFO stratexec\.http: request method=GET path=/healthz status=200 "
            r"durationMs=[\d.]+\n", line), line
    finally:
        server.close()
    quiet = ServerProcess.start(tmp_path, "--log-level", "warning", *FAST)
    try:
        assert call(quiet, "/healthz") == 200
        start_example(quiet, min)
    finally:
        quiet.close()
    assert quiet.log == []
