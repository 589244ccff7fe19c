"""Moderation: who runs a room, and what they may do to it and its members.

``Moderation`` is the chat's ``Guard`` (who may enter a room, talk in it, run it) and the
API every front end calls for operators' actions: the slash commands
(``chatroom.moderation_commands``) and an IRC front end's MODE, KICK and INVITE alike.
Each action checks permissions here, on the node of the member who asked, then publishes
an event (``ModeSet``, ``RoleSet``, ``MaskSet``, ``Invited``, a ``Left`` with ``by``,
``Killed``, ``ServerBanSet``); every node's directory applies it (``roommodes``), so the
same rules hold on every node at once. What must happen to a member (removed by a ban,
disconnected by ``/kill`` or a server ban) is done by the node that holds the member, when
the event reaches it.

Every action is logged (``audit: ...``) with who did it (nickname, account, server
operator name, address), to whom, where and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.domain import masks, nicknames
from chatroom.domain.chat import Chat, Member
from chatroom.domain.directory import RoomState
from chatroom.domain.errors import (
    BadKey,
    BadMask,
    Banned,
    CannotSpeak,
    ChatError,
    InviteOnly,
    MemberNotInRoom,
    Muted,
    NicknameRegistered,
    NicknameTaken,
    NoSuchMember,
    NoSuchRoom,
    NotInRoom,
    NotOperator,
    NotServerOperator,
    RoomFull,
)
from chatroom.domain.events import (
    Event,
    Invited,
    Joined,
    Killed,
    Left,
    MaskSet,
    ModeSet,
    Opered,
    RoleSet,
    RoomRegistered,
    ServerBanSet,
)
from chatroom.domain.roommodes import FLAGS, WITH_ARGUMENT, Entry, ServerBan, shown_modes, snapshot

SERVER_BANNED = "you are banned from this server"

MAX_KEY = 32
"""Characters a room's key (``+k``) may have."""

MAX_LIMIT = 100_000
"""The largest member limit (``+l``)."""

MAX_MODE_CHANGES = 12
"""Changes one ``/mode`` may make by default (``--max-mode-changes``). Each is a line to
the room, an audit line and (with Redis) an entry on the shared stream, and the command
costs one token of flood control."""

class Evictable(Protocol):
    """What holds a member's connection (a session): kept per member, not a bound method
    of it (64 bytes a member)."""

    def evict(self, why: str, reason: str) -> None:
        """Close the connection, telling it ``why`` (an error line), logging ``reason``;
        its leaves are published as for any disconnect."""


@dataclass(frozen=True, slots=True)
class ModeOutcome:
    """What one ``/mode`` did: the changes made, and each change refused with why."""

    done: list[str]
    refused: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Rules:
    """Moderation's limits, from the server's options."""

    max_bans: int = 100
    """Bans one room may hold (and as many mutes); the server as many server bans."""

    max_mode_changes: int = MAX_MODE_CHANGES
    """Changes one mode line may make (each is a broadcast)."""


