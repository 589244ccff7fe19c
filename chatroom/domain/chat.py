"""The chat: people with nicknames, in rooms. Knows nothing about connections.

Front ends call ``Chat``; it checks the rules, claims nicknames through the server-wide
registry and publishes events through the hub. Front ends learn what happened only from
those events (the ``Directory`` keeps who is in which room from them), so a member on
another front end, or another process with a shared hub, is treated the same.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime

from chatroom.domain import nicknames, roomnames
from chatroom.domain.directory import Directory, RoomState
from chatroom.domain.errors import (
    Abandoned,
    ChatError,
    NicknameInvalid,
    NicknameTaken,
    NoSuchMember,
    NoSuchRoom,
    NotInRoom,
    NotOperator,
    RoomLimit,
)
from chatroom.domain.events import (
    Acted,
    Event,
    Joined,
    Left,
    Notice,
    Renamed,
    Said,
    TopicSet,
    Whispered,
)
from chatroom.ports import IHub, INicknames


@dataclass(slots=True, eq=False)
class Member:
    """A front end's handle on one person; ``nick`` changes on rename, ``current`` is the
    room what they type goes to (``None``: they are in no room), ``current_key`` its key
    (what the fan-out compares: nodes may spell a room differently)."""

    id: str
    nick: str
    present: bool = True
    current: str | None = None
    current_key: str | None = None
    host: str | None = None
    """The address it connects from, for bans by address (``None``: unknown)."""
    account: str | None = None
    """The account it signed in to (``/register``, a password), for bans by account."""
    oper: str | None = None
    """The server operator it signed in as (``/oper``): an operator of every room."""

    def __post_init__(self) -> None:
        if self.current is not None and self.current_key is None:
            self.current_key = roomnames.key(self.current)

    def move_to(self, room: str | None) -> None:
        self.current = room
        self.current_key = None if room is None else roomnames.key(room)


@dataclass(frozen=True, slots=True)
class RoomRules:
    """The limits on rooms, from the server's options."""

    max_rooms: int = 1000
    max_rooms_per_member: int = 20
    max_name: int = roomnames.MAX_ROOM_LENGTH
    max_topic: int = 390
    """The ``--max-topic`` option (``Limits.max_topic``)."""


class Guard(Protocol):
    """Who may enter a room, talk in it and run it: the chat asks, moderation answers
    (``chatroom.domain.moderation``). Each check raises a ``ChatError`` saying why not."""

    def may_enter(self, member: Member, state: RoomState, key: str) -> None: ...
    def may_speak(self, member: Member, state: RoomState) -> None: ...
    def is_operator(self, member: Member, state: RoomState) -> bool: ...

    def may_use(self, nick: str, account: str | None) -> None:
        """Someone signed in to ``account`` (``None``: to none) wants ``nick``."""


class OpenDoors:
    """The guard of a chat without moderation: anyone enters and talks; a room is run by
    its own operators."""

    def may_enter(self, member: Member, state: RoomState, key: str) -> None:
        pass

    def may_speak(self, member: Member, state: RoomState) -> None:
        pass

    def is_operator(self, member: Member, state: RoomState) -> bool:
        return member.id in state.operators

    def may_use(self, nick: str, account: str | None) -> None:
        pass


