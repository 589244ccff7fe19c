"""Reading history on threads of its own, so that no search ever holds writing up.

Why it looks like this:

- A reader is one thread with one connection of its own. WAL lets readers read while the
  writer writes (each read sees the last commit before it began), so ``SqliteHistory``
  gives every read to the reader with the least work queued, and its writer thread only
  writes, indexes, trims and closes: a line reaches the disk within the flush window
  whatever anyone searches for.
- A replay (a room's last lines, read when someone first joins it; a page of a room's
  history) has a reader of its own, ``quick`` reads: the other readers may all be busy
  with costly searches, each up to its budget, and a ``/join`` must not wait behind them.
  Only quick reads go there, and each is a few milliseconds (the room's index).
- Every read has a budget: a deadline, ``budget`` seconds after the read is handed over
  (the wait for a reader included), which SQLite's progress handler checks every
  ``PROGRESS_OPS`` steps of its virtual machine; past it the handler stops the query and
  the read fails with ``OutOfTime``. A read whose deadline passed before a reader was free
  never starts (``Busy``): a queue of costly searches drains at once instead of stacking up.
- ``stop`` sets a flag the progress handlers check and interrupts every connection
  (``sqlite3.Connection.interrupt`` may be called from any thread), so shutting down never
  waits for a running search; then each connection is closed on its own thread.
- Connections are opened on their threads when first needed, as the writer's is (threads
  and SQLite's locks do not survive twistd's fork), and are read-only (``query_only``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredList, fail
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")

READERS = 2
"""Default number of reader threads (``--history-readers``)."""

SEARCH_MS = 1000
"""Default budget of one read, in milliseconds (``--history-search-ms``)."""

PROGRESS_OPS = 1000
"""SQLite virtual-machine steps between two looks at the budget: a few microseconds of an
ordinary query, a few milliseconds of a costly phrase (measured on a 1M-line history)."""


class ReadStopped(Exception):
    """Base of the ways a read can be cut short."""


class OutOfTime(ReadStopped):
    """The read ran past its budget and was stopped."""


class Busy(ReadStopped):
    """The read's budget ran out while it waited for a reader: it never started."""


class Stopped(ReadStopped):
    """The readers were stopped (the store is closing)."""


class _DaemonThread(threading.Thread):
    """A thread that cannot keep a crashed process alive; stopping its pool is the clean
    way out, and SQLite rolls back what a killed process left half done."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True


class _OneThreadPool(ThreadPool):
    threadFactory = _DaemonThread


def start_pool(name: str) -> ThreadPool:
    """A started pool of one daemon thread: work given to it runs in order."""
    pool = _OneThreadPool(1, 1, name=name)
    pool.start()
    return pool


class _Allowance:
    """One read's budget; called by SQLite as the progress handler (non-zero: stop)."""

    __slots__ = ("deadline", "readers", "started")

    def __init__(self, readers: Readers, deadline: float) -> None:
        self.readers = readers
        self.deadline = deadline
        self.started = False

    def over(self) -> bool:
        return self.readers.stopping or time.monotonic() > self.deadline

    def __call__(self) -> int:
        return 1 if self.over() else 0

    def cut_short(self) -> ReadStopped:
        if self.readers.stopping:
            return Stopped()
        return OutOfTime() if self.started else Busy()


def connect_reader(path: str) -> sqlite3.Connection:
    """A read-only connection to the history at ``path`` (which the writer has opened,
    created and upgraded already)."""
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only = 1")
    return conn


class _Lane:
    """One reader thread and its connection; ``queued`` is touched by the reactor only."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        self.pool: ThreadPool | None = None
        self.connection: sqlite3.Connection | None = None
        self.queued = 0

    def run(self, allowance: _Allowance, f: Callable[..., T], *args: object) -> T:
        """``f(connection, allowance.over, *args)`` within ``allowance``, on this lane's
        thread."""
        if allowance.over():
            raise allowance.cut_short()
        allowance.started = True
        if self.connection is None:
            self.connection = connect_reader(self.path)
        conn = self.connection
        conn.set_progress_handler(allowance, PROGRESS_OPS)
        try:
            result = f(conn, allowance.over, *args)
        except sqlite3.OperationalError:
            if allowance.over():  # "interrupted": it was us
                raise allowance.cut_short() from None
            raise
        finally:
            conn.set_progress_handler(None, 0)
            if conn.in_transaction:  # a read cut short inside its BEGIN
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        return result  # finished, if just past the deadline: answered all the same

    def interrupt(self) -> None:
        """Stop what this lane's connection runs now; from any thread."""
        conn = self.connection
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.interrupt()

    def close(self) -> None:
        """On this lane's thread, after everything given to it."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Readers:
    """``count`` reader threads for the history at ``path``, each read within ``budget``
    seconds (waiting included)."""

    def __init__(
        self, path: str, reactor: IReactorFromThreads, count: int, budget: float
    ) -> None:
        self.budget = budget
        self.stopping = False
        self._reactor = reactor
        self._lanes = [_Lane(path, f"chatroom-history-reader-{i}") for i in range(max(1, count))]
        self._quick = _Lane(path, "chatroom-history-reader-replay")

    @property
    def busy(self) -> int:
        """Reads handed over and not finished yet."""
        return sum(lane.queued for lane in self._all())

    def _all(self) -> list[_Lane]:
        return [*self._lanes, self._quick]

    def read(
        self, f: Callable[..., T], *args: object, budget: float | None = None,
        quick: bool = False,
    ) -> Deferred[T]:
        """``f(connection, over, *args)`` on the least busy reader (``quick``: on the
        replays' own reader, which no search holds up), within ``budget`` seconds (the
        readers' own unless given); fails with ``OutOfTime``, ``Busy`` or ``Stopped`` if
        cut short, or with what ``f`` raised.

        ``over()`` says whether the budget is spent: ``f`` asks it in loops of its own, and
        raises ``sqlite3.OperationalError("interrupted")`` then, as SQLite does."""
        if self.stopping:
            return fail(Stopped())
        lane = self._quick if quick else min(self._lanes, key=lambda lane: lane.queued)
        if lane.pool is None:
            lane.pool = start_pool(lane.name)
        lane.queued += 1
        allowance = _Allowance(self, time.monotonic() + (budget or self.budget))

        def done(result: T) -> T:
            lane.queued -= 1
            return result

        reading: Deferred[T] = deferToThreadPool(
            self._reactor, lane.pool, lane.run, allowance, f, *args)
        return reading.addBoth(done)

    def stop(self) -> Deferred[None]:
        """Cut every read short (running or waiting), close the connections on their
        threads and end the threads; fires when they have ended."""
        self.stopping = True
        closing = []
        for lane in self._all():
            lane.interrupt()
            if lane.pool is not None:
                closing.append(self._close(lane))
        done: Deferred[Any] = DeferredList(closing)
        return done.addCallback(lambda _: None)

    def _close(self, lane: _Lane) -> Deferred[None]:
        assert lane.pool is not None
        pool = lane.pool
        closed: Deferred[None] = deferToThreadPool(self._reactor, pool, lane.close)

        def ended(result: object) -> None:
            pool.stop()  # its thread is idle now: this joins it at once
            lane.pool = None

        return closed.addBoth(ended)
