"""What crosses the broker and the reports stream, as JSON: an attempt (`AgentTask`) in a
message, and what a worker reports about it (started, progress, outcome).

An outcome is stored as the attempt's result in the result backend, under its idempotency
key (the Celery task id), and sent on the reports stream: the engine records the one it hears
first, and a recovering engine reads the stored one (`outcome_from`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from uuid import UUID

from stratexec.actors.messages import AgentTask, RecordTaskFailure, RecordTaskSuccess

Outcome = RecordTaskSuccess | RecordTaskFailure
STARTED, PROGRESS, OUTCOME = "started", "progress", "outcome"


def task_to(task: AgentTask) -> dict[str, Any]:
    fields = asdict(task)
    fields["execution_id"] = str(task.execution_id)
    return fields


def task_from(fields: dict[str, Any]) -> AgentTask:
    return AgentTask(**{**fields, "execution_id": UUID(fields["execution_id"])})


def outcome_to(outcome: Outcome) -> dict[str, Any]:
    kind = "success" if isinstance(outcome, RecordTaskSuccess) else "failure"
    return {"outcome": kind, **asdict(outcome)}


def outcome_from(stored: Any) -> Outcome | None:
    """The outcome a worker stored, or None when `stored` is not one."""
    if not isinstance(stored, dict):
        return None
    fields = {k: v for k, v in stored.items() if k != "outcome"}
    try:
        if stored.get("outcome") == "success":
            return RecordTaskSuccess(**fields)
        if stored.get("outcome") == "failure":
            return RecordTaskFailure(**fields)
    except TypeError:
        return None
    return None


def report(key: str, kind: str, body: dict[str, Any]) -> dict[str, str]:
    """A reports stream entry."""
    return {"key": key, "kind": kind, "body": json.dumps(body, separators=(",", ":"))}


def parse_report(fields: dict[bytes, bytes]) -> tuple[str, str, dict[str, Any]]:
    return (fields[b"key"].decode(), fields[b"kind"].decode(), json.loads(fields[b"body"]))
