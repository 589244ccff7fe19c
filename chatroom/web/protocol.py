"""One browser over a WebSocket: JSON frames in, room calls out; room events in, frames out.

The same room rules as the line front end, on another wire: the nickname rules (through
``Room.join``), the line limit (on the text of a message), flood control (a token bucket per
connection: over the allowance the connection is not read until a token is due, and no
message is dropped), the slow-reader cap (an ``Outbox`` between the frames and the socket),
the same sanitising, the same commands and the same goodbye on shutdown.

The input pipeline is autobahn's frame parser -> ``onMessage*`` (binary and oversized
messages are counted, never buffered) -> an inbox -> flood control -> ``messages.parse`` ->
a nickname, a command or chat. Output is whole WebSocket frames rendered by ``messages``;
broadcasts come from the factory's ``Fanout`` (with echo), one encoding per event.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, cast

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet import error as net_error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.admission import SERVER_FULL, TOO_MANY_FROM_HOST
from chatroom.domain.chat import Member
from chatroom.domain.directory import RoomState
from chatroom.history.store import Record
from chatroom.limits import Limits
from chatroom.lines.fanout import Fanout
from chatroom.lines.outbox import Outbox
from chatroom.logs import RateLimitedLog
from chatroom.registry import SHUTTING_DOWN, ConnectionRegistry
from chatroom.session import Services, Session, describe_loss, describe_peer
from chatroom.stream import GatedInput
from chatroom.web import messages, origins
from chatroom.web.control import PONG, Ping, Pong, pong_frame

CLOSE_NORMAL = 1000
"""/quit: the page does not reconnect."""
CLOSE_GOING_AWAY = 1001
"""The server is shutting down: the page reconnects with backoff."""
CLOSE_POLICY = 1008
"""Nickname or idle timeout, a server ban: the page waits for the person before
reconnecting."""
CLOSE_TRY_LATER = 1013
"""Server full, too many connections from one address: the page retries with backoff."""
PASSING_REFUSALS = frozenset({SERVER_FULL, TOO_MANY_FROM_HOST, SHUTTING_DOWN})
"""Refusals at the door that pass by themselves (the server fills up, empties, restarts):
close code 1013, and the page retries. Any other (a server ban) closes with 1008, so that
the page stops and shows why instead of knocking again and again."""

_OPEN = WebSocketProtocol.STATE_OPEN
_CONNECTING = WebSocketProtocol.STATE_CONNECTING
_CLOSED = Failure(net_error.ConnectionDone())


class _Transport(Protocol):
    """What this protocol uses of the TCP or TLS transport it took over from twisted.web."""

    disconnecting: bool

    def write(self, data: bytes) -> None: ...
    def loseConnection(self) -> None: ...
    def abortConnection(self) -> None: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def registerProducer(self, producer: object, streaming: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """A message that was not kept: binary, or larger than the frame limit."""

    why: str



def max_frame(limits: Limits) -> int:
    """Largest message kept for parsing: room for a text of ``max_line`` bytes with every
    byte JSON-escaped (``\\u0000`` is six), plus the object around it."""
    return 6 * limits.max_line + 256


class _QuietLog:
    """autobahn's per-connection log, tamed: a client can provoke its warnings at will (bad
    handshakes, protocol errors), so they go through the rate-limited log; its info lines
    become debug, its debug and trace lines (several per frame) go nowhere."""

    __slots__ = ("_logger", "_warnings")

    def __init__(self, logger: Logger, warnings: RateLimitedLog) -> None:
        self._logger = logger
        self._warnings = warnings

    def trace(self, format: str = "", **fields: Any) -> None:
        pass

    def debug(self, format: str = "", **fields: Any) -> None:
        pass

    def info(self, format: str = "", **fields: Any) -> None:
        self._logger.debug(format, **fields)

    def warn(self, format: str = "", **fields: Any) -> None:
        self._warnings.warn(format, **fields)

    warning = warn

    def error(self, format: str = "", **fields: Any) -> None:
        self._logger.error(format, **fields)

    def critical(self, format: str = "", **fields: Any) -> None:
        self._logger.critical(format, **fields)

    def failure(
        self, format: str | None = None, failure: Failure | None = None, **fields: Any
    ) -> None:
        self._logger.failure(format or "autobahn: unexpected failure", failure, **fields)


class _FrameWriter:
    """What the ``Outbox`` writes to: whole frames, into autobahn's transport."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebChatProtocol) -> None:
        self._protocol = protocol

    def write(self, data: bytes) -> None:
        self._protocol.write_frames(data)

    def writeSequence(self, data: list[bytes]) -> None:
        self._protocol.write_frames(b"".join(data))
        self._protocol.flushed()


