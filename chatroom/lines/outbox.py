"""Per-connection output with a cap: the room never waits for a slow reader.

Two ways to the kernel, one rule for slow readers:

- ``Outbox`` hands every write to the transport. It is a push producer: while the
  transport's own buffer is below its high-water mark bytes go straight to it; past that
  mark the transport pauses us and bytes queue here. Any transport will do (TLS, a
  WebSocket's frames, a test's ``StringTransport``).
- ``SocketOutbox`` writes to the connection's socket itself (``ISystemHandle.getHandle``)
  whenever the transport has nothing buffered, and hands the transport only what the
  kernel did not take. Twisted's ``write`` always buffers and registers for writability,
  which costs an ``epoll_ctl`` to start writing, an event dispatch, a ``send`` and another
  ``epoll_ctl`` to stop, per connection per reactor turn; a chat line to 1000 members paid
  that 1000 times. It is a *pull* producer: the transport calls ``resumeProducing`` each
  time its buffer is empty again, which is the public signal that writing to the socket
  cannot overtake bytes still in the transport. Plain stream sockets only: a TLS
  transport (``ISSLTransport``) encrypts in ``write`` and keeps ``Outbox``.

A reader is judged slow when more than ``cap`` bytes stay waiting for it for ``grace``
seconds, or more than ``hard_cap`` wait at once; then the connection is given up (its
``reader.overflowed``). The grace matters because one busy turn (many members talking at once,
all within their flood allowance) can put more than ``cap`` in front of a reader that reads
perfectly well. So one reader that stops reading costs at most ``hard_cap`` bytes of
memory, and nobody else loses a line.
"""

from __future__ import annotations

import socket
from collections import deque
from itertools import islice
from typing import Protocol

from twisted.internet.interfaces import (
    IDelayedCall,
    IPullProducer,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
    ISystemHandle,
)
from twisted.python.runtime import platform
from zope.interface import implementer

GRACE = 1.0
"""Seconds a queue may stay above the cap before its reader counts as slow."""

HARD_CAP_FACTOR = 16
"""A queue this many times the cap is cut at once, however young."""

_NO_SIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)

_IOV_MAX = 512
"""Pieces per ``sendmsg``: under every platform's IOV_MAX (Linux: 1024)."""


class Writable(Protocol):
    def write(self, data: bytes) -> None: ...
    def writeSequence(self, data: list[bytes]) -> None: ...


class Reader(Protocol):
    """Who an outbox writes to, as far as the slow-reader rule goes."""

    def overflowed(self, queued: int) -> None:
        """``queued`` bytes were waiting: this reader is given up."""


class _Capped:
    """The slow-reader rule, shared by both outboxes. (Each keeps its ``reader``, not a
    bound method of it: 64 bytes a connection less.)"""

    __slots__ = ("_cap", "_check", "_clock", "_reader", "closed")

    def __init__(self, cap: int, reader: Reader, clock: IReactorTime):
        self._cap = cap
        self._reader = reader
        self._clock = clock
        self._check: IDelayedCall | None = None
        self.closed = False

    @property
    def queued(self) -> int:
        """Bytes waiting for this reader (at most: some may have left already)."""
        raise NotImplementedError

    def set_cap(self, cap: int) -> None:
        """A new ``max_out`` (a reload), judged when the backlog next grows."""
        self._cap = cap

    def _judge(self) -> None:
        """Called whenever the backlog grew."""
        backlog = self.queued
        if backlog > self._cap:
            if backlog > self._cap * HARD_CAP_FACTOR:  # not kept: an int a connection
                self._overflow()
            elif self._check is None:
                self._check = self._clock.callLater(GRACE, self._recheck)

    def _recheck(self) -> None:
        self._check = None
        if not self.closed and self.queued > self._cap:
            self._overflow()

    def _drained(self) -> None:
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None

    def _overflow(self) -> None:
        queued = self.queued
        self._give_up()
        self._reader.overflowed(queued)

    def _give_up(self) -> None:
        self.closed = True
        self._drained()

    def stopProducing(self) -> None:
        """The connection is gone (or being cut): nothing more goes out."""
        self._give_up()


@implementer(IPushProducer)
class Outbox(_Capped):
    """Every byte through ``transport.write``; queues here while the transport is full."""

    __slots__ = ("_finished", "_paused", "_queue", "_queued", "_transport")

    streaming = True

    def __init__(
        self,
        transport: Writable,
        cap: int,
        reader: Reader,
        clock: IReactorTime,
    ) -> None:
        super().__init__(cap, reader, clock)
        self._transport = transport
        self._finished = False
        self._paused = False
        self._queue: list[bytes] = []
        self._queued = 0

    def send(self, data: bytes) -> None:
        if self._finished and not self.closed:
            self._transport.write(data)
            self._queued += len(data)
            self._judge()
            return
        if not self._paused:
            self._transport.write(data)
            return
        if self.closed:
            return
        self._queue.append(data)
        self._queued += len(data)
        self._judge()

    @property
    def queued(self) -> int:
        return self._queued

    def _give_up(self) -> None:
        super()._give_up()
        self._paused = True
        self._queue, self._queued = [], 0

    def finish(self) -> None:
        """The connection is about to be closed, and its owner unregisters this producer
        (a registered one holds a TLS transport's ``loseConnection`` up, and a TCP one's
        while paused): everything goes to the transport from now on. No pause or resume
        comes after that, so what is handed over counts as waiting until the connection is
        gone: a peer that never reads its goodbye is cut by the same rule, not kept open."""
        if self._finished or self.closed:
            return
        self._finished = True
        self._paused = False
        if self._queue:
            queue, self._queue = self._queue, []
            self._transport.writeSequence(queue)
        self._judge()

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        if self.closed or self._finished:
            return
        self._paused = False
        self._drained()
        if self._queue:
            queue, self._queue, self._queued = self._queue, [], 0
            self._transport.writeSequence(queue)


