"""A small Redis client on Twisted protocols: RESP2 framing, pipelining, URL parsing.

Why our own and not redis-py or txredisapi: redis-py's asyncio client needs Twisted's
asyncio reactor, which would change the reactor (and its timing) for every front end and
every test, just for an option most servers never use. txredisapi works on the default
reactor but builds a Deferred and several Python objects per reply and cannot hand the hub
a reply without one; the hub needs only a handful of commands (XADD, XREAD, EVALSHA, SCAN,
MGET), so ~250 lines here keep the hot path short and testable with ``StringTransport``.
``REDIS-notes.md`` has the measurements behind this choice.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

Reply = Union[bytes, int, None, list["Reply"], "ReplyError"]
Arg = bytes | str | int | float

_CRLF = b"\r\n"


class ReplyError(Exception):
    """An error reply from Redis (``-ERR ...``), as a value inside arrays and as a failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        """The first word: ``ERR``, ``NOSCRIPT``, ``WRONGPASS``, ``BUSYGROUP``..."""
        return self.message.split(" ", 1)[0]


class ProtocolError(Exception):
    """The server sent bytes that are not RESP: the connection cannot be trusted any more."""


def encode(args: Sequence[Arg]) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode("utf-8")
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(arg).encode("ascii")
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(_CRLF)
    return b"".join(parts)


