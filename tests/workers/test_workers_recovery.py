"""The engine killed while the workers are busy, and cancel on the workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from uuid import UUID

from worker_support import CeleryEnv, celery_engine, event_counts, start_chains, wait_until

from stratexec import usecases
from stratexec.bench.workloads import chains_strategy
from stratexec.domain.execution import TaskStatus
from stratexec.settings import StoreSettings
from stratexec.workers.connection import celery_app

RUN_TIMEOUT = 240.0


def _engine_command(command: str, *arguments: str, config: Path, data_dir: Path
                    ) -> list[str]:
    return [sys.executable, "-m", "stratexec", command, *arguments, "--agents-on", "celery",
            "--config", str(config), "--data-dir", str(data_dir), "--json"]


def test_an_engine_killed_while_workers_are_busy_collects_their_outcomes(
        celery_env: CeleryEnv, tmp_path: Path) -> None:
    """kill -9 of `stratexec run` mid-run; the workers finish what they hold; `stratexec
    resume` records those outcomes as the attempts they were, and runs nothing twice."""
    config = celery_env.config(concurrency=4, duration=1.5)
    workers = [celery_env.start_worker(config, 2) for _ in range(2)]
    strategy = tmp_path / "chains.json"
    strategy.write_text(json.dumps(chains_strategy(6)))
    data_dir = tmp_path / "data"
    engine = subprocess.Popen(_engine_command("run", str(strategy), config=config,
                                              data_dir=data_dir),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    in_flight = wait_until(lambda: set().union(*map(celery_env.running_on, workers))
                           if sum(len(celery_env.running_on(w)) for w in workers) >= 3
                           else None, 60, "three attempts running on the workers")
    engine.kill()
    engine.wait(30)
    in_flight |= set().union(*map(celery_env.running_on, workers))
    wait_until(lambda: in_flight <= set(celery_env.done()), 30,
               "the workers to finish what they held during the outage")

    resumed = subprocess.run(_engine_command("resume", config=config, data_dir=data_dir),
                             capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["completedTasks"] == 12
    app = StoreSettings(data_dir).open_app()
    assert not app.unfinished_execution_ids()
    (execution_id,) = {UUID(key[:36]) for key in celery_env.runs()}
    execution = app.get_execution(execution_id)
    for key in in_flight:
        task_id, attempt = key.split(":", 1)[1].rsplit(":", 1)
        task = execution.tasks[task_id]
        assert task.status is TaskStatus.COMPLETED
        assert task.attempt == int(attempt)  # its original attempt: no second one
        assert task.result == {"ran": key}
    assert set(celery_env.runs().values()) == {1}  # nothing ran twice
    history = usecases.history(app, execution.id)
    assert not [e for e in history if e["type"] == "Execution.TaskInterrupted"]
    app.close()


def test_cancel_revokes_running_and_queued_attempts(celery_env: CeleryEnv,
                                                    tmp_path: Path) -> None:
    """One worker process, two attempts of a minute sent (one runs, one waits at the
    broker): cancel terminates the one and discards the other, and gives the lease back."""
    config = celery_env.config(concurrency=2, duration=60, types=("research", "analysis"))
    worker = celery_env.start_worker(config, 1)
    celery_env.wait_ready(worker)
    app = celery_app(celery_env.settings)
    with celery_engine(tmp_path / "data", config) as engine:
        execution_id = start_chains(engine, 2)
        running = wait_until(lambda: celery_env.running_on(worker), 60,
                             "an attempt to run on the worker")
        execution = engine.app.get_execution(execution_id)
        sent = {f"{execution_id}:{t.id}:{t.attempt}" for t in execution.tasks.values()
                if t.status in (TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS)}
        assert len(sent) == 2
        assert running < sent  # one runs, the other waits at the broker
        usecases.cancel(engine, execution_id)
        queue = celery_env.settings.queue("research")
        inspect = app.control.inspect(destination=[worker.name], timeout=1.0)
        wait_until(lambda: celery_env.redis.llen(queue) == 0 and inspect.active() == {
            worker.name: []} and inspect.reserved() == {worker.name: []}, 30,
            "the worker to be idle, with nothing left in its queue")
        assert usecases.wait_finished(engine, execution_id, 30)
        assert str(engine.app.get_execution(execution_id).status) == "cancelled"
        assert event_counts(engine, execution_id, "TaskSucceeded") == {}
    assert set(celery_env.runs()) == running  # the queued one never started
    assert not celery_env.done()  # the running one never finished
    leases = celery_env.settings.leases_key("research")
    wait_until(lambda: celery_env.redis.zcard(leases) == 0, 10, "the lease given back")


def test_pause_stops_new_sends_and_resume_sends_again(celery_env: CeleryEnv,
                                                      tmp_path: Path) -> None:
    """Research runs one at a time: paused while the first runs, that one finishes and is
    recorded, and nothing more reaches the workers until the execution resumes."""
    config = celery_env.config(concurrency=1, duration=1.0, types=("research", "analysis"))
    worker = celery_env.start_worker(config, 2)
    with celery_engine(tmp_path / "data", config) as engine:
        execution_id = start_chains(engine, 3)
        (first,) = wait_until(lambda: celery_env.running_on(worker), 60,
                              "the first attempt to run")
        usecases.pause(engine, execution_id)
        wait_until(lambda: first in celery_env.done(), 30, "the running attempt to finish")

        task_id = first.split(":", 1)[1].rsplit(":", 1)[0]

        def recorded() -> bool:
            task = engine.app.get_execution(execution_id).tasks[task_id]
            return task.status is TaskStatus.COMPLETED
        wait_until(recorded, 30, "its success to be recorded while paused")
        assert set(celery_env.runs()) == {first}  # nothing else was sent
        assert celery_env.redis.llen(celery_env.settings.queue("research")) == 0
        usecases.resume(engine, execution_id)
        assert usecases.wait_finished(engine, execution_id, RUN_TIMEOUT)
        assert str(engine.app.get_execution(execution_id).status) == "completed"
    assert len(celery_env.runs()) == 6
