"""`stratexec bench --agents-on celery`: the throughput workload with its attempts on Celery
workers, beside the raw Celery baseline (`bench.celery_raw`) in the same run, on the same
broker and result backend (`CELERY_BROKER_URL`, `CELERY_RESULT_BACKEND`).

For each size, `stratexec worker` processes run the engine's attempts (the demo agents with a
zero duration) while the engine workload runs in a process of its own, exactly as the local
one (every projection live, the clock stopped by `execution-completed` on the SSE stream);
then the baseline's worker, with the same pool, processes and queues, runs the same DAG for a caller
that records nothing. The two never share the machine. Queues and keys are this run's own
(a fresh `STRATEXEC_QUEUE_PREFIX`), and deleted at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

from stratexec.bench import celery_raw
from stratexec.bench.workloads import INSTANT
from stratexec.workers.connection import CelerySettings, celery_app, redis_client

WORKER_PROCESSES = 4
READY_TIMEOUT = 60.0


def run(sizes: list[int], worker_of: Any) -> dict[str, Any]:
    """`worker_of(*args)` runs a `bench.workloads` process and returns its figures."""
    prefix = f"bench{uuid4().hex[:8]}"
    os.environ["STRATEXEC_QUEUE_PREFIX"] = prefix  # for the processes started below
    settings = CelerySettings.from_environment()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="stratexec-bench-celery-") as scratch:
            for n in sizes:
                with _workers(settings, [sys.executable, "-m", "stratexec", "worker",
                                         "--concurrency", str(WORKER_PROCESSES),
                                         "--queues", ",".join(celery_raw.TYPES),
                                         "--demo-duration", "0:0",
                                         "--demo-failure-rate", "0"], "stratexec-"):
                    engine = worker_of("engine", "--n", str(n), "--data-dir",
                                       f"{scratch}/n{n}", "--agents-on", "celery")
                with _workers(settings, [sys.executable, "-m", "stratexec.bench.celery_raw",
                                         str(WORKER_PROCESSES)], "raw-"):
                    raw = celery_raw.chains(settings, n, INSTANT.concurrency)
                forget_results(settings, [f"celery-task-meta-{engine['executionId']}:*"])
                rows.append({"engine": engine, "rawCelery": raw,
                             "ratioToRawCelery": engine["tasksPerSecond"]
                             / raw["tasksPerSecond"]})
    finally:
        forget_results(settings, [f"{settings.prefix}*"])
    return {"agentsOn": "celery", "broker": _redacted(settings.broker_url),
            "workerProcesses": WORKER_PROCESSES, "concurrencyPerType": INSTANT.concurrency,
            "throughput": rows}


def table(figures: dict[str, Any]) -> str:
    lines = [f"Throughput on Celery workers ({figures['broker']}, {figures['workerProcesses']} "
             f"prefork processes; {figures['concurrencyPerType']} attempts in flight per type)",
             "engine: every state change recorded, every projection live, clock stopped by "
             "execution-completed on the SSE stream; raw: the same DAG as plain Celery tasks "
             "chained by the caller, nothing recorded", "",
             f"{'N':>7} {'tasks':>7} {'engine/s':>9} {'raw/s':>9} {'x raw':>6}"]
    for row in figures["throughput"]:
        engine, raw = row["engine"], row["rawCelery"]
        lines.append(f"{engine['n']:>7,} {engine['tasks']:>7,} "
                     f"{engine['tasksPerSecond']:>9,.0f} {raw['tasksPerSecond']:>9,.0f} "
                     f"{row['ratioToRawCelery']:>6.2f}")
    return "\n".join(lines)


@contextmanager
def _workers(settings: CelerySettings, command: list[str], name_prefix: str) -> Iterator[None]:
    """A worker process (in its own session), up and answering, stopped on the way out."""
    name_arg = [] if name_prefix == "stratexec-" else [f"raw-{uuid4().hex[:6]}@%h"]
    process = subprocess.Popen([*command, *name_arg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    name = (f"stratexec-{process.pid}@{socket.gethostname()}" if not name_arg
            else name_arg[0].replace("%h", socket.gethostname()))
    try:
        _until_answering(settings, process, name)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)


def _until_answering(settings: CelerySettings, process: subprocess.Popen[bytes], name: str
                     ) -> None:
    app = celery_app(settings)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bench worker exited: {process.communicate()[1]!r}")
        if app.control.ping(destination=[name], timeout=0.5):
            return
    raise RuntimeError(f"the bench worker {name} did not answer in {READY_TIMEOUT:g} s")


def forget_results(settings: CelerySettings, patterns: list[str]) -> None:
    """Delete the run's keys (its outcomes would otherwise stay for `RESULT_EXPIRES`)."""
    client = redis_client(settings)
    for pattern in patterns:
        batch = []
        for name in client.scan_iter(pattern, count=1000):
            batch.append(name)
            if len(batch) == 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)


def _redacted(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
