"""`stratexec bench`: runs every workload, prints a table, writes the figures as JSON.

Each engine run happens in a fresh process (so that its memory and its CPU time are its
own); the baselines run in this process, in the same invocation, so that every ratio
compares figures taken on the same machine at the same time.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from stratexec.bench.baselines import plain_asyncio, store_ceiling
from stratexec.bench.databases import fresh_database


def run_workload(*args: str) -> dict[str, Any]:
    """One `bench.workloads` run in a fresh process: its figures."""
    # Each workload starts with the disk idle: the hundreds of MiB the previous one wrote
    # would otherwise be flushed during it, and stall its commits (seen: a 100-subscriber
    # p99 of 88 ms right after the N = 50,000 runs, 15-24 ms otherwise).
    os.sync()
    result = subprocess.run([sys.executable, "-m", "stratexec.bench.workloads", *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"bench worker {' '.join(args)} failed:\n{result.stderr}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _on_fresh_database(*runs: list[str]) -> list[dict[str, Any]]:
    """Workers run one after the other on one new PostgreSQL database (dropped after)."""
    with fresh_database() as database, \
            tempfile.TemporaryDirectory(prefix="stratexec-bench-") as scratch:
        return [run_workload(*args, "--database", database, "--data-dir", f"{scratch}/{i}")
                for i, args in enumerate(runs)]


def postgres_run(sizes: list[int], latency_size: int, subscribers: list[int]
                 ) -> dict[str, Any]:
    """The same workloads on PostgreSQL: the engine in one process, and in two (a second
    server process runs the projections), beside raw appends to a fresh database."""
    throughput = []
    replay: dict[str, Any] = {}
    for n in sizes:
        runs = [["engine", "--n", str(n)]] + ([["replay"]] if n == max(sizes) else [])
        one, *rest = _on_fresh_database(*runs)
        if rest:
            replay = rest[0]
        (two,) = _on_fresh_database(["engine", "--n", str(n), "--peer"])
        ceiling = store_ceiling(one["events"], one["eventsPerSave"], postgres=True)
        throughput.append({
            "engine": one, "twoProcesses": two, "store": ceiling,
            "twoOverOne": two["tasksPerSecond"] / one["tasksPerSecond"],
            "ratioToGroupedAppends": one["eventsPerSecond"]
            / ceiling["groupedAsTheEngine"]["eventsPerSecond"],
        })
    latency = [_on_fresh_database(["engine", "--n", str(latency_size), "--subscribers",
                                   str(count)])[0]["latency"] for count in subscribers]
    return {"throughput": throughput, "latency": latency, "replay": replay}


def run(sizes: list[int], latency_size: int, subscribers: list[int],
        replay_min_events: int, store: str = "sqlite") -> dict[str, Any]:
    postgres = postgres_run(sizes, latency_size, subscribers) if store == "postgres" else None
    with tempfile.TemporaryDirectory(prefix="stratexec-bench-") as scratch:
        throughput = []
        for n in sizes:
            again = ["--again"] if n == max(sizes) else []  # the memory workload
            engine = run_workload("engine", "--n", str(n), "--data-dir", f"{scratch}/n{n}", *again)
            floor = plain_asyncio(n)
            ceiling = store_ceiling(engine["events"], engine["eventsPerSave"])
            throughput.append({
                "engine": engine, "asyncio": floor, "store": ceiling,
                "ratioToAsyncio": engine["tasksPerSecond"] / floor["tasksPerSecond"],
                "ratioToGroupedAppends": engine["eventsPerSecond"]
                / ceiling["groupedAsTheEngine"]["eventsPerSecond"],
                "ratioToSingleAppends": engine["eventsPerSecond"]
                / ceiling["oneEventPerSave"]["eventsPerSecond"],
            })
        latency = [run_workload("engine", "--n", str(latency_size), "--subscribers", str(count),
                           "--data-dir", f"{scratch}/latency{count}")["latency"]
                   for count in subscribers]
        largest = max(sizes)
        replay = run_workload("replay", "--data-dir", f"{scratch}/n{largest}")
        replay["meetsMinimum"] = replay["events"] >= replay_min_events
    biggest = throughput[-1]["engine"]
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "throughput": throughput, "latency": latency, "replay": replay,
        "memory": {key: biggest[key] for key in (
            "n", "tasks", "rssBeforeKiB", "peakRssKiB", "rssAfterKiB",
            "rssPerThousandTasksKiB", "rssAfterAgainKiB", "liveExecutionsAfter")},
        "growth": _growth(throughput),
        "postgres": postgres,
    }


def _growth(throughput: list[dict[str, Any]]) -> dict[str, Any]:
    """Cost per task at the largest size over the cost at the smallest of 1,000 or more:
    about 1 when the cost grows linearly with the number of tasks."""
    runs = [t["engine"] for t in throughput]
    base = next((r for r in runs if r["n"] >= 1000), runs[0])
    top = runs[-1]
    return {"fromN": base["n"], "toN": top["n"],
            "microsecondsPerTaskRatio": top["microsecondsPerTask"] / base["microsecondsPerTask"]}


def table(figures: dict[str, Any]) -> str:
    lines = ["Throughput (2N tasks in N chains of two; embedded SQLite; every projection live;",
             "start request until execution-completed arrives on the SSE stream)", "",
             f"{'N':>7} {'tasks/s':>9} {'µs/task':>8} {'events/s':>9} {'CPU s':>6} "
             f"{'x asyncio':>9} {'x grouped':>9} {'x single':>9}"]
    for row in figures["throughput"]:
        engine = row["engine"]
        lines.append(
            f"{engine['n']:>7,} {engine['tasksPerSecond']:>9,.0f} "
            f"{engine['microsecondsPerTask']:>8,.0f} {engine['eventsPerSecond']:>9,.0f} "
            f"{engine['cpuSeconds']:>6.1f} {row['ratioToAsyncio']:>9.3f} "
            f"{row['ratioToGroupedAppends']:>9.2f} {row['ratioToSingleAppends']:>9.2f}")
    lines += ["", "Baselines, same run:"]
    for row in figures["throughput"]:
        store = row["store"]
        lines.append(
            f"  N={row['engine']['n']:,}: plain asyncio {row['asyncio']['tasksPerSecond']:,.0f}"
            f" tasks/s; raw appends {store['oneEventPerSave']['eventsPerSecond']:,.0f} events/s"
            f" one per save, {store['groupedAsTheEngine']['eventsPerSecond']:,.0f} events/s"
            f" {store['groupedAsTheEngine']['perSave']} per save")
    growth = figures["growth"]
    lines += ["", f"Growth: µs per task at N={growth['toN']:,} is "
                  f"{growth['microsecondsPerTaskRatio']:.2f}x that at N={growth['fromN']:,}",
              "", "Stream latency (recorded time to arrival, workspace SSE stream)"]
    for row in figures["latency"]:
        lines.append(
            f"  {row['subscribers']:>3} subscriber(s): p50 {row['p50Ms']:.1f} ms, p99 "
            f"{row['p99Ms']:.1f} ms, max {row['maxMs']:.1f} ms; missing "
            f"{row['missingPerSubscriber']}, duplicated {row['duplicatedPerSubscriber']} "
            f"(per subscriber, of {row['events']})")
    replay, memory = figures["replay"], figures["memory"]
    lines += ["", f"Replay: {replay['events']:,} events rebuilt into every read model in "
                  f"{replay['seconds']:.2f} s: {replay['eventsPerSecond']:,.0f} events/s",
              "", f"Memory at N={memory['n']:,}: peak RSS {memory['peakRssKiB'] / 1024:,.0f} MiB;"
                  f" {memory['rssPerThousandTasksKiB'] / 1024:,.2f} MiB per thousand tasks at"
                  f" the peak; RSS {memory['rssBeforeKiB'] / 1024:,.0f} MiB before the run,"
                  f" {memory['rssAfterKiB'] / 1024:,.0f} MiB after it finished,"
                  f" {memory['rssAfterAgainKiB'] / 1024:,.0f} MiB after a second one;"
                  f" {memory['liveExecutionsAfter']} execution(s) left in memory"]
    return "\n".join(lines)


def postgres_table(figures: dict[str, Any]) -> str:
    lines = ["", "PostgreSQL (the same workloads; one process, and two: a second server",
             "process runs the projections; raw appends to a fresh database, same run)", "",
             f"{'N':>7} {'tasks/s':>9} {'µs/task':>8} {'events/s':>9} {'2 procs':>9} "
             f"{'2 / 1':>6} {'x grouped':>9}"]
    for row in figures["throughput"]:
        one, two = row["engine"], row["twoProcesses"]
        lines.append(
            f"{one['n']:>7,} {one['tasksPerSecond']:>9,.0f} {one['microsecondsPerTask']:>8,.0f}"
            f" {one['eventsPerSecond']:>9,.0f} {two['tasksPerSecond']:>9,.0f}"
            f" {row['twoOverOne']:>6.2f} {row['ratioToGroupedAppends']:>9.2f}")
    for row in figures["throughput"]:
        store = row["store"]
        lines.append(
            f"  N={row['engine']['n']:,}: raw appends "
            f"{store['oneEventPerSave']['eventsPerSecond']:,.0f} events/s one per save, "
            f"{store['groupedAsTheEngine']['eventsPerSecond']:,.0f} events/s "
            f"{store['groupedAsTheEngine']['perSave']} per save")
    for row in figures["latency"]:
        lines.append(
            f"  {row['subscribers']:>3} subscriber(s): p50 {row['p50Ms']:.1f} ms, p99 "
            f"{row['p99Ms']:.1f} ms, max {row['maxMs']:.1f} ms; missing "
            f"{row['missingPerSubscriber']}, duplicated {row['duplicatedPerSubscriber']}")
    replay = figures["replay"]
    if replay:
        lines.append(f"  Replay: {replay['events']:,} events in {replay['seconds']:.2f} s: "
                     f"{replay['eventsPerSecond']:,.0f} events/s")
    return "\n".join(lines)


def main(sizes: list[int], latency_size: int, subscribers: list[int],
         replay_min_events: int, out: Path | None, store: str = "sqlite",
         agents_on: str = "local") -> int:
    """With `agents_on="celery"`, only the throughput runs, on Celery workers, beside the
    raw Celery baseline (`bench.on_workers`); `store="postgres"` adds the PostgreSQL
    workloads beside the SQLite ones."""
    if agents_on == "celery":
        # Celery is imported only by the commands that use it.
        from stratexec.bench import on_workers  # noqa: PLC0415

        figures = on_workers.run(sizes, run_workload)
        print(on_workers.table(figures))
    else:
        figures = run(sizes, latency_size, subscribers, replay_min_events, store)
        print(table(figures))
        if figures["postgres"] is not None:
            print(postgres_table(figures["postgres"]))
    if out is not None:
        out.write_text(json.dumps(figures, indent=2))
        print(f"\nfigures written to {out}")
    return 0
