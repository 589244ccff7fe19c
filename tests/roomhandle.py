"""One room of a ``Chat``, driven the way a front end drives it: for tests of what sits
around the chat (history, hubs) that need a conversation, not the room commands."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from chatroom.domain.chat import Chat, Member
from chatroom.hubs.local import LocalNicknames
from chatroom.ports import IHub, INicknames


class DefaultRoom:
    """``Chat``'s default room: join = sign in and enter it, leave = quit."""

    def __init__(
        self, name: str, hub: IHub, clock: IReactorTime, node: str | None = None,
        names: INicknames | None = None,
    ) -> None:
        self.chat = Chat(hub, names if names is not None else LocalNicknames(), clock,
                         default_room=name, node=node)
        self.name = self.chat.default_room

    def join(self, nick: str) -> Deferred[Member]:
        def enter(member: Member) -> Member:
            self.chat.enter(member, self.name)
            return member

        return self.chat.sign_in(nick).addCallback(enter)

    def leave(self, member: Member, reason: str) -> None:
        self.chat.quit(member, reason)

    def say(self, member: Member, text: str) -> None:
        self.chat.say(member, text)

    def act(self, member: Member, text: str) -> None:
        self.chat.act(member, text)

    def whisper(self, member: Member, target: str, text: str) -> str:
        return self.chat.whisper(member, target, text)

    def rename(self, member: Member, nick: str) -> Deferred[str]:
        return self.chat.rename(member, nick)

    def notice(self, text: str) -> None:
        self.chat.notice(text, self.name)

    def members(self) -> list[str]:
        return self.chat.members()
