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
executions spread over the others. New executions spread too: the node that records one
runs it unless another live node owns at least two fewer; then it offers it (NOTIFY
`stratexec_offers`) and the least loaded nodes try to claim it, the first claim winning (or,
if none does, the next takeover look of any node). A node that takes one over rebuilds it
from its events (`Runtime.recover`): attempts that were under way get a new, recorded
attempt.

A hung process that keeps its socket open keeps its locks until the server ends its idle
session (`LOCK_IDLE_TIMEOUT`, `locks.LockConnection`); if it wakes after its connection
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
OFFERS = "stratexec_offers"  # NOTIFY: a new execution for the least loaded node
TAKEOVER_INTERVAL = 2.0
# Seconds a process's lock connections may stay idle before PostgreSQL ends them, freeing
# its locks: how long a hung process keeps its executions and the projections' lead.
LOCK_IDLE_TIMEOUT = 60.0


def execution_key(execution_id: UUID) -> int:
    return advisory_key(f"stratexec execution {execution_id}")


class AdvisoryOwnership:
    """`actors.runtime.Ownership` with advisory locks."""

    def __init__(self, conninfo: str, idle_timeout: float | None = None) -> None:
        self._locks = LockConnection(conninfo, NODE_APPLICATION, idle_timeout)
        self._owned: dict[int, UUID] = {}
        self.takeovers = 0  # unowned executions this node took up (a dead node's, mostly)

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

    def least_loaded(self) -> bool:
        """Whether this node owns no more than one execution more than the live node that
        owns the fewest (where a new execution should run: `usecases.start_execution`)."""
        counts = self._locks.lock_counts(NODE_APPLICATION)
        mine = counts.pop(self._locks.backend_pid(), len(self._owned))
        return not counts or mine <= min(counts.values()) + 1

    def offer(self, execution_id: UUID) -> None:
        """Tell the other nodes that a new execution waits for a less loaded one."""
        self._locks.notify(OFFERS, str(execution_id))

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

    def offered(self, execution_id: UUID) -> None:
        """Another node started an execution for a less loaded one: take it if this one is
        the least loaded (when several are, their claims decide)."""
        if self.ownership.least_loaded() and execution_id not in self._live() \
                and self._recover([execution_id]):
            logger.info("took up execution %s, offered by a busier node", execution_id)

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
