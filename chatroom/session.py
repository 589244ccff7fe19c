"""One person on one connection, whatever the wire: the part every front end shares.

A front end's protocol turns bytes into text and calls its ``Session``; the session turns
the text into calls of the chat (choosing a nickname, a command, a line to the current
room), keeps the connection's timers (nickname and idle timeouts), its flood control and
its reason for leaving, and tells the protocol what to show through the ``Port`` it
implements. So the line, web and IRC adapters only translate bytes, and a rule changed here
holds on every front end at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from twisted.internet import error as net_error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.accounts.passwords import DEFAULT_COST, Cost
from chatroom.accounts.service import Accounts
from chatroom.accounts.setup import equip
from chatroom.accounts.statedb import StateStore
from chatroom.admission import Admission
from chatroom.commands import Commands, Replies
from chatroom.domain.chat import Chat, Member, RoomRules
from chatroom.domain.directory import RoomState
from chatroom.domain.errors import Abandoned, ChatError
from chatroom.domain.moderation import Moderation
from chatroom.entry import EntryPacer
from chatroom.gate import InputGate
from chatroom.history.recent import RecentRecords
from chatroom.history.store import IHistory, Record
from chatroom.hubs.local import LocalHub, LocalNicknames
from chatroom.limits import Limits
from chatroom.lines.fanout import Fanout, Recipient
from chatroom.logs import RateLimitedLog
from chatroom.ports import IHub, INicknames

if TYPE_CHECKING:
    from chatroom.reload import Reloader


@dataclass(eq=False)
class Services:
    """What the sessions of every front end share: the chat and the server's limits."""

    chat: Chat
    limits: Limits
    clock: IReactorTime
    commands: Commands
    warnings: RateLimitedLog
    history: IHistory | None = None
    recent: RecentRecords | None = None
    admission: Admission | None = None
    """Every front end's connections, counted once; without one, these services count
    their own (front ends tested alone)."""
    moderation: Moderation | None = None
    """Operators, bans, mutes, modes: made here (``accounts.setup``), commands added."""
    accounts: Accounts | None = None
    """Password sign-ins (``/oper``), made with ``moderation``."""
    operators: dict[str, str] = field(default_factory=dict)
    """The server operators (``--opers``): name -> Argon2id hash."""
    password_cost: Cost = DEFAULT_COST
    state: StateStore | None = None
    """Where accounts, registered rooms and server bans outlive the process (``--state``)."""
    sessions: set[Session] = field(default_factory=set, repr=False)
    """Every session of every front end, from its start until its connection is lost: a
    reload gives each the new limits. (Not a ``WeakSet``: its weak reference was 80 bytes
    a connection.)"""
    reloader: Reloader | None = None
    """What reads the configuration again (SIGHUP; ``/rehash`` for server operators)."""
    motd: list[str] | None = None
    """The message of the day (``--motd``), shown after the welcome; ``None``: not set."""
    entry: EntryPacer | None = None
    """Paces the input of clients who have not signed in yet (``chatroom.entry``)."""

    def __post_init__(self) -> None:
        if self.entry is None:
            self.entry = EntryPacer(self.clock)
        if self.admission is None:
            self.admission = Admission(self.limits, self.clock)
        if self.moderation is None:
            self.moderation, self.accounts = equip(self)

    def admission_screen(self, screen: Callable[[str | None], str | None]) -> None:
        assert self.admission is not None
        self.admission.screen = screen

    @classmethod
    def create(
        cls,
        clock: IReactorTime,
        limits: Limits,
        hub: IHub | None = None,
        names: INicknames | None = None,
        history: IHistory | None = None,
        recent: RecentRecords | None = None,
        default_room: str = "#lobby",
    ) -> Services:
        """The chat and what goes with it, on an in-process hub unless given one; ``recent``
        is subscribed to the hub here. (The server wires the same in ``tap``.)"""
        hub = hub if hub is not None else LocalHub()
        if names is None:
            names = cast(INicknames, hub) if INicknames.providedBy(hub) else LocalNicknames()
        rules = RoomRules(limits.max_rooms, limits.max_rooms_per_member, limits.max_room_name,
                          limits.max_topic)
        chat = Chat(hub, names, clock, default_room=default_room, rules=rules)
        if recent is not None:
            if recent.exists is None:
                recent.exists = chat.directory.find
            hub.subscribe(recent)
        commands = Commands(chat, limits, history, recent)
        return cls(chat, limits, clock, commands, RateLimitedLog(_log, clock), history, recent)


