"""Errors the domain raises; front ends turn each into a clear reply to the sender."""


class ChatError(Exception):
    """A request the room refuses; ``str(error)`` is a sentence for the user."""


class NicknameInvalid(ChatError):
    """The nickname breaks the nickname rules."""


class NicknameTaken(ChatError):
    """Someone in the room already uses this nickname (compared case-insensitively)."""

    def __init__(self, nick: str) -> None:
        super().__init__(f"nickname {nick} is already taken")
        self.nick = nick


class Abandoned(ChatError):
    """The client that asked to join went away before the room could admit it."""

    def __init__(self, nick: str) -> None:
        super().__init__(f"left before joining as {nick}")
        self.nick = nick


class NoSuchMember(ChatError):
    """There is nobody by that nickname in the room."""

    def __init__(self, nick: str) -> None:
        super().__init__(f"no such member: {nick}")
        self.nick = nick


class RoomNameInvalid(ChatError):
    """The room name breaks the room name rules."""


class NoSuchRoom(ChatError):
    """No room by that name exists (or the member is not in it, where that matters)."""

    def __init__(self, name: str, why: str | None = None) -> None:
        super().__init__(why or f"no such room: {name}")
        self.name = name


class RoomLimit(ChatError):
    """A limit on rooms (on the server, per member) refuses the request."""


class NotInRoom(ChatError):
    """The member must be in a room for this, and is not."""


# -- moderation: each its own class, so a front end can map it (IRC: its numeric) ----------


class NotOperator(ChatError):
    """An operator-only command from someone who is not an operator of the room."""

    def __init__(self, room: str) -> None:
        super().__init__(f"you are not an operator of {room}")
        self.room = room


class NotServerOperator(ChatError):
    """A command only server operators may give (``/kill``, ``/gban``, a broad mask)."""

    def __init__(self, why: str = "only a server operator may do that (/oper NAME PASSWORD)"):
        super().__init__(why)


class Banned(ChatError):
    """A ban of the room names the member who wants in."""

    def __init__(self, room: str) -> None:
        super().__init__(f"you are banned from {room}")
        self.room = room


class InviteOnly(ChatError):
    """The room is invite-only (``+i``) and the member was not invited."""

    def __init__(self, room: str) -> None:
        super().__init__(f"{room} is invite-only: an operator of it can /invite you")
        self.room = room


class BadKey(ChatError):
    """The room has a key (``+k``) and the member gave none, or another."""

    def __init__(self, room: str) -> None:
        super().__init__(f"{room} needs its key: /join {room} KEY")
        self.room = room


class RoomFull(ChatError):
    """The room has a member limit (``+l``) and is at it."""

    def __init__(self, room: str, limit: int) -> None:
        super().__init__(f"{room} is full ({limit} members at most)")
        self.room = room


class CannotSpeak(ChatError):
    """The member may read the room but not talk in it: moderated (``+m``) or muted."""

    def __init__(self, room: str, why: str | None = None) -> None:
        super().__init__(
            why or f"{room} is moderated: only its operators and voiced members speak"
        )
        self.room = room


class Muted(CannotSpeak):
    """An operator of the room muted the member."""

    def __init__(self, room: str) -> None:
        super().__init__(room, f"you are muted in {room}")


class BadMask(ChatError):
    """A ban or mute mask that is none of nickname, ``~a:ACCOUNT``, address, network."""


class MemberNotInRoom(NoSuchMember):
    """The member named is on the server, or not, but is not in the room (IRC: 441)."""

    def __init__(self, nick: str, room: str) -> None:
        ChatError.__init__(self, f"{nick} is not in {room}")
        self.nick = nick
        self.room = room


class NicknameRegistered(NicknameTaken):
    """The nickname is registered to an account: only its owner, who gives its password,
    may use it."""

    def __init__(self, nick: str) -> None:
        ChatError.__init__(self, f"nickname {nick} is registered: only its owner may use it, "
                                 "by choosing it when connecting and giving its password")
        self.nick = nick
