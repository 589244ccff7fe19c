"""Per-connection output with a cap: the room never waits for a slow reader.

The outbox is a push producer registered with its transport. While the transport's own
buffer is below its high-water mark, bytes go straight to it. Past that mark the transport
pauses us and bytes queue here; when the queue passes ``cap`` the connection is given up
(``on_overflow``), so one reader that stops reading costs at most ``cap`` bytes of memory
and nobody else loses a line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


class Writable(Protocol):
    def write(self, data: bytes) -> None: ...
    def writeSequence(self, data: list[bytes]) -> None: ...


@implementer(IPushProducer)
class Outbox:
    __slots__ = ("_cap", "_on_overflow", "_paused", "_queue", "_queued", "_transport", "closed")

    def __init__(
        self, transport: Writable, cap: int, on_overflow: Callable[[int], None]
    ) -> None:
        self._transport = transport
        self._cap = cap
        self._on_overflow = on_overflow
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
            self.closed = True
            queued = self._queued
            self._queue, self._queued = [], 0
            self._on_overflow(queued)

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
        if self._queue:
            queue, self._queue, self._queued = self._queue, [], 0
            self._transport.writeSequence(queue)

    def stopProducing(self) -> None:
        self.closed = True
        self._paused = True
        self._queue, self._queued = [], 0
