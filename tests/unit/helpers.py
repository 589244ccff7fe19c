"""Shared helpers for the line front end's unit tests: a whole server on a fake clock.

Everything runs in memory: a ``task.Clock`` stands in for the reactor, every connection is
a ``StringTransport``. Broadcasts leave the fanout in a ``callLater(0)``, so ``flush()``
(``clock.advance(0)``) delivers them. Reading a client's output always checks the wire
contract (every line ends in CRLF and is valid UTF-8), so every test checks it for free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from twisted.internet import error as net_error
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import provider

from chatroom.domain.chat import Chat
from chatroom.hubs.local import LocalHub, LocalNicknames
from chatroom.limits import Limits
from chatroom.lines.factory import ChatFactory
from chatroom.lines.protocol import ChatLineProtocol
from chatroom.session import Services

CRLF = b"\r\n"

# Limits that keep flood control and the nickname timer out of tests that are not about
# them; tests about a limit set it explicitly.
RELAXED = Limits(rate=1e9, burst=1_000_000, nick_timeout=0.0)


class RunawayClock(Exception):
    """Too many delayed calls ran in one ``advance``: something reschedules itself forever."""


class BoundedClock(Clock):
    """A ``task.Clock`` that fails instead of hanging when calls keep rescheduling at 'now'."""

    max_calls_per_advance = 10_000

    def advance(self, amount: float) -> None:
        # Clock.advance, with a count
        self.rightNow += amount
        self._sortCalls()
        ran = 0
        while self.calls and self.calls[0].getTime() <= self.seconds():
            ran += 1
            if ran > self.max_calls_per_advance:
                raise RunawayClock(f"{ran} calls in one advance; next: {self.calls[0]!r}")
            call = self.calls.pop(0)
            call.called = 1
            call.func(*call.args, **call.kw)
            self._sortCalls()


class TCPLikeTransport(StringTransport):
    """A ``StringTransport`` whose ``abortConnection`` behaves like TCP's.

    Twisted's TCP transport does not set ``disconnecting`` on an abort: it stops reading
    and writing and calls ``connectionLost`` in a later turn. ``StringTransport`` sets
    ``disconnecting``, which would hide bugs that only show on a real socket.
    """

    aborting = False

    def abortConnection(self) -> None:
        self.aborting = True
        self.disconnected = True


def parse_lines(data: bytes) -> list[str]:
    """Split server output into lines, checking the contract: CRLF ends, valid UTF-8."""
    if not data:
        return []
    assert data.endswith(CRLF), f"output does not end in CRLF: {data[-40:]!r}"
    chunks = data[: -len(CRLF)].split(CRLF)
    lines = []
    for chunk in chunks:
        assert b"\n" not in chunk and b"\r" not in chunk, f"bare CR or LF in {chunk!r}"
        lines.append(chunk.decode("utf-8"))  # raises if not valid UTF-8
    return lines


def split_negotiation(data: bytes) -> tuple[bytes, bytes]:
    """Server output as (its text, the telnet negotiation in it), checking that negotiation
    is only ``IAC WILL/WONT/DO/DONT x`` and only ever sits between lines, never in one."""
    text, negotiation, start = bytearray(), bytearray(), 0
    while (at := data.find(b"\xff", start)) >= 0:
        text += data[start:at]
        command = data[at : at + 3]
        assert len(command) == 3 and 0xFB <= command[1] <= 0xFE, f"not negotiation: {command!r}"
        assert not text or text.endswith(CRLF), f"negotiation inside a line: {data!r}"
        negotiation += command
        start = at + 3
    text += data[start:]
    return bytes(text), bytes(negotiation)


class Client:
    """One fake connection to the server: type into it, read what it was sent."""

    def __init__(self, server: Server, protocol: ChatLineProtocol, transport: TCPLikeTransport):
        self.server = server
        self.protocol = protocol
        self.transport = transport
        self.lost = False

    # -- input ----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Raw bytes, as one packet."""
        self.protocol.dataReceived(data)

    def feed_bytewise(self, data: bytes) -> None:
        """Raw bytes, one per packet."""
        for i in range(len(data)):
            self.protocol.dataReceived(data[i : i + 1])

    def send(self, text: str | bytes, end: bytes = CRLF) -> None:
        """One line, as one packet."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.feed(data + end)

    def send_lines(self, lines: Iterable[str | bytes], end: bytes = CRLF) -> None:
        """Several lines, all in one packet."""
        self.feed(
            b"".join((t.encode("utf-8") if isinstance(t, str) else t) + end for t in lines)
        )

    # -- output ---------------------------------------------------------------

    def raw(self) -> bytes:
        """Everything written so far (not cleared)."""
        return cast(bytes, self.transport.value())

    def take_raw(self) -> bytes:
        data = cast(bytes, self.transport.value())
        self.transport.clear()
        return data

    def lines(self) -> list[str]:
        """The lines written since the last read, checked and cleared."""
        return parse_lines(self.take_raw())

    def lines_and_negotiation(self) -> tuple[list[str], bytes]:
        """The lines and the telnet negotiation written since the last read, checked and
        cleared."""
        text, negotiation = split_negotiation(self.take_raw())
        return parse_lines(text), negotiation

    def clear(self) -> None:
        self.transport.clear()

    # -- state ----------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """The server called loseConnection or abortConnection."""
        return bool(self.transport.disconnecting or self.transport.disconnected)

    @property
    def aborted(self) -> bool:
        return bool(self.transport.disconnected)

    @property
    def nick(self) -> str | None:
        member = self.protocol.member
        return member.nick if member is not None else None

    def lose(self, reason: type[Exception] = net_error.ConnectionDone) -> None:
        """The connection is gone (what the reactor does after a close, reset, or abort)."""
        if not self.lost:
            self.lost = True
            self.transport.connected = False
            self.protocol.connectionLost(Failure(reason()))

    def finish(self) -> None:
        """If the server asked to close this connection, complete the close."""
        if self.closing and not self.lost:
            self.lose(net_error.ConnectionLost if self.aborted else net_error.ConnectionDone)


class Server:
    """A room on a ``LocalHub`` served by one ``ChatFactory``, all on a fake clock."""

    def __init__(
        self,
        limits: Limits = RELAXED,
        hub: LocalHub | None = None,
        names: LocalNicknames | None = None,
        **overrides: Any,
    ) -> None:
        if overrides:
            limits = dataclasses.replace(limits, **overrides)
        self.limits = limits
        self.clock: Clock = BoundedClock()
        self.hub = hub if hub is not None else LocalHub()
        self.services = Services.create(self.clock, limits, hub=self.hub, names=names)
        self.chat: Chat = self.services.chat
        self.room = self.chat  # ``room.members()``: the default room's
        self.factory = ChatFactory(self.services)
        self.clients: list[Client] = []
        self.log: list[LogEvent] = []
        self._ports = iter(range(40000, 60000))

    def observe(self, event: LogEvent) -> None:
        self.log.append(event)

    @property
    def observer(self) -> ILogObserver:
        """``observe`` as the log publisher wants it (a bound method cannot provide it)."""

        def observe(event: LogEvent) -> None:
            self.observe(event)

        observer: ILogObserver = provider(ILogObserver)(observe)
        return observer

    def failures(self) -> list[LogEvent]:
        """Logged failures and critical events: each is a bug in the server."""
        return [
            e for e in self.log
            if "log_failure" in e or e.get("log_level") == LogLevel.critical
        ]

    def connect(self, host: str = "127.0.0.1", port: int | None = None) -> Client:
        return connect(self.factory, host, port if port is not None else next(self._ports),
                       server=self)

    def flush(self) -> None:
        """Let the fanout write this turn's broadcasts (and fire any due zero-delay call)."""
        self.clock.advance(0)

    def join(self, nick: str, host: str = "127.0.0.1") -> Client:
        """A connected member called ``nick``, its output read and everyone's flushed."""
        client = self.connect(host)
        client.send(nick)
        assert client.nick is not None, f"{nick!r} was refused: {client.lines()}"
        self.flush()
        client.clear()
        return client

    def members(self, *nicks: str) -> list[Client]:
        """Several members; everyone's output cleared afterwards."""
        joined = [self.join(nick) for nick in nicks]
        self.flush()
        for client in self.clients:
            client.clear()
        return joined

    def finish_all(self) -> None:
        """Complete every close the server asked for."""
        for client in list(self.clients):
            client.finish()


