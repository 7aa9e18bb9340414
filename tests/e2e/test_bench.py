"""The benchmark's smoke test: tiny sizes, so that it cannot rot. It checks that every
workload runs and reports consistent figures; it asserts no speed (the benchmark does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_every_workload_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "cli", "bench", "--sizes", "10,30", "--latency-size", "10",
         "--subscribers", "1,3", "--replay-min-events", "100", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "Throughput" in result.stdout
    assert "Replay:" in result.stdout
    figures = json.loads(out.read_text())
    assert [row["engine"]["n"] for row in figures["throughput"]] == [10, 30]
    for row in figures["throughput"]:
        engine = row["engine"]
        assert engine["tasks"] == 2 * engine["n"]
        assert engine["events"] >= 3 * engine["tasks"]  # assigned, started, succeeded
        assert engine["liveExecutionsAfter"] == 0
        assert row["asyncio"]["tasks"] == engine["tasks"]
        assert row["store"]["groupedAsTheEngine"]["events"] == engine["events"]
        assert row["ratioToAsyncio"] > 0
    assert [row["subscribers"] for row in figures["latency"]] == [1, 3]
    for row in figures["latency"]:
        assert (row["missingPerSubscriber"], row["duplicatedPerSubscriber"]) == (0, 0)
        assert 0 <= row["p50Ms"] <= row["p99Ms"] <= row["maxMs"]
    assert figures["replay"]["events"] >= figures["throughput"][-1]["engine"]["events"]
    assert figures["replay"]["meetsMinimum"] is True
    assert figures["memory"]["peakRssKiB"] > 0
