"""Which live process owns each unfinished execution, and the takeover of a dead one's.

Ownership is a session advisory lock per execution (key: a hash of its id), all held on
one connection per process (`locks.LockConnection`, named `stratexec-node` in
`pg_stat_activity`). PostgreSQL frees them within milliseconds of that connection's end, so
a process killed with `kill -9`, or cut off from the database, owns nothing any more. The
runtime claims an execution before it spawns its actor and lets go when it has finished.

`Takeover` runs on every node every `interval` seconds: it stops the actors of executions
whose locks went with a lost connection (another node may run them already), and claims
unfinished executions that no live process owns, up to this node's fair share of all
unfinished executions (their number over the number of live nodes), so that a dead node's
executions spread over the others. A node that takes one over rebuilds it from its events
(`Runtime.recover`): attempts that were under way get a new, recorded attempt.

A hung process that keeps its socket open keeps its locks; if it wakes after its connection
was dropped, its next save of an execution taken over meanwhile is refused by the event
store's version check, and the runtime then stops that actor for good (fencing).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from uuid import UUID

from stratexec.cluster.locks import LockConnection
from stratexec.projections.sql import advisory_key

logger = logging.getLogger(__name__)
NODE_APPLICATION = "stratexec-node"
TAKEOVER_INTERVAL = 2.0


def execution_key(execution_id: UUID) -> int:
    return advisory_key(f"stratexec execution {execution_id}")


class AdvisoryOwnership:
    """`actors.runtime.Ownership` with advisory locks."""

    def __init__(self, conninfo: str) -> None:
        self._locks = LockConnection(conninfo, NODE_APPLICATION)
        self._owned: dict[int, UUID] = {}
        self.takeovers = 0  # executions this node took over from a dead one

    def claim(self, execution_id: UUID) -> bool:
        key = execution_key(execution_id)
        if self._locks.try_lock(key):
            self._owned[key] = execution_id
            return True
        return False

    def release(self, execution_id: UUID) -> None:
        key = execution_key(execution_id)
        self._owned.pop(key, None)
        self._locks.unlock(key)

    def owned(self) -> set[UUID]:
        """The executions this node still owns (none once its connection was lost)."""
        self._locks.alive()
        held = self._locks.held
        return {execution_id for key, execution_id in list(self._owned.items()) if key in held}

    def live_nodes(self) -> int:
        """How many processes hold ownership connections to this database now."""
        return max(1, self._locks.count_sessions(NODE_APPLICATION))

    def close(self) -> None:
        self._locks.close()


class Takeover:
    """The thread that fences lost executions and takes over unowned ones (see above)."""

    def __init__(self, ownership: AdvisoryOwnership, unfinished: Callable[[], list[UUID]],
                 live: Callable[[], list[UUID]], abandon: Callable[[list[UUID]], None],
                 recover: Callable[[list[UUID]], list[UUID]],
                 interval: float = TAKEOVER_INTERVAL) -> None:
        self.ownership, self.interval = ownership, interval
        self._unfinished, self._live = unfinished, live
        self._abandon, self._recover = abandon, recover
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stratexec-takeover",
                                        daemon=True)

    def start(self) -> Takeover:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.scan()
            except Exception:
                logger.exception("the takeover scan failed; trying again in %.1f s",
                                 self.interval)

    def scan(self) -> list[UUID]:
        """One pass; returns the executions taken over."""
        owned = self.ownership.owned()
        lost = [execution_id for execution_id in self._live() if execution_id not in owned]
        if lost:
            logger.warning("this node lost %d executions with its connection; their actors "
                           "stop (another node continues them)", len(lost))
            self._abandon(lost)
        unfinished = self._unfinished()
        live = set(self._live())
        share = math.ceil(len(unfinished) / self.ownership.live_nodes())
        taken: list[UUID] = []
        for execution_id in unfinished:
            if len(live) + len(taken) >= share:
                break
            if execution_id not in live and self._recover([execution_id]):
                taken.append(execution_id)
        if taken:
            self.ownership.takeovers += len(taken)
            logger.info("took over %d executions no live node owned", len(taken))
        return taken
