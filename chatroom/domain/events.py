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
    ``message`` is what the member said on leaving (``/part #dev bye``), shown to all."""

    reason: str = "quit"
    message: str = ""


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


PUBLIC_EVENTS = (Joined, Left, Renamed, Said, Acted, Notice, TopicSet)

VIEW_EVENTS = (Present, TopicKnown)
"""Events that only bring a view up to date: front ends and history ignore them."""
