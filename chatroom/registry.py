"""Every live connection of one front end: who may come in, and waiting for all to go.

The line and web front ends admit connections by the same limits (``--max-clients``,
``--max-per-ip``, counted per front end), and on shutdown say goodbye to every connection,
wait for each to close and cut those that do not close within the grace period. This is
that part, once.
"""

from __future__ import annotations

from collections import Counter
from typing import Generic, Protocol, TypeVar

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.limits import Limits


class Connection(Protocol):
    host: str | None

    def shutdown(self) -> None: ...
    def abort(self) -> None: ...


C = TypeVar("C", bound=Connection)


class ConnectionRegistry(Generic[C]):
    _log = Logger()

    def __init__(self, limits: Limits, clock: IReactorTime, kind: str = "") -> None:
        self.limits = limits
        self.clock = clock
        self.kind = kind  # "web " for the web front end's log lines
        self.connections: set[C] = set()
        self.stopping = False
        self._per_host: Counter[str] = Counter()
        self._waiting: dict[C, Deferred[None]] = {}

    def refusal(self, host: str | None) -> str | None:
        """Why a new connection from ``host`` may not come in, or ``None`` if it may."""
        if self.stopping:
            return "server shutting down"
        if len(self.connections) >= self.limits.max_clients:
            return "server full"
        if host is not None and self._per_host[host] >= self.limits.max_per_ip:
            return "too many connections from your address"
        return None

    def add(self, connection: C) -> None:
        self.connections.add(connection)
        if connection.host is not None:
            self._per_host[connection.host] += 1

    def forget(self, connection: C) -> None:
        """``connection`` is gone."""
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        host = connection.host
        if host is not None:
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]
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
