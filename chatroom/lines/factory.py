"""The line front end's factory: the registry of connections, and the room's door.

It admits or refuses each new connection (``--max-clients``, ``--max-per-ip``), keeps
every live connection so a shutdown can reach them all, and subscribes the room's events
to its ``Fanout`` so every broadcast is rendered once for all of them.
"""

from __future__ import annotations

from collections import Counter

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as BaseProtocol
from twisted.logger import Logger

from chatroom.domain.room import Room
from chatroom.history.recent import RecentRecords
from chatroom.history.store import IHistory
from chatroom.limits import Limits
from chatroom.lines import render
from chatroom.lines.fanout import Fanout
from chatroom.lines.protocol import ChatLineProtocol, describe_peer
from chatroom.logs import RateLimitedLog


class RefuseProtocol(BaseProtocol):
    """Says why in one line, then closes: for connections the server will not take."""

    def __init__(self, why: str) -> None:
        self.why = why

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(render.error(self.why))
        self.transport.loseConnection()


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
    ) -> None:
        self.room = room
        self.limits = limits
        self.clock = clock
        self.history = history
        self.recent = recent
        self.fanout = Fanout(clock)
        self.warnings = RateLimitedLog(self._log, clock)
        self.connections: set[ChatLineProtocol] = set()
        self._per_host: Counter[str] = Counter()
        self._lost: dict[ChatLineProtocol, Deferred[None]] = {}
        self.stopping = False
        self._unsubscribe = room.hub.subscribe(self.fanout.deliver)

    def buildProtocol(self, addr: IAddress | None) -> BaseProtocol:
        host: str | None = getattr(addr, "host", None)
        why = self._refusal(host)
        if why is not None:
            self.warnings.warn("refused connection from {peer}: {why}",
                               peer=describe_peer(addr), why=why)
            return RefuseProtocol(why)
        protocol = ChatLineProtocol(self, addr)
        self.connections.add(protocol)
        if host is not None:
            self._per_host[host] += 1
        return protocol

    def _refusal(self, host: str | None) -> str | None:
        if self.stopping:
            return "server shutting down"
        if len(self.connections) >= self.limits.max_clients:
            return "server full"
        if host is not None and self._per_host[host] >= self.limits.max_per_ip:
            return "too many connections from your address"
        return None

    def forget(self, protocol: ChatLineProtocol) -> None:
        """``protocol``'s connection is gone."""
        if protocol not in self.connections:
            return
        self.connections.discard(protocol)
        host = protocol.host
        if host is not None:
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]
        waiting = self._lost.pop(protocol, None)
        if waiting is not None:
            waiting.callback(None)

    def shutdown(self) -> Deferred[object]:
        """Tell every connection the server is stopping, close them all, and fire when they
        are gone; after ``shutdown_grace`` seconds, cut those that have not gone."""
        self.stopping = True
        self._unsubscribe()
        self.fanout.flush()  # what was said this turn still goes out, before the goodbye
        self.fanout.close()  # nobody needs to hear that everybody else left
        connections = list(self.connections)
        self._log.info("shutting down: closing {count} connections", count=len(connections))
        waits = []
        for protocol in connections:
            waiting: Deferred[None] = Deferred()
            self._lost[protocol] = waiting
            waits.append(waiting)
            protocol.shutdown()
        done: Deferred[object] = DeferredList(waits)  # type: ignore[assignment]
        if waits:
            cut = self.clock.callLater(self.limits.shutdown_grace, self._cut, connections)
            done.addBoth(lambda result: cut.cancel() if cut.active() else None)
        return done

    def _cut(self, connections: list[ChatLineProtocol]) -> None:
        stuck = [p for p in connections if p in self.connections]
        if stuck:
            self._log.warn("cutting {count} connections that did not close in time",
                           count=len(stuck))
        for protocol in stuck:
            protocol.abort()
