"""pykka has no timers: one scheduler thread tells actors their due messages.

`Clock` keeps a heap of (due time, message, target) on `time.monotonic`, so a wall-clock
jump neither fires nor delays anything. A wall-clock time given to `tell_at` is turned into a
delay once, when it is scheduled. The thread sleeps on a condition until the earliest due time
or until something earlier is scheduled. A target that has stopped is skipped (a finished
execution's retry may still be due); a periodic message to a stopped target is cancelled.

The thread is not a daemon: whoever starts the clock stops it. Scheduling on a stopped clock
does nothing, so an actor that schedules while the system shuts down does not fail.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pykka

logger = logging.getLogger(__name__)

Cancel = Callable[[], None]


@dataclass(eq=False)
class _Entry:
    ref: pykka.ActorRef[Any]
    message: Any
    interval_s: float | None
    cancelled: bool = False


class Clock:
    def __init__(self, name: str = "stratexec-clock") -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Drop everything scheduled and wait for the thread to end."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        if self._thread.ident is not None:
            self._thread.join()

    @property
    def pending(self) -> int:
        """How many scheduled messages are not cancelled yet."""
        with self._cond:
            return sum(1 for _, _, entry in self._heap if not entry.cancelled)

    def tell_at(self, when: datetime, ref: pykka.ActorRef[Any], message: Any) -> Cancel:
        if when.tzinfo is None:
            raise ValueError(f"tell_at needs a timezone-aware datetime, got {when!r}")
        delay_s = (when - datetime.now(UTC)).total_seconds()
        return self._schedule(max(delay_s, 0.0), ref, message, None)

    def tell_later(self, delay_s: float, ref: pykka.ActorRef[Any], message: Any) -> Cancel:
        return self._schedule(max(delay_s, 0.0), ref, message, None)

    def tell_every(self, interval_s: float, ref: pykka.ActorRef[Any], message: Any) -> Cancel:
        """Tell `message` every `interval_s` seconds, the first time one interval from now."""
        if interval_s <= 0:
            raise ValueError(f"interval must be positive, got {interval_s}")
        return self._schedule(interval_s, ref, message, interval_s)

    def _schedule(
        self, delay_s: float, ref: pykka.ActorRef[Any], message: Any, interval_s: float | None
    ) -> Cancel:
        entry = _Entry(ref, message, interval_s)
        with self._cond:
            if self._stopped:
                entry.cancelled = True
            else:
                self._push(time.monotonic() + delay_s, entry)
                self._cond.notify()

        def cancel() -> None:
            with self._cond:
                entry.cancelled = True

        return cancel

    def _push(self, due: float, entry: _Entry) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), entry))

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._wait_for_due()
            if due is None:
                return
            for entry in due:
                self._deliver(entry)

    def _wait_for_due(self) -> list[_Entry] | None:
        """Block until something is due (return it) or the clock stops (None); lock held."""
        while not self._stopped:
            if not self._heap:
                self._cond.wait()
                continue
            now = time.monotonic()
            wait_s = self._heap[0][0] - now
            if wait_s > 0:
                self._cond.wait(wait_s)
                continue
            return self._pop_due(now)
        return None

    def _pop_due(self, now: float) -> list[_Entry]:
        due: list[_Entry] = []
        while self._heap and self._heap[0][0] <= now:
            when, _, entry = heapq.heappop(self._heap)
            if entry.cancelled:
                continue
            due.append(entry)
            if entry.interval_s is not None:
                # Skip missed ticks rather than deliver a burst after a stall.
                next_due = when + entry.interval_s
                self._push(next_due if next_due > now else now + entry.interval_s, entry)
        return due

    def _deliver(self, entry: _Entry) -> None:
        if entry.cancelled:
            return
        try:
            entry.ref.tell(entry.message)
        except pykka.ActorDeadError:
            logger.debug("clock: %s is not alive; dropped %r", entry.ref, entry.message)
            if entry.interval_s is not None:
                with self._cond:
                    entry.cancelled = True