@implementer(IPullProducer)
class SocketOutbox(_Capped):
    """Straight to the socket while the transport holds nothing; see the module's doc.

    While the transport holds bytes, new ones wait here as the very objects the fan-out
    made (one per turn, shared by every member it went to), and go out with one
    ``sendmsg`` when the transport is empty again: a reader that lags costs a reference
    per turn, not a copy, and the transport only ever holds one piece of it.
    """

    __slots__ = ("_direct", "_handed", "_queue", "_queued", "_socket", "_transport")

    streaming = False

    def __init__(
        self,
        transport: Writable,
        sock: socket.socket,
        cap: int,
        reader: Reader,
        clock: IReactorTime,
    ) -> None:
        super().__init__(cap, reader, clock)
        self._transport = transport
        self._socket = sock
        self._direct = True
        # Bytes given to transport.write since it last said its buffer was empty: an
        # upper bound on what it still holds. While it holds anything, new bytes wait here.
        self._handed = 0
        # Made when bytes first wait, dropped when they are gone: an empty deque costs
        # 760 bytes, and most connections never need one (15 000 members: 11 MB).
        self._queue: deque[bytes] | None = None
        self._queued = 0

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if not self._direct:  # finishing: the transport has everything, in order
            self._handed += len(data)
            self._transport.write(data)
            self._judge()
            return
        if self._handed or self._queue:
            if self._queue is None:
                self._queue = deque()
            self._queue.append(data)
            self._queued += len(data)
            self._judge()
            return
        try:
            sent = self._socket.send(data, _NO_SIGNAL)
        except BlockingIOError:
            sent = 0
        except OSError:
            # A reset or a broken pipe: the transport's own write meets the same error
            # and reports the loss the usual way (connectionLost).
            sent = 0
        if sent < len(data):
            self._hand(data[sent:] if sent else data)
            self._judge()

    def _hand(self, data: bytes) -> None:
        """Give the transport ``data``: it sends it when the socket can take it, then asks
        for more (``resumeProducing``)."""
        self._handed = len(data)
        self._transport.write(data)

    @property
    def queued(self) -> int:
        return self._handed + self._queued

    def _give_up(self) -> None:
        super()._give_up()
        self._handed = 0
        self._queue = None
        self._queued = 0

    def resumeProducing(self) -> None:
        """The transport's buffer is empty: the socket is ours again."""
        if self.closed:
            return
        self._handed = 0
        queue = self._queue
        while queue and self._direct:
            pieces = list(islice(queue, _IOV_MAX))
            offered = sum(map(len, pieces))
            try:
                sent = self._socket.sendmsg(pieces, (), _NO_SIGNAL)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # the transport meets the error too, and reports it
            if sent == offered:
                for _ in pieces:
                    queue.popleft()
                self._queued -= offered
                continue
            while sent >= len(queue[0]):  # what went out whole
                sent -= len(queue[0])
                self._queued -= len(queue.popleft())
            first = queue.popleft()  # what went out in part, or not at all
            self._queued -= len(first)
            self._hand(first[sent:] if sent else first)
            break
        if queue is not None and not queue:
            self._queue = None
        if self.queued <= self._cap:
            self._drained()

    def finish(self) -> None:
        """The connection is about to be closed, and its owner unregisters this producer (a
        registered pull producer would hold ``loseConnection`` up forever): from now on
        every byte goes through the transport, which sends what it holds and then closes.
        No drain signal comes after that, so what the transport was given counts as
        waiting until the connection is gone: a peer that never reads its goodbye is cut
        by the same rule (the check stays armed), not kept open."""
        if not self._direct or self.closed:
            return
        self._direct = False
        if self._queue:
            queue = list(self._queue)
            self._queue = None
            self._handed += self._queued
            self._queued = 0
            self._transport.writeSequence(queue)
        self._judge()


def writable_socket(transport: object) -> socket.socket | None:
    """The transport's socket, if bytes may be written to it directly: a plain, non-blocking
    stream socket under a readiness-based reactor (not Windows' IOCP), with no TLS."""
    if platform.isWindows() or ISSLTransport.providedBy(transport):
        return None
    if not ISystemHandle.providedBy(transport):
        return None
    handle = ISystemHandle(transport).getHandle()
    if not isinstance(handle, socket.socket) or handle.type != socket.SOCK_STREAM:
        return None
    if handle.gettimeout() != 0.0:
        return None
    return handle



class StreamWritable(Writable, Protocol):
    def registerProducer(self, producer: object, streaming: bool) -> None: ...


def open_outbox(
    transport: StreamWritable, cap: int, reader: Reader, clock: IReactorTime
) -> Outbox | SocketOutbox:
    """The outbox of a stream connection (writing to its socket itself where it has a plain
    one), registered as the transport's producer: every stream front end's."""
    sock = writable_socket(transport)
    outbox: Outbox | SocketOutbox
    if sock is not None:
        outbox = SocketOutbox(transport, sock, cap, reader, clock)
    else:
        outbox = Outbox(transport, cap, reader, clock)
    transport.registerProducer(outbox, outbox.streaming)
    return outbox
