"""`stratexec retry` as a user runs it: real processes on one data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "examples" / "small-demo.json"
FAST = ["--demo-duration", "0.01:0.05", "--retry-interval", "0.05", "--health-interval", "0.2"]
RESEARCH = "l4-research-topics:research"


def stratexec(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratexec", *args, "--data-dir", str(data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_retry_one_task_then_all_of_them_to_completion(tmp_path: Path) -> None:
    failed = stratexec("run", str(SMALL), "--json", "--demo-failure-rate", "1",
                       "--max-attempts", "1", *FAST, data_dir=tmp_path)
    assert failed.returncode == 1, failed.stderr
    summary = summary_of(failed)
    execution_id = summary["executionId"]
    assert (summary["status"], summary["failedTasks"]) == ("failed", 2)

    one = stratexec("retry", execution_id, "--task", RESEARCH, "--json",
                    "--demo-failure-rate", "0", *FAST, data_dir=tmp_path)
    assert one.returncode == 1, one.stderr  # the other failed task is still failed
    assert f"retrying task {RESEARCH}" in one.stderr
    assert "done 4 failed 1 skipped 1" in one.stderr  # the progress line
    assert summary_of(one) | {"health": None} == {
        "executionId": execution_id, "status": "failed", "totalTasks": 6,
        "completedTasks": 4, "failedTasks": 1, "skippedTasks": 1, "health": None}

    every = stratexec("retry", execution_id, "--json", "--demo-failure-rate", "0", *FAST,
                      data_dir=tmp_path)
    assert every.returncode == 0, every.stderr
    assert summary_of(every)["status"] == "completed"
    assert summary_of(every)["completedTasks"] == 6

    events = [json.loads(line) for line in stratexec(
        "history", execution_id, data_dir=tmp_path).stdout.splitlines()]
    retries = [e["data"] for e in events if e["type"] == "Execution.TasksRetried"]
    assert [r["taskIds"] for r in retries] == [[RESEARCH], ["l4-schedule-review:scheduling"]]
    research = [e["data"]["attempt"] for e in events
                if e["type"] == "Execution.TaskAssigned" and e["data"]["taskId"] == RESEARCH]
    assert research == [1, 2]
    verified = stratexec("replay", execution_id, "--verify", data_dir=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "identical" in verified.stderr

    refused = stratexec("retry", execution_id, *FAST, data_dir=tmp_path)
    assert refused.returncode == 2
    assert "cannot retry tasks of an execution that is completed" in refused.stderr


def test_retry_names_what_it_cannot_find(tmp_path: Path) -> None:
    run = stratexec("run", str(SMALL), "--json", "--demo-failure-rate", "1",
                    "--max-attempts", "1", *FAST, data_dir=tmp_path)
    execution_id = summary_of(run)["executionId"]
    unknown_task = stratexec("retry", execution_id, "--task", "nope:email", *FAST,
                             data_dir=tmp_path)
    assert unknown_task.returncode == 2
    assert "no task 'nope:email'" in unknown_task.stderr
    unknown = stratexec("retry", "00000000-0000-0000-0000-000000000000", data_dir=tmp_path)
    assert unknown.returncode == 2
    assert "no execution 00000000-0000-0000-0000-000000000000" in unknown.stderr
