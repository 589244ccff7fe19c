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
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.admission import Admission
from chatroom.commands import Commands
from chatroom.domain.errors import Abandoned, ChatError
from chatroom.domain.room import Member, Room
from chatroom.gate import InputGate
from chatroom.history.recent import RecentRecords
from chatroom.history.store import IHistory, Record
from chatroom.limits import Limits
from chatroom.lines.fanout import Fanout
from chatroom.lines.outbox import Outbox
from chatroom.logs import RateLimitedLog
from chatroom.registry import ConnectionRegistry
from chatroom.web import messages, origins
from chatroom.web.control import PONG, Ping, Pong, pong_frame

CLOSE_NORMAL = 1000
"""/quit: the page does not reconnect."""
CLOSE_GOING_AWAY = 1001
"""The server is shutting down: the page reconnects with backoff."""
CLOSE_POLICY = 1008
"""Nickname or idle timeout: the page waits for the person before reconnecting."""
CLOSE_TRY_LATER = 1013
"""Server full, too many connections from one address: the page retries with backoff."""

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


def describe_peer(address: IAddress | None) -> str:
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None:
        return type(address).__name__ if address is not None else "unknown"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


class WebChatProtocol(WebSocketServerProtocol):
    """A person in a browser: negotiates a nickname, then chats, over JSON messages."""

    _log = Logger()

    def __init__(self, factory: WebChatFactory, address: IAddress | None) -> None:
        super().__init__()
        self.factory = factory
        self.log = _QuietLog(self._log, factory.warnings)
        self.peer_name = describe_peer(address)
        self.host: str | None = getattr(address, "host", None)
        self.member: Member | None = None
        self.outbox: Outbox | None = None
        self.refusal: str | None = None
        limits = factory.limits
        self._clock = factory.clock
        self._max_frame = max_frame(limits)
        self._gate = InputGate(
            limits.rate, limits.burst, factory.clock,
            self._pause_reading, self._resume_reading, self._flooding,
        )
        self._inbox: deque[bytes | _Unreadable | Ping | Pong] = deque()
        self._parts: list[bytes] = []
        self._size = 0
        self._binary = False
        self._draining = False
        self._lost = False
        self._closing = False
        self._close_pending: tuple[int, str] | None = None
        self._leave_reason: str | None = None
        self._timer: IDelayedCall | None = None
        self._last_active = 0.0
        self._tcp: _Transport | None = None

    # -- connection life ------------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        tcp = cast(_Transport, self.transport)
        self._tcp = tcp
        # The outbox is what the socket pauses when its buffer is full (``ChatSocketResource``
        # has unregistered the HTTP channel that was the producer until the upgrade).
        self.outbox = Outbox(
            _FrameWriter(self), self.factory.limits.max_out, self._overflowed, self._clock
        )
        tcp.registerProducer(self.outbox, True)
        self._log.info("web connection from {peer}", peer=self.peer_name)
        timeout = self.factory.limits.nick_timeout
        if timeout > 0:
            self._timer = self._clock.callLater(timeout, self._nick_timed_out)

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
            self._close(CLOSE_TRY_LATER, self.refusal)
            return
        self._reply(messages.prompt(now))

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        try:
            super().connectionLost(reason)
        finally:
            self._gone(reason)

    def _gone(self, reason: Failure) -> None:
        self._lost = True
        self._gate.close()
        self._cancel_timers()
        self._inbox.clear()
        why = self._leave_reason or _describe_loss(reason)
        if self.member is not None and self.member.present:
            self._leave(why)
        elif self.member is None:
            self._log.info(
                "{peer} closed before joining ({reason})", peer=self.peer_name, reason=why
            )
        if self.outbox is not None:
            self.outbox.stopProducing()
        self.factory.forget(self)

    def shutdown(self) -> None:
        """The server is stopping: say so, then close."""
        self._leave_reason = "server shutdown"
        if self.state == _OPEN:
            self._reply(messages.notice(self._clock.seconds(), "server shutting down"))
            self._close(CLOSE_GOING_AWAY, "server shutting down")
        elif self._tcp is not None and not self._lost:
            self._tcp.loseConnection()  # still in the handshake: nothing to say it with

    def abort(self) -> None:
        if self._tcp is not None and not self._lost:
            self._tcp.abortConnection()

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

    def _drain(self) -> None:
        """Handle messages until there are none, or flood control says wait."""
        if self._draining:
            return
        self._draining = True
        try:
            inbox = self._inbox
            gate = self._gate
            while inbox and not (gate.held or self._lost or self._closing):
                if not gate.admit():
                    break
                item = inbox.popleft()
                try:
                    self._handle(item)
                except Exception:
                    self._bug(Failure())
                    break
        finally:
            self._draining = False

    def _pause_reading(self) -> None:
        if self._tcp is not None:
            self._tcp.pauseProducing()

    def _resume_reading(self) -> None:
        if self._tcp is not None:
            self._tcp.resumeProducing()
        self._drain()

    def _flooding(self, rate: float) -> None:
        self.factory.warnings.warn(
            "slowing {peer}: over {rate} messages/s", peer=self.peer_name, rate=rate
        )

    def _handle(self, item: bytes | _Unreadable | Ping | Pong) -> None:
        if isinstance(item, Ping):
            self.send(pong_frame(item.payload))
            return
        if isinstance(item, Pong):
            return
        if isinstance(item, _Unreadable):
            self._refuse(item.why, messages.ABOUT_MESSAGE)
            return
        try:
            message = messages.parse(item, self.factory.limits.max_line)
        except messages.BadMessage as e:
            self._refuse(str(e), e.about)
            return
        member = self.member
        if member is not None and self.factory.limits.idle_timeout > 0:
            self._last_active = self._clock.seconds()
        if isinstance(message, messages.Nick):
            if member is None:
                self._join(message.nick)
            else:
                self._command(member, "/nick " + message.nick.strip())
            return
        text = message.text
        if member is None:
            self._before_joining(text)
            return
        if not text or text.isspace():
            return
        if text[0] != "/":
            self.factory.room.say(member, text)
        elif text[:2] == "//":
            self.factory.room.say(member, text[1:])
        else:
            self._command(member, text)

    # -- joining ------------------------------------------------------------------

    def _before_joining(self, text: str) -> None:
        now = self._clock.seconds()
        name = text[1:].split(" ", 1)[0].lower() if text.startswith("/") else None
        if name == "quit":
            self._say_goodbye(None)
        elif name == "help":
            self._reply(messages.help_notices(now) + messages.prompt(now))
        else:
            self._refuse(
                'choose a nickname first: send {"type": "nick", "nick": ...}', messages.ABOUT_STATE
            )
            self._reply(messages.prompt(now))

    def _join(self, nick: str) -> None:
        joining = self.factory.room.join(nick, still_wanted=self._still_here)
        self._wait_for(joining.addCallbacks(self._joined, self._nickname_refused))

    def _still_here(self) -> bool:
        tcp = self._tcp
        return not (self._lost or self._closing or (tcp is not None and tcp.disconnecting))

    def _joined(self, member: Member) -> None:
        if not self._still_here():
            self.factory.room.leave(member, "closed while joining")
            return
        self.member = member
        self._cancel_timers()
        self.factory.fanout.add(member.id, self)
        now = self._clock.seconds()
        replay = b""
        recent = self.factory.recent
        limits = self.factory.limits
        if recent is not None and limits.history_replay > 0:
            # Read in the same turn as joining the fan-out: every line said before the join
            # is in the replay, every line after it comes live; none twice, none missed.
            records = recent.last(limits.history_replay, joining=member.id)
            if records:
                replay = messages.history(now, records, "join")
        names = self.factory.room.members()
        self._reply(
            replay
            + messages.welcome(now, member.nick, len(names), limits.max_line)
            + messages.members(now, names)
        )
        self._log.info("{nick} joined from {peer} (web)", nick=member.nick, peer=self.peer_name)
        idle = self.factory.limits.idle_timeout
        if idle > 0:
            self._last_active = now
            self._timer = self._clock.callLater(idle, self._check_idle)

    def _nickname_refused(self, failure: Failure) -> None:
        if failure.check(Abandoned):
            return  # gone while the claim was in flight: nobody to tell
        failure.trap(ChatError)
        self._refuse(str(failure.value), messages.ABOUT_NICK)
        self._reply(messages.prompt(self._clock.seconds()))

    def _wait_for(self, result: Deferred[Any]) -> None:
        """Read nothing more from this client until ``result`` has fired."""
        self._gate.wait_for(result, self._bug)

    # -- commands: the line protocol's, with the same words -----------------------------

    def _command(self, member: Member, text: str) -> None:
        self.factory.commands.run(member, text, self)

    # -- what the member who typed a command is told (commands.Replies) ---------------

    def cmd_refused(self, why: str, about: str) -> None:
        self._refuse(why, about)

    def cmd_renamed(self, old: str, new: str) -> None:
        # The page learns it from the ``renamed`` event, which it gets like everyone.
        self._log.info("{old} renamed to {new} ({peer})", old=old, new=new, peer=self.peer_name)

    def cmd_members(self, nicks: list[str]) -> None:
        self._reply(messages.members(self._clock.seconds(), nicks))

    def cmd_records(self, records: list[Record], context: str, query: str | None) -> None:
        now = self._clock.seconds()
        if query is None:
            self._reply(messages.history(now, records, context))
        else:
            self._reply(messages.history(now, records, context, query))

    def cmd_notice(self, text: str) -> None:
        self._reply(messages.notice(self._clock.seconds(), text))

    def cmd_help(self) -> None:
        self._reply(messages.help_notices(self._clock.seconds()))

    def cmd_quit(self, member: Member) -> None:
        self._leave("quit")
        self._say_goodbye(member.nick)

    def wait_for(self, result: Deferred[Any]) -> None:
        self._wait_for(result)

    # -- output and leaving ---------------------------------------------------------

    def _reply(self, data: bytes) -> None:
        """Frames for this client only, after the room's events already on their way to it."""
        member = self.member
        if member is not None and member.present:
            self.factory.fanout.reply(member.id, self, data)
        else:
            self.send(data)

    def send(self, data: bytes) -> None:
        """Frames for this client, now; the fan-out calls this."""
        if self.outbox is not None and self.state == _OPEN and not self._closing:
            self.outbox.send(data)

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
        self._closing = True
        self._cancel_timers()
        if self.outbox is not None and self.outbox.queued:
            self._close_pending = (code, reason)
            return
        self._send_close(code, reason)

    def _send_close(self, code: int, reason: str) -> None:
        if self.state == _OPEN:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8")[:123], isReply=False)
        elif self._tcp is not None and not self._lost:
            self._tcp.loseConnection()

    def _refuse(self, why: str, about: str) -> None:
        """Tell the sender what was wrong, and the log (at a bounded rate)."""
        self._reply(messages.error(self._clock.seconds(), why, about))
        self.factory.warnings.warn(
            "refused web input from {peer} ({about}): {why}",
            about=about, peer=self.peer_name, why=why,
        )

    def _say_goodbye(self, nick: str | None) -> None:
        self._leave_reason = self._leave_reason or "quit"
        text = f"goodbye, {nick}" if nick else "goodbye"
        self._reply(messages.notice(self._clock.seconds(), text))
        self._close(CLOSE_NORMAL, "goodbye")

    def _close_with_error(self, why: str, reason: str) -> None:
        """Close with an error message: a timeout or a broken rule."""
        self._leave_reason = reason
        self._reply(messages.error(self._clock.seconds(), why, messages.ABOUT_SERVER))
        self._close(CLOSE_POLICY, reason)

    def _leave(self, reason: str) -> None:
        member = self.member
        if member is None or not member.present:
            return
        fanout = self.factory.fanout
        fanout.flush()  # what the room said before this member left still reaches it
        fanout.remove(member.id)
        self.factory.room.leave(member, reason)
        self._log.info(
            "{nick} left ({reason}) from {peer} (web)",
            nick=member.nick, reason=reason, peer=self.peer_name,
        )

    def _overflowed(self, queued: int) -> None:
        """More output is waiting than ``max_out``: this browser stopped reading."""
        self._leave_reason = "slow reader"
        self._log.warn(
            "dropping {peer}: {queued} bytes of output unread (max {cap})",
            peer=self.peer_name, queued=queued, cap=self.factory.limits.max_out,
        )
        self._leave("slow reader")
        self.abort()

    def _nick_timed_out(self) -> None:
        self._timer = None
        seconds = self.factory.limits.nick_timeout
        if self.state == _OPEN:
            self._close_with_error(
                f"no nickname chosen in {seconds:g} seconds; goodbye", "nickname timeout"
            )
        else:
            self._leave_reason = "nickname timeout"
            self.abort()

    def _check_idle(self) -> None:
        idle = self.factory.limits.idle_timeout
        quiet = self._clock.seconds() - self._last_active
        if quiet < idle:
            self._timer = self._clock.callLater(idle - quiet, self._check_idle)
            return
        self._timer = None
        self._close_with_error(f"idle for {idle:g} seconds; goodbye", "idle timeout")
        self._leave("idle timeout")

    def _cancel_timers(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _bug(self, failure: Failure) -> None:
        """Something raised that should not have: log it, drop only this connection."""
        self._log.failure("handling web input from {peer}", failure, peer=self.peer_name)
        self._leave_reason = "server error"
        self.abort()


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
        room: Room,
        limits: Limits,
        clock: IReactorTime,
        allowed_origins: list[str] | None = None,
        history: IHistory | None = None,
        recent: RecentRecords | None = None,
        ping_interval: float = 30.0,
        open_timeout: float = 10.0,
        close_timeout: float = 1.0,
        admission: Admission | None = None,
    ) -> None:
        super().__init__(server="chatroom", reactor=clock)
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
        self.room = room
        self.limits = limits
        self.clock = clock
        self.allowed_origins = allowed_origins
        self.history = history
        self.recent = recent
        self.commands = Commands(room, limits, history, recent)
        # A page has no local echo: its own lines come back to it, in room order.
        self.fanout = Fanout(clock, messages.render, echo=True)
        self.warnings = RateLimitedLog(self._log, clock)
        self.registry: ConnectionRegistry[WebChatProtocol] = ConnectionRegistry(
            limits, clock, kind="web ", admission=admission
        )
        self._unsubscribe = room.hub.subscribe(self.fanout.deliver)

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


def _describe_loss(reason: Failure) -> str:
    if reason.check(net_error.ConnectionDone):
        return "closed"
    if reason.check(net_error.ConnectionLost):
        return "connection lost"
    return reason.getErrorMessage()
