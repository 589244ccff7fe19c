"""Per-connection output with a cap: the room never waits for a slow reader.

The outbox is a push producer registered with its transport. While the transport's own
buffer is below its high-water mark, bytes go straight to it. Past that mark the transport
pauses us and bytes queue here. A reader is judged slow when its queue stays above ``cap``
for ``grace`` seconds, or passes ``hard_cap`` at once; then the connection is given up
(``on_overflow``). The grace matters because a reactor turn's output sits in the
transport's buffer until the next turn writes it to the kernel: one busy turn (many members
talking at once, all within their flood allowance) can put more than ``cap`` in front of a
reader that reads perfectly well. So one reader that stops reading costs at most
``hard_cap`` bytes of memory, and nobody else loses a line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from zope.interface import implementer

GRACE = 1.0
"""Seconds a queue may stay above the cap before its reader counts as slow."""

HARD_CAP_FACTOR = 16
"""A queue this many times the cap is cut at once, however young."""


class Writable(Protocol):
    def write(self, data: bytes) -> None: ...
    def writeSequence(self, data: list[bytes]) -> None: ...


@implementer(IPushProducer)
class Outbox:
    __slots__ = (
        "_cap",
        "_check",
        "_clock",
        "_hard_cap",
        "_on_overflow",
        "_paused",
        "_queue",
        "_queued",
        "_transport",
        "closed",
    )

    def __init__(
        self,
        transport: Writable,
        cap: int,
        on_overflow: Callable[[int], None],
        clock: IReactorTime,
    ) -> None:
        self._transport = transport
        self._cap = cap
        self._hard_cap = cap * HARD_CAP_FACTOR
        self._on_overflow = on_overflow
        self._clock = clock
        self._check: IDelayedCall | None = None
        self._paused = False
        self._queue: list[bytes] = []
        self._queued = 0
        self.closed = False

    def send(self, data: bytes) -> None:
        if not self._paused:
            self._transport.write(data)
            return
        if self.closed:
            return
        self._queue.append(data)
        self._queued += len(data)
        if self._queued > self._cap:
            if self._queued > self._hard_cap:
                self._overflow()
            elif self._check is None:
                self._check = self._clock.callLater(GRACE, self._recheck)

    def _recheck(self) -> None:
        self._check = None
        if self._paused and self._queued > self._cap:
            self._overflow()

    def _overflow(self) -> None:
        queued = self._queued
        self._give_up()
        self._on_overflow(queued)

    def _give_up(self) -> None:
        self.closed = True
        self._paused = True
        self._queue, self._queued = [], 0
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None

    @property
    def queued(self) -> int:
        """Bytes waiting here for the transport to drain."""
        return self._queued

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        if self.closed:
            return
        self._paused = False
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None
        if self._queue:
            queue, self._queue, self._queued = self._queue, [], 0
            self._transport.writeSequence(queue)

    def stopProducing(self) -> None:
        self._give_up()
