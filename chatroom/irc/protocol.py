"""One IRC connection: messages in, session and chat calls out; events in, IRC lines out.

The input pipeline is the same as the line front end's, with IRC framing: a line buffer
(512 bytes of message plus 4094 of tags) -> flood control (the session's ``InputGate``)
-> ``message.parse`` -> a command handler. Handlers call the shared ``Chat`` (a
PRIVMSG to ``#dev`` is ``chat.say`` in ``#dev``), and answer with numerics. Registration
(NICK, USER, CAP negotiation) ends in ``Session.choose``, the same nickname claim every
front end makes; once in, the member is in the default room (an IRC client sees its own
JOIN of it, its topic and NAMES). Output goes through the connection's ``Outbox``, so the
slow-reader cap holds; broadcasts come rendered from the factory's ``Fanout``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import error as net_error
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.domain import nicknames, roomnames
from chatroom.domain.chat import Member
from chatroom.domain.directory import RoomState
from chatroom.domain.errors import (
    CannotSpeak,
    ChatError,
    NicknameInvalid,
    NicknameTaken,
    RoomLimit,
)
from chatroom.domain.events import Event
from chatroom.history.store import Kind, Record, format_replay
from chatroom.irc import numerics as n
from chatroom.irc.channelmodes import join_refusal, prefixes, speak_refusal
from chatroom.irc.message import (
    MAX_LINE,
    MAX_MESSAGE,
    Message,
    TooLong,
    build,
    parse,
    strip_formatting,
)
from chatroom.irc.render import extend_joins, message_lines, msgid, server_time, source
from chatroom.irc.support import AWAY_LENGTH, TARGETS, VERSION
from chatroom.limits import Limits
from chatroom.lines.framing import TOO_LONG, LineBuffer
from chatroom.lines.sanitize import clean_text
from chatroom.session import Session, describe_loss, describe_peer
from chatroom.stream import StreamConnection

if TYPE_CHECKING:
    from chatroom.irc.factory import IRCFactory

_CLOSED = Failure(net_error.ConnectionDone())

BEFORE_REGISTRATION = frozenset({"CAP", "NICK", "USER", "PASS", "PING", "PONG", "QUIT",
                                 "AUTHENTICATE"})

Handler = Callable[["IRCProtocol", Message], "Deferred[Any] | None"]
COMMANDS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = handler
        return handler

    return register


def user_text(text: str) -> str:
    """Text someone wrote, as every front end shows it: no formatting, sanitised."""
    return clean_text(strip_formatting(text))


class IRCProtocol(StreamConnection, Protocol):
    """A person on an IRC client: registers, then talks in channels (the chat's rooms)."""

    _log = Logger()

    def __init__(self, factory: IRCFactory, address: IAddress | None) -> None:
        self.factory = factory
        self.server = factory.info.name
        self.peer = describe_peer(address)
        self.host: str | None = getattr(address, "host", None)
        self._lines = LineBuffer(MAX_LINE)
        self.session = Session(factory.services, self, factory.fanout, self, self.peer, " (irc)",
                               self.host)
        self.caps: set[str] = set()
        self.cap_version = 0
        self._negotiating = False
        self._registering = False
        self._nick: str | None = None  # chosen, not yet claimed
        self._user: str | None = None
        self._password: str | None = None  # PASS: a registered nickname's (never logged)
        self.account: str | None = None  # proved with SASL, signed in to at registration
        self.sasl_chunks: list[str] | None = None  # an AUTHENTICATE PLAIN under way
        self.realname = ""
        self.away: str | None = None
        self.invisible = False
        self._notice = False  # the message being handled is a NOTICE (for its echo)
        self._last_quit = b""
        self._collected: list[bytes] | None = None  # replies to a labeled command
        self._batches = itertools.count(1)
        clock = factory.clock
        self._clock = clock
        self._last_seen = clock.seconds()
        self._ping_sent: float | None = None
        self._ping_call: IDelayedCall | None = None

    @property
    def member(self) -> Member | None:
        return self.session.member

    @property
    def nick(self) -> str:
        """The nickname to address replies to: ``*`` until there is one."""
        member = self.session.member
        if member is not None:
            return member.nick
        return self._nick or "*"

    # -- connection life ------------------------------------------------------------

    def connectionMade(self) -> None:
        self._open_stream(self.factory.limits.max_out, self.factory.clock)
        self._log.info("irc connection from {peer}", peer=self.peer)
        self.session.start()
        self._schedule_ping(self.factory.ping_interval)

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        self._stream_lost()
        self._cancel_ping()
        member = self.session.member
        self.session.lost(describe_loss(reason))
        self.factory.forget(self, member)

    def shutdown(self) -> None:
        """The server is stopping: say so, then close."""
        self.session.shutdown()
        if self.outbox is not None:
            self.outbox.send(build(None, "ERROR", "Closing link: server shutting down"))
        self._lose_connection()

    def abort(self) -> None:
        self._cancel_ping()
        super().abort()

    def apply_limits(self, limits: Limits) -> None:
        """The server's limits changed (a reload): this connection's output cap follows at
        once (flood control and the timeouts are the session's; the IRC line is 512 bytes
        of message and 4094 of tags whatever ``max-line`` says)."""
        if self.outbox is not None:
            self.outbox.set_cap(limits.max_out)

    # -- keepalive --------------------------------------------------------------------

    def _schedule_ping(self, delay: float) -> None:
        if delay > 0:
            self._ping_call = self._clock.callLater(delay, self._check_ping)

    def _cancel_ping(self) -> None:
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = None

    def ping_interval_changed(self) -> None:
        """A reload changed ``irc-ping``: judge this connection's silence by it now."""
        if self._ping_call is not None:
            self._cancel_ping()
            self._check_ping()

    def _check_ping(self) -> None:
        """Silent for an interval: PING; silent for another after the PING: gone."""
        self._ping_call = None
        interval = self.factory.ping_interval
        now = self._clock.seconds()
        if self._ping_sent is not None and self._last_seen < self._ping_sent:
            if now - self._ping_sent >= interval:
                self.session.leave_reason = "ping timeout"
                self.session.closing = True
                self.close_with_error(f"Ping timeout: {interval:g} seconds", "ping timeout")
                return
            self._schedule_ping(self._ping_sent + interval - now)
            return
        self._ping_sent = None
        silent = now - self._last_seen
        if silent >= interval:
            self._ping_sent = now
            self._send_now(build(None, "PING", self.server))
            self._schedule_ping(interval)
        else:
            self._schedule_ping(interval - silent)

    # -- input --------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self._lines.feed(data)
        self._drain()

    def _next_item(self) -> object | None:
        return self._lines.next_line()

    def _handle_item(self, item: object) -> None:
        self._last_seen = self._clock.seconds()
        if item is TOO_LONG:
            self._numeric(n.ERR_INPUTTOOLONG, "Input line was too long")
            return
        raw = cast(bytes, item)
        try:
            message = parse(raw)
        except TooLong:
            self._numeric(n.ERR_INPUTTOOLONG, "Input line was too long")
            return
        if message is None:
            return
        if not _is_utf8(raw):  # UTF8ONLY: relayed with U+FFFD in place, and the sender told
            self.reply(build(self.server, "WARN", message.command, "INVALID_UTF8",
                             "Invalid UTF-8 was replaced with U+FFFD"))
        self.handle(message)

    def handle(self, message: Message) -> None:
        """Run one command, its replies labeled if the client asked for that."""
        name = message.command
        if self.session.member is None and name not in BEFORE_REGISTRATION:
            if name in COMMANDS or not name.isdigit():
                self._numeric(n.ERR_NOTREGISTERED, "You have not registered")
            return
        if self.session.member is not None and name not in ("PING", "PONG"):
            self.session.active()  # a keepalive is not activity: the idle timeout holds
        handler = COMMANDS.get(name)
        label = message.tags.get("label") if "labeled-response" in self.caps else None
        if label is not None:
            self._collected = []
        try:
            if handler is None:
                self._numeric(n.ERR_UNKNOWNCOMMAND, name, "Unknown command")
                result = None
            else:
                result = handler(self, message)
        finally:
            self._notice = False
        if label is None:
            if result is not None:
                self.session.wait_for(result)
            return
        if result is None:
            self._labeled(label)
        else:
            self.session.wait_for(result.addBoth(self._labeled_after, label))

    def _labeled_after(self, result: object, label: str) -> object:
        self._labeled(label)
        return result

    def _labeled(self, label: str) -> None:
        """Send what a labeled command answered: one line tagged, several in a batch,
        nothing as an ACK."""
        collected, self._collected = self._collected or [], None
        lines = [line for chunk in collected for line in chunk.split(b"\r\n") if line]
        tag = b"@label=" + label.encode("utf-8", "replace")
        if not lines:
            self.reply(tag + b" :" + self.server.encode() + b" ACK\r\n")
        elif len(lines) == 1:
            self.reply(_tagged(lines[0], tag) + b"\r\n")
        elif _one_batch(lines):
            self.reply(_tagged(lines[0], tag) + b"\r\n" + b"".join(
                line + b"\r\n" for line in lines[1:]))
        else:
            ref = f"l{next(self._batches)}"
            inner = b"@batch=" + ref.encode()
            depth = 0  # inside a batch of the answer's own, its lines keep their batch
            wrapped = []
            for line in lines:
                starts, ends = _batch_edge(line)
                if depth == 0:
                    line = _tagged(line, inner)
                depth += starts - ends
                wrapped.append(line + b"\r\n")
            self.reply(
                tag + b" " + build(self.server, "BATCH", "+" + ref, "labeled-response",
                                   trailing=False)
                + b"".join(wrapped)
                + build(self.server, "BATCH", "-" + ref, trailing=False)
            )

    # -- output -------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Rendered room events (from the fan-out), as this client asked for them."""
        if self.outbox is None:
            return
        caps = self.caps
        data = self.factory.filtered(data, "server-time" in caps, "message-tags" in caps,
                                     "account-tag" in caps)
        if b" QUIT " in data:
            data = self._once_per_quit(data)
        if "extended-join" in caps and b" JOIN " in data:
            data = extend_joins(data, self.factory.about)
        self.outbox.send(data)

    def _once_per_quit(self, data: bytes) -> bytes:
        """A member who quits leaves each room it was in: to IRC that is one QUIT."""
        kept = []
        for line in data.split(b"\r\n")[:-1]:
            body = line.split(b" ", 1)[1] if line.startswith(b"@") else line
            if body.split(b" ", 2)[1:2] == [b"QUIT"]:
                if body == self._last_quit:
                    continue
                self._last_quit = body
            kept.append(line + b"\r\n")
        return b"".join(kept)

    def reply(self, data: bytes) -> None:
        """Bytes for this client only, after what the rooms already have on the way."""
        if self._collected is not None:
            self._collected.append(data)
            return
        outbox = self.outbox
        if outbox is None:
            return
        member = self.session.member
        if member is not None and member.present:
            self.factory.fanout.reply(member.id, self, data)
        else:
            outbox.send(data)

    def _send_now(self, data: bytes) -> None:
        if self.outbox is not None:
            self.outbox.send(data)

    def _numeric(self, code: str, *params: str) -> None:
        self.reply(build(self.server, code, self.nick, *params))

    def _line_to(self, command: str, *params: str, trailing: bool = True) -> bytes:
        return build(self.server, command, *params, trailing=trailing)

    def tags(self, time: float | None = None, msgid: str | None = None) -> dict[str, str]:
        """The tags of a line about ``time``, as far as this client asked for them."""
        tags: dict[str, str] = {}
        if time is not None and "server-time" in self.caps:
            tags["time"] = server_time(time)
        if msgid is not None and "message-tags" in self.caps:
            tags["msgid"] = msgid
        return tags

    def echo(self, event: Event) -> None:
        """echo-message: the client's own message, as the others got it (a message to
        oneself too: it comes as delivered and as the echo, as labeled-response shows)."""
        command = "NOTICE" if self._notice else "PRIVMSG"
        data = self.factory.renderer(event, command)
        self.reply(self.factory.filtered(data, "server-time" in self.caps,
                                         "message-tags" in self.caps,
                                         "account-tag" in self.caps))

    # -- what the session shows (session.Port, commands.Replies) ------------------------

    def show_prompt(self) -> None:
        pass  # IRC has no prompt: the client sends NICK again

    def show_password_prompt(self, nick: str) -> None:
        """The nickname is registered: the password is the one PASS gave, if any."""
        password, self._password = self._password, None
        if password is not None:
            self.session.password(password)
            return
        self.show_error(f"{nick} is a registered nickname: connect with PASS and its "
                        "password to use it", "nick")

    def password_given(self) -> None:
        pass

    def show_help(self) -> None:
        self.cmd_help()

    def show_error(self, why: str, about: str) -> None:
        if about == "nick":
            nick = self._nick or "*"
            if nick == "*" or self.factory.chat.names.lookup(nicknames.key(nick)) is None:
                # Not taken: 433 alone would send the client to its next nickname and the
                # same refusal (a ban from the default room, a wrong PASS), never saying so.
                self._notice_to_self(why)
            self._nick = None
            self._registering = False
            self._numeric(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        else:
            self._notice_to_self(why)

    def show_welcome(self, member: Member, room: RoomState, replay: list[Record]) -> None:
        self._registering = False
        self.factory.joined(self, member)
        nick = member.nick
        info = self.factory.info
        self.reply(
            build(self.server, n.RPL_WELCOME, nick,
                  f"Welcome to the {info.network} IRC network, {source(nick)}")
            + build(self.server, n.RPL_YOURHOST, nick,
                    f"Your host is {self.server}, running version {VERSION}")
            + build(self.server, n.RPL_CREATED, nick, f"This server was created {info.created}")
            + build(self.server, n.RPL_MYINFO, nick, self.server, VERSION, "io",
                    "biklmnoqstv", "bkloqv", trailing=False)
            + self._isupport(nick)
        )
        self._motd(nick)
        self._log.info("{nick} registered from {peer} (irc)", nick=nick, peer=self.peer)
        self.show_joined(member, room, replay)

    def _isupport(self, nick: str) -> bytes:
        return b"".join(
            build(self.server, n.RPL_ISUPPORT, nick, *tokens, "are supported by this server")
            for tokens in self.factory.info.isupport_lines()
        )

    def _motd(self, nick: str) -> None:
        lines = self.factory.motd
        if not lines:
            self._numeric(n.ERR_NOMOTD, "MOTD File is missing")
            return
        self.reply(
            build(self.server, n.RPL_MOTDSTART, nick, f"- {self.server} Message of the day -")
            + b"".join(build(self.server, n.RPL_MOTD, nick, f"- {line}") for line in lines)
            + build(self.server, n.RPL_ENDOFMOTD, nick, "End of /MOTD command.")
        )

    def show_joined(self, member: Member, room: RoomState, replay: list[Record]) -> None:
        """``member`` is in ``room`` now: its JOIN, the topic, NAMES, and the replay."""
        extended = (member.account or "*", self.realname or member.nick) if (
            "extended-join" in self.caps) else ()
        self.reply(build(source(member.nick), "JOIN", room.name, *extended,
                         trailing=bool(extended)))
        if room.topic:
            self._topic_lines(room)
        self.names(room)
        if replay and "draft/chathistory" not in self.caps:
            self._replay(room.name, replay)

    def _topic_lines(self, room: RoomState) -> None:
        self._numeric(n.RPL_TOPIC, room.name, room.topic)
        by = room.topic_by or self.server
        self.reply(build(self.server, n.RPL_TOPICWHOTIME, self.nick, room.name, by,
                         str(int(room.topic_time)), trailing=False))

    def names(self, room: RoomState) -> None:
        """353 lines, as many as 512 bytes a line need, then 366."""
        member = self.session.member
        if "s" not in room.modes or (member is not None and member.id in room.members):
            symbol = "@" if "s" in room.modes else "="
            full = "userhost-in-names" in self.caps
            multi = "multi-prefix" in self.caps
            entries = [
                prefixes(room, member_id, multi) + (source(nick) if full else nick)
                for member_id, nick in room.members.items()
            ]
            head = f":{self.server} {n.RPL_NAMREPLY} {self.nick} {symbol} {room.name} :"
            room_left = MAX_MESSAGE - 2 - len(head.encode())
            chunk: list[str] = []
            size = 0
            out = []
            for entry in entries:
                length = len(entry.encode()) + 1
                if chunk and size + length > room_left:
                    out.append(build(self.server, n.RPL_NAMREPLY, self.nick, symbol, room.name,
                                     " ".join(chunk)))
                    chunk, size = [], 0
                chunk.append(entry)
                size += length
            if chunk:
                out.append(build(self.server, n.RPL_NAMREPLY, self.nick, symbol, room.name,
                                 " ".join(chunk)))
            self.reply(b"".join(out))
        self._numeric(n.RPL_ENDOFNAMES, room.name, "End of /NAMES list")

    def _replay(self, room: str, records: list[Record]) -> None:
        """What was said before joining: with server-time as the messages themselves
        (times on them, in a batch where the client takes batches); without, as notices
        that say they are history, like the line front end's replay."""
        if "server-time" not in self.caps:
            count = "1 line" if len(records) == 1 else f"{len(records)} lines"
            lines = [f"last {count} (times in UTC):", *format_replay(records), "end of history"]
            self.reply(b"".join(build(self.server, "NOTICE", room, line) for line in lines))
            return
        self.reply(self.history_batch("chathistory", room, records))

    def history_batch(
        self, kind: str, target: str, records: list[Record], batched: bool | None = None
    ) -> bytes:
        """Stored chat and actions as PRIVMSGs with their times, in a batch if the client
        takes batches (or if ``batched``)."""
        if batched is None:
            batched = "batch" in self.caps
        ref = f"h{next(self._batches)}"
        out = []
        for record in records:
            if record.kind not in (Kind.SAID, Kind.ACTED):
                continue
            tags = self.tags(record.time, msgid(record.line_id, record.time))
            if batched:
                tags = {"batch": ref, **tags}
            out.append(message_lines(tags, record.nick, "PRIVMSG", target, record.text,
                                     record.kind is Kind.ACTED))
        if not batched:
            return b"".join(out)
        return (
            build(self.server, "BATCH", "+" + ref, kind, target, trailing=False)
            + b"".join(out)
            + build(self.server, "BATCH", "-" + ref, trailing=False)
        )

    def cmd_refused(self, why: str, about: str) -> None:
        self._notice_to_self(why)

    def cmd_renamed(self, old: str, new: str) -> None:
        self.reply(build(source(old), "NICK", new, trailing=False))
        self._log.info("{old} renamed to {new} ({peer})", old=old, new=new, peer=self.peer)

    def cmd_members(self, nicks: list[str], room: str | None) -> None:
        self._notice_to_self(", ".join(nicks))

    def cmd_records(self, records: list[Record], context: str, query: str | None) -> None:
        for line in format_replay(records):
            self._notice_to_self(line)

    def cmd_notice(self, text: str) -> None:
        self._notice_to_self(text)

    def cmd_help(self) -> None:
        self._notice_to_self("IRC commands work here; docs/irc.md lists them")

    def cmd_quit(self, member: Member) -> None:
        self.session.quit(member)

    def cmd_entered(self, room: RoomState, entered: bool, replay: list[Record]) -> None:
        member = self.session.member
        if entered and member is not None:
            self.show_joined(member, room, replay)

    def cmd_parted(self, room: str, current: str | None) -> None:
        member = self.session.member
        if member is not None:
            self.reply(build(source(member.nick), "PART", room, trailing=False))

    def cmd_rooms(self, rooms: list[tuple[str, int, str]]) -> None:
        self._list(rooms)

    def cmd_topic(self, room: RoomState) -> None:
        if room.topic:
            self._topic_lines(room)
        else:
            self._numeric(n.RPL_NOTOPIC, room.name, "No topic is set")

    def wait_for(self, result: Deferred[Any]) -> None:
        self.session.wait_for(result)

    def close_normally(self, goodbye: str) -> None:
        self._send_error(f"Closing link: {self.host or self.peer} ({goodbye})")

    def close_with_error(self, why: str, reason: str) -> None:
        self._send_error(f"Closing link: {self.host or self.peer} ({why})")

    def _send_error(self, text: str) -> None:
        self._cancel_ping()
        self.reply(build(None, "ERROR", text))
        self._lose_connection()

    def _notice_to_self(self, text: str) -> None:
        self.reply(build(self.server, "NOTICE", self.nick, text))

    # -- registration -------------------------------------------------------------

    def _try_register(self) -> None:
        if self._registering or self.session.member is not None or self._negotiating:
            return
        if self._nick is None or self._user is None:
            return
        self._registering = True
        self.session.choose(self._nick, self.account)

    def _list(self, rooms: list[tuple[str, int, str]]) -> None:
        nick = self.nick
        self.reply(
            build(self.server, n.RPL_LISTSTART, nick, "Channel", "Users  Name")
            + b"".join(build(self.server, n.RPL_LIST, nick, name, str(count), topic)
                       for name, count, topic in rooms)
            + build(self.server, n.RPL_LISTEND, nick, "End of /LIST")
        )

    # -- helpers for the command handlers --------------------------------------------

    def room_or_error(self, name: str, must_be_in: bool = True) -> RoomState | None:
        """The room ``name`` names, or ``None`` after the numeric that says why not."""
        directory = self.factory.chat.directory
        state: RoomState | None = directory.find(name) if name.startswith("#") else None
        if state is None:
            self._numeric(n.ERR_NOSUCHCHANNEL, name, "No such channel")
            return None
        member = self.session.member
        if must_be_in and (member is None or member.id not in state.members):
            self._numeric(n.ERR_NOTONCHANNEL, state.name, "You're not on that channel")
            return None
        return state

    def next_batch(self) -> str:
        return f"b{next(self._batches)}"


def _is_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _batch_edge(line: bytes) -> tuple[int, int]:
    """``(1, 0)`` for a line that opens a batch, ``(0, 1)`` for one that closes one."""
    words = line.split(b" ", 4)
    if words[0].startswith(b"@"):
        words = words[1:]
    if len(words) > 2 and words[1] == b"BATCH":
        return (1, 0) if words[2].startswith(b"+") else (0, 1)
    return (0, 0)


def _one_batch(lines: list[bytes]) -> bool:
    """Is the whole answer one batch (opened by its first line, closed by its last)?"""
    if _batch_edge(lines[0]) != (1, 0) or _batch_edge(lines[-1]) != (0, 1):
        return False
    depth = 0
    for line in lines[:-1]:
        starts, ends = _batch_edge(line)
        depth += starts - ends
        if depth == 0:
            return False
    return True


def _tagged(line: bytes, tag: bytes) -> bytes:
    """``line`` with ``tag`` (``@key=value``) added to its tags."""
    if line.startswith(b"@"):
        return tag + b";" + line[1:]
    return tag + b" " + line



# -- registration commands ------------------------------------------------------------


@command("CAP")
def irc_cap(self: IRCProtocol, message: Message) -> None:
    params = message.params
    sub = params[0].upper() if params else ""
    offered = self.factory.caps
    if sub == "LS":
        if self.session.member is None:
            self._negotiating = True
        version = int(params[1]) if len(params) > 1 and params[1].isdigit() else 0
        self.cap_version = max(self.cap_version, version)
        if self.cap_version >= 302:
            self.caps.add("cap-notify")
        names = [f"{k}={v}" if v and self.cap_version >= 302 else k for k, v in offered.items()]
        self.reply(build(self.server, "CAP", self.nick, "LS", " ".join(names)))
    elif sub == "LIST":
        self.reply(build(self.server, "CAP", self.nick, "LIST", " ".join(sorted(self.caps))))
    elif sub == "REQ":
        if self.session.member is None:
            self._negotiating = True
        wanted = params[1].split() if len(params) > 1 else []
        ok = bool(wanted) and all(name.lstrip("-") in offered for name in wanted)
        if not ok:
            self.reply(build(self.server, "CAP", self.nick, "NAK", " ".join(wanted)))
            return
        for name in wanted:
            if name.startswith("-"):
                self.caps.discard(name[1:])
            else:
                self.caps.add(name)
        self.reply(build(self.server, "CAP", self.nick, "ACK", " ".join(wanted)))
    elif sub == "END":
        if self.sasl_chunks is not None:  # registration ends an unfinished SASL exchange
            self.sasl_chunks = None
            self._numeric(n.ERR_SASLABORTED, "SASL authentication aborted")
        if self._negotiating:
            self._negotiating = False
            self._try_register()
    else:
        self._numeric(n.ERR_INVALIDCAPCMD, sub or "*", "Invalid CAP command")


@command("PASS")
def irc_pass(self: IRCProtocol, message: Message) -> None:
    if self.session.member is not None:
        self._numeric(n.ERR_ALREADYREGISTERED, "You may not reregister")
    elif not message.params:
        self._numeric(n.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")
    else:
        # No server password: PASS is the registered nickname's password, if it is one.
        self._password = message.params[0]


@command("USER")
def irc_user(self: IRCProtocol, message: Message) -> None:
    if self.session.member is not None or self._user is not None:
        self._numeric(n.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    if len(message.params) < 4 or not message.params[0]:
        self._numeric(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    self._user = message.params[0][:32]
    self.realname = user_text(message.params[3])[:100]
    self._try_register()


@command("NICK")
def irc_nick(self: IRCProtocol, message: Message) -> Deferred[None] | None:
    if not message.params or not message.params[0].strip():
        self._numeric(n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return None
    raw = message.params[0]
    try:
        nick = nicknames.normalize(raw)
    except NicknameInvalid as e:
        self._numeric(n.ERR_ERRONEUSNICKNAME, raw, f"Erroneous nickname: {e}")
        return None
    chat = self.factory.chat
    member = self.session.member
    if member is None:
        if self._registering:
            return None  # the claim of the last one is on its way
        holder = chat.names.lookup(nicknames.key(nick))
        if holder is not None:
            self._numeric(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return None
        self._nick = nick
        self._try_register()
        return None
    if nick == member.nick:
        return None
    old = member.nick

    def refused(failure: Failure) -> None:
        failure.trap(ChatError)
        if failure.check(NicknameTaken):
            self._numeric(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        else:
            self._numeric(n.ERR_ERRONEUSNICKNAME, nick, f"Erroneous nickname: {failure.value}")

    renamed: Deferred[None] = chat.rename(member, nick).addCallbacks(
        lambda new: self.cmd_renamed(old, new), refused
    )
    return renamed


@command("PING")
def irc_ping(self: IRCProtocol, message: Message) -> None:
    if not message.params:
        self._numeric(n.ERR_NEEDMOREPARAMS, "PING", "Not enough parameters")
        return
    self.reply(build(self.server, "PONG", self.server, message.params[0]))


@command("PONG")
def irc_pong(self: IRCProtocol, message: Message) -> None:
    pass  # being heard is enough (``_last_seen``)


@command("QUIT")
def irc_quit(self: IRCProtocol, message: Message) -> None:
    text = user_text(message.params[0])[:AWAY_LENGTH] if message.params else ""
    member = self.session.member
    if member is None:
        self.session.say_goodbye(None)
        return
    self.session.quit(member, text)


# -- channels ---------------------------------------------------------------------------


@command("JOIN")
def irc_join(self: IRCProtocol, message: Message) -> Deferred[None] | None:
    if not message.params or not message.params[0]:
        self._numeric(n.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
        return None
    member = self.session.member
    assert member is not None
    chat = self.factory.chat
    if message.params[0] == "0":
        for room in chat.directory.rooms_of(member.id):
            chat.part(member, room)
            self.cmd_parted(room, None)
        return None
    names = []
    keys = message.params[1].split(",") if len(message.params) > 1 else []
    for index, raw in enumerate(message.params[0].split(",")):
        key = keys[index] if index < len(keys) else ""
        if not raw.startswith("#"):
            self._numeric(n.ERR_NOSUCHCHANNEL, raw, "No such channel")
            continue
        try:
            names.append((roomnames.normalize(raw, chat.rules.max_name), key))
        except ChatError as e:
            state = chat.directory.find(raw) if _valid_key(raw) else None
            if state is not None:
                names.append((state.name, key))
            else:
                self._numeric(n.ERR_BADCHANNAME, raw, f"Illegal channel name: {e}")
    if not names:
        return None
    return ensureDeferred(_join_all(self, member, names))


def _valid_key(raw: str) -> bool:
    try:
        roomnames.normalize(raw)
    except ChatError:
        return False
    return True


async def _join_all(self: IRCProtocol, member: Member, names: list[tuple[str, str]]) -> None:
    services = self.factory.services
    recent = services.recent
    chat = services.chat
    for name, key in names:
        if recent is not None:
            await recent.load(name)
        if not member.present:
            return
        try:
            state, entered = chat.enter(member, name, key)
        except RoomLimit as e:
            self._numeric(n.ERR_TOOMANYCHANNELS, name, str(e))
            continue
        except ChatError as e:
            refused = join_refusal(e)
            if refused is not None:
                self._numeric(refused[0], name, refused[1])
            else:
                self._numeric(n.ERR_BADCHANNAME, name, str(e))
            continue
        if entered:
            self.show_joined(member, state, self.session.replay(state.name, member))


@command("PART")
def irc_part(self: IRCProtocol, message: Message) -> None:
    if not message.params or not message.params[0]:
        self._numeric(n.ERR_NEEDMOREPARAMS, "PART", "Not enough parameters")
        return
    member = self.session.member
    assert member is not None
    reason = user_text(message.params[1]) if len(message.params) > 1 else ""
    for raw in message.params[0].split(","):
        state = self.room_or_error(raw)
        if state is None:
            continue
        name = self.factory.chat.part(member, state.name, reason)
        if reason:
            self.reply(build(source(member.nick), "PART", name, reason))
        else:
            self.cmd_parted(name, member.current)


@command("NAMES")
def irc_names(self: IRCProtocol, message: Message) -> None:
    if not message.params or not message.params[0]:
        self._numeric(n.ERR_NOSUCHCHANNEL, "*", "End of /NAMES list")
        return
    for raw in message.params[0].split(","):
        state = self.factory.chat.directory.find(raw) if raw.startswith("#") else None
        if state is None:
            self._numeric(n.RPL_ENDOFNAMES, raw, "End of /NAMES list")
        else:
            self.names(state)


@command("TOPIC")
def irc_topic(self: IRCProtocol, message: Message) -> None:
    if not message.params:
        self._numeric(n.ERR_NEEDMOREPARAMS, "TOPIC", "Not enough parameters")
        return
    member = self.session.member
    assert member is not None
    if len(message.params) == 1:
        state = self.room_or_error(message.params[0], must_be_in=False)
        if state is None:
            return
        if "s" in state.modes and member.id not in state.members:
            self._numeric(n.ERR_NOTONCHANNEL, state.name, "You're not on that channel")
            return
        self.cmd_topic(state)
        return
    state = self.room_or_error(message.params[0])
    if state is None:
        return
    chat = self.factory.chat
    text = user_text(message.params[1])[: chat.rules.max_topic]
    if "t" in state.modes and not chat.guard.is_operator(member, state):  # or a server operator
        self._numeric(n.ERR_CHANOPRIVSNEEDED, state.name, "You're not channel operator")
        return
    try:
        chat.set_topic(member, state.name, text)
    except CannotSpeak as e:  # muted, or voiceless in +m
        self._numeric(n.ERR_CANNOTSENDTOCHAN, state.name, speak_refusal(e))
        return
    self.reply(build(source(member.nick), "TOPIC", state.name, text))


@command("LIST")
def irc_list(self: IRCProtocol, message: Message) -> None:
    member = self.session.member
    assert member is not None
    wanted = None
    if message.params and message.params[0].startswith("#"):
        wanted = {roomnames.key(name) for name in message.params[0].split(",") if _valid_key(name)}
    rows = [
        (state.name, len(state.members), state.topic)
        for state in self.factory.chat.directory.rooms()
        if ("s" not in state.modes or member.id in state.members)
        and (wanted is None or roomnames.key(state.name) in wanted)
    ]
    rows.sort(key=lambda row: (-row[1], roomnames.key(row[0])))
    self._list(rows)


# -- talking ---------------------------------------------------------------------------


@command("PRIVMSG", "NOTICE")
def irc_privmsg(self: IRCProtocol, message: Message) -> None:
    command_name = message.command
    params = message.params
    # "automatic replies MUST NEVER be sent in response to a NOTICE", errors included
    error = self._numeric if command_name == "PRIVMSG" else _no_reply
    if not params or not params[0]:
        error(n.ERR_NORECIPIENT, f"No recipient given ({command_name})")
        return
    if len(params) < 2 or not params[1]:
        error(n.ERR_NOTEXTTOSEND, "No text to send")
        return
    member = self.session.member
    assert member is not None
    text = params[1]
    action = False
    if text.startswith("\x01"):
        inner = text[1:].rstrip("\x01")
        verb, _, rest = inner.partition(" ")
        if verb.upper() != "ACTION":
            return  # other CTCP (VERSION, DCC, ...) is not relayed: nobody else speaks it
        action, text = True, rest
    text = user_text(text)
    if not text or text.isspace():
        return
    chat = self.factory.chat
    self._notice = command_name == "NOTICE"
    for target in params[0].split(",")[:TARGETS]:
        if target.startswith("#"):
            state = chat.directory.find(target)
            if state is None:
                error(n.ERR_NOSUCHCHANNEL, target, "No such channel")
            elif member.id not in state.members:
                error(n.ERR_CANNOTSENDTOCHAN, state.name, "Cannot send to channel")
            else:
                try:
                    (chat.act if action else chat.say)(member, text, state.name)
                except ChatError as e:  # moderated, or muted
                    error(n.ERR_CANNOTSENDTOCHAN, state.name, speak_refusal(e))
            continue
        holder = chat.names.lookup(nicknames.key(target)) if _valid_nick(target) else None
        if holder is None:
            error(n.ERR_NOSUCHNICK, target, "No such nick/channel")
            continue
        chat.whisper(member, target, "/me " + text if action else text)
        away = self.factory.away_message(holder[1])
        if away is not None and command_name == "PRIVMSG":
            self._numeric(n.RPL_AWAY, holder[0], away)


def _no_reply(code: str, *params: str) -> None:
    """What a NOTICE gets in place of an error numeric."""


def _valid_nick(raw: str) -> bool:
    try:
        nicknames.normalize(raw)
    except ChatError:
        return False
    return True


@command("TAGMSG")
def irc_tagmsg(self: IRCProtocol, message: Message) -> None:
    pass  # client-only tags (typing, reactions) are not carried by the rooms


@command("AWAY")
def irc_away(self: IRCProtocol, message: Message) -> None:
    text = user_text(message.params[0])[:AWAY_LENGTH] if message.params else ""
    self.away = text or None
    if self.away is None:
        self._numeric(n.RPL_UNAWAY, "You are no longer marked as being away")
    else:
        self._numeric(n.RPL_NOWAWAY, "You have been marked as being away")
    member = self.session.member
    assert member is not None
    self.factory.tell_away(self, member)


# -- who is who ---------------------------------------------------------------------------


@command("WHO")
def irc_who(self: IRCProtocol, message: Message) -> None:
    mask = message.params[0] if message.params else "*"
    chat = self.factory.chat
    me = self.session.member
    assert me is not None
    rows: list[tuple[str, str, str, str]] = []  # channel, member id, nick, prefixes
    multi = "multi-prefix" in self.caps
    if mask.startswith("#"):
        state = chat.directory.find(mask)
        if state is not None and ("s" not in state.modes or me.id in state.members):
            rows = [(state.name, member_id, nick, prefixes(state, member_id, multi))
                    for member_id, nick in state.members.items()]
    elif _valid_nick(mask):
        holder = chat.names.lookup(nicknames.key(mask))
        if holder is not None:
            rows = [("*", holder[1], holder[0], "")]
    out = []
    operators = chat.directory.server_operators
    for channel, member_id, nick, marks in rows:
        flags = ("G" if self.factory.away_message(member_id) is not None else "H")
        flags += ("*" if member_id in operators else "") + marks
        out.append(build(self.server, n.RPL_WHOREPLY, self.nick, channel, nick, "chatroom",
                         self.server, nick, flags, "0 " + self.factory.realname(member_id, nick)))
    self.reply(b"".join(out))
    self._numeric(n.RPL_ENDOFWHO, mask, "End of /WHO list")


@command("WHOIS")
def irc_whois(self: IRCProtocol, message: Message) -> None:
    if not message.params:
        self._numeric(n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    target = message.params[-1].split(",")[0]
    chat = self.factory.chat
    holder = chat.names.lookup(nicknames.key(target)) if _valid_nick(target) else None
    if holder is None:
        self._numeric(n.ERR_NOSUCHNICK, target, "No such nick/channel")
        self._numeric(n.RPL_ENDOFWHOIS, target, "End of /WHOIS list")
        return
    nick, member_id = holder
    me = self.session.member
    assert me is not None
    self._numeric(n.RPL_WHOISUSER, nick, nick, "chatroom", "*",
                  self.factory.realname(member_id, nick))
    rooms = []
    for name in chat.directory.rooms_of(member_id):
        state = chat.directory.find(name)
        if state is None or ("s" in state.modes and me.id not in state.members):
            continue
        rooms.append(prefixes(state, member_id, "multi-prefix" in self.caps) + state.name)
    if rooms:
        self._numeric(n.RPL_WHOISCHANNELS, nick, " ".join(rooms))
    self._numeric(n.RPL_WHOISSERVER, nick, self.server, self.factory.info.network)
    if member_id in chat.directory.server_operators:
        self._numeric(n.RPL_WHOISOPERATOR, nick, "is an IRC operator")
    local = chat.local(member_id)
    if local is not None and local.account is not None:
        self._numeric(n.RPL_WHOISACCOUNT, nick, local.account, "is logged in as")
    away = self.factory.away_message(member_id)
    if away is not None:
        self._numeric(n.RPL_AWAY, nick, away)
    self._numeric(n.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")


@command("ISON")
def irc_ison(self: IRCProtocol, message: Message) -> None:
    names = self.factory.chat.names
    present = []
    for word in " ".join(message.params).split():
        holder = names.lookup(nicknames.key(word)) if _valid_nick(word) else None
        if holder is not None:
            present.append(holder[0])
    self._numeric(n.RPL_ISON, " ".join(present))


@command("USERHOST")
def irc_userhost(self: IRCProtocol, message: Message) -> None:
    names = self.factory.chat.names
    replies = []
    for word in message.params[:5]:
        holder = names.lookup(nicknames.key(word)) if _valid_nick(word) else None
        if holder is not None:
            away = "-" if self.factory.away_message(holder[1]) is not None else "+"
            replies.append(f"{holder[0]}={away}{holder[0]}@chatroom")
    self._numeric(n.RPL_USERHOST, " ".join(replies))


# -- about the server ---------------------------------------------------------------------


@command("MOTD")
def irc_motd(self: IRCProtocol, message: Message) -> None:
    self._motd(self.nick)


@command("LUSERS")
def irc_lusers(self: IRCProtocol, message: Message) -> None:
    chat = self.factory.chat
    people = len(chat.names.members())
    self._numeric(n.RPL_LUSERCLIENT, f"There are {people} users and 0 invisible on 1 servers")
    self._numeric(n.RPL_LUSERCHANNELS, str(len(chat.directory)), "channels formed")
    self._numeric(n.RPL_LUSERME, f"I have {len(self.factory.connections)} clients and 0 servers")
    here, most_here, everyone, most = self.factory.counts()
    self._numeric(n.RPL_LOCALUSERS, str(here), str(most_here),
                  f"Current local users {here}, max {most_here}")
    self._numeric(n.RPL_GLOBALUSERS, str(everyone), str(most),
                  f"Current global users {everyone}, max {most}")


@command("VERSION")
def irc_version(self: IRCProtocol, message: Message) -> None:
    self._numeric(n.RPL_VERSION, VERSION, self.server, "chatroom's IRC front end")
    self.reply(self._isupport(self.nick))


@command("TIME")
def irc_time(self: IRCProtocol, message: Message) -> None:
    now = datetime.fromtimestamp(self._clock.seconds(), UTC)
    self._numeric(n.RPL_TIME, self.server, now.strftime("%A %B %d %Y -- %H:%M:%S +00:00"))