class RespParser:
    """Incremental RESP2 parser: feed it bytes, get whole replies.

    It keeps the arrays it is inside on a stack, so a reply that arrives in many pieces
    (a long XREAD) is parsed once, not again from its start for every piece.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._stack: list[list[Any]] = []  # [remaining, items]

    def feed(self, data: bytes) -> list[Reply]:
        buf = self._buf[self._pos:] + data if self._pos < len(self._buf) else data
        pos = 0
        stack = self._stack
        out: list[Reply] = []
        find = buf.find
        while True:
            end = find(_CRLF, pos)
            if end < 0:
                break
            kind = buf[pos]
            value: Reply
            if kind == 36:  # $ bulk string
                size = int(buf[pos + 1:end])
                if size < 0:
                    value = None
                    pos = end + 2
                else:
                    stop = end + 2 + size
                    if len(buf) < stop + 2:
                        break
                    value = buf[end + 2:stop]
                    pos = stop + 2
            elif kind == 42:  # * array
                size = int(buf[pos + 1:end])
                pos = end + 2
                if size > 0:
                    stack.append([size, []])
                    continue
                value = None if size < 0 else []
            elif kind == 58:  # : integer
                value = int(buf[pos + 1:end])
                pos = end + 2
            elif kind == 43:  # + simple string
                value = buf[pos + 1:end]
                pos = end + 2
            elif kind == 45:  # - error
                value = ReplyError(buf[pos + 1:end].decode("utf-8", "replace"))
                pos = end + 2
            else:
                raise ProtocolError(f"unexpected RESP type byte {kind!r}")
            while stack:
                top = stack[-1]
                top[1].append(value)
                top[0] -= 1
                if top[0]:
                    break
                stack.pop()
                value = top[1]
            else:
                out.append(value)
        self._buf = buf
        self._pos = pos
        if pos == len(buf):
            self._buf, self._pos = b"", 0
        return out


class _Waiter:
    """What to do with one reply: fire a Deferred, or call a function (no Deferred)."""

    __slots__ = ("deferred", "on_reply", "sent")

    def __init__(
        self, deferred: Deferred[Any] | None, on_reply: Callable[[Reply], None] | None,
        sent: float,
    ) -> None:
        self.deferred = deferred
        self.on_reply = on_reply
        self.sent = sent


class RedisProtocol(Protocol):
    """One connection to Redis: commands go out pipelined, replies come back in order.

    ``execute`` returns a Deferred; ``send`` takes a plain callback, for the hot path.
    When the connection is lost every waiting Deferred fails with the reason and plain
    callbacks are dropped: their owner learns of the loss from ``on_lost``.
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._parser = RespParser()
        self._waiting: deque[_Waiter] = deque()
        self.connected_ok = False
        self.on_lost: Callable[[RedisProtocol, Failure], None] | None = None

    def connectionMade(self) -> None:
        self.connected_ok = True
        # Small pipelined commands must leave now: Nagle's algorithm would hold them for
        # the server's delayed ACK (tens of milliseconds per hop).
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            with contextlib.suppress(OSError):
                set_no_delay(True)

    def execute(self, *args: Arg) -> Deferred[Any]:
        """Run one command; the Deferred fires with the reply or fails with ``ReplyError``."""
        deferred: Deferred[Any] = Deferred()
        if not self.connected_ok or self.transport is None:
            deferred.errback(ConnectionDone("not connected to Redis"))
            return deferred
        self._waiting.append(_Waiter(deferred, None, self._now()))
        self.transport.write(encode(args))
        return deferred

    def send(self, args: Sequence[Arg], on_reply: Callable[[Reply], None]) -> bool:
        """Run one command; ``on_reply`` gets the reply (a ``ReplyError`` for an error).

        Returns False, and sends nothing, if the connection is down.
        """
        if not self.connected_ok or self.transport is None:
            return False
        self._waiting.append(_Waiter(None, on_reply, self._now()))
        self.transport.write(encode(args))
        return True

    def send_raw(self, data: bytes, on_reply: Callable[[Reply], None]) -> bool:
        """``send`` for a command the caller already encoded (the hub's XADD)."""
        if not self.connected_ok or self.transport is None:
            return False
        self._waiting.append(_Waiter(None, on_reply, self._now()))
        self.transport.write(data)
        return True

    def oldest_wait(self) -> float:
        """Seconds the oldest unanswered command has waited (0 if none)."""
        if not self._waiting:
            return 0.0
        return self._now() - self._waiting[0].sent

    def waiting(self) -> int:
        return len(self._waiting)

    def dataReceived(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except (ProtocolError, ValueError) as e:
            self._fail_all(Failure(ProtocolError(str(e))))
            self.abort()
            return
        waiting = self._waiting
        for reply in replies:
            if not waiting:
                # A reply nobody asked for: the stream is out of step; start over.
                self.abort()
                return
            waiter = waiting.popleft()
            if waiter.on_reply is not None:
                waiter.on_reply(reply)
            elif waiter.deferred is not None:
                if isinstance(reply, ReplyError):
                    waiter.deferred.errback(reply)
                else:
                    waiter.deferred.callback(reply)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        self.connected_ok = False
        self._fail_all(reason)
        if self.on_lost is not None:
            self.on_lost(self, reason)

    def _fail_all(self, reason: Failure) -> None:
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:
            if waiter.deferred is not None:
                waiter.deferred.errback(reason)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection now, without waiting for unsent data (a hung server)."""
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is and how to log in, from a ``redis://``, ``rediss://`` or ``unix://`` URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    path: str | None = None  # a UNIX socket instead of host and port
    ca: str | None = None  # PEM file of the CA that signed the server's certificate (rediss)

    def endpoint(self, reactor: Any) -> IStreamClientEndpoint:
        """A client endpoint that connects (and, for rediss, negotiates TLS)."""
        if self.path is not None:
            endpoint: IStreamClientEndpoint = UNIXClientEndpoint(reactor, self.path)
            return endpoint
        endpoint = HostnameEndpoint(reactor, self.host, self.port, timeout=10)
        if not self.tls:
            return endpoint
        from twisted.internet.ssl import Certificate, optionsForClientTLS, platformTrust

        if self.ca is not None:
            with open(self.ca, "rb") as f:
                trust: Any = Certificate.loadPEM(f.read())
        else:
            trust = platformTrust()
        return wrapClientTLS(optionsForClientTLS(self.host, trustRoot=trust), endpoint)

    def login(self) -> list[list[Arg]]:
        """The commands that prepare a new connection: AUTH, then SELECT."""
        commands: list[list[Arg]] = []
        if self.password is not None:
            if self.username:
                commands.append(["AUTH", self.username, self.password])
            else:
                commands.append(["AUTH", self.password])
        if self.db:
            commands.append(["SELECT", self.db])
        return commands

    def __str__(self) -> str:
        """The URL without the password, for logs."""
        if self.path is not None:
            where = f"unix://{self.path}"
        else:
            host = f"[{self.host}]" if ":" in self.host else self.host
            where = f"{'rediss' if self.tls else 'redis'}://{host}:{self.port}"
        return f"{where}/{self.db}" if self.db else where


def parse_url(url: str) -> RedisAddress:
    """``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS, optional
    ``?ca=FILE``) or ``unix:///path/to/redis.sock[?db=N]``; raises ``ValueError``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{url!r} is not a redis://, rediss:// or unix:// URL")
    query = parse_qs(parts.query)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    db_text = parts.path.strip("/") if scheme != "unix" else (query.get("db") or ["0"])[0]
    try:
        db = int(db_text) if db_text else 0
    except ValueError:
        raise ValueError(f"{db_text!r} is not a database number") from None
    if db < 0:
        raise ValueError("the database number must be at least 0")
    if scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// needs the path of the socket")
        return RedisAddress(db=db, username=username, password=password, path=parts.path)
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"{url!r} has a bad port") from None
    ca = query["ca"][0] if query.get("ca") else None
    return RedisAddress(
        host=parts.hostname, port=port, db=db, username=username, password=password,
        tls=scheme == "rediss", ca=ca,
    )
