"""The projections' leadership: one advisory lock per view schema, on its own connection."""

from __future__ import annotations

import time

from stratexec.cluster.locks import LockConnection
from stratexec.projections.sql import advisory_key

CHECK_INTERVAL = 1.0  # seconds between two looks at whether the held lock is still held


class AdvisoryLeadership:
    """`projections.runner.Leadership` as a session advisory lock: the runner holding it
    applies the pages; when its process dies (or its connection is lost) PostgreSQL frees
    it and another process's runner takes it at its next step.

    A holder asks the server whether its connection (and so the lock) is still there at
    most every `CHECK_INTERVAL` seconds, not at every page: that question was a round trip
    per page. The lock decides who does the work, not whether it is done once: a runner
    that lost it and applies a page before it learns so is fenced by the write lock and
    the tracking positions every page re-reads (`projections.runner`)."""

    def __init__(self, conninfo: str, schema: str, check_interval: float = CHECK_INTERVAL,
                 ) -> None:
        self.key = advisory_key(f"stratexec projections {schema}")
        self.check_interval = check_interval
        self._locks = LockConnection(conninfo, "stratexec-projections-leader")
        self._checked = float("-inf")  # monotonic time the lock was last known held

    def acquire(self) -> bool:
        now = time.monotonic()
        if self.key in self._locks.held:
            if now - self._checked < self.check_interval:
                return True
            held = self._locks.alive()  # the lock went with a lost connection
        else:
            held = self._locks.try_lock(self.key)
        if held:
            self._checked = now
        return held

    def release(self) -> None:
        self._locks.unlock(self.key)

    def backend_pid(self) -> int:
        """The server process of the lock's connection."""
        return self._locks.backend_pid()

    def close(self) -> None:
        self._locks.close()
