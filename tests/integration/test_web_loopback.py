"""The web front end over real loopback sockets, beside the line front end, in one room.

Both front ends run in this process on ``tcp:0:interface=127.0.0.1``: a real WebSocket
client (autobahn's) and a raw TCP line client talk to each other. Every wait is bounded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor as _reactor  # noqa: TID251 - tests run on the real one
from twisted.internet.defer import Deferred, DeferredList, TimeoutError, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, readBody

from chatroom.domain.chat import Chat
from chatroom.limits import Limits
from chatroom.lines.factory import ChatFactory
from chatroom.session import Services
from chatroom.web.site import WebSite, build_web_site

reactor: Any = _reactor
TIMEOUT = 10.0


class WebClient(WebSocketClientProtocol):
    """A browser's side of the socket: JSON messages in, waits on what should arrive."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self._cursor = 0
        self._waiters: list[tuple[Callable[[dict[str, Any]], bool], Deferred[dict[str, Any]]]] = []
        self.opened: Deferred[WebClient] = Deferred()
        self.closed: Deferred[tuple[int | None, str | None]] = Deferred()
        self.on_message: Callable[[dict[str, Any]], None] | None = None
        self.close_info: tuple[int | None, str | None] | None = None

    def onOpen(self) -> None:
        self.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        message = json.loads(payload.decode("utf-8"))
        self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
        self._check()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.close_info = (code, reason)
        if not self.opened.called:
            self.opened.errback(Failure(ConnectionError(f"handshake failed: {reason}")))
        if not self.closed.called:
            self.closed.callback((code, reason))
        for _, waiting in self._waiters:
            waiting.errback(Failure(ConnectionError(f"closed ({code}) while waiting")))
        self._waiters = []

    def send(self, message: dict[str, Any]) -> None:
        self.sendMessage(json.dumps(message).encode("utf-8"))

    def say(self, text: str) -> None:
        self.send({"type": "say", "text": text})

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> Deferred[dict[str, Any]]:
        """The next message, from where the last wait stopped, that ``predicate`` accepts."""
        found = self._scan(predicate)
        if found is not None:
            return succeed(found)
        waiting: Deferred[dict[str, Any]] = Deferred()
        self._waiters.append((predicate, waiting))
        return waiting.addTimeout(TIMEOUT, reactor)

    def _scan(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        while self._cursor < len(self.messages):
            message = self.messages[self._cursor]
            self._cursor += 1
            if predicate(message):
                return message
        return None

    def _check(self) -> None:
        for entry in list(self._waiters):
            predicate, waiting = entry
            found = self._scan(predicate)
            if found is not None:
                self._waiters.remove(entry)
                waiting.callback(found)


class LineClient(Protocol):
    """nc in a test: lines out, and a wait for a line that matches."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._buffer = b""
        self._cursor = 0
        self._waiters: list[tuple[re.Pattern[str], Deferred[str]]] = []
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\r\n")
        self.lines += [line.decode("utf-8") for line in complete]
        for entry in list(self._waiters):
            found = self._scan(entry[0])
            if found is not None:
                self._waiters.remove(entry)
                entry[1].callback(found)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost.callback(None)

    def send(self, line: str) -> None:
        assert self.transport is not None
        self.transport.write(line.encode("utf-8") + b"\r\n")

    def wait_for(self, pattern: str) -> Deferred[str]:
        compiled = re.compile(pattern)
        found = self._scan(compiled)
        if found is not None:
            return succeed(found)
        waiting: Deferred[str] = Deferred()
        self._waiters.append((compiled, waiting))
        return waiting.addTimeout(TIMEOUT, reactor)

    def _scan(self, pattern: re.Pattern[str]) -> str | None:
        while self._cursor < len(self.lines):
            line = self.lines[self._cursor]
            self._cursor += 1
            if pattern.search(line):
                return line
        return None


@dataclass
class Servers:
    room: Chat
    lines: ChatFactory
    site: WebSite
    line_port: int
    web_port: int
    clients: list[Any]

    async def web(self, origin: str | None = "same") -> WebClient:
        """A connected browser, prompted for a nickname."""
        url = f"ws://127.0.0.1:{self.web_port}/ws"
        if origin == "same":
            origin = f"http://127.0.0.1:{self.web_port}"
        factory = WebSocketClientFactory(url, origin=origin, reactor=reactor)
        factory.protocol = WebClient
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.web_port)
        client = cast(WebClient, await endpoint.connect(factory))
        self.clients.append(client)
        await client.opened.addTimeout(TIMEOUT, reactor)
        await client.wait_for(lambda m: m["type"] == "prompt")
        return client

    async def joined_web(self, nick: str) -> WebClient:
        client = await self.web()
        client.send({"type": "nick", "nick": nick})
        await client.wait_for(lambda m: m["type"] == "welcome")
        return client

    async def line(self, nick: str) -> LineClient:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.line_port)
        client = cast(LineClient, await endpoint.connect(Factory.forProtocol(LineClient)))
        self.clients.append(client)
        await client.wait_for("nickname")
        client.send(nick)
        await client.wait_for(rf"welcome, {nick}!")
        return client


def limits_for_tests(**changes: Any) -> Limits:
    base: dict[str, Any] = {"nick_timeout": 30.0, "shutdown_grace": 2.0}
    base.update(changes)
    return Limits(**base)


async def start(limits: Limits) -> tuple[Servers, list[IListeningPort]]:
    services = Services.create(reactor, limits)
    room = services.chat
    lines = ChatFactory(services)
    site = build_web_site(services, None)
    line_port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(lines)
    web_port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site)
    servers = Servers(room, lines, site, line_port.getHost().port, web_port.getHost().port, [])
    return servers, [line_port, web_port]


async def stop(servers: Servers, ports: list[IListeningPort]) -> None:
    """Stop listening, say goodbye on both front ends, and wait for every client to go."""
    for port in ports:
        stopped = port.stopListening()
        if stopped is not None:
            await stopped
    await DeferredList([servers.site.shutdown(), servers.lines.shutdown()])
    for client in servers.clients:
        done = client.closed if isinstance(client, WebClient) else client.lost
        try:
            await done.addTimeout(TIMEOUT, reactor)
        except TimeoutError as e:
            raise AssertionError(f"{client!r} still open after the shutdown") from e


@pytest_twisted.async_yield_fixture  # type: ignore[untyped-decorator]
async def servers() -> AsyncIterator[Servers]:
    running, ports = await start(limits_for_tests())
    yield running
    await stop(running, ports)


def of(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == kind and all(m.get(k) == v for k, v in fields.items())


@pytest_twisted.ensureDeferred
async def test_a_browser_and_a_telnet_user_chat_in_one_room(servers):
    alice = await servers.joined_web("alice")
    bob = await servers.line("bob")
    await alice.wait_for(of("joined", nick="bob"))

    bob.send("hi alice")
    said = await alice.wait_for(of("said", nick="bob"))
    assert said["text"] == "hi alice"

    alice.say("hello <img src=x onerror=alert(1)>")
    await bob.wait_for(r"^alice: hello <img src=x onerror=alert\(1\)>$")
    echo = await alice.wait_for(of("said", nick="alice"))  # the page shows it from the room
    assert echo["text"] == "hello <img src=x onerror=alert(1)>"

    alice.say("/me waves")
    await bob.wait_for(r"^\* alice waves$")
    bob.send("/msg alice psst")
    private = await alice.wait_for(of("private", nick="bob"))
    assert private["to"] == "alice" and private["text"] == "psst"

    alice.say("/nick alicia")
    await bob.wait_for(r"^\*\*\* alice is now known as alicia$")
    bob.send("/nick robert")
    await alice.wait_for(of("renamed", nick="bob", new_nick="robert"))

    carol = await servers.joined_web("carol")
    members = await carol.wait_for(of("members"))
    assert members["nicks"] == ["alicia", "carol", "robert"]
    await bob.wait_for(r"^\*\*\* carol joined$")

    bob.send("/quit")
    await bob.lost.addTimeout(TIMEOUT, reactor)
    for browser in (alice, carol):
        await browser.wait_for(of("left", nick="robert"))


@pytest_twisted.ensureDeferred
async def test_a_closed_browser_is_announced_to_telnet_users(servers):
    bob = await servers.line("bob")
    alice = await servers.joined_web("alice")
    await bob.wait_for(r"^\*\*\* alice joined$")
    alice.sendClose(1000)
    await alice.closed.addTimeout(TIMEOUT, reactor)
    await bob.wait_for(r"^\*\*\* alice left$")
    assert "alice" not in servers.room.members()


@pytest_twisted.ensureDeferred
async def test_bad_frames_get_errors_and_the_room_carries_on(servers):
    alice = await servers.joined_web("alice")
    bob = await servers.line("bob")
    alice.sendMessage(b"{nope")
    await alice.wait_for(of("error", text="not valid JSON"))
    alice.sendMessage(b"\x00\xff", isBinary=True)
    error = await alice.wait_for(of("error"))
    assert "binary" in error["text"]
    alice.say("x" * (Limits().max_line + 1))
    await alice.wait_for(of("error", about="text"))
    alice.say("still fine")
    await bob.wait_for(r"^alice: still fine$")


@pytest_twisted.ensureDeferred
async def test_a_page_from_another_site_cannot_open_the_socket(servers):
    with pytest.raises(ConnectionError, match="handshake failed"):
        await servers.web(origin="http://evil.example")
    assert servers.site.chat.connections == set()


@pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")  # Twisted's Agent
@pytest_twisted.ensureDeferred
async def test_the_page_is_served_with_its_policy(servers):
    agent = Agent(reactor)
    response = await agent.request(b"GET", f"http://127.0.0.1:{servers.web_port}/".encode())
    body = await readBody(response)
    assert response.code == 200 and b'src="app.js"' in body
    (policy,) = response.headers.getRawHeaders(b"content-security-policy")
    assert b"default-src 'self'" in policy and b"unsafe-inline" not in policy
    script = await agent.request(b"GET", f"http://127.0.0.1:{servers.web_port}/app.js".encode())
    assert b"textContent" in await readBody(script)


@pytest_twisted.ensureDeferred
async def test_shutdown_reaches_every_browser_and_telnet_user_in_time():
    running, ports = await start(limits_for_tests())
    alice = await running.joined_web("alice")
    chooser = await running.web()
    bob = await running.line("bob")
    began = time.monotonic()
    await stop(running, ports)
    elapsed = time.monotonic() - began
    for browser in (alice, chooser):
        assert browser.messages[-1]["text"] == "server shutting down"
        assert browser.close_info == (1001, "server shutting down")
    assert bob.lines[-1] == "*** server shutting down"
    assert elapsed < 5.0


@pytest_twisted.ensureDeferred
async def test_a_browser_that_stops_reading_is_dropped_and_nobody_else_misses_a_line():
    limits = limits_for_tests(rate=100_000.0, burst=100_000, max_out=64 * 1024)
    running, ports = await start(limits)
    try:
        watcher = await running.joined_web("watcher")
        slow = await running.joined_web("slow")
        slow_transport: Any = slow.transport
        slow.on_message = lambda m: slow_transport.pauseProducing()  # stops reading: no ack
        flooder = await running.line("flooder")
        await watcher.wait_for(of("joined", nick="flooder"))
        line = "f" * 1900
        count = 3000  # about 6 MB: more than loopback's socket buffers hold
        got: list[str] = []
        watcher.on_message = lambda m: got.append(m["text"]) if m["type"] == "said" else None
        for i in range(count):
            flooder.send(f"{i:05d} {line}")
        left = await watcher.wait_for(of("left", nick="slow")).addTimeout(30, reactor)
        assert left["nick"] == "slow"
        await watcher.wait_for(lambda m: m.get("text", "").startswith(f"{count - 1:05d} "))
        assert [text[:5] for text in got] == [f"{i:05d}" for i in range(count)]
        slow.on_message = None
        slow_transport.resumeProducing()  # it reads what it had, then learns it was cut
    finally:
        await stop(running, ports)
