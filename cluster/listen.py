"""A thread that LISTENs on some channels and calls back on each notification.

NOTIFY is a wake-up, not a queue: nothing is kept for a listener that is not connected. So
the callback also runs after every (re)connection, and whoever it wakes re-reads the state
it cares about (a position) instead of trusting the payloads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)
RECONNECT_DELAY = 0.5


class Listener:
    def __init__(self, conninfo: str, channels: Sequence[str],
                 on_notify: Callable[[str, str], None], name: str = "stratexec-listener",
                 ) -> None:
        self.conninfo, self.channels, self.on_notify = conninfo, tuple(channels), on_notify
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True,
                                     application_name="stratexec-listener") as connection:
                    for channel in self.channels:
                        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.on_notify("", "")  # (re)connected: whatever was sent meanwhile is lost
                    while not self._stopping.is_set():
                        for notify in connection.notifies(timeout=0.5):
                            self.on_notify(notify.channel, notify.payload)
            except psycopg.OperationalError as error:
                logger.warning("listening for %s failed (%s); reconnecting",
                               ", ".join(self.channels), error)
                self._stopping.wait(RECONNECT_DELAY)