_log = Logger()


class Port(Replies, Protocol):
    """What a session needs of its protocol: reading, showing, closing.

    A protocol that keeps a limit per connection (a line cap, an output cap) also defines
    ``apply_limits(limits)``: a reload calls it, so the new limits hold for it at once.
    """

    def pause_reading(self) -> None: ...

    def still_open(self) -> bool:
        """Neither closed nor closing: a nickname claim that comes back may still join."""

    def resume_reading(self) -> None:
        """Read again, and handle what waited."""

    def show_prompt(self) -> None: ...

    def show_password_prompt(self, nick: str) -> None:
        """``nick`` is registered: ask for its password (a telnet's echo off)."""

    def password_given(self) -> None:
        """The password has been read (a telnet's echo back on)."""

    def show_error(self, why: str, about: str) -> None: ...

    def show_welcome(self, member: Member, room: RoomState, replay: list[Record]) -> None:
        """``member`` is in: the replay of its first room, then a welcome."""

    def show_help(self) -> None: ...

    def close_normally(self, goodbye: str) -> None:
        """Say ``goodbye`` and close once it has been sent."""

    def close_with_error(self, why: str, reason: str) -> None:
        """Say ``why`` as an error and close (a timeout, a broken rule: ``reason``)."""

    def abort(self) -> None:
        """Cut the connection now."""


