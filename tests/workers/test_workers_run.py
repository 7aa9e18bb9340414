"""Attempts on real `stratexec worker` processes: every task done once, the concurrency
limit held across workers, a worker killed mid-run, RabbitMQ as the broker."""

from __future__ import annotations

import os
from pathlib import Path
from uuid import uuid4

from worker_support import (
    CeleryEnv,
    celery_engine,
    event_counts,
    keys_of,
    start_chains,
    wait_until,
)

from stratexec import usecases
from stratexec.actors.messages import AgentTask
from stratexec.domain.execution import TaskStatus
from stratexec.workers import wire
from stratexec.workers.connection import TASK_NAME, celery_app

TASKS = int(os.environ.get("STRATEXEC_WORKER_TEST_TASKS", "300"))  # an even number
RUN_TIMEOUT = 240.0


def test_two_workers_run_a_300_task_strategy_each_task_once(celery_env: CeleryEnv,
                                                            tmp_path: Path) -> None:
    config = celery_env.config(concurrency=3, duration=0.02)
    first, second = (celery_env.start_worker(config, 2) for _ in range(2))
    with celery_engine(tmp_path / "data", config) as engine:
        execution_id = start_chains(engine, TASKS // 2)
        assert usecases.wait_finished(engine, execution_id, RUN_TIMEOUT)
        execution = engine.app.get_execution(execution_id)
        started = event_counts(engine, execution_id, "TaskStarted")
        succeeded = event_counts(engine, execution_id, "TaskSucceeded")
    assert str(execution.status) == "completed"
    assert all(t.status is TaskStatus.COMPLETED and t.attempt == 1
               for t in execution.tasks.values())
    assert len(execution.tasks) == TASKS
    assert started == succeeded == dict.fromkeys(execution.tasks, 1)  # recorded once each
    assert all(t.result == {"ran": f"{execution_id}:{t.id}:1"}
               for t in execution.tasks.values())
    assert celery_env.runs() == dict.fromkeys(keys_of(execution), 1)  # each ran once
    assert set(celery_env.done().values()) == {first.pid, second.pid}  # on both workers
    for agent_type in ("research", "analysis"):
        assert 1 <= celery_env.most_at_once(agent_type) <= 3


def test_the_concurrency_limit_holds_across_workers(celery_env: CeleryEnv) -> None:
    """Messages sent straight to the queue (no engine holding them back): two workers of two
    processes each, four slots, and a limit of two; every attempt still runs once."""
    config = celery_env.config(concurrency=2, duration=0.3, types=("research",))
    workers = [celery_env.start_worker(config, 2) for _ in range(2)]
    celery_env.wait_ready(*workers)
    app = celery_app(celery_env.settings)
    keys = []
    for number in range(12):
        task = AgentTask(execution_id=uuid4(), workspace_id="w",
                         task_id=f"t{number}", item_id="i", title="t", agent="research",
                         priority="medium", order=number, attempt=1)
        keys.append(task.idempotency_key)
        app.send_task(TASK_NAME, args=(wire.task_to(task), 2), task_id=task.idempotency_key,
                      queue=celery_env.settings.queue("research"), ignore_result=True)
    wait_until(lambda: len(celery_env.done()) == len(keys), 60, "every attempt to finish")
    assert celery_env.runs() == dict.fromkeys(keys, 1)
    assert celery_env.most_at_once("research") == 2  # never 3 or 4, though 4 slots were free
    leases = celery_env.settings.leases_key("research")
    wait_until(lambda: celery_env.redis.zcard(leases) == 0, 10, "every lease given back")
    stored = [wire.outcome_from(app.backend.get_task_meta(k)["result"]) for k in keys]
    assert [(o.task_id, o.attempt) for o in stored if o is not None] == [
        (f"t{number}", 1) for number in range(12)]


def test_a_worker_killed_mid_run_the_run_still_completes(celery_env: CeleryEnv,
                                                         tmp_path: Path) -> None:
    """The attempts the dead worker held time out (failed, retryable) and run again on the
    other; every task ends in exactly one terminal state."""
    config = celery_env.config(concurrency=4, duration=0.3, timeout=2)
    doomed, survivor = (celery_env.start_worker(config, 2) for _ in range(2))
    with celery_engine(tmp_path / "data", config) as engine:
        execution_id = start_chains(engine, 20)
        wait_until(lambda: len(celery_env.done()) >= 6 and celery_env.running_on(doomed),
                   60, "the doomed worker to be running attempts")
        doomed.kill()
        lost = celery_env.running_on(doomed)  # what it held when it died
        assert usecases.wait_finished(engine, execution_id, RUN_TIMEOUT)
        execution = engine.app.get_execution(execution_id)
        history = usecases.history(engine.app, execution_id)
    assert str(execution.status) == "completed"
    assert all(t.status is TaskStatus.COMPLETED for t in execution.tasks.values())
    terminal = [e["data"]["taskId"] for e in history
                if e["type"] in ("Execution.TaskSucceeded", "Execution.TasksSkipped")
                or (e["type"] == "Execution.TaskFailed" and e["data"]["retryAt"] is None)]
    assert sorted(terminal) == sorted(execution.tasks)  # one terminal state each
    assert lost
    failures = {(e["data"]["taskId"], e["data"]["attempt"]): e["data"]["errorKind"]
                for e in history if e["type"] == "Execution.TaskFailed"}
    for key in lost:
        task_id, attempt = key.split(":", 1)[1].rsplit(":", 1)  # task ids hold colons
        task = execution.tasks[task_id]
        # timed out and tried again, or given back to the survivor in time
        assert failures.get((task_id, int(attempt))) == "timeout" or task.attempt == int(attempt)
    assert set(celery_env.done().values()) >= {survivor.pid}


def test_rabbitmq_as_the_broker(rabbitmq_env: CeleryEnv, tmp_path: Path) -> None:
    config = rabbitmq_env.config(concurrency=2, duration=0.01)
    rabbitmq_env.start_worker(config, 2)
    with celery_engine(tmp_path / "data", config) as engine:
        execution_id = start_chains(engine, 20)
        assert usecases.wait_finished(engine, execution_id, RUN_TIMEOUT)
        execution = engine.app.get_execution(execution_id)
    assert str(execution.status) == "completed"
    assert rabbitmq_env.runs() == dict.fromkeys(keys_of(execution), 1)