def connect(
    factory: ChatFactory,
    host: str = "127.0.0.1",
    port: int = 40000,
    server: Server | None = None,
) -> Client:
    """Build a protocol the way the reactor does and connect it to a ``StringTransport``.

    The transport is lenient (a real TCP transport accepts pause/resume after
    ``loseConnection``, so a test should not fail on that alone) and aborts like TCP.
    """
    address = IPv4Address("TCP", host, port)
    protocol = factory.buildProtocol(address)
    assert protocol is not None
    transport = TCPLikeTransport(peerAddress=address, lenient=True)
    protocol.makeConnection(transport)
    client = Client(server if server is not None else _orphan(factory),
                    cast(ChatLineProtocol, protocol), transport)
    if server is not None:
        server.clients.append(client)
    return client


def flush(factory: ChatFactory) -> None:
    """Let the fanout write this turn's broadcasts (``connect(factory)`` without a Server)."""
    cast(Clock, factory.clock).advance(0)


def _orphan(factory: ChatFactory) -> Server:
    """A ``Server`` shell around a factory someone else built (for ``connect(factory)``)."""
    server = Server.__new__(Server)
    server.limits = factory.limits
    server.clock = cast(Clock, factory.clock)
    server.chat = server.room = factory.chat
    server.hub = cast(LocalHub, factory.chat.hub)
    server.factory = factory
    server.clients = []
    server.log = []
    server._ports = iter(range(40000, 60000))
    return server


class SlowNames(LocalNicknames):
    """A registry whose nickname claims wait until the test answers them, like a remote one."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[tuple[Deferred[bool], str, str, str]] = []

    def claim(self, key: str, nick: str, member: str) -> Deferred[bool]:
        d: Deferred[bool] = Deferred()
        self.waiting.append((d, key, nick, member))
        return d

    def answer(self) -> None:
        """Settle the oldest waiting claim the way a ``LocalHub`` would."""
        d, key, nick, member = self.waiting.pop(0)
        LocalNicknames.claim(self, key, nick, member).chainDeferred(d)


@contextmanager
def serving(
    limits: Limits = RELAXED,
    hub: LocalHub | None = None,
    names: LocalNicknames | None = None,
    **overrides: Any,
) -> Iterator[Server]:
    """A ``Server`` whose log is watched; no failure may be logged while it runs."""
    server = Server(limits, hub, names, **overrides)
    observer = server.observer
    globalLogPublisher.addObserver(observer)
    try:
        yield server
    finally:
        globalLogPublisher.removeObserver(observer)
    failures = server.failures()
    assert not failures, f"the server logged failures: {failures!r}"
