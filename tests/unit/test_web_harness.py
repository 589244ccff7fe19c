"""A fake browser for the web front end's unit tests, and the tests of the fake itself.

``FakeBrowser`` goes through the real ``Site``: an HTTP upgrade request into the HTTP
channel, then masked WebSocket frames straight into the ``WebChatProtocol`` that took the
transport over. Everything runs on ``StringTransport`` and ``task.Clock``: no sockets, no
sleeps, and autobahn's own timers are switched off (``ping_interval=0`` and friends).
"""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatroom.history.recent import RecentRecords
from chatroom.history.store import IHistory
from chatroom.limits import Limits
from chatroom.session import Services
from chatroom.web import messages
from chatroom.web.protocol import WebChatProtocol
from chatroom.web.site import WebSite, build_web_site

HOST = "chat.example:8081"
ORIGIN = "http://chat.example:8081"
MASK = b"\x37\xfa\x21\x3d"

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def make_site(
    clock: Clock,
    limits: Limits | None = None,
    allowed_origins: list[str] | None = None,
    history: IHistory | None = None,
    recent: RecentRecords | None = None,
) -> WebSite:
    services = Services.create(clock, limits or Limits(), history=history, recent=recent)
    if history is not None:
        services.chat.hub.subscribe(history.record)
    return build_web_site(
        services, allowed_origins, ping_interval=0, open_timeout=0, close_timeout=0,
    )


def client_frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """One frame as a browser sends it: masked (RFC 6455 5.3)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return header + MASK + masked


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split the server's bytes into (opcode, payload); server frames are never masked."""
    frames = []
    while data:
        opcode = data[0] & 0x0F
        assert data[0] & 0x80, "the server sends whole messages, one frame each"
        size = data[1]
        assert not size & 0x80, "server frames are not masked"
        offset = 2
        if size == 126:
            (size,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif size == 127:
            (size,) = struct.unpack("!Q", data[2:10])
            offset = 10
        frames.append((opcode, data[offset:offset + size]))
        data = data[offset + size:]
    return frames


class FakeBrowser:
    """One browser tab connected to ``site``; ``port`` tells the tabs' addresses apart."""

    def __init__(
        self,
        site: WebSite,
        port: int = 50000,
        *,
        host: str | None = HOST,
        origin: str | None = ORIGIN,
        peer: str = "127.0.0.1",
    ) -> None:
        self.site = site
        address = IPv4Address("TCP", peer, port)
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8081), peerAddress=address, lenient=True
        )
        channel = site.buildProtocol(address)
        assert channel is not None
        # as a real transport has: the upgrade replaces it with the WebSocket protocol
        cast(Any, self.transport).protocol = channel
        channel.makeConnection(self.transport)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = ["GET /ws HTTP/1.1"]
        if host is not None:
            lines.append(f"Host: {host}")
        lines += [
            "Upgrade: websocket", "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
        ]
        if origin is not None:
            lines.append(f"Origin: {origin}")
        channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        head, _, rest = self.transport.value().partition(b"\r\n\r\n")
        self.response = head.decode("latin-1")
        self.status = int(self.response.split(" ", 2)[1])
        self.transport.clear()
        self._rest = rest
        protocol = getattr(self.transport, "protocol", None)
        self.ws = protocol if isinstance(protocol, WebChatProtocol) else None
        self.closes: list[tuple[int, str]] = []

    # -- sending ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        assert self.ws is not None
        self.ws.dataReceived(data)

    def send(self, message: Any) -> None:
        self.send_text(json.dumps(message))

    def send_text(self, text: str) -> None:
        self.feed(client_frame(text.encode("utf-8")))

    def nick(self, nick: str) -> None:
        self.send({"type": "nick", "nick": nick})

    def say(self, text: str) -> None:
        self.send({"type": "say", "text": text})

    def reply_close(self) -> None:
        """What a browser does when the server closes: its own close frame."""
        self.feed(client_frame(struct.pack("!H", 1000), OP_CLOSE))

    def lose(self) -> None:
        """The TCP connection is gone (StringTransport never says so by itself)."""
        assert self.ws is not None
        self.transport.connected = False
        self.ws.connectionLost(Failure(ConnectionDone()))

    # -- receiving ----------------------------------------------------------------

    def frames(self) -> list[tuple[int, bytes]]:
        data = self._rest + self.transport.value()
        self._rest = b""
        self.transport.clear()
        return server_frames(data)

    def received(self) -> list[dict[str, Any]]:
        """The JSON messages since the last call; close frames are kept in ``closes``."""
        out = []
        for opcode, payload in self.frames():
            if opcode == OP_TEXT:
                out.append(json.loads(payload.decode("utf-8")))
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                self.closes.append((code, payload[2:].decode("utf-8")))
        return out

    def types(self) -> list[str]:
        return [m["type"] for m in self.received()]

    def join(self, nick: str, clock: Clock) -> list[dict[str, Any]]:
        """Choose ``nick``; return what came back (the prompt is read first)."""
        self.received()
        self.nick(nick)
        clock.advance(0)
        return self.received()


# -- the harness's own tests ---------------------------------------------------------


def test_server_frames_decode_every_length_encoding():
    for size in (0, 125, 126, 65535, 65536):
        message = {"type": "notice", "time": 1.0, "text": "x" * size}
        ((opcode, payload),) = server_frames(messages.frame(message))
        assert opcode == OP_TEXT
        assert json.loads(payload) == message


def test_a_fake_browser_completes_the_upgrade_and_gets_the_prompt():
    clock = Clock()
    browser = FakeBrowser(make_site(clock))
    assert browser.status == 101
    assert browser.ws is not None
    assert [m["type"] for m in browser.received()] == ["prompt"]
