"""The IRC front end on a fake clock: IRC clients next to line clients, in one chat."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from twisted.internet import error as net_error
from twisted.internet.address import IPv4Address
from twisted.python.failure import Failure

from chatroom.accounts.passwords import Cost, Passwords, here
from chatroom.history.memory import MemoryHistory
from chatroom.history.recent import RecentRecords
from chatroom.hubs.local import LocalHub
from chatroom.irc.factory import IRCFactory
from chatroom.irc.protocol import IRCProtocol
from chatroom.limits import Limits
from chatroom.lines.factory import ChatFactory
from chatroom.session import Services
from tests.unit.helpers import RELAXED, BoundedClock, Server, TCPLikeTransport, parse_lines

SERVER = "irc.test"
CHEAP = Cost(time_cost=1, memory_kib=64, parallelism=1)


class IRCClient:
    """One fake IRC connection: send lines, read what it was sent."""

    def __init__(self, protocol: IRCProtocol, transport: TCPLikeTransport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.lost = False

    def send(self, *lines: str | bytes) -> None:
        """Lines, all in one packet."""
        self.protocol.dataReceived(
            b"".join((t.encode() if isinstance(t, str) else t) + b"\r\n" for t in lines)
        )

    def lines(self) -> list[str]:
        data = cast(bytes, self.transport.value())
        self.transport.clear()
        return parse_lines(data)

    def clear(self) -> None:
        self.transport.clear()

    def commands(self) -> list[str]:
        """The command (or numeric) of each line read, tags and source left out."""
        out = []
        for line in self.lines():
            words = line.split(" ")
            if words[0].startswith("@"):
                words = words[1:]
            if words[0].startswith(":"):
                words = words[1:]
            out.append(words[0])
        return out

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting or self.transport.disconnected)

    def lose(self) -> None:
        if not self.lost:
            self.lost = True
            self.protocol.connectionLost(Failure(net_error.ConnectionDone()))

    def finish(self) -> None:
        if self.closing:
            self.lose()


class Both(Server):
    """A line front end (``join``) and an IRC front end (``irc``) on one chat; with
    ``history``, a ``MemoryHistory`` behind both, and the replay buffer."""

    def __init__(self, limits: Limits = RELAXED, history: bool = False) -> None:
        self.limits = limits
        self.clock = BoundedClock()
        self.hub = LocalHub()
        self.history: MemoryHistory | None = None
        recent = None
        if history:
            self.history = MemoryHistory(self.clock)
            self.hub.subscribe(self.history.record)
            recent = RecentRecords(max(limits.history_replay, limits.history_max),
                                   history=self.history)
        self.services = Services.create(self.clock, limits, hub=self.hub,
                                        history=self.history, recent=recent)
        self.chat = self.room = self.services.chat
        self.factory = ChatFactory(self.services)
        self.clients = []
        self.log = []
        self._ports = iter(range(40000, 60000))
        self.irc_factory = IRCFactory(self.services, SERVER, ping_interval=120.0)
        self.irc_clients: list[IRCClient] = []
        self._irc_ports = iter(range(20000, 30000))

    def irc_connect(self, host: str = "127.0.0.1") -> IRCClient:
        address = IPv4Address("TCP", host, next(self._irc_ports))
        protocol = self.irc_factory.buildProtocol(address)
        transport = TCPLikeTransport(peerAddress=address, lenient=True)
        assert protocol is not None
        protocol.makeConnection(transport)
        client = IRCClient(cast(IRCProtocol, protocol), transport)
        self.irc_clients.append(client)
        return client

    def irc(self, nick: str, *caps: str) -> IRCClient:
        """A registered IRC client (in the default room), its output read."""
        client = self.irc_connect()
        if caps:
            client.send("CAP LS 302", f"CAP REQ :{' '.join(caps)}", "CAP END")
        client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} the tester")
        assert client.protocol.member is not None, client.lines()
        self.flush()
        client.clear()
        for line_client in self.clients:
            line_client.clear()
        for irc_client in self.irc_clients:
            irc_client.clear()
        return client


@contextmanager
def both(limits: Limits = RELAXED, history: bool = False, **overrides: Any) -> Iterator[Both]:
    if overrides:
        limits = dataclasses.replace(limits, **overrides)
    server = Both(limits, history)
    yield server


@contextmanager
def with_accounts(**overrides: Any) -> Iterator[Both]:
    """``both``, its passwords hashed cheaply and checked at once (on the test's clock)."""
    with both(**overrides) as server:
        accounts = server.services.accounts
        assert accounts is not None
        accounts.passwords = Passwords(here, CHEAP)
        yield server
