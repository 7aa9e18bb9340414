"""This process as one node of several on one PostgreSQL database.

A node has a name (host and process id, shown by /healthz and in `pg_stat_activity` as the
application name of its lock connections), competes for the projections' leadership, and
listens for the other nodes' news: new events (eventsourcing's NOTIFY on its events table)
wake the leading runner, new view positions (the leader's NOTIFY) wake the following ones.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from eventsourcing.postgres import PostgresApplicationRecorder

from stratexec.cluster.leader import AdvisoryLeadership
from stratexec.cluster.listen import Listener
from stratexec.domain.application import StratexecApp
from stratexec.projections.runner import ProjectionRunner
from stratexec.projections.store import PostgresViewStore


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Node:
    conninfo: str
    views: PostgresViewStore
    name: str = field(default_factory=node_name)
    leadership: AdvisoryLeadership = field(init=False)
    _listener: Listener | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.leadership = AdvisoryLeadership(self.conninfo, self.views.schema)

    def listen(self, app: StratexecApp, runner: ProjectionRunner) -> None:
        """Wake `runner` on every new event and every new view position of any node."""
        channels = [self.views.positions_channel]
        if isinstance(app.recorder, PostgresApplicationRecorder):
            channels.append(app.recorder.channel_name)
        self._listener = Listener(self.conninfo, channels, runner.wake,
                                  name="stratexec-node-listener").start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.leadership.close()
