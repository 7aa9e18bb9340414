"""The raw Celery baseline of `stratexec bench --agents-on celery`: the same DAG (N chains of
two tasks) as plain Celery tasks on the same broker and result backend, chained by the
caller, with as many in flight as the engine allows (its concurrency, per agent type), and
nothing else recorded.

`python -m stratexec.bench.celery_raw` is its worker: one do-nothing task, `stratexec.noop`,
on the same two queues, with the same pool and settings as `stratexec worker`.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

from stratexec.workers.connection import CelerySettings, celery_app

NOOP = "stratexec.noop"
TYPES = ("research", "analysis")  # the two tasks of each chain, as the engine's rule makes
GET_TIMEOUT = 120.0


def chains(settings: CelerySettings, n: int, per_type: int) -> dict[str, Any]:
    """Submit each chain's first task; when one's result comes, submit its second; keep
    `per_type` of each type in flight (the engine's limit). Results are read in the order
    they were sent, from the backend's pub/sub, in this thread."""
    app = celery_app(settings)
    first, second = (settings.queue(t) for t in TYPES)
    in_flight: deque[tuple[str, Any]] = deque()
    next_chain = 0
    started = time.perf_counter()
    while next_chain < min(n, per_type):
        in_flight.append((first, app.send_task(NOOP, args=(next_chain,), queue=first)))
        next_chain += 1
    done = 0
    while in_flight:
        queue, result = in_flight.popleft()
        result.get(timeout=GET_TIMEOUT)
        result.forget()  # its result is read: nothing of the run stays in the backend
        done += 1
        if queue == first:
            in_flight.append((second, app.send_task(NOOP, args=(done,), queue=second)))
            if next_chain < n:
                in_flight.append((first, app.send_task(NOOP, args=(next_chain,),
                                                       queue=first)))
                next_chain += 1
    elapsed = time.perf_counter() - started
    return {"n": n, "tasks": 2 * n, "seconds": elapsed, "tasksPerSecond": 2 * n / elapsed}


def main(argv: list[str]) -> None:
    """The baseline's worker: `python -m stratexec.bench.celery_raw CONCURRENCY NAME`."""
    settings = CelerySettings.from_environment()
    app = celery_app(settings)

    @app.task(name=NOOP)  # type: ignore[untyped-decorator]
    def noop(value: int) -> int:
        return value

    concurrency, name = argv
    app.worker_main(["worker", "--queues", ",".join(settings.queue(t) for t in TYPES),
                     "--pool", "prefork", "--concurrency", concurrency, "--hostname", name,
                     "--loglevel", "WARNING", "--without-gossip", "--without-mingle"])


if __name__ == "__main__":
    main(sys.argv[1:])
