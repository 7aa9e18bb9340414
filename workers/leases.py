"""Each agent type's concurrency limit across every worker: a lease per running attempt.

Celery has no global limit (its `rate_limit` is per worker), so each attempt takes a lease in
its type's Redis sorted set (member: the attempt's key, score: when the lease runs out) before
its handler runs, and gives it back when it ends. One Lua call (`begin`) drops the leases that
ran out, then answers `STORED` with the outcome when the attempt finished already, `BUSY` when
another delivery of it holds a lease (it runs elsewhere), `FULL` when the type is at its limit,
or else takes the lease and reports `started`, all in one round trip. `finish` stores the
outcome (in Celery's result format, under Celery's key), reports it and gives the lease back
in one transaction. A thread of the holding process renews its leases every
`LEASE_SECONDS / 3`, so a SIGKILLed worker's slots come back within `LEASE_SECONDS`, however
long its attempts were to run.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from stratexec.workers import wire

LEASE_SECONDS = 15.0
REPORTS_MAX_LENGTH = 100_000  # the reports stream is trimmed to about this many entries
TAKEN, BUSY, FULL, STORED = 1, -1, 0, 2

# KEYS: leases, result meta, reports stream; ARGV: key, now, lease, limit, started body
_BEGIN = """
local meta = redis.call('GET', KEYS[2])
if meta then return {2, meta} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {-1} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return {0} end
redis.call('ZADD', KEYS[1], ARGV[2] + ARGV[3], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*',
           'key', ARGV[1], 'kind', 'started', 'body', ARGV[5])  -- wire.STARTED
return {1}
"""



def result_key(key: str) -> str:
    """Where Celery's Redis backend keeps a task's result (`AsyncResult(key)` reads it)."""
    return f"celery-task-meta-{key}"


class Leases:
    """The leases this process holds (a prefork child each has its own renewing thread)."""

    def __init__(self, redis: Any, reports_key: str, result_expires: int,
                 lease_seconds: float = LEASE_SECONDS) -> None:
        self._redis = redis
        self._reports = reports_key
        self._expires = result_expires
        self._lease = lease_seconds
        self._begin = redis.register_script(_BEGIN)
        self._held: dict[str, str] = {}  # attempt key -> its type's sorted set
        self._lock = threading.Lock()
        self._renewer_pid: int | None = None

    def begin(self, leases_key: str, key: str, limit: int, started: dict[str, Any]
              ) -> tuple[int, Any]:
        """(TAKEN, None), (BUSY, None), (FULL, None) or (STORED, the stored result)."""
        answer = self._begin(keys=[leases_key, result_key(key), self._reports],
                             args=[key, time.time(), self._lease, limit, json.dumps(started),
                                   REPORTS_MAX_LENGTH])
        code = int(answer[0])
        if code == TAKEN:
            with self._lock:
                self._held[key] = leases_key
            self._renew_in_this_process()
        return code, json.loads(answer[1])["result"] if code == STORED else None

    def report(self, key: str, kind: str, body: dict[str, Any]) -> None:
        self._redis.xadd(self._reports, wire.report(key, kind, body), maxlen=REPORTS_MAX_LENGTH,
                         approximate=True)

    def finish(self, key: str, outcome: dict[str, Any], store: bool) -> None:
        """Store the outcome (unless it is the stored one), report it, give the lease back."""
        with self._lock:
            leases_key = self._held.pop(key, None)
        with self._redis.pipeline(transaction=True) as pipe:
            if store:
                pipe.set(result_key(key), json.dumps({
                    "status": "SUCCESS", "result": outcome, "traceback": None, "children": [],
                    "date_done": datetime.now(UTC).isoformat(), "task_id": key}),
                    ex=self._expires)
            pipe.xadd(self._reports, wire.report(key, wire.OUTCOME, outcome),
                      maxlen=REPORTS_MAX_LENGTH, approximate=True)
            if leases_key is not None:
                pipe.zrem(leases_key, key)
            pipe.execute()

    def give_back(self, key: str) -> None:
        """The attempt ends without an outcome (its delivery failed)."""
        with self._lock:
            leases_key = self._held.pop(key, None)
        if leases_key is not None:
            self._redis.zrem(leases_key, key)

    def drop(self, leases_key: str, key: str) -> None:
        """Give back a lease another process of this worker held (it was terminated)."""
        self._redis.zrem(leases_key, key)

    def _renew_in_this_process(self) -> None:
        if self._renewer_pid == os.getpid():
            return
        self._renewer_pid = os.getpid()  # after a fork the parent's thread is not here
        threading.Thread(target=self._renew, name="stratexec-leases", daemon=True).start()

    def _renew(self) -> None:
        while True:
            time.sleep(self._lease / 3)
            with self._lock:
                held = list(self._held.items())
            until = time.time() + self._lease
            for key, leases_key in held:
                self._redis.zadd(leases_key, {key: until}, xx=True)
