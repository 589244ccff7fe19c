"""Room names: ``#`` and 1 to 32 characters under the nickname rules, compared like them.

A room's name is shown as it was first written (``#Dev``); two names are the same room
when their keys match, so ``#dev`` and ``#DEV`` (and look-alikes, as for nicknames) are one
room. ``dev`` typed without the ``#`` means ``#dev``.
"""

from __future__ import annotations

from functools import lru_cache

from chatroom.domain import nicknames
from chatroom.domain.errors import NicknameInvalid, RoomNameInvalid

PREFIX = "#"
MAX_ROOM_LENGTH = nicknames.MAX_NICK_LENGTH
"""Characters after the ``#``; the ``--max-room-name`` option may lower it."""


def normalize(raw: str, max_length: int = MAX_ROOM_LENGTH) -> str:
    """``#name`` as it will be shown, or ``RoomNameInvalid`` saying why."""
    text = raw.strip()
    body = text[1:] if text.startswith(PREFIX) else text
    if not body:
        raise RoomNameInvalid("a room name needs at least one character after #")
    if len(body) > max_length:
        raise RoomNameInvalid(
            f"a room name has at most {max_length} characters after # (got {len(body)})"
        )
    try:
        name = nicknames.normalize(body)
    except NicknameInvalid as e:
        reason = str(e).replace("a nickname", "a room name")
        raise RoomNameInvalid(reason) from None
    return PREFIX + name


@lru_cache(maxsize=4096)
def key(name: str) -> str:
    """The form two names of the same room share (``name`` already normalized)."""
    return PREFIX + nicknames.key(name[1:] if name.startswith(PREFIX) else name)


def is_room(word: str) -> bool:
    """Does ``word`` name a room (as opposed to starting a reason or a text)?"""
    return word.startswith(PREFIX)
