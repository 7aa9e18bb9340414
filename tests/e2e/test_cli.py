"""The `stratexec` command as a user runs it: real processes, real signals, real files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from api_support import ServerProcess
from helpers import terminal_events_per_task

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "product-launch.json"
CYCLIC = ROOT / "examples" / "cyclic-dependencies.json"
FAST = ["--demo-duration", "0.02:0.2", "--retry-interval", "0.05", "--health-interval", "0.2",
        "--circuit-cool-down", "0.05"]  # flaky runs may pause an agent type: briefly
TERMINAL = ("TaskSucceeded", "TasksSkipped", "Cancelled")


def stratexec(*args: str, data_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratexec", *args, "--data-dir", str(data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def start_stratexec(*args: str, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stratexec", *args, "--data-dir", str(data_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def count_events(data_dir: Path, suffix: str) -> int:
    """Events of one type recorded so far, read from the store file another process writes."""
    path = data_dir / "events.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM stored_events WHERE topic LIKE ?", (f"%{suffix}",)
            ).fetchone()
    except sqlite3.OperationalError:  # the file exists but its tables are not made yet
        return 0
    return int(count)


def wait_for_events(data_dir: Path, suffix: str, at_least: int, process: subprocess.Popen[str],
                    timeout: float = 60) -> None:
    """Poll the other process's store (there is no cross-process wake-up on SQLite)."""
    deadline = time.monotonic() + timeout
    while count_events(data_dir, suffix) < at_least:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"fewer than {at_least} {suffix} events"
        time.sleep(0.02)


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    last_line = result.stdout.strip().splitlines()[-1]
    summary: dict[str, Any] = json.loads(last_line)
    return summary


