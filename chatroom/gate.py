"""When a connection's input may be handled: the part every front end shares.

Input waits while a request of this client is in flight (a nickname claim that may travel
to another server, a search in the history store's thread), so its next line cannot
overtake the answer; and while the client is over its flood allowance, so it is slowed by
TCP backpressure (its transport stops being read) instead of losing lines. Both are
*holds*: reading stops at the first and starts again when the last is released.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from chatroom.entry import EntryPacer
from chatroom.throttle import TokenBucket

_NO_HOLDS: frozenset[str] = frozenset()


class Reader(Protocol):
    """What a gate stops and starts: a connection's reading."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None:
        """Read again, and handle what waited."""

    def flooding(self, rate: float) -> None:
        """The client was slowed for going over ``rate`` lines a second."""


class InputGate(TokenBucket):
    """The holds on one connection's input; the flood allowance is the gate's own token
    bucket. (Every connection has one: being the bucket, and keeping its ``reader`` rather
    than three bound methods of it, saves 260 bytes a connection.)"""

    __slots__ = ("_entry", "_holds", "_reader", "_timer", "closed")

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: IReactorTime,
        reader: Reader,
        entry: EntryPacer | None = None,
    ) -> None:
        """``reader.pause_reading``/``resume_reading`` stop and restart reading (resuming
        then handles what waited); ``reader.flooding(rate)`` is told each time the client
        is slowed; ``entry`` paces the input until the client has signed in
        (``entered``)."""
        super().__init__(rate, burst, clock)
        self._reader = reader
        # Immutable, and one shared object while empty: a held connection is rare, and an
        # empty set costs 216 bytes a connection.
        self._holds: frozenset[str] = _NO_HOLDS
        self._timer: IDelayedCall | None = None
        self._entry = entry
        self.closed = False

    def entered(self) -> None:
        """The client has signed in: its input no longer waits for newcomers' turns."""
        self._entry = None

    def set_rate(self, rate: float, burst: int) -> None:
        """New flood limits (a reload): they count from the next line on."""
        self.rate = rate
        self.burst = burst

    @property
    def held(self) -> bool:
        return bool(self._holds)

    def admit(self) -> bool:
        """May one more line (or message) be handled now? If not, hold until it may."""
        if self._entry is not None and not self._entry.admit(self):
            return False
        if self.take():
            return True
        self.hold("flood")
        self._reader.flooding(self.rate)
        self._timer = self._clock.callLater(self.wait(), self._unthrottle)
        return False

    def _unthrottle(self) -> None:
        self._timer = None
        self.release("flood")

    def hold(self, reason: str) -> None:
        if not self._holds and not self.closed:
            self._reader.pause_reading()
        self._holds = self._holds | {reason}

    def release(self, reason: str) -> None:
        if reason not in self._holds:
            return
        # Back to the one shared empty set: an empty frozenset of its own costs a
        # connection 216 bytes, and every newcomer of a storm is held once (``entry``).
        self._holds = self._holds - {reason} or _NO_HOLDS
        if not self._holds and not self.closed:
            self._reader.resume_reading()

    def wait_for(self, result: Deferred[Any], on_error: Callable[[Failure], None]) -> None:
        """Hold input until ``result`` has fired; a failure left over goes to ``on_error``."""
        done: list[bool] = []

        def finished(_: object) -> None:
            done.append(True)
            self.release("waiting")

        result.addErrback(on_error).addBoth(finished)
        if not done:
            self.hold("waiting")

    def close(self) -> None:
        """The connection is gone: nothing more to pause, resume or wait for."""
        self.closed = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
