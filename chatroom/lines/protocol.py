"""One telnet/nc connection: bytes in, room calls out; room events in, lines out.

The input pipeline is telnet filter -> line buffer (with the length cap) -> flood control
-> UTF-8 decoding and sanitising -> nickname negotiation or a command or chat. Output goes
through the connection's ``Outbox``; broadcasts reach it through the factory's ``Fanout``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from twisted.internet import error as net_error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from chatroom.commands import HELP
from chatroom.domain.errors import Abandoned, ChatError
from chatroom.domain.room import Member
from chatroom.gate import InputGate
from chatroom.history.store import Record, format_record, format_replay
from chatroom.lines import render
from chatroom.lines.framing import TOO_LONG, LineBuffer, TooLong
from chatroom.lines.outbox import Outbox, SocketOutbox, writable_socket
from chatroom.lines.sanitize import clean
from chatroom.lines.telnet import TelnetFilter

if TYPE_CHECKING:
    from chatroom.lines.factory import ChatFactory

PROMPT = render.line("Choose a nickname:")
SHUTDOWN = render.notice("server shutting down")

_CLOSED = Failure(net_error.ConnectionDone())

HELP_LINES = b"".join(render.notice(f"{usage:<16}{what}") for usage, what in HELP)


class StreamTransport(Protocol):
    """What this protocol uses of its transport: a TCP, TLS or UNIX stream."""

    disconnecting: bool

    def write(self, data: bytes) -> None: ...
    def writeSequence(self, data: list[bytes]) -> None: ...
    def loseConnection(self) -> None: ...
    def abortConnection(self) -> None: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def registerProducer(self, producer: object, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...


def describe_peer(address: IAddress | None) -> str:
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None:
        return type(address).__name__ if address is not None else "unknown"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ChatLineProtocol(LineReceiver):
    """A person on a line-based connection: negotiates a nickname, then chats.

    ``LineReceiver`` gives the shape (``lineReceived``, pausing, ``MAX_LENGTH``); the
    framing underneath is ``LineBuffer``, which never buffers an over-long line and never
    loses the lines after one.
    """

    _log = Logger()
    delimiter = b"\n"

    def __init__(self, factory: ChatFactory, address: IAddress | None) -> None:
        self.factory = factory
        self.peer = describe_peer(address)
        self.host: str | None = getattr(address, "host", None)
        limits = factory.limits
        self.MAX_LENGTH = limits.max_line
        self.member: Member | None = None
        self.outbox: Outbox | SocketOutbox | None = None
        self._transport: StreamTransport | None = None
        self._clock = factory.clock
        self._telnet = TelnetFilter()
        self._lines = LineBuffer(limits.max_line)
        self._gate = InputGate(
            limits.rate, limits.burst, factory.clock,
            self._pause_reading, self.resumeProducing, self._flooding,
        )
        self._held: bytes | TooLong | None = None
        self._draining = False
        self._lost = False
        self._aborted = False
        self._leave_reason: str | None = None
        self._timer: IDelayedCall | None = None
        self._last_active = 0.0

    # -- connection life ------------------------------------------------------------

    def connectionMade(self) -> None:
        transport = cast(StreamTransport, self.transport)
        self._transport = transport
        # Chat is small writes that must leave now: without this, Nagle's algorithm and
        # the peer's delayed ACK hold lines back for up to ~40 ms.
        set_no_delay = getattr(transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        max_out, clock = self.factory.limits.max_out, self.factory.clock
        sock = writable_socket(transport)
        if sock is not None:
            self.outbox = SocketOutbox(transport, sock, max_out, self._overflowed, clock)
        else:
            self.outbox = Outbox(transport, max_out, self._overflowed, clock)
        transport.registerProducer(self.outbox, self.outbox.streaming)
        self._log.info("connection from {peer}", peer=self.peer)
        self.outbox.send(PROMPT)
        timeout = self.factory.limits.nick_timeout
        if timeout > 0:
            self._timer = self._clock.callLater(timeout, self._nick_timed_out)

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        self._lost = True
        if self.outbox is not None:
            # The transport tells a registered producer itself; one unregistered by
            # finish() learns it here, and its slow-reader check ends.
            self.outbox.stopProducing()
        self._gate.close()
        self._cancel_timers()
        why = self._leave_reason or _describe_loss(reason)
        if self.member is not None and self.member.present:
            self._leave(why)
        elif self.member is None:
            self._log.info("{peer} closed before joining ({reason})", peer=self.peer, reason=why)
        self.factory.forget(self)

    def shutdown(self) -> None:
        """The server is stopping: say so, then close."""
        self._leave_reason = "server shutdown"
        if self.outbox is not None:
            self.outbox.send(SHUTDOWN)
        self._lose_connection()

    def abort(self) -> None:
        """Cut the connection now; nothing more it sent is handled."""
        self._aborted = True
        if self.outbox is not None:
            self.outbox.stopProducing()  # not one more byte, even straight to the socket
        if self._transport is not None and not self._lost:
            self._transport.abortConnection()

    # -- input --------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self._lines.feed(self._telnet.feed(data))
        self._drain()

    def _drain(self) -> None:
        """Handle complete lines until there are none, or flood control says wait."""
        if self._draining:
            return
        self._draining = True
        try:
            transport = self._transport
            gate = self._gate
            while not (self.paused or gate.held or self._lost or self._aborted):
                if transport is not None and transport.disconnecting:
                    break
                item = self._held
                if item is None:
                    item = self._lines.next_line()
                    if item is None:
                        break
                if not gate.admit():
                    self._held = item
                    break
                self._held = None
                try:
                    if item is TOO_LONG:
                        self.lineLengthExceeded(b"")
                    else:
                        self.lineReceived(cast(bytes, item))
                except Exception:
                    self._bug(Failure())
                    break
        finally:
            self._draining = False

    def resumeProducing(self) -> None:
        # LineReceiver's version feeds b"" to dataReceived, which would also work; this
        # says what happens.
        self.paused = False
        if self._transport is not None:
            self._transport.resumeProducing()
        self._drain()

    def _pause_reading(self) -> None:
        if not self.paused and self._transport is not None:
            self._transport.pauseProducing()

    def _flooding(self, rate: float) -> None:
        self.factory.warnings.warn("slowing {peer}: over {rate} lines/s", peer=self.peer, rate=rate)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._refuse(f"line too long ({self.MAX_LENGTH} bytes max)", "line")
        if self.member is None:
            self.send(PROMPT)

    def lineReceived(self, line: bytes) -> None:
        text = clean(line)
        member = self.member
        if member is not None and not member.present:
            return  # left (quit, dropped) with more of its input still buffered
        if member is None:
            self._choose_nickname(text)
            return
        if self.factory.limits.idle_timeout > 0:
            self._last_active = self._clock.seconds()
        if not text or text.isspace():
            return
        if text[0] != "/":
            self.factory.room.say(member, text)
        elif text[:2] == "//":
            self.factory.room.say(member, text[1:])
        else:
            self._command(member, text)

    # -- joining ------------------------------------------------------------------

    def _choose_nickname(self, text: str) -> None:
        if text.startswith("/"):
            name = text[1:].split(" ", 1)[0].lower()
            if name == "quit":
                self._say_goodbye(None)
            elif name == "help":
                self.send(HELP_LINES)
                self.send(PROMPT)
            else:
                self._refuse("choose a nickname first (or /quit)", "command before nickname")
                self.send(PROMPT)
            return
        self._wait_for(
            self.factory.room.join(text, self._still_here).addCallbacks(
                self._joined, self._nickname_refused
            )
        )

    def _still_here(self) -> bool:
        return not self._lost and not (
            self._transport is not None and self._transport.disconnecting
        )

    def _joined(self, member: Member) -> None:
        if self._lost or (self._transport is not None and self._transport.disconnecting):
            self.factory.room.leave(member, "closed while joining")
            return
        self._cancel_timers()
        assert self.outbox is not None
        self.factory.fanout.add(member.id, self.outbox)
        recent = self.factory.recent
        replay = self.factory.limits.history_replay
        if recent is not None and replay > 0:
            # First what was said before (read in the same turn as joining the fan-out:
            # no gap, no repeat), then the welcome, then live lines.
            records = recent.last(replay, joining=member.id)
            if records:
                self._send_records(records, f"last {_lines(len(records))}", "end of history")
        count = len(self.factory.room.members())
        others = "nobody else is" if count <= 1 else f"{count} people are"
        self.send(
            render.notice(
                f"welcome, {member.nick}! {others} here; /who lists them, /help lists commands"
            )
        )
        self._log.info("{nick} joined from {peer}", nick=member.nick, peer=self.peer)
        # Only now: the replay and the welcome above go out at once, not behind the room's
        # pending lines (which this member gets only from its join on anyway).
        self.member = member
        idle = self.factory.limits.idle_timeout
        if idle > 0:
            self._last_active = self._clock.seconds()
            self._timer = self._clock.callLater(idle, self._check_idle)

    def _nickname_refused(self, failure: Failure) -> None:
        if failure.check(Abandoned):
            return
        failure.trap(ChatError)
        self._refuse(str(failure.value), "nickname")
        self.send(PROMPT)

    def _wait_for(self, result: Deferred[Any]) -> None:
        """Read nothing more from this client until ``result`` has fired."""
        self._gate.wait_for(result, self._bug)

    # -- commands -----------------------------------------------------------------

    def _command(self, member: Member, text: str) -> None:
        self.factory.commands.run(member, text, self)

    # -- what the member who typed a command is told (commands.Replies) ---------------

    def cmd_refused(self, why: str, about: str) -> None:
        self._refuse(why, about)

    def cmd_renamed(self, old: str, new: str) -> None:
        self.send(render.notice(f"you are now known as {new}"))
        self._log.info("{old} renamed to {new} ({peer})", old=old, new=new, peer=self.peer)

    def cmd_members(self, nicks: list[str]) -> None:
        self.send(render.notice(f"{len(nicks)} in the room: {', '.join(nicks)}"))

    def cmd_records(self, records: list[Record], context: str, query: str | None) -> None:
        if context == "search":
            title = f"{_lines(len(records))} matching {query}, newest first"
            self._send_records(records, title, "end of search", dated=True)
        else:
            self._send_records(records, f"last {_lines(len(records))}", "end of history")

    def cmd_notice(self, text: str) -> None:
        self.send(render.notice(text))

    def cmd_help(self) -> None:
        self.send(HELP_LINES)

    def cmd_quit(self, member: Member) -> None:
        self._leave("quit")
        self._say_goodbye(member.nick)

    def wait_for(self, result: Deferred[Any]) -> None:
        self._wait_for(result)

    def _send_records(
        self, records: list[Record], title: str, end: str, dated: bool = False
    ) -> None:
        """Old lines, bracketed by notices and each behind its time in brackets, so that
        neither a person nor a program takes them for live ones."""
        texts = [format_record(record) for record in records] if dated else format_replay(records)
        self.send(
            render.notice(title + " (times in UTC)")
            + b"".join(render.line(text) for text in texts)
            + render.notice(end)
        )

    # -- output and leaving ---------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Bytes for this client only, after whatever the room already has on its way to
        it (so an answer never overtakes a line said before the question)."""
        outbox = self.outbox
        if outbox is None:
            return
        member = self.member
        if member is not None and member.present:
            self.factory.fanout.reply(member.id, outbox, data)
        else:
            outbox.send(data)

    def _refuse(self, why: str, what: str) -> None:
        """Tell the sender what was wrong, and the log (at a bounded rate)."""
        self.send(render.error(why))
        self.factory.warnings.warn(
            "refused input from {peer} ({what}): {why}", what=what, peer=self.peer, why=why
        )

    def _say_goodbye(self, nick: str | None) -> None:
        self._leave_reason = self._leave_reason or "quit"
        self.send(render.notice(f"goodbye, {nick}" if nick else "goodbye"))
        self._lose_connection()

    def _close(self, why: str, reason: str) -> None:
        """Close with an error line: a timeout or a broken rule."""
        self._leave_reason = reason
        self.send(render.error(why))
        self._lose_connection()

    def _lose_connection(self) -> None:
        """Close once what is on its way has been sent (or the slow-reader rule cuts it)."""
        transport = self._transport
        if transport is None or transport.disconnecting:
            return
        if self.outbox is not None:
            self.outbox.finish()
            transport.unregisterProducer()  # a registered producer holds the close up
        transport.loseConnection()

    def _leave(self, reason: str) -> None:
        member = self.member
        if member is None or not member.present:
            return
        fanout = self.factory.fanout
        fanout.flush()  # what is on its way to this member (answers too) still reaches it
        fanout.remove(member.id)
        self.factory.room.leave(member, reason)
        self._log.info(
            "{nick} left ({reason}) from {peer}", nick=member.nick, reason=reason, peer=self.peer
        )

    def _overflowed(self, queued: int) -> None:
        """More output is waiting than ``max_out``: this client stopped reading."""
        self._leave_reason = "slow reader"
        self._log.warn(
            "dropping {peer}: {queued} bytes of output unread (max {cap})",
            peer=self.peer, queued=queued, cap=self.factory.limits.max_out,
        )
        self._leave("slow reader")
        self.abort()

    def _nick_timed_out(self) -> None:
        self._timer = None
        seconds = self.factory.limits.nick_timeout
        self._close(f"no nickname chosen in {seconds:g} seconds; goodbye", "nickname timeout")

    def _check_idle(self) -> None:
        idle = self.factory.limits.idle_timeout
        quiet = self._clock.seconds() - self._last_active
        if quiet < idle:
            self._timer = self._clock.callLater(idle - quiet, self._check_idle)
            return
        self._timer = None
        self._close(f"idle for {idle:g} seconds; goodbye", "idle timeout")
        self._leave("idle timeout")

    def _cancel_timers(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _bug(self, failure: Failure) -> None:
        """Something raised that should not have: log it, drop only this connection."""
        self._log.failure("handling input from {peer}", failure, peer=self.peer)
        self._leave_reason = "server error"
        self.abort()


def _lines(count: int) -> str:
    return "1 line" if count == 1 else f"{count} lines"


def _describe_loss(reason: Failure) -> str:
    if reason.check(net_error.ConnectionDone):
        return "closed"
    if reason.check(net_error.ConnectionLost):
        return "connection lost"
    return reason.getErrorMessage()
