"""What happens in a room, as plain immutable values.

Hubs carry these between processes and history stores keep them, so they hold only
strings and numbers. ``member`` is the id of the member who caused the event: front ends
use it to skip the sender and to find the addressee of a private message, which a
nickname cannot do reliably while members rename.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in ``room`` at ``time`` (seconds since the epoch).

    ``room`` is empty for what concerns a person rather than a room (a rename, a private
    message) and for notices meant for everyone on the server."""

    room: str
    time: float
    member: str
    nick: str


@dataclass(frozen=True, slots=True)
class Joined(Event):
    """``nick`` entered the room."""


@dataclass(frozen=True, slots=True)
class Left(Event):
    """``nick`` left the room; ``reason`` is for logs and history, not for the wire;
    ``message`` is what the member said on leaving (``/part #dev bye``), shown to all.

    ``by`` is the nickname of the operator who removed them (``reason`` is ``kicked`` or
    ``banned``, ``message`` the operator's reason); empty when they left by themselves."""

    reason: str = "quit"
    message: str = ""
    by: str = ""


@dataclass(frozen=True, slots=True)
class Renamed(Event):
    """``nick`` is now known as ``new_nick``: told once to everyone who shares one of
    ``rooms`` with them (``room`` is empty: a rename is a person's, not a room's)."""

    new_nick: str
    rooms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Said(Event):
    """``nick`` said ``text`` to everyone."""

    text: str


@dataclass(frozen=True, slots=True)
class Acted(Event):
    """``nick`` performed an action (``/me``)."""

    text: str


@dataclass(frozen=True, slots=True)
class TopicSet(Event):
    """``nick`` set the room's topic to ``text`` (empty: cleared)."""

    text: str


@dataclass(frozen=True, slots=True)
class Whispered(Event):
    """``nick`` sent ``text`` to one member only; never stored in history."""

    text: str
    target: str
    target_nick: str


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """A message from the server itself (``member`` and ``nick`` are empty)."""

    text: str


@dataclass(frozen=True, slots=True)
class Present(Event):
    """Not news, a view: ``nick`` is on the server and in ``rooms`` (an operator of those in
    ``operator_of``). A shared hub tells this to a node that came after them, so its
    directory knows who is where; nothing is shown or stored."""

    rooms: tuple[str, ...] = ()
    operator_of: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicKnown(Event):
    """Not news, a view: ``room``'s topic is ``text``, set by ``nick`` at ``time``."""

    text: str


# -- moderation: every change is an event, so every node's directory holds the same rules


@dataclass(frozen=True, slots=True)
class ModeSet(Event):
    """``nick`` set or cleared one of the room's modes: ``change`` is a sign, a flag and
    its argument if it has one: ``+m``, ``-t``, ``+k KEY``, ``+l 10``, ``-k``."""

    change: str


@dataclass(frozen=True, slots=True)
class RoleSet(Event):
    """``nick`` made ``target_nick`` (member ``target``) an operator of the room (``+o``)
    or gave them voice (``+v``), or took that back (``-o``, ``-v``)."""

    target: str
    target_nick: str
    change: str


@dataclass(frozen=True, slots=True)
class MaskSet(Event):
    """``nick`` banned (``+b``) or muted (``+q``) ``mask`` in the room, or lifted that
    (``-b``, ``-q``), for ``reason``. ``target`` is the member the mask named when one was
    present: a mute stays on them whatever they are called later."""

    change: str
    mask: str
    target: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Invited(Event):
    """``nick`` invited ``target_nick`` (member ``target``) into the room; told to them
    only, and lets them into an invite-only room."""

    target: str
    target_nick: str


@dataclass(frozen=True, slots=True)
class Opered(Event):
    """Not news, a view: ``nick`` signed in as the server operator ``text`` (every node
    must know, e.g. that nobody but a server operator may kick them)."""

    text: str


@dataclass(frozen=True, slots=True)
class ServerBanSet(Event):
    """``nick`` (a server operator) banned ``mask`` from the whole server (``+``) until
    ``until`` (seconds since the epoch, 0: for ever), or lifted it (``-``); ``room`` is
    empty. Every node turns away matching connections and drops its matching members."""

    change: str
    mask: str
    until: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Killed(Event):
    """``nick`` (a server operator) disconnected ``target_nick`` (member ``target``) for
    ``reason``: the node that holds the member closes its connection, and its leave is
    told as any other."""

    target: str
    target_nick: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RoomKnown(Event):
    """Not news, a view: the room's moderation state as of ``time``, for a node that came
    later. ``bans`` and ``mutes`` hold one entry each, its fields joined by TABs (mask, by,
    time, reason, and for a mute the ids of the members it stays on, by commas); a
    ``registered`` room has operator ``accounts``."""

    modes: str
    key: str
    limit: int
    operators: tuple[str, ...]
    voiced: tuple[str, ...]
    bans: tuple[str, ...]
    mutes: tuple[str, ...]
    invited: tuple[str, ...]
    registered: int = 0
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoomRegistered(Event):
    """Not news, a view: the room is registered (``/register-room``): it is kept when
    empty and across restarts, and a member signed in to one of ``accounts`` is made one
    of its operators on joining."""

    accounts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AccountSet(Event):
    """Not news, a view: the nickname ``name`` is registered with the password hash
    ``hash`` (empty: no longer registered). Every node keeps its accounts from these, so
    a registered nickname is reserved on every node."""

    name: str
    hash: str


MODERATION_EVENTS = (ModeSet, RoleSet, MaskSet, Invited, Opered, ServerBanSet, RoomKnown,
                     RoomRegistered)
"""Events that change moderation state: the directory applies them."""

PUBLIC_EVENTS = (Joined, Left, Renamed, Said, Acted, Notice, TopicSet)

VIEW_EVENTS = (Present, TopicKnown, RoomKnown, Opered, ServerBanSet, Killed, AccountSet,
               RoomRegistered)
"""Events no front end shows and history does not keep: those that only bring a view up to
date, and ``Killed``, an order to the node that holds a member (what everyone sees of it is
that member's leave)."""