# (autobahn's own bases disagree on two attributes; mypy says so only once a class has
# another base besides them)
class WebChatProtocol(GatedInput, WebSocketServerProtocol):  # type: ignore[misc]
    """A person in a browser: negotiates a nickname, then chats, over JSON messages."""

    _log = Logger()
    echoes_own_events = True  # the page gets its own events: no confirmations needed

    def __init__(self, factory: WebChatFactory, address: IAddress | None) -> None:
        super().__init__()
        self.factory = factory
        self.log = _QuietLog(self._log, factory.warnings)
        self.peer_name = describe_peer(address)
        self.host: str | None = getattr(address, "host", None)
        self.outbox: Outbox | None = None
        self.refusal: str | None = None
        self._clock = factory.clock
        self._max_frame = max_frame(factory.limits)
        self.session = Session(factory.services, self, factory.fanout, self, self.peer_name,
                               " (web)", host=self.host)
        self._inbox: deque[bytes | _Unreadable | Ping | Pong] = deque()
        self._parts: list[bytes] = []
        self._size = 0
        self._binary = False
        self._lost = False
        self._close_pending: tuple[int, str] | None = None
        self._tcp: _Transport | None = None

    @property
    def member(self) -> Member | None:
        return self.session.member

    def apply_limits(self, limits: Limits) -> None:
        """The server's limits changed (a reload): this connection's caps follow."""
        self._max_frame = max_frame(limits)
        if self.outbox is not None:
            self.outbox.set_cap(limits.max_out)

    # -- connection life ------------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        tcp = cast(_Transport, self.transport)
        self._tcp = tcp
        # The outbox is what the socket pauses when its buffer is full (``ChatSocketResource``
        # has unregistered the HTTP channel that was the producer until the upgrade).
        self.outbox = Outbox(
            _FrameWriter(self), self.factory.limits.max_out, self.session,
            self._clock,
        )
        tcp.registerProducer(self.outbox, True)
        self._log.info("web connection from {peer}", peer=self.peer_name)
        self.session.start()

    def onConnect(self, request: ConnectionRequest) -> None:
        """The handshake: refuse pages from other sites (see ``origins``)."""
        origin = request.origin or None
        host = request.headers.get("host")
        if not origins.allowed(origin, host, self.factory.allowed_origins):
            self.factory.warnings.warn(
                "refused web handshake from {peer}: origin {origin!r} not allowed for {host!r}",
                peer=self.peer_name, origin=origin, host=host,
            )
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "origin not allowed")
        return None

    def onOpen(self) -> None:
        now = self._clock.seconds()
        if self.refusal is not None:
            self._reply(messages.error(now, self.refusal, messages.ABOUT_SERVER))
            passing = self.refusal in PASSING_REFUSALS
            self._close(CLOSE_TRY_LATER if passing else CLOSE_POLICY, self.refusal)
            return
        self._reply(messages.prompt(now))

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        try:
            super().connectionLost(reason)
        finally:
            self._gone(reason)

    def _gone(self, reason: Failure) -> None:
        self._lost = True
        self._inbox.clear()
        self.session.lost(describe_loss(reason))
        if self.outbox is not None:
            self.outbox.stopProducing()
        self.factory.forget(self)

    def shutdown(self) -> None:
        """The server is stopping: say so, then close."""
        self.session.shutdown()
        if self.state == _OPEN:
            self._reply(messages.notice(self._clock.seconds(), "server shutting down"))
            self._close(CLOSE_GOING_AWAY, "server shutting down")
        elif self._tcp is not None and not self._lost:
            self._tcp.loseConnection()  # still in the handshake: nothing to say it with

    def abort(self) -> None:
        if self._tcp is not None and not self._lost:
            self._tcp.abortConnection()

    def still_open(self) -> bool:
        tcp = self._tcp
        return not (self._lost or (tcp is not None and tcp.disconnecting))

    # -- input: whole messages, never more than the frame limit kept --------------------

    def dataReceived(self, data: bytes) -> None:
        # autobahn's version formats a debug line per packet first; this is all it then does
        self._dataReceived(data)

    def onPing(self, payload: bytes) -> None:
        self._inbox.append(Ping(payload))  # flood control, then a pong via the outbox
        self._drain()

    def onPong(self, payload: bytes) -> None:
        self._inbox.append(PONG)  # costs a token like any frame
        self._drain()

    def onMessageBegin(self, isBinary: bool) -> None:
        self._binary = isBinary
        self._parts = []
        self._size = 0

    def onMessageFrameBegin(self, length: int) -> None:
        pass  # sizes are counted as data arrives; autobahn's own limit is off

    def onMessageFrameData(self, payload: bytes) -> None:
        self._size += len(payload)
        if self._binary or self._size > self._max_frame:
            self._parts = []  # keep counting, stop keeping
        else:
            self._parts.append(payload)

    def onMessageFrameEnd(self) -> None:
        pass

    def onMessageEnd(self) -> None:
        item: bytes | _Unreadable
        if self._binary:
            item = _Unreadable("binary frames are not accepted: send JSON text")
        elif self._size > self._max_frame:
            item = _Unreadable(f"message too large ({self._max_frame} bytes max)")
        else:
            item = b"".join(self._parts)
        self._parts = []
        self._inbox.append(item)
        self._drain()

    def _next_item(self) -> object | None:
        return self._inbox.popleft() if self._inbox else None

    def _reading_stopped(self) -> bool:
        return self._lost

    def pause_reading(self) -> None:
        if self._tcp is not None:
            self._tcp.pauseProducing()

    def resume_reading(self) -> None:
        if self._tcp is not None:
            self._tcp.resumeProducing()
        self._drain()

    def _handle_item(self, item: object) -> None:
        if isinstance(item, Ping):
            self.send(pong_frame(item.payload))
            return
        if isinstance(item, Pong):
            return
        if isinstance(item, _Unreadable):
            self.session.refuse(item.why, messages.ABOUT_MESSAGE)
            return
        try:
            message = messages.parse(cast(bytes, item), self.factory.limits.max_line)
        except messages.BadMessage as e:
            self.session.refuse(str(e), e.about)
            return
        if isinstance(message, messages.Password):
            self.session.password(message.password)
        elif isinstance(message, messages.Nick):
            self.session.nick(message.nick)
        elif self.session.member is None and not message.text.startswith("/"):
            self.session.refuse(
                'choose a nickname first: send {"type": "nick", "nick": ...}', messages.ABOUT_STATE
            )
            self.show_prompt()
        else:
            self.session.text(message.text, message.typed)

    # -- what the session shows (session.Port, commands.Replies) ------------------------

    def show_prompt(self) -> None:
        self._reply(messages.prompt(self._clock.seconds()))

    def show_password_prompt(self, nick: str) -> None:
        self._reply(messages.password_prompt(self._clock.seconds(), nick))

    def password_given(self) -> None:
        pass

    def show_error(self, why: str, about: str) -> None:
        self._reply(messages.error(self._clock.seconds(), why, about))

    def show_help(self) -> None:
        self._reply(messages.help_notices(self._clock.seconds()))

    def show_welcome(self, member: Member, room: RoomState, replay: list[Record]) -> None:
        now = self._clock.seconds()
        names = self.factory.chat.members(room.name)
        self._reply(
            (messages.history(now, replay, "join", room=room.name) if replay else b"")
            + messages.welcome(now, member.nick, len(names), self.factory.limits.max_line,
                               room.name)
            + messages.members(now, names, room.name, self._roles(room))
            + (messages.motd(now, motd) if (motd := self.session.services.motd) else b"")
        )

    def _roles(self, room: RoomState) -> messages.Roles:
        """The room's operators (server operators in it too) and voiced members."""
        opers = self.factory.chat.directory.server_operators
        ops = [nick for member, nick in room.members.items()
               if member in room.operators or member in opers]
        return ops, [nick for member, nick in room.members.items() if member in room.voiced]

    def cmd_refused(self, why: str, about: str) -> None:
        self.session.refuse(why, about)

    def cmd_renamed(self, old: str, new: str) -> None:
        # The page learns it from the ``renamed`` event, which it gets like everyone.
        self._log.info("{old} renamed to {new} ({peer})", old=old, new=new, peer=self.peer_name)

    def cmd_members(self, nicks: list[str], room: str | None) -> None:
        member = self.session.member
        where = room or (member.current if member is not None else None) or ""
        self._reply(messages.members(self._clock.seconds(), nicks, where))

    def cmd_records(self, records: list[Record], context: str, query: str | None) -> None:
        now = self._clock.seconds()
        member = self.session.member
        room = (member.current if member is not None else None) or ""
        self._reply(messages.history(now, records, context, query, room=room))

    def cmd_notice(self, text: str) -> None:
        self._reply(messages.notice(self._clock.seconds(), text))

    def cmd_help(self) -> None:
        self.show_help()

    def cmd_quit(self, member: Member) -> None:
        self.session.quit(member)

    def cmd_entered(self, room: RoomState, entered: bool, replay: list[Record]) -> None:
        now = self._clock.seconds()
        names = self.factory.chat.members(room.name)
        self._reply(
            (messages.history(now, replay, "join", room=room.name) if replay else b"")
            + messages.room(now, room.name, room.topic, names, entered, self._roles(room))
        )

    def cmd_parted(self, room: str, current: str | None) -> None:
        self._reply(messages.parted(self._clock.seconds(), room, current))

    def cmd_rooms(self, rooms: list[tuple[str, int, str]]) -> None:
        self._reply(messages.rooms(self._clock.seconds(), rooms))

    def cmd_topic(self, room: RoomState) -> None:
        self._reply(messages.topic(self._clock.seconds(), room.name, room.topic, room.topic_by))

    def wait_for(self, result: Deferred[Any]) -> None:
        self.session.wait_for(result)

    def close_normally(self, goodbye: str) -> None:
        self._reply(messages.notice(self._clock.seconds(), goodbye))
        self._close(CLOSE_NORMAL, "goodbye")

    def close_with_error(self, why: str, reason: str) -> None:
        self._reply(messages.error(self._clock.seconds(), why, messages.ABOUT_SERVER))
        if self.state == _OPEN:
            self._close(CLOSE_POLICY, reason)
        else:
            self.abort()

    # -- output ---------------------------------------------------------------------

    def _reply(self, data: bytes) -> None:
        """Frames for this client only, after the room's events already on their way to it."""
        member = self.session.member
        if member is not None and member.present:
            self.factory.fanout.reply(member.id, self, data)
        else:
            self.send(data)

    def send(self, data: bytes) -> None:
        """Frames for this client, now; the fan-out calls this."""
        if self.outbox is not None and self.state == _OPEN and not self._closing:
            self.outbox.send(data)

    @property
    def _closing(self) -> bool:
        return self._close_pending is not None or self._close_sent

    _close_sent = False

    def write_frames(self, data: bytes) -> None:
        """The outbox's way out: frames go on the wire only while the WebSocket is open.

        Straight to the transport: autobahn's ``sendData`` formats a debug line per call,
        which on the broadcast path costs more than the write. Its own queue is used only
        for chopped or synchronous sends, which this protocol never makes."""
        if self.state == _OPEN:
            if self.send_queue:
                self.sendData(data)
            else:
                assert self._tcp is not None
                self._tcp.write(data)

    def flushed(self) -> None:
        """The outbox wrote its backlog: a close that waited for it can go now."""
        pending = self._close_pending
        if pending is not None and self.outbox is not None and not self.outbox.queued:
            self._close_pending = None
            self._send_close(*pending)

    def _close(self, code: int, reason: str) -> None:
        """Close after everything already queued for this client has been written."""
        if self.outbox is not None and self.outbox.queued:
            self._close_pending = (code, reason)
            return
        self._send_close(code, reason)

    def _send_close(self, code: int, reason: str) -> None:
        self._close_sent = True
        if self.state == _OPEN:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8")[:123], isReply=False)
        elif self._tcp is not None and not self._lost:
            self._tcp.loseConnection()