def history(execution_id: str, data_dir: Path) -> list[dict[str, Any]]:
    result = stratexec("history", execution_id, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_run_completes_and_prints_a_json_summary(tmp_path: Path) -> None:
    result = stratexec("run", str(EXAMPLE), "--json", "--seed", "4", *FAST, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    assert summary["status"] == "completed"
    assert summary["totalTasks"] == summary["completedTasks"] == 38
    assert (summary["failedTasks"], summary["skippedTasks"]) == (0, 0)
    health = summary["health"]
    assert 0 <= health["score"] <= 100
    assert health["status"] in ("Excellent", "Good", "Degraded", "Critical")
    assert "done 38" in result.stderr  # the progress display reached the end


def test_a_task_failing_for_good_makes_the_run_exit_1(tmp_path: Path) -> None:
    result = stratexec("run", str(EXAMPLE), "--json", "--seed", "4", "--demo-failure-rate",
                       "1", "--max-attempts", "2", *FAST, data_dir=tmp_path)
    assert result.returncode == 1, result.stderr
    summary = summary_of(result)
    assert summary["status"] == "failed"
    assert summary["completedTasks"] == 0
    assert summary["failedTasks"] + summary["skippedTasks"] == 38


def test_an_invalid_strategy_exits_2_naming_the_problem_and_records_nothing(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = stratexec("run", str(CYCLIC), data_dir=data_dir)
    assert result.returncode == 2
    assert str(CYCLIC) in result.stderr
    assert "dependency cycle: l4-draft-agenda -> " in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "items": [{"id": "a", "level": 7, "title": "A"}]}')
    result = stratexec("run", str(broken), data_dir=data_dir)
    assert result.returncode == 2
    assert "items[0] (a).level: must be an integer from 1 to 4, got 7" in result.stderr
    broken.write_text("{not json")
    result = stratexec("run", str(broken), data_dir=data_dir)
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr
    assert not data_dir.exists()


def test_kill_9_mid_run_loses_nothing_and_resume_finishes(tmp_path: Path) -> None:
    process = start_stratexec("run", str(EXAMPLE), "--seed", "5", "--demo-failure-rate", "0.1",
                              "--max-attempts", "8", *FAST, data_dir=tmp_path)
    wait_for_events(tmp_path, "TaskSucceeded", 8, process)
    process.send_signal(signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL
    succeeded_before = count_events(tmp_path, "TaskSucceeded")

    result = stratexec("resume", "--json", "--seed", "6", "--demo-failure-rate", "0.1",
                       "--max-attempts", "8", *FAST, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    assert summary["status"] == "completed"
    assert summary["completedTasks"] == summary["totalTasks"] == 38
    assert count_events(tmp_path, "TaskSucceeded") == 38 >= succeeded_before

    events = history(str(summary["executionId"]), tmp_path)
    assert [e["version"] for e in events if e["type"].startswith("Execution.")] == list(
        range(1, 1 + sum(1 for e in events if e["type"].startswith("Execution."))))
    ends = terminal_events_per_task(events)
    assert len(ends) == 38
    assert set(ends.values()) == {1}  # one terminal state per task
    interrupted = [e for e in events if e["type"] == "Execution.TaskInterrupted"]
    for event in interrupted:  # each interrupted attempt was followed by a new attempt
        data = event["data"]
        assert any(e["type"] == "Execution.TaskAssigned" and e["data"]["taskId"] == data[
            "taskId"] and e["data"]["attempt"] == data["attempt"] + 1 for e in events)
    assert stratexec("resume", data_dir=tmp_path).returncode == 0  # nothing left to do


def test_ctrl_c_pauses_and_resume_continues(tmp_path: Path) -> None:
    process = start_stratexec("run", str(EXAMPLE), "--seed", "7", "--demo-failure-rate", "0",
                              *FAST, data_dir=tmp_path)
    wait_for_events(tmp_path, "TaskSucceeded", 5, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "paused execution" in stderr
    assert count_events(tmp_path, "Execution.Paused") == 1
    result = stratexec("resume", "--json", "--demo-failure-rate", "0", *FAST, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["completedTasks"] == 38
    assert count_events(tmp_path, "Execution.Resumed") == 1


def test_replay_rebuilds_state_and_verifies_the_read_models(tmp_path: Path) -> None:
    run = stratexec("run", str(EXAMPLE), "--json", "--seed", "8", "--demo-failure-rate", "0.3",
                    "--max-attempts", "6", *FAST, data_dir=tmp_path)
    execution_id = str(summary_of(run)["executionId"])
    final = stratexec("replay", execution_id, data_dir=tmp_path)
    assert final.returncode == 0
    state = json.loads(final.stdout)
    assert state["status"] == summary_of(run)["status"]
    early = json.loads(stratexec("replay", execution_id, "--at", "3", data_dir=tmp_path).stdout)
    assert early["version"] == 3
    assert early["status"] == "running"
    assert early["counts"]["assigned"] + early["counts"]["in_progress"] >= 1
    verified = stratexec("replay", execution_id, "--verify", data_dir=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "identical" in verified.stderr


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_execution_ids_exit_2(tmp_path: Path, bad_id: str) -> None:
    for command in ("history", "replay", "resume"):
        result = stratexec(command, bad_id, data_dir=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert bad_id in result.stderr


def test_the_environment_names_the_data_directory(tmp_path: Path) -> None:
    env = {**os.environ, "STRATEXEC_DATA_DIR": str(tmp_path / "from-env")}
    result = subprocess.run(
        [sys.executable, "-m", "stratexec", "run", str(ROOT / "examples" / "small-demo.json"),
         *FAST],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-env" / "events.sqlite").exists()


def test_one_engine_per_data_directory(tmp_path: Path) -> None:
    server = ServerProcess.start(tmp_path)
    try:
        result = stratexec("run", str(ROOT / "examples" / "small-demo.json"), *FAST,
                           data_dir=tmp_path)
        assert result.returncode == 2
        assert f"{tmp_path} is in use by pid {server.process.pid}" in result.stderr
    finally:
        assert server.stop() == 0
    result = stratexec("run", str(ROOT / "examples" / "small-demo.json"), *FAST,
                       data_dir=tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_task_under_way_at_every_kill_9_fails_for_good_after_its_attempts(
        tmp_path: Path) -> None:
    """A poison task: its attempt is under way whenever the process dies (here it takes a
    minute and the process is killed a second in). Each lost attempt uses up one of its
    two; the start after the second kill fails it for good instead of running it again."""
    strategy = tmp_path / "stuck.json"
    strategy.write_text(json.dumps({"name": "Stuck", "items": [
        {"id": "goal", "level": 1, "parentId": None, "title": "Goal"},
        {"id": "area", "level": 2, "parentId": "goal", "title": "Area"},
        {"id": "plan", "level": 3, "parentId": "area", "title": "Plan"},
        {"id": "stuck", "level": 4, "parentId": "plan", "title": "Stuck", "agents": ["research"]},
        {"id": "after", "level": 4, "parentId": "plan", "title": "After", "agents": ["email"],
         "dependsOn": ["stuck"]}]}))
    data_dir = tmp_path / "data"
    slow = ["--demo-duration", "60:60", "--demo-failure-rate", "0", "--health-interval", "0.2"]
    process = start_stratexec("run", str(strategy), "--max-attempts", "2", *slow,
                              data_dir=data_dir)
    for attempt in (1, 2):
        wait_for_events(data_dir, "TaskStarted", attempt, process)
        process.send_signal(signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
        if attempt == 1:
            process = start_stratexec("resume", *slow, data_dir=data_dir)

    result = stratexec("resume", "--json", *slow, data_dir=data_dir)
    assert result.returncode == 1, result.stderr
    summary = summary_of(result)
    assert (summary["status"], summary["failedTasks"], summary["skippedTasks"]) == (
        "failed", 1, 1)
    assert count_events(data_dir, "TaskStarted") == 2  # no third attempt ran
    events = history(str(summary["executionId"]), data_dir)
    assert [(e["data"]["attempt"], e["data"]["counted"]) for e in events
            if e["type"] == "Execution.TaskInterrupted"] == [(1, True)]
    assert [(e["data"]["attempt"], e["data"]["errorKind"], e["data"]["retryAt"])
            for e in events if e["type"] == "Execution.TaskFailed"] == [
        (2, "interrupted", None)]
    verified = stratexec("replay", str(summary["executionId"]), "--verify", data_dir=data_dir)
    assert verified.returncode == 0, verified.stderr
    assert "identical" in verified.stderr
    assert stratexec("resume", data_dir=data_dir).returncode == 0  # nothing left to run
