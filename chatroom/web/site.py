"""The web front end's HTTP side: the page at ``/``, its assets, and the WebSocket at ``/ws``.

Everything the page needs ships in this package (``static/``) and is read once at start, so
the server never touches the file system per request and serves nothing else. Every response
carries a strict Content-Security-Policy: scripts and styles only from this server, no inline
script, no framing; the page puts user text in the DOM with ``textContent`` only. Each
connection is a ``channel.ChatChannel``: counted by the server's ``Admission`` from accept
to close, with a deadline for each request, and no request body read that the page would
not send.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from autobahn.twisted.resource import WebSocketResource
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from chatroom.limits import Limits
from chatroom.logs import RateLimitedLog
from chatroom.session import Services
from chatroom.web.channel import ChatChannel, ChatRequest
from chatroom.web.protocol import WebChatFactory

WS_PATH = b"ws"

_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")

_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def content_security_policy(host: str | None) -> bytes:
    """The policy for every response. ``connect-src`` names the WebSocket URLs as well as
    ``'self'``, for browsers whose ``'self'`` does not cover ``ws:``; a Host header that is
    not a plain host[:port] is left out rather than echoed."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.match(host) else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ).encode("ascii")


def _security_headers(request: Request) -> None:
    host = request.getHeader(b"host")
    headers = request.responseHeaders
    headers.setRawHeaders(b"content-security-policy", [content_security_policy(
        host.decode("latin-1") if host is not None else None
    )])
    headers.setRawHeaders(b"x-content-type-options", [b"nosniff"])
    headers.setRawHeaders(b"referrer-policy", [b"no-referrer"])
    headers.setRawHeaders(b"x-frame-options", [b"DENY"])
    headers.setRawHeaders(b"cross-origin-opener-policy", [b"same-origin"])


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: bytes
    etag: bytes


def load_assets() -> dict[str, Asset]:
    """The page's files, from the installed package."""
    folder = resources.files("chatroom.web").joinpath("static")
    assets = {}
    for name, content_type in _ASSETS.items():
        body = folder.joinpath(name).read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode("ascii") + b'"'
        assets[name] = Asset(body, content_type.encode("ascii"), etag)
    return assets


class AssetResource(Resource):
    """One file of the page, from memory; revalidated by ETag so a new server's page loads."""

    isLeaf = True

    def __init__(self, asset: Asset) -> None:
        super().__init__()
        self.asset = asset

    def render(self, request: Request) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"allow", b"GET, HEAD")
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"method not allowed\n"
        result: bytes = super().render(request)
        return result

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self.asset.content_type)
        request.setHeader(b"cache-control", b"no-cache")
        if request.setETag(self.asset.etag):  # the browser's copy is current: 304
            return b""
        return self.asset.body

    def render_HEAD(self, request: Request) -> bytes:
        self.render_GET(request)
        request.setHeader(b"content-length", str(len(self.asset.body)).encode("ascii"))
        return b""


class NotFound(Resource):
    """A plain-text 404 for every path the page does not use."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"" if request.method == b"HEAD" else b"not found\n"


class Root(Resource):
    """``/`` and ``/index.html`` are the page; anything unknown is a 404."""

    def getChild(self, path: bytes, request: Request) -> Resource:
        return NotFound()


class ChatSocketResource(WebSocketResource):
    """``/ws``: hands the connection to a ``WebChatProtocol``; a plain GET gets a 426."""

    def render(self, request: Request) -> Any:
        upgrade = (request.getHeader(b"upgrade") or b"").lower()
        if b"websocket" not in upgrade:
            request.setResponseCode(426, b"Upgrade Required")
            request.setHeader(b"upgrade", b"websocket")
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this is the chat's WebSocket; open / in a browser\n"
        channel = request.channel
        # The HTTP channel will never see this connection again: its timers can never cut
        # the WebSocket, and its seat in the count goes to the WebSocket (the factory gives
        # it one in this same turn). And the WebSocket's outbox becomes the transport's
        # producer, not the channel.
        if isinstance(channel, ChatChannel):
            channel.hand_over()
        else:
            cast(Any, channel).setTimeout(None)
        transport: Any = request.transport
        transport.unregisterProducer()
        return super().render(request)


class WebSite(Site):
    """The page and the WebSocket, with security headers on every response."""

    _log = Logger()
    noisy = False
    protocol = ChatChannel  # type: ignore[assignment]
    requestFactory = ChatRequest

    def __init__(self, root: IResource, chat: WebChatFactory, clock: IReactorTime) -> None:
        super().__init__(root, reactor=clock)
        self.chat = chat
        self.admission = chat.registry.admission  # the server's, shared by every front end
        self.warnings = RateLimitedLog(self._log, clock)

    @property
    def limits(self) -> Limits:
        """The server's, as they are now (a reload changes them)."""
        return self.chat.limits

    def buildProtocol(self, addr: IAddress | None) -> ChatChannel:  # type: ignore[override]
        """Every connection takes a seat in the server's count; one over the limits is
        answered once, then closed (see ``channel``)."""
        seat = self.admission.enter(getattr(addr, "host", None))
        channel = cast(ChatChannel, super().buildProtocol(addr))
        channel.seat = seat
        channel.max_body = self.limits.web_max_body
        channel.header_timeout = self.limits.web_header_timeout
        channel.warnings = self.warnings
        if seat.refusal is not None:
            self.warnings.warn("refused web connection from {peer}: {why}",
                               peer=getattr(addr, "host", "unknown"), why=seat.refusal)
        return channel

    def getResourceFor(self, request: Request) -> IResource:
        _security_headers(request)
        resource: IResource = super().getResourceFor(request)
        return resource

    def shutdown(self) -> Deferred[object]:
        """Every WebSocket gets ``server shutting down`` and a close; fires when all are gone
        (at most ``limits.shutdown_grace`` seconds: then the rest are cut)."""
        return self.chat.shutdown()


def build_web_site(
    services: Services,
    allowed_origins: list[str] | None = None,
    *,
    ping_interval: float = 30.0,
    open_timeout: float = 10.0,
    close_timeout: float = 1.0,
) -> WebSite:
    """The web front end of the chat: listen on it with any stream server endpoint.

    ``allowed_origins`` is ``--web-origin`` (``origins.parse_origins``); ``None`` accepts only
    pages from the same host and port as the request. The timeouts
    (seconds, 0 for none) are autobahn's: pings that notice a browser that vanished, the
    opening handshake, and the wait for the browser's reply to our close frame.
    """
    factory = WebChatFactory(
        services, allowed_origins,
        ping_interval=ping_interval, open_timeout=open_timeout, close_timeout=close_timeout,
    )
    assets = load_assets()
    root = Root()
    index = AssetResource(assets["index.html"])
    root.putChild(b"", index)
    root.putChild(b"index.html", index)
    for name in ("app.js", "app.css", "favicon.svg"):
        root.putChild(name.encode("ascii"), AssetResource(assets[name]))
    root.putChild(WS_PATH, ChatSocketResource(factory))
    return WebSite(root, factory, services.clock)
