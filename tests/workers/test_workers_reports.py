"""The engine's reader of the workers' reports stream (`workers.dispatch.ReportReader`), on
real Redis: an ended attempt's slot is freed as soon as its outcome is read, and the
execution gets what was read within the linger together, in the order the worker wrote it."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import uuid4

import pykka
import pytest
from worker_support import CeleryEnv, wait_until

from stratexec.actors.messages import AgentTask, RecordTaskStarted, RecordTaskSuccess, RunTask
from stratexec.workers import dispatch, wire
from stratexec.workers.connection import CelerySettings

LINGER = 1.0  # seconds: long beside the time a read and a tell take


class Recorder(pykka.ThreadingActor):
    """Stands in for the execution: notes each message and when it came."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[float, Any]] = []
        self.changed = threading.Event()

    def on_receive(self, message: Any) -> None:
        self.received.append((time.monotonic(), message))
        self.changed.set()


def test_a_slot_is_freed_when_the_outcome_is_read_and_the_execution_hears_after_the_linger(
        celery_env: CeleryEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "READ_LINGER", LINGER)
    stream = CelerySettings.from_environment().reports_key
    reader = dispatch.ReportReader(celery_env.redis, stream)
    recorder = Recorder.start()
    execution = recorder.proxy()
    task = AgentTask(execution_id=uuid4(), workspace_id="w", task_id="t1", item_id="i",
                     title="t", agent="research", priority="medium", order=1, attempt=1)
    key = task.idempotency_key
    freed: list[tuple[float, Any]] = []
    try:
        reader.follow(key, dispatch._Following(
            RunTask(task, recorder), lambda outcome: freed.append((time.monotonic(), outcome)),
            lambda: None))
        success = RecordTaskSuccess("t1", 1, {"summary": "done"}, 3.0)
        written = time.monotonic()
        reports: list[dict[Any, Any]] = [  # the worker's, and an outcome told twice
            wire.report(key, wire.STARTED, {"worker": "w1"}),
            wire.report(key, wire.OUTCOME, wire.outcome_to(success)),
            wire.report(key, wire.OUTCOME, wire.outcome_to(success))]
        with celery_env.redis.pipeline(transaction=True) as pipe:  # read in one XREAD
            for report in reports:
                pipe.xadd(stream, report)
            pipe.execute()

        wait_until(lambda: len(execution.received.get()) == 2, 10, "both messages")
        received = execution.received.get()
        assert [message for _, message in received] == [RecordTaskStarted("t1", 1), success]
        assert [outcome for _, outcome in freed] == [success]  # once, for the repeated report
        assert freed[0][0] - written < LINGER / 2  # not held back by the linger...
        assert received[0][0] - written >= LINGER * 0.9  # ...which the execution's wait for
        assert reader.in_flight() == {}
    finally:
        reader.stop()
        recorder.stop()
