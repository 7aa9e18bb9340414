"""Follows the notification log and applies each page of events to the views, exactly once.

A page is applied in one transaction that also moves every view's tracking position, so a
crash loses nothing and repeats nothing. Positions are re-read inside that transaction, so
two runners on one view store (two processes) never apply an event twice either. The views'
handlers change the page's rows in memory (`projections.batch`), written once at its end.

With several processes on one PostgreSQL database, one runner leads: the one holding the
`leadership` lock applies the pages, and announces each page's position (NOTIFY, at its
commit). The others follow: woken by that announcement (`wake`) or every `poll_interval`,
they read the new position and the new feed rows from the views and hand them to their own
subscribers, as the leader does with the rows it wrote. Each follower tries for the lock on
every step, so one of them leads within a step once the leader's connection is gone; the
tracking positions make that takeover exactly-once (even if the old leader still runs).
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol

from stratexec.domain.application import StratexecApp
from stratexec.projections.base import Handler, View
from stratexec.projections.batch import Batch
from stratexec.projections.catalog import ALL
from stratexec.projections.feed import FEED_COLUMNS, feed_row, stream_row
from stratexec.projections.log import read_events
from stratexec.projections.sql import Cursor
from stratexec.projections.store import ViewStore, read_tracking, write_tracking
from stratexec.projections.table import Table

logger = logging.getLogger(__name__)
Subscriber = Callable[[list[dict[str, Any]], int], None]
MIN_BACKOFF, MAX_BACKOFF = 0.1, 30.0


MAX_LAG_WAIT = 1.0

class Leadership(Protocol):
    """The right to apply pages (a PostgreSQL advisory lock, `cluster.leader`)."""

    def acquire(self) -> bool:
        """Take it, or keep it; False while another runner has it (or it was lost)."""
        ...

    def release(self) -> None: ...


FOLLOW_PAGE = 10_000


class ProjectionRunner:
    def __init__(self, app: StratexecApp, store: ViewStore, projections: Sequence[View] = ALL,
                 batch_size: int = 1000, poll_interval: float = 0.5,
                 leadership: Leadership | None = None) -> None:
        self.app, self.store = app, store
        self.leadership = leadership  # None: this runner always leads (one process)
        self.leading = leadership is None
        self.projections = tuple(projections)
        self.batch_size, self.poll_interval = batch_size, poll_interval
        self.error: Exception | None = None  # the last failure, None once a batch succeeds
        self._names = [view.name for view in self.projections]
        self._plan = _plan(self.projections)
        self._tables: dict[str, Table] | None = None  # read from the store by the first batch
        self._changed = threading.Condition()
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._subscribers: list[Subscriber] = []
        self._subscribers_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._position = self._stored_position()

    @property
    def position(self) -> int:
        """Every view has applied the log up to here."""
        return self._position

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(new feed rows, position)` after each commit; returns unsubscribe.

        Callbacks run in the runner's thread and hold up every view while they run: hand
        the rows on (e.g. `loop.call_soon_threadsafe`) and return at once. They run before
        `position` moves, so whoever `wait_for`s a position knows subscribers have its rows.
        """
        with self._subscribers_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._subscribers_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def wait_for(self, position: int, timeout: float | None = None) -> bool:
        """Block until the views have applied `position`; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._position >= position, timeout)

    def catch_up(self) -> int:
        """Apply everything in the log now, in this thread; returns the new position."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("catch_up() while the runner thread is running")
        self._set_position(max(self._position, self._stored_position()))
        with _cyclic_gc_paused():  # for the whole run, not page by page (see below)
            while self._step() == self.batch_size:
                pass
        return self._position

    def keep_up(self, position: int) -> None:
        """Backpressure for writers: block until the views have applied `position` (at
        most `MAX_LAG_WAIT` seconds, so that a failing view slows the engine but never
        stops it). A writer that runs ahead of its readers buys no throughput (the readers
        must still apply every event) and costs every live subscriber the backlog's delay.
        Execution actors call it before each turn with the position of their last save."""
        if self._thread is not None and not self._stopping.is_set():
            self.wait_for(position, MAX_LAG_WAIT)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._set_position(max(self._position, self._stored_position()))
        self._stopping.clear()
        self.app.add_listener(self._on_saved)
        self._thread = threading.Thread(target=self._run, name="projection-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self.app.remove_listener(self._on_saved)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ProjectionRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _on_saved(self, position: int) -> None:
        self._wake.set()

    def wake(self, *_: object) -> None:
        """Look at the log (leading) or the views (following) now, not at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        backoff = MIN_BACKOFF
        while not self._stopping.is_set():
            self._wake.clear()  # before reading, so a save during the read wakes us again
            try:
                applied = self._step() if self._lead() else self._follow()
            except Exception as error:
                self.error = error
                logger.exception("projecting the events after position %d failed; retrying"
                                 " the same batch in %.1f s", self._position, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self.error, backoff = None, MIN_BACKOFF
            if applied < self.batch_size:
                self._wake.wait(self.poll_interval)
        if self.leadership is not None and self.leading:
            self.leadership.release()
            self.leading = False

    def _lead(self) -> bool:
        """Whether this runner leads now: it takes the lead when it is free."""
        if self.leadership is not None:
            was, self.leading = self.leading, self.leadership.acquire()
            if self.leading != was:
                logger.info("the projections %s here", "run" if self.leading else "stopped")
        return self.leading

    def _follow(self) -> int:
        """Take the views' new position, and hand the feed rows up to it to subscribers."""
        with self.store.read() as cur:
            done = read_tracking(cur)
            position = min((done.get(name, 0) for name in self._names), default=0)
            rows = []
            if position > self._position and self._subscribers:
                rows = [feed_row(row) for row in cur.execute(
                    f"SELECT {FEED_COLUMNS} FROM event_feed WHERE position > ? AND position <= ?"
                    " ORDER BY position LIMIT ?", (self._position, position, FOLLOW_PAGE))]
                if len(rows) == FOLLOW_PAGE:  # the rest at the next step, at once
                    position = rows[-1]["position"]
        if position > self._position:
            self._publish(rows, position)
            self._set_position(position)
        return self.batch_size if len(rows) == FOLLOW_PAGE else 0

    def _step(self) -> int:
        """Apply the next page of notifications; returns how many were read."""
        with _cyclic_gc_paused():
            events = read_events(self.app, self._position, self.batch_size)
            if not events:
                return 0
            last = events[-1][0]
            with self.store.write() as cur:
                done = read_tracking(cur)
                batch = Batch(cur, self._read_tables(cur))
                for view in self.projections:
                    view.preload(batch, events)
                self._apply(batch, events, done)
                with self.store.pipelined():  # nothing below reads: one round trip
                    added = batch.flush()
                    write_tracking(cur, self._names, last)
                    self.store.announce(cur, last)
            self.store.grew(added)
        position = min(max(done.get(name, 0), last) for name in self._names)
        feed = batch.tables.get("event_feed")
        rows = ([stream_row(row) for row in feed.appended]
                if feed is not None and self._subscribers else [])
        self._publish(rows, position)
        self._set_position(position)
        return len(events)

    def _apply(self, batch: Batch, events: list[tuple[int, Any]], done: dict[str, int]) -> None:
        """Each event to each view that has not applied it yet, in the catalog's order."""
        everyone_after = max((done.get(name, 0) for name in self._names), default=0)
        plan = self._plan
        for position, event in events:
            steps = plan.get(type(event))
            if steps is None:
                continue
            batch.begin(position, event)
            if position > everyone_after:  # the usual case: no view has applied it yet
                for handler in steps.handlers:
                    handler(batch, event)
            else:
                for name, handler in zip(steps.views, steps.handlers, strict=True):
                    if position > done.get(name, 0):
                        handler(batch, event)

    def _read_tables(self, cur: Cursor) -> dict[str, Table]:
        if self._tables is None:
            # The store's views too: a view may read another view's table (see the catalog).
            keys = {table: key for view in (*self.store.views, *self.projections)
                    for table, key in view.tables.items()}
            self._tables = self.store.tables(cur, keys)
        return self._tables

    def _publish(self, rows: list[dict[str, Any]], position: int) -> None:
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(rows, position)
            except Exception:
                logger.exception("a feed subscriber failed; the views are unaffected")

    def _set_position(self, position: int) -> None:
        with self._changed:
            self._position = position
            self._changed.notify_all()

    def _stored_position(self) -> int:
        with self.store.read() as cur:
            done = read_tracking(cur)
        return min((done.get(name, 0) for name in self._names), default=0)


class _Steps(NamedTuple):
    views: list[str]
    handlers: list[Handler]


def _plan(views: Sequence[View]) -> dict[type, _Steps]:
    """Event class -> the views that handle it and their handlers, in the views' order."""
    plan: dict[type, _Steps] = {}
    for view in views:
        for event_class, handler in view.handlers().items():
            steps = plan.setdefault(event_class, _Steps([], []))
            steps.views.append(view.name)
            steps.handlers.append(handler)
    return plan


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a page (or, in `catch_up`, a whole run) is applied.

    A page makes many objects that live until its end and no reference cycles, so the
    collector's passes over them find nothing and cost up to a tenth of a rebuild. Collection
    resumes afterwards (for every thread: the switch is the interpreter's). If it was off
    already, it stays off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
