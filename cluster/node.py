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
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder

from stratexec.actors.messages import Transition
from stratexec.cluster.commands import ANSWERS, COMMANDS, CommandRouter
from stratexec.cluster.leader import AdvisoryLeadership
from stratexec.cluster.listen import Listener
from stratexec.cluster.ownership import (
    OFFERS,
    TAKEOVER_INTERVAL,
    AdvisoryOwnership,
    Takeover,
)
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
    commands: CommandRouter | None = field(default=None, init=False)
    _listener: Listener | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.leadership = AdvisoryLeadership(self.conninfo, self.views.schema)
        self.ownership = AdvisoryOwnership(self.conninfo)

    def take_over(self, runtime: Runtime) -> Takeover:
        """Start looking for executions no live node owns (the first look is the caller's:
        `Takeover.scan`, at start-up), and answering the commands other nodes send for the
        executions this one owns."""
        self.takeover = Takeover(
            self.ownership, lambda: unfinished_execution_ids(self.views),
            runtime.live_execution_ids, runtime.abandon, runtime.recover,
            self.takeover_interval).start()

        def execute(execution_id: UUID, command: str, task_id: str | None) -> Transition:
            if command == "retry":
                return runtime.retry(execution_id, task_id)
            return {"pause": runtime.pause, "resume": runtime.resume,
                    "cancel": runtime.cancel}[command](execution_id)

        self.commands = CommandRouter(self.conninfo, self.name, self.ownership.owned,
                                      execute).start()
        return self.takeover

    def listen(self, app: StratexecApp, runner: ProjectionRunner) -> None:
        """Wake `runner` on every new event and every new view position of any node, and
        the command router on every command and answer."""
        channels = [self.views.positions_channel, COMMANDS, ANSWERS, OFFERS]
        if isinstance(app.recorder, PostgresApplicationRecorder):
            channels.append(app.recorder.channel_name)

        def dispatch(channel: str, payload: str) -> None:
            if channel == OFFERS:
                self._offered(payload)
                return
            for_commands = channel in (COMMANDS, ANSWERS) or not channel  # "": reconnected
            if for_commands and self.commands is not None:
                self.commands.on_notify(channel, payload)
            if channel == self.views.positions_channel and runner.leading:
                return  # its own announcement: the leader is where the views' news comes from
            if channel not in (COMMANDS, ANSWERS):
                runner.wake()

        self._listener = Listener(self.conninfo, channels, dispatch,
                                  name="stratexec-node-listener").start()

    def offer(self, execution_id: UUID) -> None:
        """Offer a new execution to the less loaded nodes (`cluster.ownership`)."""
        self.ownership.offer(execution_id)

    def _offered(self, payload: str) -> None:
        takeover = self.takeover
        if takeover is not None and payload:  # off the listener's thread: it loads and spawns
            threading.Thread(target=takeover.offered, args=(UUID(payload),), daemon=True,
                             name="stratexec-offered").start()

    def stop(self) -> None:
        """After the runtime has stopped: let go of everything this node holds."""
        if self.takeover is not None:
            self.takeover.stop()
        if self.commands is not None:
            self.commands.stop()
        if self._listener is not None:
            self._listener.stop()
        self.ownership.close()
        self.leadership.close()
