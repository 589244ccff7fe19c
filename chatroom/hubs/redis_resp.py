"""Where the Redis hub finds Redis: ``--redis`` URLs, and the endpoint that reaches them.

Deliberately free of Redis I/O: ``tap.py`` checks ``--redis`` with ``parse_url`` while it
parses options, before the reactor is chosen, and the client library (txredisapi, which
imports the reactor) is loaded only by ``chatroom.hubs.redis``, when ``--redis`` is given.
The connection itself (AUTH, SELECT, commands, replies) is txredisapi's; this module only
says where to connect and how (TCP, TLS with certificate checks, or a UNIX socket).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint


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
