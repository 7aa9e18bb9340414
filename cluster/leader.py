"""The projections' leadership: one advisory lock per view schema, on its own connection."""

from __future__ import annotations

from stratexec.cluster.locks import LockConnection
from stratexec.projections.sql import advisory_key


class AdvisoryLeadership:
    """`projections.runner.Leadership` as a session advisory lock: the runner holding it
    applies the pages; when its process dies (or its connection is lost) PostgreSQL frees
    it and another process's runner takes it at its next step."""

    def __init__(self, conninfo: str, schema: str) -> None:
        self.key = advisory_key(f"stratexec projections {schema}")
        self._locks = LockConnection(conninfo, "stratexec-projections-leader")

    def acquire(self) -> bool:
        if self.key in self._locks.held:
            return self._locks.alive()  # the lock went with a lost connection
        return self._locks.try_lock(self.key)

    def release(self) -> None:
        self._locks.unlock(self.key)

    def close(self) -> None:
        self._locks.close()
