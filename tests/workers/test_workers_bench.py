"""`stratexec bench --agents-on celery` at a tiny size, so that it cannot rot: it runs both
sides and reports consistent figures; it asserts no speed (the benchmark does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from worker_support import CeleryEnv


def test_bench_on_celery_runs_the_engine_and_the_raw_baseline(celery_env: CeleryEnv,
                                                              tmp_path: Path) -> None:
    """(`celery_env` checks that Redis answers; the bench uses a prefix of its own.)"""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "stratexec", "bench", "--agents-on", "celery", "--sizes", "10",
         "--out", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "x raw" in result.stdout
    figures = json.loads(out.read_text())
    (row,) = figures["throughput"]
    assert row["engine"]["tasks"] == row["rawCelery"]["tasks"] == 20
    assert row["engine"]["events"] >= 3 * 20  # assigned, started, succeeded
    assert row["engine"]["liveExecutionsAfter"] == 0
    assert row["ratioToRawCelery"] > 0
    assert figures["broker"] == "redis://127.0.0.1:6379/0"
