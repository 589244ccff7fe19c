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
