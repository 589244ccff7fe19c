"""The room: who is here and what they say. Knows nothing about connections.

Front ends call the room; the room checks the rules, claims nicknames through the hub and
publishes events through it. Front ends learn what happened only from those events, so a
member on another front end (or another process, with a shared hub) is treated the same.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime

from chatroom.domain import nicknames
from chatroom.domain.errors import Abandoned, NicknameInvalid, NicknameTaken, NoSuchMember
from chatroom.domain.events import Acted, Event, Joined, Left, Notice, Renamed, Said, Whispered
from chatroom.ports import IHub


@dataclass(slots=True, eq=False)
class Member:
    """A front end's handle on one person in the room; ``nick`` changes on rename."""

    id: str
    nick: str
    present: bool = True


class Room:
    """One chat room, spread over whatever the hub reaches."""

    def __init__(self, name: str, hub: IHub, clock: IReactorTime, node: str | None = None):
        self.name = name
        self.hub = hub
        self._clock = clock
        self._node = node or os.urandom(4).hex()
        self._ids = itertools.count(1)
        self._members: dict[str, Member] = {}
        hub.subscribe(self._follow)

    def _follow(self, event: Event) -> None:
        """A hub may rename a member itself (a nickname claimed on both sides of a split
        room); the ``Member`` its front end holds must follow."""
        if type(event) is Renamed:
            member = self._members.get(event.member)
            if member is not None and member.nick == event.nick:
                member.nick = event.new_nick

    def join(
        self, raw_nick: str, still_wanted: Callable[[], bool] | None = None
    ) -> Deferred[Member]:
        """Admit a member as ``raw_nick``; fails with ``NicknameInvalid`` or ``NicknameTaken``.

        ``still_wanted`` is asked once the (possibly remote) claim succeeds: a client that
        went away meanwhile is never announced, and fails with ``Abandoned``."""
        return ensureDeferred(self._join(raw_nick, still_wanted))

    async def _join(self, raw_nick: str, still_wanted: Callable[[], bool] | None) -> Member:
        nick = nicknames.normalize(raw_nick)
        member = Member(f"{self._node}.{next(self._ids)}", nick)
        key = nicknames.key(nick)
        if not await self.hub.claim(key, nick, member.id):
            raise NicknameTaken(nick)
        if still_wanted is not None and not still_wanted():
            self.hub.release(key, member.id)
            raise Abandoned(nick)
        self._members[member.id] = member
        self.hub.publish(Joined(self.name, self._clock.seconds(), member.id, nick))
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
        if new_key != old_key and not await self.hub.claim(new_key, new, member.id):
            raise NicknameTaken(new)
        if not member.present:  # left while the claim was in flight
            self.hub.release(new_key, member.id)
            return old
        member.nick = new
        self.hub.publish(Renamed(self.name, self._clock.seconds(), member.id, old, new))
        if new_key != old_key:
            self.hub.release(old_key, member.id)
        else:  # only the case changed: the claim keeps its key but shows the new spelling
            await self.hub.claim(new_key, new, member.id)
        return new

    def leave(self, member: Member, reason: str) -> None:
        """Announce that ``member`` left and free the nickname; safe to call twice."""
        if not member.present:
            return
        member.present = False
        self._members.pop(member.id, None)
        self.hub.publish(Left(self.name, self._clock.seconds(), member.id, member.nick, reason))
        self.hub.release(nicknames.key(member.nick), member.id)

    def say(self, member: Member, text: str) -> None:
        self.hub.publish(Said(self.name, self._clock.seconds(), member.id, member.nick, text))

    def act(self, member: Member, text: str) -> None:
        self.hub.publish(Acted(self.name, self._clock.seconds(), member.id, member.nick, text))

    def whisper(self, member: Member, target_nick: str, text: str) -> str:
        """Send ``text`` to one member only; return the addressee's nickname as they spell it."""
        holder = self.hub.lookup(nicknames.key(target_nick.strip()))
        if holder is None:
            raise NoSuchMember(target_nick)
        nick, target = holder
        self.hub.publish(
            Whispered(self.name, self._clock.seconds(), member.id, member.nick, text, target, nick)
        )
        return nick

    def notice(self, text: str) -> None:
        """A message from the server to everyone in the room."""
        self.hub.publish(Notice(self.name, self._clock.seconds(), "", "", text))

    def members(self) -> list[str]:
        """Every nickname in the room, sorted the way people read them."""
        return sorted(self.hub.members(), key=nicknames.key)
