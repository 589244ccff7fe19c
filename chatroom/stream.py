"""The wire half that every stream front end (telnet/nc lines, IRC) shares.

Both read framed lines from a TCP, TLS or UNIX stream, feed them one at a time through the
session's flood control, write through an ``Outbox`` (the slow-reader cap), and end the
same three ways: the peer goes, the server closes after what is on its way, or the
connection is cut. Only what a line *is* differs, so a front end supplies two methods:
``_next_item`` (the next complete input, or ``None``) and ``_handle_item``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from twisted.internet.interfaces import IReactorTime, ITransport
from twisted.python.failure import Failure

from chatroom.lines.outbox import Outbox, SocketOutbox, open_outbox

if TYPE_CHECKING:
    from chatroom.session import Session


class StreamTransport(Protocol):
    """What a stream front end uses of its transport: a TCP, TLS or UNIX stream."""

    disconnecting: bool

    def write(self, data: bytes) -> None: ...
    def writeSequence(self, data: list[bytes]) -> None: ...
    def loseConnection(self) -> None: ...
    def abortConnection(self) -> None: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def registerProducer(self, producer: object, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...


class GatedInput:
    """Inputs handled one at a time through the session's flood control, for every front
    end: an input that must wait is held (never dropped, never reordered) until the gate
    reopens and calls ``resume_reading``."""

    session: Session
    _held: object | None = None  # an input that flood control made wait
    _draining = False

    def _init_input(self) -> None:
        """Set every attribute this mixin changes later, in the constructor (see
        ``StreamConnection._init_stream``)."""
        self._held = None
        self._draining = False

    def _next_item(self) -> object | None:
        """The next complete input, or ``None``."""
        raise NotImplementedError

    def _handle_item(self, item: object) -> None:
        raise NotImplementedError

    def _reading_stopped(self) -> bool:
        """Nothing more is handled: the connection is closing or gone."""
        raise NotImplementedError

    def _drain(self) -> None:
        """Handle complete inputs until there are none, or flood control says wait."""
        if self._draining:
            return
        self._draining = True
        try:
            session = self.session
            gate = session.gate
            while not (gate.held or session.closing or self._reading_stopped()):
                item = self._held
                if item is None:
                    item = self._next_item()
                    if item is None:
                        break
                if not gate.admit():
                    self._held = item
                    break
                self._held = None
                try:
                    self._handle_item(item)
                except Exception:
                    session.bug(Failure())
                    break
        finally:
            self._draining = False


class StreamConnection(GatedInput):
    """Mixed into a front end's ``Protocol``: the connection's life and its input loop."""

    session: Session
    transport: ITransport | None
    outbox: Outbox | SocketOutbox | None = None
    _transport: StreamTransport | None = None
    _lost = False
    _aborted = False

    def _init_stream(self) -> None:
        """Set every attribute this mixin changes later, in the front end's constructor.

        CPython (3.11) keeps an instance's attributes in a small array while their names
        are among those its class's first instances set early; an attribute first set
        later on (``_held`` at the first line), once thousands of connections exist, turns
        that array into a dict of its own: 832 bytes a connection in a join storm."""
        self._init_input()
        self.outbox = None
        self._transport = None
        self._lost = False
        self._aborted = False

    def _reading_paused(self) -> bool:
        """This protocol paused its own reading (not the gate, not the transport)."""
        return False

    # -- connection life ------------------------------------------------------------

    def _open_stream(self, max_out: int, clock: IReactorTime) -> Outbox | SocketOutbox:
        """The connection is made: send small writes at once, and open the outbox."""
        transport = cast(StreamTransport, self.transport)
        self._transport = transport
        # Chat is small writes that must leave now: without this, Nagle's algorithm and
        # the peer's delayed ACK hold lines back for up to ~40 ms.
        set_no_delay = getattr(transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        outbox = open_outbox(transport, max_out, self.session, clock)
        self.outbox = outbox
        return outbox

    def _stream_lost(self) -> None:
        self._lost = True
        if self.outbox is not None:
            # The transport tells a registered producer itself; one unregistered by
            # finish() learns it here, and its slow-reader check ends.
            self.outbox.stopProducing()

    def abort(self) -> None:
        """Cut the connection now; nothing more it sent is handled."""
        self._aborted = True
        if self.outbox is not None:
            self.outbox.stopProducing()  # not one more byte, even straight to the socket
        if self._transport is not None and not self._lost:
            self._transport.abortConnection()

    def still_open(self) -> bool:
        return not self._lost and not (
            self._transport is not None and self._transport.disconnecting
        )

    def _lose_connection(self) -> None:
        """Close once what is on its way has been sent (or the slow-reader rule cuts it)."""
        transport = self._transport
        if transport is None or transport.disconnecting:
            return
        if self.outbox is not None:
            self.outbox.finish()
            transport.unregisterProducer()  # a registered producer holds the close up
        transport.loseConnection()

    # -- input --------------------------------------------------------------------

    def _reading_stopped(self) -> bool:
        transport = self._transport
        return (self._reading_paused() or self._lost or self._aborted
                or (transport is not None and transport.disconnecting))

    def pause_reading(self) -> None:
        if not self._reading_paused() and self._transport is not None:
            self._transport.pauseProducing()

    def resume_reading(self) -> None:
        if self._transport is not None:
            self._transport.resumeProducing()
        self._drain()
