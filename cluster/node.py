"""This process as one node of several on one PostgreSQL database.

A node has a name (host and process id, shown by /healthz), competes for the projections'
leadership, owns the executions it runs (`cluster.ownership`) and takes over those of dead
nodes, and listens for the other nodes' news: new events (eventsourcing's NOTIFY on its
events table) wake the leading runner, new view positions (the leader's NOTIFY) wake the
following ones.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eventsourcing.postgres import PostgresApplicationRecorder

from stratexec.cluster.leader import AdvisoryLeadership
from stratexec.cluster.listen import Listener
from stratexec.cluster.ownership import TAKEOVER_INTERVAL, AdvisoryOwnership, Takeover
from stratexec.domain.application import StratexecApp
from stratexec.projections.queries import unfinished_execution_ids
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import PostgresViewStore

if TYPE_CHECKING:
    from stratexec.actors.runtime import Runtime


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Node:
    conninfo: str
    views: PostgresViewStore
    takeover_interval: float = TAKEOVER_INTERVAL
    name: str = field(default_factory=node_name)
    leadership: AdvisoryLeadership = field(init=False)
    ownership: AdvisoryOwnership = field(init=False)
    takeover: Takeover | None = field(default=None, init=False)
    _listener: Listener | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.leadership = AdvisoryLeadership(self.conninfo, self.views.schema)
        self.ownership = AdvisoryOwnership(self.conninfo)

    def take_over(self, runtime: Runtime) -> Takeover:
        """Start looking for executions no live node owns (the first look is the caller's:
        `Takeover.scan`, at start-up)."""
        self.takeover = Takeover(
            self.ownership, lambda: unfinished_execution_ids(self.views),
            runtime.live_execution_ids, runtime.abandon, runtime.recover,
            self.takeover_interval).start()
        return self.takeover

    def listen(self, app: StratexecApp, runner: ProjectionRunner) -> None:
        """Wake `runner` on every new event and every new view position of any node."""
        channels = [self.views.positions_channel]
        if isinstance(app.recorder, PostgresApplicationRecorder):
            channels.append(app.recorder.channel_name)
        self._listener = Listener(self.conninfo, channels, runner.wake,
                                  name="stratexec-node-listener").start()

    def stop(self) -> None:
        """After the runtime has stopped: let go of everything this node holds."""
        if self.takeover is not None:
            self.takeover.stop()
        if self._listener is not None:
            self._listener.stop()
        self.ownership.close()
        self.leadership.close()
