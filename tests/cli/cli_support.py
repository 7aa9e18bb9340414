"""Real `stratexec` processes for the command-line tests, and what they left on disk."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from api_support import ServerProcess

from stratexec.client import Client

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SMALL_DEMO = EXAMPLES / "small-demo.json"
PRODUCT_LAUNCH = EXAMPLES / "product-launch.json"
FAST = ["--demo-duration", "0.02:0.1", "--demo-failure-rate", "0", "--retry-interval", "0.05",
        "--health-interval", "0.2", "--seed", "3"]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "stratexec", *args]


def stratexec(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def stored_events(data_dir: Path) -> list[tuple[int, str]]:
    """Every event of the data directory's SQLite store (position, topic), read-only."""
    path = data_dir / "events.sqlite"
    if not path.exists():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = connection.execute("SELECT rowid, topic FROM stored_events ORDER BY rowid")
        return [(int(position), str(topic)) for position, topic in rows]
    except sqlite3.OperationalError:  # the file exists but its tables are not made yet
        return []
    finally:
        connection.close()


def wait_for_topic(data_dir: Path, suffix: str, process: subprocess.Popen[Any],
                   timeout: float = 60) -> None:
    """Poll another process's store until it recorded an event of this type."""
    deadline = time.monotonic() + timeout
    while not any(topic.endswith(suffix) for _, topic in stored_events(data_dir)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {suffix} event within {timeout} s"
        time.sleep(0.02)


def unfinished_execution(data_dir: Path) -> str:
    """An execution whose first attempt was under way when its process was killed: the next
    engine on the directory recovers it (and records that attempt as interrupted)."""
    process = subprocess.Popen(
        command("run", str(SMALL_DEMO), "--json", "--demo-duration", "60:60",
                "--data-dir", str(data_dir)),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_topic(data_dir, "TaskStarted", process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    return first_execution(data_dir)


def first_execution(data_dir: Path) -> str:
    """The id of the first execution recorded in the data directory."""
    connection = sqlite3.connect(f"file:{data_dir / 'events.sqlite'}?mode=ro", uri=True)
    try:
        (originator,) = connection.execute(
            "SELECT originator_id FROM stored_events WHERE topic LIKE '%Execution.Started'"
        ).fetchone()
    finally:
        connection.close()
    return str(originator)


# `stratexec ARGS` that writes to REPORT how long it ran after its imports, once it has
# ended (atexit runs after the interpreter waited for every non-daemon thread, so a thread
# left running counts too): `python -c TIMED REPORT ARGS...`.
TIMED = """
import atexit, sys, time
from stratexec.cli import main
began = time.monotonic()
report = sys.argv.pop(1)
atexit.register(lambda: open(report, "w").write(repr(time.monotonic() - began)))
sys.exit(main(sys.argv[1:]))
"""


def timed_command(report: Path, *args: str) -> list[str]:
    """The command line of `stratexec ARGS` timed after its imports (see `TIMED`)."""
    return [sys.executable, "-c", TIMED, str(report), *args]


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def start_example(server: ServerProcess,
                  pick: Callable[..., dict[str, Any]] = max) -> str:
    """Start one of the demo workspace's examples through the API, the largest by default
    (`pick=min`: the smallest); its execution id."""
    client = Client(server.url, server.token)
    strategies: Iterable[dict[str, Any]] = client.get(
        "/api/strategies", {"workspaceId": "demo"})["strategies"]
    strategy = pick(strategies, key=lambda s: s["taskCount"])
    answer = client.post("/api/executions/start",
                         {"strategyId": strategy["id"], "workspaceId": "demo"})
    execution_id: str = answer["executionId"]
    return execution_id
