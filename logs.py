"""stratexec's logs: one structured line per event worth an operator's eye, on stderr.

The lines: a request (method, path, status, duration), an execution started, finished (with
its outcome) or recovered, and the server's start. `--log-format text` (the default) writes
`TIME LEVEL LOGGER: message key=value ...`; `--log-format json` one JSON object a line with
the same fields. Nothing secret is written: no header, no cookie, and a `token` in a query
string reads `[redacted]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error", "critical")
SECRET_QUERY_KEYS = frozenset({"token"})
REDACTED = "[redacted]"
FINISHED_TYPES = {"execution-completed", "execution-cancelled"}
FINISHED_COUNTS = ("totalTasks", "completedTasks", "failedTasks", "skippedTasks",
                   "cancelledTasks")

requests = logging.getLogger("stratexec.http")
executions = logging.getLogger("stratexec.executions")


def add_log_arguments(parser: argparse.ArgumentParser, level: str = "info") -> None:
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="the log lines on stderr: text or one JSON object a line "
                             "(default text)")
    parser.add_argument("--log-level", choices=LEVELS, default=level,
                        help=f"the least important lines written (default {level})")


def configure(log_format: str = "text", level: str = "warning") -> None:
    """Every logger's lines to stderr in `log_format`, from `level` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def configure_from(args: argparse.Namespace) -> None:
    """`configure` with what `add_log_arguments` parsed."""
    configure(args.log_format, args.log_level)


def fields(**values: Any) -> dict[str, Any]:
    """The `extra=` of a structured line: its fields, beside the message."""
    return {"fields": values}


def _fields_of(record: logging.LogRecord) -> Mapping[str, Any]:
    values: Mapping[str, Any] = getattr(record, "fields", {})
    return values


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": _time(record), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage(), **_fields_of(record)}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        pairs = "".join(f" {key}={_text(value)}" for key, value in _fields_of(record).items())
        line = f"{_time(record)} {record.levelname} {record.name}: {record.getMessage()}{pairs}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c == '"' for c in text) else text


# ------------------------------------------------------------------- requests

class RequestLog(AbstractAccessLogger):
    """aiohttp's access log, as one structured line per request (streams: when they end)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        query = {"query": safe_query(request.query)} if request.query else {}
        self.logger.info("request", extra=fields(
            method=request.method, path=request.path, **query, status=response.status,
            durationMs=round(time * 1000, 1)))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def safe_query(query: Mapping[str, str]) -> str:
    """The query string with every secret's value replaced."""
    return urlencode([(key, REDACTED if key in SECRET_QUERY_KEYS else value)
                      for key, value in query.items()], safe="[]")


# ----------------------------------------------------------------- executions

def execution_started(execution_id: object, strategy: str, total_tasks: int) -> None:
    executions.info("execution started", extra=fields(
        executionId=str(execution_id), strategy=strategy, totalTasks=total_tasks))


def execution_finished(execution_id: object, outcome: str, summary: Mapping[str, Any]
                       ) -> None:
    """With the task counts `summary` holds (a summary, a status row, a feed row's data)."""
    counts = {key: summary[key] for key in FINISHED_COUNTS if key in summary}
    executions.info("execution finished", extra=fields(
        executionId=str(execution_id), outcome=outcome, **counts))


def execution_recovered(execution_id: object) -> None:
    executions.info("execution recovered", extra=fields(executionId=str(execution_id)))


def log_feed_rows(rows: list[dict[str, Any]], position: int) -> None:
    """A projection runner subscriber: a line per execution started or finished, whoever
    started it (HTTP, WebSocket, another node)."""
    if not executions.isEnabledFor(logging.INFO):
        return
    for row in rows:
        kind = row["type"]
        if kind == "execution-started":
            data = json.loads(row["data"])
            execution_started(row["executionId"], data.get("strategyName", ""),
                              data.get("totalTasks", 0))
        elif kind in FINISHED_TYPES:
            data = json.loads(row["data"])
            execution_finished(row["executionId"], data.get("status", ""), data)