class Chat:
    """Everyone on the server, spread over whatever the hub reaches."""

    guard: Guard = OpenDoors()

    def __init__(
        self,
        hub: IHub,
        names: INicknames,
        clock: IReactorTime,
        default_room: str = "#lobby",
        rules: RoomRules | None = None,
        node: str | None = None,
        directory: Directory | None = None,
    ) -> None:
        self.hub = hub
        self.names = names
        self.rules = rules or RoomRules()
        self.default_room = roomnames.normalize(default_room)
        self._clock = clock
        self._node = node or os.urandom(4).hex()
        self._ids = itertools.count(1)
        self._members: dict[str, Member] = {}
        self.directory = directory or Directory()
        self.directory.ensure(self.default_room, clock.seconds())
        hub.subscribe(self.directory)
        hub.subscribe(self._follow)

    def _follow(self, event: Event) -> None:
        """A hub may rename a member itself (a nickname claimed on both sides of a split),
        or a member may leave a room by another's hand: the ``Member`` must follow."""
        kind = type(event)
        if kind is Renamed:
            assert isinstance(event, Renamed)
            member = self._members.get(event.member)
            if member is not None and member.nick == event.nick:
                member.nick = event.new_nick
        elif kind is Left:
            member = self._members.get(event.member)
            if member is not None and member.current_key == roomnames.key(event.room):
                rooms = self.directory.rooms_of(member.id)
                member.move_to(rooms[-1] if rooms else None)

    # -- people ---------------------------------------------------------------------

    def sign_in(
        self, raw_nick: str, still_wanted: Callable[[], bool] | None = None,
        account: str | None = None,
    ) -> Deferred[Member]:
        """Claim ``raw_nick`` server-wide; fails with ``NicknameInvalid`` or
        ``NicknameTaken`` (a registered nickname too, unless ``account`` is the account
        its owner proved to be). The member is in no room yet: ``enter`` puts them in one.

        ``still_wanted`` is asked once the (possibly remote) claim succeeds: a client that
        went away meanwhile is never admitted, and fails with ``Abandoned``."""
        return ensureDeferred(self._sign_in(raw_nick, still_wanted, account))

    async def _sign_in(self, raw_nick: str, still_wanted: Callable[[], bool] | None,
                       account: str | None = None) -> Member:
        nick = nicknames.normalize(raw_nick)
        self.guard.may_use(nick, account)
        member = Member(f"{self._node}.{next(self._ids)}", nick, account=account)
        key = nicknames.key(nick)
        if not await self.names.claim(key, nick, member.id):
            raise NicknameTaken(nick)
        if still_wanted is not None and not still_wanted():
            self.names.release(key, member.id)
            raise Abandoned(nick)
        self._members[member.id] = member
        return member

    def rename(self, member: Member, raw_nick: str) -> Deferred[str]:
        """Give ``member`` a new nickname; on failure nothing changes and nothing is announced."""
        return ensureDeferred(self._rename(member, raw_nick))

    async def _rename(self, member: Member, raw_nick: str) -> str:
        new = nicknames.normalize(raw_nick)
        old = member.nick
        if new == old:
            raise NicknameInvalid(f"you are already known as {new}")
        old_key, new_key = nicknames.key(old), nicknames.key(new)
        if new_key != old_key:
            self.guard.may_use(new, member.account)
        if new_key != old_key and not await self.names.claim(new_key, new, member.id):
            raise NicknameTaken(new)
        if not member.present:  # left while the claim was in flight
            self.names.release(new_key, member.id)
            return old
        member.nick = new
        rooms = tuple(self.directory.rooms_of(member.id))
        self.hub.publish(Renamed("", self._clock.seconds(), member.id, old, new, rooms))
        if new_key != old_key:
            self.names.release(old_key, member.id)
        else:  # only the case changed: the claim keeps its key but shows the new spelling
            await self.names.claim(new_key, new, member.id)
        return new

    def quit(self, member: Member, reason: str, message: str = "") -> None:
        """``member`` leaves the server: announced in each of its rooms (with ``message``,
        what it said on leaving, if any), nickname freed at once. Safe to call twice."""
        if not member.present:
            return
        now = self._clock.seconds()
        for name in self.directory.rooms_of(member.id):
            # (the guard is asked while the member is still present)
            said = message if not message or self._may_speak(member, name) else ""
            self.hub.publish(Left(name, now, member.id, member.nick, reason, said))
        member.present = False
        member.move_to(None)
        self._members.pop(member.id, None)
        self.names.release(nicknames.key(member.nick), member.id)

    # -- rooms ----------------------------------------------------------------------

    def enter(self, member: Member, raw_room: str, key: str = "") -> tuple[RoomState, bool]:
        """Put ``member`` in a room (creating it) and make it current; ``(room, entered)``,
        ``entered`` false if they were in it already (then it only becomes current).
        ``key`` is the one a room with mode ``k`` asks for."""
        name = roomnames.normalize(raw_room)
        state = self.directory.find(name)
        if state is not None:
            name = state.name
        else:
            name = roomnames.normalize(raw_room, self.rules.max_name)  # a new room's
        if state is not None and member.id in state.members:
            member.move_to(state.name)
            return state, False
        if len(self.directory.rooms_of(member.id)) >= self.rules.max_rooms_per_member:
            raise RoomLimit(
                f"you are in {_rooms(self.rules.max_rooms_per_member)} already, the most "
                "one may be in: /part one first"
            )
        if state is None and len(self.directory) >= self.rules.max_rooms:
            raise RoomLimit(f"the server has {self.rules.max_rooms} rooms, the most it allows")
        if state is not None:
            self.guard.may_enter(member, state, key)
        self.hub.publish(Joined(name, self._clock.seconds(), member.id, member.nick))
        state = self.directory.find(name)
        assert state is not None
        member.move_to(state.name)
        return state, True

    def part(self, member: Member, raw_room: str | None, message: str = "") -> str:
        """Take ``member`` out of a room (the current one unless named); the current room
        becomes the one joined most recently. Returns the room's name."""
        name = self._room_of(member, raw_room)
        if message and not self._may_speak(member, name):
            message = ""  # a muted member's, or a voiceless one's in +m: no words out
        self.hub.publish(
            Left(name, self._clock.seconds(), member.id, member.nick, "part", message)
        )
        return name

    def _may_speak(self, member: Member, name: str) -> bool:
        guard = self.guard
        state = self.directory.find(name) if type(guard) is not OpenDoors else None
        if state is None:
            return True
        try:
            guard.may_speak(member, state)
        except ChatError:
            return False
        return True

    def switch(self, member: Member, raw_room: str) -> str:
        """Make a room ``member`` is in the current one."""
        name = self._room_of(member, raw_room)
        member.move_to(name)
        return name

    def set_topic(self, member: Member, raw_room: str | None, text: str) -> str:
        name = self._room_of(member, raw_room)
        state = self.directory.find(name)
        assert state is not None
        if "t" in state.modes and not self.guard.is_operator(member, state):
            raise NotOperator(state.name)
        if type(self.guard) is not OpenDoors:
            self.guard.may_speak(member, state)  # a topic is words to the room too
        if len(text) > self.rules.max_topic:
            raise ChatError(f"a topic has at most {self.rules.max_topic} characters")
        self.hub.publish(TopicSet(name, self._clock.seconds(), member.id, member.nick, text))
        return name

    def _room_of(self, member: Member, raw_room: str | None) -> str:
        """A room ``member`` is in: the named one, or the current one."""
        if not raw_room:
            if member.current is None:
                raise NotInRoom("you are in no room: /join one first")
            return member.current
        state = self.directory.find(raw_room)
        if state is None:
            try:
                normalized = roomnames.normalize(raw_room, self.rules.max_name)
            except ChatError:
                raise NoSuchRoom(raw_room) from None
            raise NoSuchRoom(normalized, f"you are not in {normalized}")
        if member.id not in state.members:
            raise NoSuchRoom(state.name, f"you are not in {state.name}")
        return state.name

    def room(self, raw_room: str) -> RoomState:
        state = self.directory.find(raw_room)
        if state is None:
            raise NoSuchRoom(raw_room)
        return state

    # -- talking --------------------------------------------------------------------

    def say(self, member: Member, text: str, room: str | None = None) -> None:
        """``text`` to the member's current room, or to ``room`` (one it is in): a front
        end whose every message names its room (IRC) says which."""
        name = self._talking_in(member, room)
        self.hub.publish(Said(name, self._clock.seconds(), member.id, member.nick, text))

    def act(self, member: Member, text: str, room: str | None = None) -> None:
        name = self._talking_in(member, room)
        self.hub.publish(Acted(name, self._clock.seconds(), member.id, member.nick, text))

    def _talking_in(self, member: Member, room: str | None) -> str:
        """The room ``member`` talks in, if it may talk there (moderation's guard)."""
        if room is not None:
            name = self._room_of(member, room)
        elif member.current is None:
            raise NotInRoom("you are in no room: /join one to talk (/rooms lists them)")
        else:
            name = member.current
        guard = self.guard
        if type(guard) is not OpenDoors:
            state = self.directory.find(name)
            if state is not None:
                guard.may_speak(member, state)
        return name

    def whisper(self, member: Member, target_nick: str, text: str) -> str:
        """Send ``text`` to one member only, wherever they are; return the addressee's
        nickname as they spell it."""
        holder = self.names.lookup(nicknames.key(target_nick.strip()))
        if holder is None:
            raise NoSuchMember(target_nick)
        nick, target = holder
        self.hub.publish(
            Whispered("", self._clock.seconds(), member.id, member.nick, text, target, nick)
        )
        return nick

    def notice(self, text: str, room: str = "") -> None:
        """A message from the server to everyone in ``room`` (everyone, without one)."""
        self.hub.publish(Notice(room, self._clock.seconds(), "", "", text))

    def local(self, member_id: str) -> Member | None:
        """The member by that id if it is on this node (signed in here, still present)."""
        return self._members.get(member_id)

    def members(self, raw_room: str | None = None) -> list[str]:
        """Every nickname in a room (the default room unless named), sorted the way people
        read them."""
        state = self.directory.find(raw_room or self.default_room)
        if state is None:
            return []
        return sorted(state.members.values(), key=nicknames.key)


def _rooms(count: int) -> str:
    return "1 room" if count == 1 else f"{count} rooms"
