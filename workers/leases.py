"""Each agent type's concurrency limit across every worker: a lease per running attempt.

Celery has no global limit (its `rate_limit` is per worker), so each attempt takes a lease in
its type's Redis sorted set (member: the attempt's key, score: when the lease runs out) before
its handler runs, and gives it back when it ends. One Lua call drops the leases that ran out,
then refuses a key that holds one already (another delivery of the same attempt is running:
`BUSY`) or a type at its limit (`FULL`), else takes the lease (`TAKEN`). A thread of the
holding process renews its leases every `LEASE_SECONDS / 3`, so a SIGKILLed worker's slots come
back within `LEASE_SECONDS`, however long its attempts were to run.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

LEASE_SECONDS = 15.0
TAKEN, BUSY, FULL = 1, -1, 0

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2] + ARGV[3], ARGV[1])
  return 1
end
return 0
"""


class Leases:
    """The leases this process holds (a prefork child each has its own renewing thread)."""

    def __init__(self, redis: Any, lease_seconds: float = LEASE_SECONDS) -> None:
        self._redis = redis
        self._lease = lease_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._held: dict[str, str] = {}  # attempt key -> its type's sorted set
        self._lock = threading.Lock()
        self._renewer_pid: int | None = None

    def take(self, leases_key: str, key: str, limit: int) -> int:
        """TAKEN, BUSY or FULL."""
        answer = int(self._acquire(keys=[leases_key], args=[key, time.time(), self._lease,
                                                              limit]))
        if answer == TAKEN:
            with self._lock:
                self._held[key] = leases_key
            self._renew_in_this_process()
        return answer

    def give_back(self, key: str) -> None:
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
