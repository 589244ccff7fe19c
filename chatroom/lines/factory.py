"""The line front end's factory: the registry of connections, and the room's door.

It admits or refuses each new connection (by the server's shared ``Admission``), keeps
every live connection so a shutdown can reach them all, and subscribes the room's events
to its ``Fanout`` so every broadcast is rendered once for all of them.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as BaseProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.admission import Admission, Seat
from chatroom.commands import Commands
from chatroom.domain.room import Room
from chatroom.history.recent import RecentRecords
from chatroom.history.store import IHistory
from chatroom.limits import Limits
from chatroom.lines import render
from chatroom.lines.fanout import Fanout
from chatroom.lines.protocol import ChatLineProtocol, describe_peer
from chatroom.logs import RateLimitedLog
from chatroom.registry import ConnectionRegistry

_CLOSED = Failure(ConnectionDone())


class RefuseProtocol(BaseProtocol):
    """Says why in one line, then closes: for connections the server will not take."""

    def __init__(self, seat: Seat) -> None:
        self.seat = seat  # counted until closed: the socket holds a descriptor till then
        self.why = seat.refusal or ""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(render.error(self.why))
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        self.seat.leave()


class ChatFactory(Factory):
    _log = Logger()
    noisy = False

    def __init__(
        self,
        room: Room,
        limits: Limits,
        clock: IReactorTime,
        history: IHistory | None = None,
        recent: RecentRecords | None = None,
        admission: Admission | None = None,
    ) -> None:
        """``admission`` is the server's count of connections, shared by its front ends."""
        self.room = room
        self.limits = limits
        self.clock = clock
        self.history = history
        self.recent = recent
        self.commands = Commands(room, limits, history, recent)
        self.fanout = Fanout(clock)
        self.warnings = RateLimitedLog(self._log, clock)
        self.registry: ConnectionRegistry[ChatLineProtocol] = ConnectionRegistry(
            limits, clock, admission=admission
        )
        self._unsubscribe = room.hub.subscribe(self.fanout.deliver)

    @property
    def connections(self) -> set[ChatLineProtocol]:
        return self.registry.connections

    @property
    def stopping(self) -> bool:
        return self.registry.stopping

    def buildProtocol(self, addr: IAddress | None) -> BaseProtocol:
        seat = self.registry.seat(getattr(addr, "host", None))
        if seat.refusal is not None:
            self.warnings.warn("refused connection from {peer}: {why}",
                               peer=describe_peer(addr), why=seat.refusal)
            return RefuseProtocol(seat)
        protocol = ChatLineProtocol(self, addr)
        self.registry.add(protocol, seat)
        return protocol

    def forget(self, protocol: ChatLineProtocol) -> None:
        """``protocol``'s connection is gone."""
        self.registry.forget(protocol)

    def shutdown(self) -> Deferred[object]:
        """Tell every connection the server is stopping, close them all, and fire when they
        are gone (cutting those still there after ``shutdown_grace``)."""
        self._unsubscribe()
        self.fanout.flush()  # what was said this turn still goes out, before the goodbye
        self.fanout.close()  # nobody needs to hear that everybody else left
        return self.registry.close_all()
