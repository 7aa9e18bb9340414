"""Bad input to `stratexec worker` and `--agents-on celery`: a clear message, exit 2, and
nothing started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stratexec.bench.workloads import chains_strategy


def _stratexec(*arguments: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stratexec", *arguments], capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("arguments", "message"), [
    (["--queues", "research,legal"], "--queues: unknown agent type(s) legal (known: "),
    (["--concurrency", "0"], "--concurrency: expected 1 or more, got '0'"),
    (["--queues", ","], "expected agent types like email,content"),
])
def test_worker_refuses_bad_flags(arguments: list[str], message: str) -> None:
    answer = _stratexec("worker", *arguments)
    assert answer.returncode == 2
    assert message in answer.stderr


def test_an_engine_on_celery_needs_a_redis_result_backend(tmp_path: Path) -> None:
    strategy = tmp_path / "chains.json"
    strategy.write_text(json.dumps(chains_strategy(1)))
    answer = _stratexec("run", str(strategy), "--agents-on", "celery", "--data-dir",
                        str(tmp_path / "data"),
                        env={"CELERY_RESULT_BACKEND": "amqp://guest:guest@127.0.0.1:5672//"})
    assert answer.returncode == 2
    assert "CELERY_RESULT_BACKEND must be a Redis URL" in answer.stderr
    assert not (tmp_path / "data").exists()  # nothing started, nothing recorded
