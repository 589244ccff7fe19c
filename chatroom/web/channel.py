"""The web port's HTTP/1.1 channel: twisted.web's, with the limits a public port needs.

twisted.web reads every request body whole before the resource sees the request (into a
temporary file past 100 kB, and a chunked body without end), keeps a connection as long as
a byte arrives every 60 s, and knows nothing of the server's connection count. The page
needs none of that: it only ever sends GET and HEAD, without a body. So here:

- **bodies are refused at their headers, unread**: another method gets 405, a
  ``Content-Length`` over ``web_max_body`` gets 413, and the connection closes at once
  (reading stops; the kernel discards the rest). A chunked body is kept in memory up to the
  same cap, then 413.
- **a request has a deadline**: ``web_header_timeout`` seconds from the connection (or
  from the previous response) to the end of the request, however slowly its bytes come;
  then 408 (or a quiet close if nothing came) and the connection closes.
- **every connection has a seat** in the server's ``Admission`` from accept to close. One
  over the limits is still answered, once and quickly (``refused_deadline``), then closed:
  the page loads, its WebSocket is refused with close code 1013 and retries later.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request

from chatroom.admission import Seat
from chatroom.logs import RateLimitedLog
from chatroom.session import describe_peer

METHODS = (b"GET", b"HEAD")
"""What the page sends; the site answers nothing else."""

REFUSED_DEADLINE = 0.5
"""Seconds a connection over the limits has to send its one request: enough for a browser,
which sends it as soon as it is connected, and short, since while descriptors are short
(see ``Admission``) new connections wait in the kernel's queue behind the refused ones."""

_CLOSED = Failure(ConnectionDone())

_HEADERS = (
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
    b"Connection: close\r\n"
)


class ChatRequest(Request):
    """A request whose body, if any, stays in memory and within the channel's cap."""

    def gotLength(self, length: int | None) -> None:
        self.content = BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        channel = self.channel
        if not isinstance(channel, ChatChannel) or channel.refused:
            return
        content = self.content
        assert isinstance(content, BytesIO)
        if content.tell() + len(data) > channel.max_body:
            channel.refuse_body(413)
            return
        content.write(data)


class ChatChannel(HTTPChannel):
    """One HTTP connection to the web port (see the module's docstring)."""

    seat: Seat | None = None
    max_body = 1024
    header_timeout = 10.0
    warnings: RateLimitedLog | None = None
    refused = False  # answered at the door: nothing more is read or handled

    def __init__(self) -> None:
        super().__init__()
        self._deadline: IDelayedCall | None = None
        self._received = False  # bytes of a request that is not complete yet

    def connectionMade(self) -> None:
        super().connectionMade()
        timeout = self.header_timeout
        if self.seat is not None and not self.seat.admitted:
            timeout = min(timeout, REFUSED_DEADLINE)
        self._arm(timeout)

    def dataReceived(self, data: bytes) -> None:
        if self.refused:
            return
        self._received = True
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        # ``_command`` is the request line's method, which twisted.web keeps until the
        # request is handed on; the body is decided on before a byte of it is read.
        if self._command not in METHODS:
            self.refuse_body(405)
            return
        if self.length is not None and self.length > self.max_body:
            self.refuse_body(413)
            return
        super().allHeadersReceived()

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        persistent: bool = super().checkPersistence(request, version)
        if self.seat is not None and not self.seat.admitted:
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])
            return False  # over the limits: one answer, then closed
        return persistent

    def rawDataReceived(self, data: bytes) -> None:
        if not self.refused:
            super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        if self.refused:
            return
        self._disarm()
        self._received = False
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        if self.persistent and not self.refused:
            self._arm(self.header_timeout)  # the next request's deadline
        super().requestDone(request)

    def hand_over(self) -> None:
        """The connection becomes a WebSocket: no HTTP timer applies to it any more, and its
        seat goes (the WebSocket's factory gives it one in the same turn)."""
        self._disarm()
        self.setTimeout(None)
        seat, self.seat = self.seat, None
        if seat is not None:
            seat.leave()

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        self._disarm()
        seat, self.seat = self.seat, None
        if seat is not None:
            seat.leave()
        super().connectionLost(reason)

    # -- refusing ------------------------------------------------------------------------

    def refuse_body(self, code: int) -> None:
        """Answer ``code`` (405 or 413) before reading the body, and close."""
        if code == 405:
            self._answer(405, b"Method Not Allowed", b"method not allowed\n",
                         b"Allow: GET, HEAD\r\n")
        else:
            self._answer(413, b"Content Too Large", b"request body too large\n")
        self._warn("refused HTTP request from {peer}: {code} (method {method})", code=code,
                   method=self._command.decode("latin-1", "replace"))

    def _answer(self, code: int, phrase: bytes, body: bytes, headers: bytes = b"") -> None:
        self.refused = True
        self._disarm()
        transport = self.transport
        if transport is None:
            return
        transport.write(
            b"HTTP/1.1 %d %s\r\n%s%sContent-Length: %d\r\n\r\n%s"
            % (code, phrase, _HEADERS, headers, len(body), body)
        )
        self.loseConnection()  # stops reading: what else was sent is never read

    def _arm(self, seconds: float) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.callLater(seconds, lambda: self._too_slow(seconds))

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _too_slow(self, seconds: float) -> None:
        self._deadline = None
        self._warn("closing HTTP connection from {peer}: no whole request in {seconds:g} s",
                   seconds=seconds)
        if self._received:
            self._answer(408, b"Request Timeout", b"request timeout\n")
        else:
            self.refused = True
            self.loseConnection()

    def _warn(self, format: str, **fields: Any) -> None:
        if self.warnings is not None:
            peer = self.transport.getPeer() if self.transport is not None else None
            self.warnings.warn(format, peer=describe_peer(peer), **fields)