class WebChatFactory(WebSocketServerFactory):
    """The web front end's registry of connections, and the room's door for browsers.

    Like the line front end's ``ChatFactory``: it admits or refuses each connection (by the
    server's shared ``Admission``), keeps every live one so a shutdown reaches them all, and
    subscribes the room's events to its ``Fanout``.
    """

    _log = Logger()
    noisy = False

    def __init__(
        self,
        services: Services,
        allowed_origins: list[str] | None = None,
        ping_interval: float = 30.0,
        open_timeout: float = 10.0,
        close_timeout: float = 1.0,
    ) -> None:
        super().__init__(server="chatroom", reactor=services.clock)
        self.setProtocolOptions(
            webStatus=False,  # a plain GET of /ws gets 426 from the resource, not a status page
            utf8validateIncoming=False,  # bad UTF-8 gets an error message, not a closed socket
            failByDrop=False,  # protocol errors close with a close frame that says why
            maxMessagePayloadSize=0,  # the protocol counts and discards oversize messages
            openHandshakeTimeout=open_timeout,
            closeHandshakeTimeout=close_timeout,
            autoPingInterval=ping_interval,  # notices browsers that vanished (phone asleep)
            autoPingTimeout=ping_interval,
            allowedOrigins=["*"],  # checked in onConnect, against Host or --web-origin
            allowNullOrigin=True,
        )
        self.services = services
        self.chat = services.chat
        self.clock = services.clock
        self.allowed_origins = allowed_origins
        self.warnings: RateLimitedLog = services.warnings
        # A page has no local echo: its own lines come back to it, in room order.
        self.fanout = Fanout(services.clock, messages.render, echo=True)
        if services.entry is not None:
            services.entry.watch(lambda: self.fanout.busy)
        self.registry: ConnectionRegistry[WebChatProtocol] = ConnectionRegistry(
            services.limits, services.clock, kind="web ", admission=services.admission
        )
        self._unsubscribe = services.chat.hub.subscribe(self.fanout.deliver)

    @property
    def limits(self) -> Limits:
        """The server's, as they are now (a reload changes them)."""
        return self.services.limits

    @property
    def connections(self) -> set[WebChatProtocol]:
        return self.registry.connections

    @property
    def stopping(self) -> bool:
        return self.registry.stopping

    def buildProtocol(self, addr: IAddress | None) -> WebChatProtocol:
        protocol = WebChatProtocol(self, addr)
        protocol.factory = self
        seat = self.registry.seat(protocol.host)
        why = seat.refusal
        if why is not None:
            self.warnings.warn(
                "refused web connection from {peer}: {why}", peer=protocol.peer_name, why=why
            )
            protocol.refusal = why
        self.registry.add(protocol, seat)
        return protocol

    def forget(self, protocol: WebChatProtocol) -> None:
        """``protocol``'s connection is gone."""
        self.registry.forget(protocol)

    def shutdown(self) -> Deferred[object]:
        """Tell every browser the server is stopping, close them all, and fire when they are
        gone (cutting those still there after ``shutdown_grace``)."""
        self._unsubscribe()
        self.fanout.flush()  # what was said this turn still goes out, before the goodbye
        self.fanout.close()  # nobody needs to hear that everybody else left
        return self.registry.close_all()