class Moderation:
    """The chat's guard, and every operator's action, for every front end."""

    _log = Logger()

    def __init__(self, chat: Chat, clock: IReactorTime, rules: Rules | None = None) -> None:
        self.chat = chat
        self.directory = chat.directory
        self.rules = rules or Rules()
        self._clock = clock
        self._evictors: dict[str, Evictable] = {}
        chat.guard = self
        chat.hub.subscribe(self._heard)
        views = getattr(chat.hub, "views", None)
        if isinstance(views, list):  # a shared hub: tell a late node every room's state
            views.append(self.views)
        kept = getattr(chat.hub, "kept", None)
        if isinstance(kept, list):  # ... and trade server bans with a node that comes back
            kept.append(self.kept)

    # -- who is who -------------------------------------------------------------------

    @staticmethod
    def identity(member: Member) -> masks.Identity:
        return masks.Identity(member.nick, member.account, member.host)

    def attach(self, member: Member, connection: Evictable) -> None:
        """``member`` is on this node, and ``connection.evict`` closes its connection."""
        self._evictors[member.id] = connection
        if member.oper is not None:
            self._publish(Opered("", self._now(), member.id, member.nick, member.oper))

    def detach(self, member: Member) -> None:
        self._evictors.pop(member.id, None)

    def make_server_operator(self, member: Member, name: str) -> None:
        """``member`` proved it is the server operator ``name`` (``/oper``)."""
        member.oper = name
        self._publish(Opered("", self._now(), member.id, member.nick, name))
        self.audit(member, "became server operator", name, "", "")

    # -- the chat's guard ---------------------------------------------------------------

    def may_enter(self, member: Member, state: RoomState, key: str) -> None:
        if member.oper is not None:
            return  # a server operator goes everywhere
        who = self.identity(member)
        if any(entry.mask.matches(who) for entry in state.bans.values()):
            raise Banned(state.name)
        modes = state.modes
        invited = member.id in state.invited
        if "i" in modes and not invited:
            raise InviteOnly(state.name)
        if "k" in modes and key != state.key:
            raise BadKey(state.name)
        if "l" in modes and len(state.members) >= state.limit > 0 and not invited:
            raise RoomFull(state.name, state.limit)

    def may_speak(self, member: Member, state: RoomState) -> None:
        if not state.mutes and "m" not in state.modes:
            return
        if self.is_operator(member, state):
            return
        if state.mutes and self._muted(member, state.mutes.values()):
            raise Muted(state.name)
        if "m" in state.modes and member.id not in state.voiced:
            raise CannotSpeak(state.name)

    def _muted(self, member: Member, entries: Iterable[Entry]) -> bool:
        who = self.identity(member)
        return any(member.id in entry.members or entry.mask.matches(who) for entry in entries)

    def is_operator(self, member: Member, state: RoomState) -> bool:
        return member.id in state.operators or member.oper is not None

    reserved: Callable[[str], str | None] = staticmethod(lambda nick: None)
    """The account that owns the nickname ``nick``, if it is registered (set by accounts)."""

    def may_use(self, nick: str, account: str | None) -> None:
        owner = self.reserved(nick)
        if owner is not None and (account is None
                                  or nicknames.key(account) != nicknames.key(owner)):
            if self.chat.names.lookup(nicknames.key(nick)) is not None:
                raise NicknameTaken(nick)  # its owner is here: taken like any other
            raise NicknameRegistered(nick)

    def is_muted(self, member: Member, state: RoomState) -> bool:
        return self._muted(member, state.mutes.values())

    # -- room operators' actions ------------------------------------------------------
    # ``room`` is a room's name as typed, or None for the actor's current room.

    def kick(self, actor: Member, room: str | None, nick: str, reason: str = "") -> str:
        """Take ``nick`` out of the room; returns its nickname as spelled."""
        state = self._run(actor, room)
        target, shown = self._in_room(state, nick)
        self._not_a_server_operator(actor, target, shown, "kick")
        self._publish(Left(state.name, self._now(), target, shown, "kicked", reason,
                           actor.nick))
        self.audit(actor, "kicked", shown, reason, state.name)
        return shown

    def ban(self, actor: Member, room: str | None, raw: str, reason: str = "") -> masks.Mask:
        """Ban ``raw`` (a nickname, ``~a:NAME``, an address, a network) from the room;
        matching members in it are removed (by their own node, as the event reaches it)."""
        state = self._run(actor, room)
        mask = self._settable(actor, raw, "ban")
        if mask.key in state.bans:
            raise ChatError(f"{mask.text} is banned from {state.name} already")
        self._room_for_more(state.bans, f"{state.name} has {self.rules.max_bans} bans")
        target = self._named(state, mask)
        self._publish(MaskSet(state.name, self._now(), actor.id, actor.nick, "+b", mask.text,
                              target, reason))
        self.audit(actor, "banned", mask.text, reason, state.name)
        return mask

    def unban(self, actor: Member, room: str | None, raw: str) -> masks.Mask:
        state = self._run(actor, room)
        mask = masks.parse(raw)
        entry = state.bans.get(mask.key)
        if entry is None:
            raise ChatError(f"{mask.text} is not banned from {state.name} (/bans lists them)")
        self._publish(MaskSet(state.name, self._now(), actor.id, actor.nick, "-b",
                              entry.mask.text))
        self.audit(actor, "unbanned", entry.mask.text, "", state.name)
        return entry.mask

    def bans(self, actor: Member, room: str | None) -> tuple[RoomState, list[Entry]]:
        """A room's bans, oldest first: anyone may read them (a banned member too, to
        learn who banned them and when), but a secret room's only its members."""
        state = self._visible(actor, room)
        return state, sorted(state.bans.values(), key=lambda entry: entry.time)

    def mute(self, actor: Member, room: str | None, raw: str, reason: str = "") -> str:
        """Mute a member (by nickname: the mute stays on them through renames) or a mask."""
        state = self._run(actor, room)
        mask, target = self._person_or_mask(actor, state, raw, "mute")
        if target and self.is_operator_id(target, state):
            raise ChatError(f"{mask.text} is an operator of {state.name}: /deop them first")
        if mask.key in state.mutes or any(target in e.members for e in state.mutes.values()):
            raise ChatError(f"{mask.text} is muted in {state.name} already")
        self._room_for_more(state.mutes, f"{state.name} has {self.rules.max_bans} mutes")
        self._publish(MaskSet(state.name, self._now(), actor.id, actor.nick, "+q", mask.text,
                              target, reason))
        self.audit(actor, "muted", mask.text, reason, state.name)
        return mask.text

    def unmute(self, actor: Member, room: str | None, raw: str) -> str:
        state = self._run(actor, room)
        mask, target = self._person_or_mask(actor, state, raw, "")
        entry = state.mutes.get(mask.key)
        if entry is None and not any(target in e.members for e in state.mutes.values()):
            raise ChatError(f"{mask.text} is not muted in {state.name}")
        self._publish(MaskSet(state.name, self._now(), actor.id, actor.nick, "-q", mask.text,
                              target))
        self.audit(actor, "unmuted", mask.text, "", state.name)
        return mask.text

    def mutes(self, actor: Member, room: str | None) -> tuple[RoomState, list[Entry]]:
        state = self._visible(actor, room)
        return state, sorted(state.mutes.values(), key=lambda entry: entry.time)

    def op(self, actor: Member, room: str | None, nick: str) -> str:
        return self._role(actor, room, nick, "+o")

    def deop(self, actor: Member, room: str | None, nick: str) -> str:
        return self._role(actor, room, nick, "-o")

    def voice(self, actor: Member, room: str | None, nick: str) -> str:
        return self._role(actor, room, nick, "+v")

    def devoice(self, actor: Member, room: str | None, nick: str) -> str:
        return self._role(actor, room, nick, "-v")

    def _role(self, actor: Member, room: str | None, nick: str, change: str) -> str:
        state = self._run(actor, room)
        target, shown = self._in_room(state, nick)
        people = state.operators if change[1] == "o" else state.voiced
        what = "an operator of" if change[1] == "o" else "voiced in"
        if (change[0] == "+") == (target in people):
            raise ChatError(f"{shown} is {'' if change[0] == '+' else 'not '}{what} "
                            f"{state.name}{' already' if change[0] == '+' else ''}")
        if change == "-o":
            self._not_a_server_operator(actor, target, shown, "deop")
        self._publish(RoleSet(state.name, self._now(), actor.id, actor.nick, target, shown,
                              change))
        action = {"+o": "gave operator status to", "-o": "took operator status from",
                  "+v": "gave voice to", "-v": "took voice from"}[change]
        self.audit(actor, action, shown, "", state.name)
        return shown

    def invite(self, actor: Member, room: str | None, nick: str) -> str:
        """Let ``nick`` (anywhere on the server) into the room, past ``+i`` and ``+l``."""
        state = self._run(actor, room)
        holder = self.chat.names.lookup(nicknames.key(nick.strip()))
        if holder is None:
            raise NoSuchMember(nick.strip())
        shown, target = holder
        if target in state.members:
            raise ChatError(f"{shown} is in {state.name} already")
        self._publish(Invited(state.name, self._now(), actor.id, actor.nick, target, shown))
        self.audit(actor, "invited", shown, "", state.name)
        return shown

    def modes(self, actor: Member, room: str | None) -> tuple[RoomState, str]:
        """The room's modes as ``+mtl 10``; its key only to its operators."""
        state = self._visible(actor, room)
        return state, shown_modes(state, with_key=self.is_operator(actor, state))

    def set_modes(self, actor: Member, room: str | None, spec: str,
                  arguments: list[str]) -> list[str]:
        """``apply_modes`` for a caller with one answer: the changes made, when none was
        refused; else a ``ChatError`` that names what was made and what was refused."""
        outcome = self.apply_modes(actor, room, spec, arguments)
        if outcome.refused:
            made = f"made {' '.join(outcome.done)}; " if outcome.done else ""
            refused = "; ".join(f"{change}: {why}" for change, why in outcome.refused)
            raise ChatError(f"{made}refused {refused}")
        return outcome.done

    def apply_modes(self, actor: Member, room: str | None, spec: str,
                    arguments: list[str]) -> ModeOutcome:
        """Apply ``/mode`` flags: ``+mk KEY``, ``-t``, ``+l 10``, ``+o NICK``, ``+b MASK``
        (no sign means ``+``). The flags and their arguments are all checked first: a bad
        one refuses the whole command, nothing changed. Then each change is made or refused
        on its own, as IRC servers do (ergo answers a refused one with its numeric and
        makes the rest): a role for someone not in the room, a mask banned already, is
        refused with why, the others made. A flag that is already so changes nothing."""
        state = self._run(actor, room)
        changes = self._parse_modes(spec, list(arguments))
        done: list[str] = []
        refused: list[tuple[str, str]] = []
        for sign, flag, argument in changes:
            try:
                change = self._one_mode(actor, state, sign, flag, argument)
            except ChatError as e:
                refused.append((f"{sign}{flag} {argument}".rstrip(), str(e)))
                continue
            if change is not None:
                done.append(change)
        return ModeOutcome(done, refused)

    def _one_mode(self, actor: Member, state: RoomState, sign: str, flag: str,
                  argument: str) -> str | None:
        """Make one change of ``/mode``; the change made, or ``None`` if it was so."""
        if flag in "ov":
            self._role(actor, state.name, argument, sign + flag)
        elif flag == "b":
            if sign == "+":
                self.ban(actor, state.name, argument)
            else:
                self.unban(actor, state.name, argument)
        elif flag == "q":
            if sign == "+":
                self.mute(actor, state.name, argument)
            else:
                self.unmute(actor, state.name, argument)
        else:
            change = self._mode_change(state, sign, flag, argument)
            if change is None:
                return None
            self._publish(ModeSet(state.name, self._now(), actor.id, actor.nick, change))
            shown = change if flag != "k" or sign == "-" else "+k"
            self.audit(actor, "set mode", shown, "", state.name)
            return change
        return f"{sign}{flag} {argument}"

    def _parse_modes(self, spec: str, arguments: list[str]) -> list[tuple[str, str, str]]:
        sign = "+"
        changes: list[tuple[str, str, str]] = []
        for char in spec:
            if char in "+-":
                sign = char
                continue
            if char not in FLAGS and char not in "ovbq":
                raise ChatError(f"unknown mode {char}: the modes are {FLAGS}, and o v b q "
                                "with a nickname or a mask")
            argument = ""
            if char in "ovbq" or (char in WITH_ARGUMENT and sign == "+"):
                if not arguments:
                    raise ChatError(f"mode {sign}{char} needs {_ARGUMENTS[char]}")
                argument = arguments.pop(0)
            changes.append((sign, char, argument))
        if not changes:
            raise ChatError("usage: /mode [#ROOM] [+|-]FLAGS [ARGUMENTS]")
        most = self.rules.max_mode_changes
        if len(changes) > most:
            raise ChatError(f"a /mode makes at most {most} changes (got {len(changes)})")
        if arguments:
            raise ChatError(f"too many arguments for /mode {spec}: {' '.join(arguments)}")
        for sign, flag, argument in changes:
            if flag == "l" and sign == "+" and not (
                argument.isdigit() and 1 <= int(argument) <= MAX_LIMIT
            ):
                raise ChatError(f"+l needs a number of members from 1 to {MAX_LIMIT}")
            if flag == "k" and sign == "+" and not _good_key(argument):
                raise ChatError(f"a key is 1 to {MAX_KEY} printable characters, no spaces")
        return changes

    @staticmethod
    def _mode_change(state: RoomState, sign: str, flag: str, argument: str) -> str | None:
        """The ``ModeSet`` change that makes ``sign flag argument`` so, or ``None``."""
        on = flag in state.modes
        if sign == "-":
            return f"-{flag}" if on else None
        if flag == "k":
            return None if on and state.key == argument else f"+k {argument}"
        if flag == "l":
            return None if on and state.limit == int(argument) else f"+l {int(argument)}"
        return None if on else f"+{flag}"

    def register_room(self, actor: Member, room: str | None) -> RoomState:
        """Keep the room (its topic, modes, bans, mutes) across restarts and when empty;
        the actor's account, and those of operators made later, are its operators'."""
        state = self._run(actor, room)
        if actor.account is None:
            raise ChatError("only a member signed in to an account may register a room: "
                            "/register PASSWORD first")
        if state.registered:
            raise ChatError(f"{state.name} is registered already")
        accounts = (*sorted(state.operator_accounts), actor.account)
        self._publish(RoomRegistered(state.name, self._now(), actor.id, actor.nick, accounts))
        self.audit(actor, "registered the room", state.name, "", state.name)
        return state

    # -- server operators' actions ----------------------------------------------------

    def kill(self, actor: Member, nick: str, reason: str = "") -> str:
        """Disconnect ``nick`` wherever it is; its leave is told as any other."""
        self._server_operator(actor)
        holder = self.chat.names.lookup(nicknames.key(nick.strip()))
        if holder is None:
            raise NoSuchMember(nick.strip())
        shown, target = holder
        self._publish(Killed("", self._now(), actor.id, actor.nick, target, shown, reason))
        self.audit(actor, "killed", shown, reason, "")
        return shown

    def gban(self, actor: Member, raw: str, duration: float | None = None,
             reason: str = "") -> masks.Mask:
        """Ban an address or a network from the whole server, for ``duration`` seconds
        (``None``: for ever): its connections are turned away and its members dropped."""
        self._server_operator(actor)
        mask = masks.parse(raw)
        if mask.kind != "network":
            raise BadMask(f"a server ban is an address or a network, not {mask.text}")
        if mask.matches(self.identity(actor)):
            raise ChatError(f"{mask.text} names your own address: you would be banned too")
        self._room_for_more(self.directory.server_bans,
                            f"the server has {self.rules.max_bans} server bans")
        now = self._now()
        until = now + duration if duration else 0.0
        self._publish(ServerBanSet("", now, actor.id, actor.nick, "+", mask.text, until,
                                   reason))
        self.audit(actor, "banned from the server", mask.text, reason, "",
                    until=until)
        return mask

    def ungban(self, actor: Member, raw: str) -> masks.Mask:
        self._server_operator(actor)
        mask = masks.parse(raw)
        ban = self.directory.server_bans.get(mask.key)
        if ban is None or not ban.active(self._now()):
            raise ChatError(f"{mask.text} is not banned from the server")
        self._publish(ServerBanSet("", self._now(), actor.id, actor.nick, "-", ban.mask.text,
                                   0.0))
        self.audit(actor, "lifted the server ban on", ban.mask.text, "", "")
        return ban.mask

    def gbans(self, actor: Member) -> list[ServerBan]:
        self._server_operator(actor)
        now = self._now()
        return sorted((ban for ban in self.directory.server_bans.values() if ban.active(now)),
                      key=lambda ban: ban.time)

    def server_refusal(self, host: str | None) -> str | None:
        """Why a connection from ``host`` may not come in (a server ban), or ``None``."""
        bans = self.directory.server_bans
        if not bans or host is None:
            return None
        who = masks.Identity("", None, host)
        now = self._now()
        for ban in bans.values():
            if ban.active(now) and ban.mask.matches(who):
                return SERVER_BANNED
        return None

    # -- what reaches this node -----------------------------------------------------------

    def _heard(self, event: Event) -> None:
        """A moderation event, from this node or another: do what falls to this node.
        Next turn, so that every listener has seen the event before its consequences."""
        kind = type(event)
        if kind is MaskSet:
            assert isinstance(event, MaskSet)
            if event.change == "+b":
                self._later(self._remove_banned, event.room, event.mask)
        elif kind is ServerBanSet:
            assert isinstance(event, ServerBanSet)
            if event.change == "+":
                self._later(self._drop_server_banned)
        elif kind is Killed:
            assert isinstance(event, Killed)
            if self.chat.local(event.target) is not None:
                self._later(self._killed, event)
        elif kind is Joined:
            member = self.chat.local(event.member)
            if member is None:
                return
            if member.oper is not None and member.id not in self.directory.server_operators:
                # The other nodes forgot it when it left its last room.
                self._publish(Opered("", self._now(), member.id, member.nick, member.oper))
            state = self.directory.find(event.room)
            if (state is not None and member.account in state.operator_accounts
                    and member.id not in state.operators):
                # An operator account of a registered room: an operator on joining.
                self._later(self._publish, RoleSet(state.name, self._now(), "", "", member.id,
                                                   member.nick, "+o"))
        elif kind is RoleSet:
            assert isinstance(event, RoleSet)
            self._kept_operators(event)

    def _kept_operators(self, event: RoleSet) -> None:
        """A member of this node made (or unmade) an operator of a registered room: its
        account is (or is no longer) one of the room's operator accounts."""
        member = self.chat.local(event.target)
        state = self.directory.find(event.room)
        if member is None or member.account is None or state is None or not state.registered:
            return
        accounts = set(state.operator_accounts)
        if event.change == "+o":
            accounts.add(member.account)
        elif event.change == "-o":
            accounts.discard(member.account)
        if accounts != state.operator_accounts:
            self._publish(RoomRegistered(state.name, self._now(), member.id, member.nick,
                                         tuple(sorted(accounts))))

    def _later(self, call: Callable[..., None], *args: object) -> None:
        self._clock.callLater(0, call, *args)

    def _remove_banned(self, room: str, raw: str) -> None:
        state = self.directory.find(room)
        if state is None:
            return
        entry = state.bans.get(masks.parse(raw).key)
        if entry is None:
            return
        for member_id in list(state.members):
            member = self.chat.local(member_id)
            if member is None or member.oper is not None:
                continue
            if entry.mask.matches(self.identity(member)):
                self._publish(Left(state.name, self._now(), member.id, member.nick, "banned",
                                   entry.reason, entry.by))

    def _drop_server_banned(self) -> None:
        for member_id in list(self._evictors):
            member = self.chat.local(member_id)
            if member is not None and self.server_refusal(member.host) is not None:
                self._evict(member, SERVER_BANNED, "banned from the server")

    def _killed(self, event: Killed) -> None:
        member = self.chat.local(event.target)
        if member is None:
            return
        why = f"you were disconnected by {event.nick}"
        self._evict(member, why + (f": {event.reason}" if event.reason else ""),
                    f"killed by {event.nick}")

    def _evict(self, member: Member, why: str, reason: str) -> None:
        connection = self._evictors.pop(member.id, None)
        if connection is not None:
            connection.evict(why, reason)
        else:
            self.chat.quit(member, reason)

    def views(self) -> list[Event]:
        """Every room's moderation state and the server operators, as view events: what a
        node that came later needs to hold the same rules (with ``kept``)."""
        now = self._now()
        events: list[Event] = [snapshot(state, state.name) for state in self.directory.rooms()]
        events += [
            Opered("", now, member, nick, "")
            for member, nick in self.directory.server_operators.items()
        ]
        return events

    def kept(self) -> list[Event]:
        """The server bans, and those lifted since this node started, as view events with
        the time of their change: a node that comes back takes those later than what it
        holds, and tells the others what it holds (``roommodes._server_ban``)."""
        now = self._now()
        events: list[Event] = [
            ServerBanSet("", ban.time, "", ban.by, "+", ban.mask.text, ban.until, ban.reason)
            for ban in self.directory.server_bans.values() if ban.active(now)
        ]
        events += [
            ServerBanSet("", when, "", "", "-", text, 0.0)
            for when, text in self.directory.lifted_server_bans.values()
        ]
        return events

    # -- checks ---------------------------------------------------------------------

    def _run(self, actor: Member, room: str | None) -> RoomState:
        """The room an operator's command is about, if ``actor`` runs it."""
        state = self.room_of(actor, room)
        if not self.is_operator(actor, state):
            raise NotOperator(state.name)
        return state

    def _visible(self, actor: Member, room: str | None) -> RoomState:
        state = self.room_of(actor, room)
        if "s" in state.modes and actor.id not in state.members and actor.oper is None:
            raise NoSuchRoom(room or state.name)
        return state

    def room_of(self, actor: Member, room: str | None) -> RoomState:
        """The room a command names (``None``: the actor's current one)."""
        if not room:
            if actor.current is None:
                raise NotInRoom("you are in no room: /join one, or name one: #ROOM")
            room = actor.current
        state = self.directory.find(room)
        if state is None:
            raise NoSuchRoom(room)
        return state

    def _in_room(self, state: RoomState, nick: str) -> tuple[str, str]:
        """``(member id, nickname)`` of the member of ``state`` called ``nick``."""
        key = nicknames.key(nick.strip())
        for member_id, shown in state.members.items():
            if nicknames.key(shown) == key:
                return member_id, shown
        raise MemberNotInRoom(nick.strip(), state.name)

    def is_operator_id(self, member_id: str, state: RoomState) -> bool:
        return member_id in state.operators or member_id in self.directory.server_operators

    def _not_a_server_operator(self, actor: Member, target: str, nick: str, what: str) -> None:
        if target in self.directory.server_operators and actor.oper is None:
            raise NotServerOperator(
                f"{nick} is a server operator: only a server operator may {what} them"
            )

    def _server_operator(self, actor: Member) -> None:
        if actor.oper is None:
            raise NotServerOperator()

    def _settable(self, actor: Member, raw: str, what: str) -> masks.Mask:
        mask = masks.parse(raw)
        if actor.oper is None:
            if mask.broad:
                raise NotServerOperator(
                    f"{mask.text} names everyone or too wide a network: only a server "
                    f"operator may {what} it"
                )
            if mask.matches(self.identity(actor)):
                raise ChatError(f"{mask.text} names you: you would {what} yourself")
        return mask

    def _named(self, state: RoomState, mask: masks.Mask) -> str:
        """The member of ``state`` a nickname mask names, or ``""``."""
        if mask.kind != "nick":
            return ""
        for member_id, shown in state.members.items():
            if nicknames.key(shown) == mask.key:
                return member_id
        return ""

    def _person_or_mask(self, actor: Member, state: RoomState, raw: str,
                        what: str) -> tuple[masks.Mask, str]:
        """A member of the room by nickname (its mask and id), or any mask (and ``""``)."""
        mask = self._settable(actor, raw, what) if what else masks.parse(raw)
        return mask, self._named(state, mask)

    def _room_for_more(self, entries: Sized, why: str) -> None:
        if len(entries) >= self.rules.max_bans:
            raise ChatError(f"{why}, the most it may hold: lift one first")

    # -- plumbing -------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.seconds()

    def _publish(self, event: Event) -> None:
        self.chat.hub.publish(event)

    def audit(self, actor: Member, action: str, target: str, reason: str, room: str,
               **extra: object) -> None:
        """One log line per moderation action, its fields structured for a log reader."""
        where = f" in {room}" if room else ""
        why = f": {reason}" if reason else ""
        self._log.info(
            "audit: {actor} {action} {target}{where}{why}",
            actor=actor.nick, actor_account=actor.account, actor_oper=actor.oper,
            actor_host=actor.host, action=action, target=target, room=room, reason=reason,
            where=where, why=why, audit=True, **extra,
        )


_ARGUMENTS = {"k": "a key", "l": "a number of members", "o": "a nickname",
              "v": "a nickname", "b": "a mask", "q": "a nickname or a mask"}


def _good_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY and key.isprintable() and " " not in key

