"""One telnet/nc connection: bytes in, session calls out; what to show in, lines out.

The input pipeline is telnet filter -> line buffer (with the length cap) -> flood control
-> UTF-8 decoding and sanitising -> the ``Session`` (a nickname, a command or chat). Output
goes through the connection's ``Outbox``; broadcasts reach it through the factory's
``Fanout``. Everything a person does is the session's; this is only the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from twisted.internet import error as net_error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from chatroom.commands import HELP
from chatroom.domain.chat import Member
from chatroom.domain.directory import RoomState
from chatroom.history.store import Record, format_record, format_replay
from chatroom.limits import Limits
from chatroom.lines import render
from chatroom.lines.framing import TOO_LONG, LineBuffer
from chatroom.lines.sanitize import clean_text, decode
from chatroom.lines.telnet import Command, TelnetFilter
from chatroom.session import Session, describe_loss, describe_peer
from chatroom.stream import StreamConnection

if TYPE_CHECKING:
    from chatroom.lines.factory import ChatFactory

PROMPT = render.line("Choose a nickname:")
SHUTDOWN = render.notice("server shutting down")

_CLOSED = Failure(net_error.ConnectionDone())

HELP_LINES = b"".join(render.notice(f"{usage:<21}{what}") for usage, what in HELP)


class ChatLineProtocol(StreamConnection, LineReceiver):
    """A person on a line-based connection: negotiates a nickname, then chats.

    ``LineReceiver`` gives the shape (``lineReceived``, pausing, ``MAX_LENGTH``); the
    framing underneath is ``LineBuffer``, which never buffers an over-long line and never
    loses the lines after one.
    """

    _log = Logger()
    delimiter = b"\n"

    def __init__(self, factory: ChatFactory, address: IAddress | None) -> None:
        # What Twisted's bases set later, set now too (see StreamConnection._init_stream).
        self.connected = 0
        self.transport = None
        self.paused = False
        self._init_stream()
        self.factory = factory
        self.peer = describe_peer(address)
        self.host: str | None = getattr(address, "host", None)
        limits = factory.limits
        self.MAX_LENGTH = limits.max_line
        self._telnet = TelnetFilter()
        self._lines = LineBuffer(limits.max_line)
        self.session = Session(factory.services, self, factory.fanout, self, self.peer,
                               host=self.host)

    @property
    def member(self) -> Member | None:
        return self.session.member

    def apply_limits(self, limits: Limits) -> None:
        """The server's limits changed (a reload): the line cap and the output cap of this
        connection follow at once."""
        self.MAX_LENGTH = limits.max_line
        self._lines.max_line = limits.max_line
        if self.outbox is not None:
            self.outbox.set_cap(limits.max_out)

    # -- connection life ------------------------------------------------------------

    def connectionMade(self) -> None:
        outbox = self._open_stream(self.factory.limits.max_out, self.factory.clock)
        self._log.info("connection from {peer}", peer=self.peer)
        # The fan-out writes straight into the outbox: no hop through send() (which
        # queues behind the fan-out, for this client's own replies) on the hot path.
        self.session.recipient = outbox
        outbox.send(PROMPT)
        self.session.start()

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        self._stream_lost()
        self.session.lost(describe_loss(reason))
        self.factory.forget(self)

    def shutdown(self) -> None:
        """The server is stopping: say so, then close."""
        self.session.shutdown()
        if self.outbox is not None:
            self.outbox.send(SHUTDOWN)
        self._lose_connection()

    # -- input --------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        telnet = self._telnet
        self._lines.feed(telnet.feed(data))
        if telnet.answer and self.outbox is not None:
            self.outbox.send(telnet.take_answer())  # after what is on its way, between lines
        self._drain()

    def _next_item(self) -> object | None:
        """A whole line, the too-long marker, or telnet's Ctrl-C, in the order sent."""
        line = self._lines.next_line()
        return line if line is not None else self._telnet.next_command()

    def _handle_item(self, item: object) -> None:
        if item is TOO_LONG:
            self.lineLengthExceeded(b"")
        elif isinstance(item, Command):  # telnet's Ctrl-C (IAC IP)
            self.session.text("/quit")
        else:
            self.lineReceived(cast(bytes, item))

    def _reading_paused(self) -> bool:
        return bool(self.paused)

    def resumeProducing(self) -> None:
        # LineReceiver's version feeds b"" to dataReceived, which would also work; this
        # says what happens.
        self.paused = False
        if self._transport is not None:
            self._transport.resumeProducing()
        self._drain()

    resume_reading = resumeProducing

    def lineLengthExceeded(self, line: bytes) -> None:
        self.session.refuse(f"line too long ({self.MAX_LENGTH} bytes max)", "line")
        if self.session.member is None:
            self.send(PROMPT)

    def lineReceived(self, line: bytes) -> None:
        typed = decode(line)  # a nickname is checked as typed, never cleaned into another
        self.session.text(clean_text(typed), typed)

    # -- what the session shows (session.Port, commands.Replies) ------------------------

    def show_prompt(self) -> None:
        self.send(PROMPT)

    def show_password_prompt(self, nick: str) -> None:
        self.send(self._telnet.hide_input()
                  + render.line(f"{nick} is a registered nickname: type its password"))

    def password_given(self) -> None:
        if self._telnet.hiding_input:  # the Enter was not echoed either: a new line
            self.send(self._telnet.show_input() + render.CRLF)

    def show_help(self) -> None:
        self.send(HELP_LINES)

    def show_welcome(self, member: Member, room: RoomState, replay: list[Record]) -> None:
        # One write for the replay, the topic and the welcome: a join storm is thousands
        # of these, and each send() to a socket costs about as much as the rest of a join.
        parts = [self._records(replay, f"last {_lines(len(replay))}", "end of history")
                 ] if replay else []
        if room.topic:
            parts.append(render.notice(f"topic of {room.name}: {room.topic}"))
        count = len(room.members)
        others = "nobody else is" if count <= 1 else f"{count} people are"
        parts.append(render.notice(
            f"welcome, {member.nick}! {others} here; /who lists them, /help lists commands"))
        motd = self.session.services.motd
        if motd:
            parts.extend(render.notice(text) for text in motd)
        self.send(b"".join(parts))

    def show_error(self, why: str, about: str) -> None:
        self.send(render.error(why))

    def cmd_refused(self, why: str, about: str) -> None:
        self.session.refuse(why, about)

    def cmd_renamed(self, old: str, new: str) -> None:
        self.send(render.notice(f"you are now known as {new}"))
        self._log.info("{old} renamed to {new} ({peer})", old=old, new=new, peer=self.peer)

    def cmd_members(self, nicks: list[str], room: str | None) -> None:
        where = "the room" if room is None else room
        self.send(render.notice(f"{len(nicks)} in {where}: {', '.join(nicks)}"))

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
        self.session.quit(member)

    def cmd_entered(self, room: RoomState, entered: bool, replay: list[Record]) -> None:
        if not entered:
            self.send(render.notice(f"now talking in {room.name}"))
            return
        if room.topic:
            self.send(render.notice(f"topic of {room.name}: {room.topic}"))
        if replay:
            self._send_records(replay, f"last {_lines(len(replay))}", "end of history")
        count = len(room.members)
        others = "nobody else is" if count <= 1 else f"{count} people are"
        self.send(render.notice(f"you joined {room.name}; {others} here"))

    def cmd_parted(self, room: str, current: str | None) -> None:
        now = f"now talking in {current}" if current else "you are in no room now: /join one"
        self.send(render.notice(f"you left {room}; {now}"))

    def cmd_rooms(self, rooms: list[tuple[str, int, str]]) -> None:
        if not rooms:
            self.send(render.notice("no rooms"))
            return
        self.send(
            b"".join(
                render.notice(f"{name} ({count}){' ' + topic if topic else ''}")
                for name, count, topic in rooms
            )
        )

    def cmd_topic(self, room: RoomState) -> None:
        if room.topic:
            self.send(render.notice(f"topic of {room.name}: {room.topic}"))
        else:
            self.send(render.notice(f"{room.name} has no topic"))

    def wait_for(self, result: Deferred[Any]) -> None:
        self.session.wait_for(result)

    def _send_records(
        self, records: list[Record], title: str, end: str, dated: bool = False
    ) -> None:
        """Old lines, bracketed by notices and each behind its time in brackets, so that
        neither a person nor a program takes them for live ones."""
        self.send(self._records(records, title, end, dated))

    @staticmethod
    def _records(records: list[Record], title: str, end: str, dated: bool = False) -> bytes:
        texts = [format_record(record) for record in records] if dated else format_replay(records)
        return (
            render.notice(title + " (times in UTC)")
            + b"".join(render.line(text) for text in texts)
            + render.notice(end)
        )

    def close_normally(self, goodbye: str) -> None:
        self.send(render.notice(goodbye))
        self._lose_connection()

    def close_with_error(self, why: str, reason: str) -> None:
        self.send(render.error(why))
        self._lose_connection()

    # -- output ---------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Bytes for this client only, after whatever the room already has on its way to
        it (so an answer never overtakes a line said before the question)."""
        outbox = self.outbox
        if outbox is None:
            return
        member = self.session.member
        if member is not None and member.present:
            self.factory.fanout.reply(member.id, outbox, data)
        else:
            outbox.send(data)


def _lines(count: int) -> str:
    return "1 line" if count == 1 else f"{count} lines"

