"""The straightforward Twisted chat server, as a yardstick for chatroom's fan-out.

The design every Twisted tutorial shows: a ``LineReceiver`` per client, a dict from
nickname to protocol on the factory, and a broadcast that loops over the dict calling
``transport.write`` once per recipient. No batching, no output cap, no flood control, no
sanitising, no TCP_NODELAY. It speaks enough of the chatroom line protocol for the load
generator: a prompt with the word "nickname", a welcome line naming the member, chat
lines as ``NICK: text`` to everyone but the sender, CRLF line endings.

Run: ``python benchmarks/baseline_naive.py --port 0``; it prints ``listening on HOST:PORT``.
"""

from __future__ import annotations

import argparse
import resource
from typing import Any

from twisted.internet import reactor
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure


class NaiveChat(LineReceiver):
    """One client: the first line is its nickname, every later line is broadcast."""

    delimiter = b"\n"
    MAX_LENGTH = 2048

    def __init__(self, users: dict[str, NaiveChat], nodelay: bool) -> None:
        self.users = users
        self.nodelay = nodelay
        self.name: str | None = None

    def connectionMade(self) -> None:
        if self.nodelay:
            self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]
        self.transport.write(b"Choose a nickname:\r\n")  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.name is not None and self.users.get(self.name) is self:
            del self.users[self.name]
            self.broadcast(f"*** {self.name} left\r\n".encode())

    def lineReceived(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        if self.name is None:
            name = text.strip()
            if not name or " " in name or name in self.users:
                self.transport.write(b"! taken or invalid; choose a nickname:\r\n")  # type: ignore[union-attr]
                return
            self.name = name
            self.users[name] = self
            self.transport.write(f"*** welcome, {name}!\r\n".encode())  # type: ignore[union-attr]
            self.broadcast(f"*** {name} joined\r\n".encode())
        elif text.strip():
            self.broadcast(f"{self.name}: {text}\r\n".encode())

    def broadcast(self, data: bytes) -> None:
        """One ``transport.write`` per recipient, the sender skipped."""
        for protocol in self.users.values():
            if protocol is not self:
                protocol.transport.write(data)  # type: ignore[union-attr]


class NaiveFactory(Factory):
    noisy = False

    def __init__(self, nodelay: bool) -> None:
        self.users: dict[str, NaiveChat] = {}
        self.nodelay = nodelay

    def buildProtocol(self, addr: IAddress | None) -> NaiveChat:
        return NaiveChat(self.users, self.nodelay)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--nodelay", action=argparse.BooleanOptionalAction, default=False,
                        help="TCP_NODELAY on every connection")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # listenTCP's default backlog (50), as the tutorial has it; chatroom's endpoint uses the same
    port = reactor.listenTCP(args.port, NaiveFactory(args.nodelay), interface=args.interface)  # type: ignore[arg-type]
    address: Any = port.getHost()
    print(f"listening on {address.host}:{address.port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