class Session:
    """A person on one connection: chooses a nickname, then talks, until it leaves."""

    __slots__ = ("_asking", "_clock", "_gone", "_last_active", "_timer",
                 "closing", "fanout", "gate", "host", "kind", "leave_reason", "member", "peer",
                 "port", "recipient", "services", "tally")

    _log = Logger()

    def __init__(
        self,
        services: Services,
        port: Port,
        fanout: Fanout,
        recipient: Recipient,
        peer: str,
        kind: str = "",
        host: str | None = None,
    ) -> None:
        self.services = services
        self.port = port
        self.fanout = fanout
        self.tally = fanout.tally  # this front end's counts (chatroom.stats)
        self.recipient = recipient
        self.peer = peer
        self.host = host  # the peer's address, for bans
        self.kind = kind  # " (web)" in log lines of the web front end
        self.member: Member | None = None
        self.leave_reason: str | None = None
        self.closing = False
        limits = services.limits
        self._clock = services.clock
        self.gate = InputGate(limits.rate, limits.burst, services.clock, self, services.entry)
        self._timer: IDelayedCall | None = None
        self._last_active = 0.0
        self._gone = False
        self._asking: str | None = None  # the registered nickname whose password is asked
        services.sessions.add(self)

    @property
    def joined(self) -> bool:
        member = self.member
        return member is not None and member.present

    # -- life ---------------------------------------------------------------------

    def start(self) -> None:
        """The connection is open: the nickname timer starts."""
        timeout = self.services.limits.nick_timeout
        if timeout > 0:
            self._timer = self._clock.callLater(timeout, self._nick_timed_out)

    def lost(self, why: str) -> None:
        """The connection is gone (``why`` unless a reason was set before)."""
        self._gone = True
        self.services.sessions.discard(self)
        self.gate.close()
        self._cancel_timers()
        why = self.leave_reason or why
        if self.joined:
            if self.services.entry is None:
                self.leave(why)
            else:  # in a reset storm, leavers take turns (chatroom.entry)
                self.services.entry.depart(lambda: self.leave(why))
        elif self.member is None:
            self._log.info("{peer} closed before joining ({reason})", peer=self.peer, reason=why)

    def shutdown(self) -> None:
        """The server is stopping; the protocol says so and closes."""
        self.leave_reason = "server shutdown"
        self.closing = True

    def overflowed(self, queued: int) -> None:
        """More output is waiting than ``max_out``: this client stopped reading."""
        self.leave_reason = "slow reader"
        self.tally.slow_readers += 1
        self._log.warn(
            "dropping {peer}: {queued} bytes of output unread (max {cap})",
            peer=self.peer, queued=queued, cap=self.services.limits.max_out,
        )
        self.leave("slow reader")
        self.port.abort()

    def bug(self, failure: Failure) -> None:
        """Something raised that should not have: log it, drop only this connection."""
        self._log.failure("handling input from {peer}", failure, peer=self.peer)
        self.leave_reason = "server error"
        self.port.abort()

    def apply_limits(self, limits: Limits, before: Limits) -> None:
        """The server's limits changed from ``before`` to ``limits`` (a reload): flood
        control follows from the next line, a changed idle timeout counts from now, and
        the front end's own caps follow if it keeps any (its port's ``apply_limits``)."""
        self.gate.set_rate(limits.rate, limits.burst)
        if limits.idle_timeout != before.idle_timeout and self.joined and not self.closing:
            self._cancel_timers()
            if limits.idle_timeout > 0:
                self._last_active = self._clock.seconds()
                self._timer = self._clock.callLater(limits.idle_timeout, self._check_idle)
        apply = getattr(self.port, "apply_limits", None)
        if apply is not None:
            apply(limits)

    def still_here(self) -> bool:
        return not (self._gone or self.closing) and self.port.still_open()

    # -- input ----------------------------------------------------------------------

    def text(self, text: str, typed: str | None = None) -> None:
        """A line the person typed, decoded and sanitised; ``typed`` is the same before
        sanitising, where it may differ: a nickname is checked as typed (to join, or in
        ``/nick``), never cleaned into another."""
        self.tally.lines_in += 1
        member = self.member
        if member is None:
            if self._asking is not None:
                self.password(text if typed is None else typed)
            elif text.startswith("/"):
                self._before_joining(text)
            else:
                self.choose(text if typed is None else typed)
            return
        if not member.present:
            return  # left (quit, dropped) with more of its input still buffered
        if self.services.limits.idle_timeout > 0:
            self._last_active = self._clock.seconds()
        if not text or text.isspace():
            return
        try:
            if text[0] != "/":
                self.services.chat.say(member, text)
            elif text[:2] == "//":
                self.services.chat.say(member, text[1:])
            else:
                # What the room already said goes out first, shaped for the room this
                # member talks in now: a command may change it (/join, /part).
                self.fanout.flush_for(member.id)
                self.services.commands.run(member, text, self.port, typed)
        except ChatError as e:
            self.refuse(str(e), "command")

    def active(self) -> None:
        """The member did something (a front end without ``text``, such as IRC, says so):
        the idle timeout starts again."""
        if self.services.limits.idle_timeout > 0:
            self._last_active = self._clock.seconds()

    def nick(self, raw: str) -> None:
        """An explicit nickname request (the web's ``nick`` message)."""
        self.tally.lines_in += 1
        member = self.member
        if member is None:
            self.choose(raw)
        elif member.present:
            if self.services.limits.idle_timeout > 0:
                self._last_active = self._clock.seconds()
            self.services.commands.run(member, "/nick " + raw, self.port)

    def _before_joining(self, text: str) -> None:
        name = text[1:].split(" ", 1)[0].lower()
        if name == "quit":
            self.say_goodbye(None)
        elif name == "help":
            self.port.show_help()
            self.port.show_prompt()
        else:
            self.refuse("choose a nickname first (or /quit)", "state")
            self.port.show_prompt()

    def choose(self, raw: str, account: str | None = None) -> None:
        """Take the nickname ``raw``; ``account`` is one the front end already proved
        the person to be (IRC's SASL): its own registered nickname asks no password."""
        accounts = self.services.accounts
        self._asking = None
        if accounts is not None and account is None:
            self._asking = accounts.asks_password(raw)
        if self._asking is not None:
            self.port.show_password_prompt(self._asking)
            return
        signing_in = self.services.chat.sign_in(raw, self.still_here, account)
        self.wait_for(signing_in.addCallbacks(self._signed_in, self._nickname_refused))

    def password(self, password: str) -> None:
        """The password of the registered nickname just chosen (the line after the
        prompt); wrong, it is a new nickname prompt."""
        name, self._asking = self._asking, None
        self.port.password_given()
        accounts = self.services.accounts
        if name is None or accounts is None:
            return
        checking = accounts.check(name, password, self.host)
        checking.addCallback(self._password_checked, name)
        self.wait_for(checking.addErrback(self._nickname_refused))

    def _password_checked(self, account: str | None, name: str) -> Deferred[None] | None:
        if account is None:
            self.refuse(f"wrong password for {name}", "nick")
            self.port.show_prompt()
            return None
        signing_in = self.services.chat.sign_in(name, self.still_here, account)
        return signing_in.addCallbacks(self._signed_in, self._nickname_refused)

    def _signed_in(self, member: Member) -> Deferred[None]:
        if not self.still_here():
            self.services.chat.quit(member, "closed while joining")
            return succeed(None)
        recent = self.services.recent
        room = self.services.chat.default_room
        loading = recent.load(room) if recent is not None else succeed(None)
        return loading.addCallback(lambda _: self._enter_first_room(member))

    def _enter_first_room(self, member: Member) -> None:
        chat = self.services.chat
        if not self.still_here():
            chat.quit(member, "closed while joining")
            return
        self._cancel_timers()
        member.host = self.host
        self.fanout.add(member, self.recipient)
        try:
            room, _ = chat.enter(member, chat.default_room)
        except ChatError as e:  # banned from the default room: as if the nickname were
            self.fanout.remove(member.id)
            chat.quit(member, "refused")
            self.refuse(str(e), "nick")
            self.port.show_prompt()
            return
        moderation = self.services.moderation
        if moderation is not None:
            moderation.attach(member, self)
        replay = self.replay(room.name, member)
        self.port.show_welcome(member, room, replay)
        self.gate.entered()
        self._log.info("{nick} joined from {peer}{kind}", nick=member.nick, peer=self.peer,
                       kind=self.kind)
        # Only now: the replay and the welcome above go out at once, not behind the room's
        # pending lines (which this member gets only from its join on anyway).
        self.member = member
        idle = self.services.limits.idle_timeout
        if idle > 0:
            self._last_active = self._clock.seconds()
            self._timer = self._clock.callLater(idle, self._check_idle)

    def replay(self, room: str, member: Member) -> list[Record]:
        """What was said in ``room`` before ``member`` joined it: read in the same turn as
        the join, so every line is in the replay or comes live, none twice."""
        recent = self.services.recent
        count = self.services.limits.history_replay
        if recent is None or count <= 0:
            return []
        return recent.last(room, count, joining=member.id)

    def _nickname_refused(self, failure: Failure) -> None:
        if failure.check(Abandoned):
            return  # gone while the claim was in flight: nobody to tell
        failure.trap(ChatError)
        self.refuse(str(failure.value), "nick")
        self.port.show_prompt()

    def wait_for(self, result: Deferred[Any]) -> None:
        """Read nothing more from this client until ``result`` has fired."""
        self.gate.wait_for(result, self.bug)

    def pause_reading(self) -> None:
        self.port.pause_reading()

    def resume_reading(self) -> None:
        self.port.resume_reading()

    def flooding(self, rate: float) -> None:
        self.tally.refused["flood"] += 1
        self.services.warnings.warn("slowing {peer}: over {rate} lines/s", peer=self.peer,
                                    rate=rate)

    # -- output and leaving -----------------------------------------------------------

    def refuse(self, why: str, what: str) -> None:
        """Tell the sender what was wrong, and the log (at a bounded rate). ``what`` is
        what was refused (``line``, ``nick``, ``command``...), from code, never from input:
        it names a metric's label."""
        self.tally.refused[what] += 1
        self.port.show_error(why, what)
        self.services.warnings.warn(
            "refused input from {peer} ({what}): {why}", what=what, peer=self.peer, why=why
        )

    def say_goodbye(self, nick: str | None) -> None:
        self.leave_reason = self.leave_reason or "quit"
        self.closing = True
        self._cancel_timers()
        self.port.close_normally(f"goodbye, {nick}" if nick else "goodbye")

    def quit(self, member: Member, message: str = "") -> None:
        """``/quit``: leave (saying ``message``, if any), say goodbye, close."""
        self.leave("quit", message)
        self.say_goodbye(member.nick)

    def _close(self, why: str, reason: str) -> None:
        self.leave_reason = reason
        self.closing = True
        self._cancel_timers()
        self.port.close_with_error(why, reason)

    def leave(self, reason: str, message: str = "") -> None:
        """Leave every room and the server (``message``: what the member said on leaving);
        what is on its way to this member (answers too) still reaches it."""
        member = self.member
        if member is None or not member.present:
            return
        fanout = self.fanout
        if self._gone:
            # Nothing reaches a lost connection, so its departure need not write anybody's
            # lines early: a flush per departure made a reset storm of 5000 among 10 000
            # one pass over the room per line (issue 17).
            fanout.lost(member.id)
        else:
            fanout.flush_for(member.id)
        if self.services.moderation is not None:
            self.services.moderation.detach(member)
        self.services.chat.quit(member, reason, message)
        fanout.remove(member.id)
        self._log.info("{nick} left ({reason}) from {peer}{kind}", nick=member.nick,
                       reason=reason, peer=self.peer, kind=self.kind)

    def evict(self, why: str, reason: str) -> None:
        """Moderation closes this connection (``/kill``, a server ban): ``why`` is told."""
        self._leave_and_close(why, reason)

    def _leave_and_close(self, why: str, reason: str) -> None:
        """Leave first, then say ``why`` and close: what the rooms still owe this member
        goes out as it leaves, and ``why`` after it. (Closed first, a web page's close
        frame went ahead of both, and the bytes written after it were dropped.)"""
        self.leave(reason)
        self._close(why, reason)

    def _nick_timed_out(self) -> None:
        self._timer = None
        seconds = self.services.limits.nick_timeout
        self._close(f"no nickname chosen in {seconds:g} seconds; goodbye", "nickname timeout")

    def _check_idle(self) -> None:
        idle = self.services.limits.idle_timeout
        quiet = self._clock.seconds() - self._last_active
        if quiet < idle:
            self._timer = self._clock.callLater(idle - quiet, self._check_idle)
            return
        self._timer = None
        self._leave_and_close(f"idle for {idle:g} seconds; goodbye", "idle timeout")

    def _cancel_timers(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def describe_peer(address: IAddress | None) -> str:
    """``host:port`` (``[host]:port`` for IPv6) for logs, whatever the address type."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None:
        return type(address).__name__ if address is not None else "unknown"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_loss(reason: Failure) -> str:
    """Why a connection went, in a word or two, for logs and history."""
    if reason.check(net_error.ConnectionDone):
        return "closed"
    if reason.check(net_error.ConnectionLost):
        return "connection lost"
    return reason.getErrorMessage()
