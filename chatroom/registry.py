"""Every live connection of one front end: letting it in, and waiting for all to go.

Who may come in is decided for the whole server by one shared ``Admission`` (every front
end's connections count against the same ``--max-clients`` and ``--max-per-ip``); each
front end keeps its own list of connections here, so that on shutdown it can say goodbye to
every one, wait for each to close and cut those that do not close within the grace period.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from twisted.internet import error as net_error
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Protocol as BaseProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.admission import Admission, Seat
from chatroom.limits import Limits
from chatroom.session import describe_peer


class Connection(Protocol):
    host: str | None

    def shutdown(self) -> None: ...
    def abort(self) -> None: ...


C = TypeVar("C", bound=Connection)

SHUTTING_DOWN = "server shutting down"


_CLOSED = Failure(net_error.ConnectionDone())


class RefuseProtocol(BaseProtocol):
    """Says why in one line of the front end's own shape, then closes: for connections the
    server will not take. Its seat counts until it is closed (it holds a descriptor)."""

    def __init__(self, seat: Seat, line: bytes) -> None:
        self.seat = seat
        self.line = line

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.line)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        self.seat.leave()


class ConnectionRegistry(Generic[C]):
    _log = Logger()

    def __init__(
        self,
        limits: Limits,
        clock: IReactorTime,
        kind: str = "",
        admission: Admission | None = None,
    ) -> None:
        """``admission`` is the server's, shared by every front end; without one, this
        front end counts on its own (a front end tested alone)."""
        self.limits = limits
        self.clock = clock
        self.kind = kind  # "web " for the web front end's log lines
        self.admission = admission if admission is not None else Admission(limits, clock)
        self.connections: set[C] = set()
        self.stopping = False
        self._seats: dict[C, Seat] = {}
        self._waiting: dict[C, Deferred[None]] = {}

    def refusal(self, host: str | None) -> str | None:
        """Why a new connection from ``host`` may not come in, or ``None`` if it may."""
        if self.stopping:
            return SHUTTING_DOWN
        return self.admission.refusal(host)

    def seat(self, host: str | None) -> Seat:
        """Count a socket just accepted from ``host``: its seat says whether it may stay,
        and is given back when the connection is forgotten (``add``, then ``forget``)."""
        return self.admission.enter(host, SHUTTING_DOWN if self.stopping else None)

    def admit(
        self,
        address: IAddress | None,
        build: Callable[[], C],
        refusal: Callable[[str], bytes],
        warn: Callable[..., None],
    ) -> C | RefuseProtocol:
        """The protocol for a new connection from ``address``: ``build()``'s, counted, or
        one that says ``refusal(why)`` and closes (logged through ``warn``)."""
        seat = self.seat(getattr(address, "host", None))
        if seat.refusal is not None:
            warn("refused {kind}connection from {peer}: {why}", kind=self.kind,
                 peer=describe_peer(address), why=seat.refusal)
            return RefuseProtocol(seat, refusal(seat.refusal))
        protocol = build()
        self.add(protocol, seat)
        return protocol

    def add(self, connection: C, seat: Seat) -> None:
        """Keep ``connection`` and its ``seat`` until it is forgotten; a refused one is not
        one of ``connections``, which get the goodbye."""
        self._seats[connection] = seat
        if seat.admitted:
            self.connections.add(connection)

    def forget(self, connection: C) -> None:
        """``connection`` is gone."""
        seat = self._seats.pop(connection, None)
        if seat is None:
            return
        seat.leave()
        self.connections.discard(connection)
        waiting = self._waiting.pop(connection, None)
        if waiting is not None:
            waiting.callback(None)

    def close_all(self) -> Deferred[object]:
        """Say goodbye to every connection and fire when all are gone; after
        ``shutdown_grace`` seconds, cut those that have not gone."""
        self.stopping = True
        connections = list(self.connections)
        self._log.info("shutting down: closing {count} {kind}connections",
                       count=len(connections), kind=self.kind)
        waits = []
        for connection in connections:
            waiting: Deferred[None] = Deferred()
            self._waiting[connection] = waiting
            waits.append(waiting)
            connection.shutdown()
        done: Deferred[object] = DeferredList(waits)  # type: ignore[assignment]
        if waits:
            cut = self.clock.callLater(self.limits.shutdown_grace, self._cut, connections)
            done.addBoth(lambda result: cut.cancel() if cut.active() else None)
        return done

    def _cut(self, connections: list[C]) -> None:
        stuck = [c for c in connections if c in self.connections]
        if stuck:
            self._log.warn("cutting {count} {kind}connections that did not close in time",
                           count=len(stuck), kind=self.kind)
        for connection in stuck:
            connection.abort()
