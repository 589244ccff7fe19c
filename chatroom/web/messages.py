"""The web front end's JSON messages: parse and check what a browser sends, render what it gets.

Pure functions, no I/O: the adapter in ``protocol.py`` calls them, the tests call them
directly. The schema is documented in ``README-notes.md`` beside this file.

Client to server, one JSON object per WebSocket text message::

    {"type": "nick", "nick": "alice"}     choose a nickname, or change it once joined
    {"type": "say", "text": "hello"}      chat; a leading / makes it a command (/me, /msg, ...)
    {"type": "password", "password": "…"} the password of a registered nickname, when asked

Server to client, one JSON object per WebSocket text message, always with ``type`` and
``time`` (seconds since the epoch, a float)::

    prompt password welcome members history joined left renamed said acted private notice error
    mode role mask invited (moderation; a ``left`` with ``by`` is a kick or a ban)

A room's public event (live, or a record in a ``history``) also has an ``id``, the same
for the same line wherever it is seen again, so a page that reconnects can tell which
replayed lines it already shows (``store.line_id``).

Everything is rendered once into the bytes of a complete WebSocket frame, so one event
costs one encoding however many browsers receive it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatroom.commands import HELP
from chatroom.domain.events import (
    Acted,
    Event,
    Invited,
    Joined,
    Left,
    MaskSet,
    ModeSet,
    Notice,
    Renamed,
    RoleSet,
    Said,
    TopicSet,
    Whispered,
)
from chatroom.history.store import Kind, Record, line_id, row_for
from chatroom.lines.render import moderation_text
from chatroom.lines.sanitize import clean_text, decode

ABOUT_MESSAGE = "message"
"""An ``error``'s ``about``: the frame was wrong (not JSON, not our schema, binary, too big)."""
ABOUT_TEXT = "text"
"""An ``error``'s ``about``: the text was refused (too long)."""
ABOUT_NICK = "nick"
"""An ``error``'s ``about``: a nickname was refused (invalid, taken)."""
ABOUT_COMMAND = "command"
"""An ``error``'s ``about``: a /command was unknown or misused."""
ABOUT_STATE = "state"
"""An ``error``'s ``about``: the request does not fit now (chat before choosing a nickname)."""
ABOUT_SERVER = "server"
"""An ``error``'s ``about``: the server refuses or ends the connection (full, timeout)."""

_OPCODE_TEXT_FIN = 0x81


# -- client to server ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Nick:
    """``{"type": "nick", "nick": ...}``: join as ``nick``, or rename to it once joined."""

    nick: str


@dataclass(frozen=True, slots=True)
class Say:
    """``{"type": "say", "text": ...}``: chat, or a /command, exactly as a line would be.

    ``text`` is sanitised; ``typed`` is as sent, for ``/nick``, whose argument is checked,
    never cleaned (see ``Commands.run``)."""

    text: str
    typed: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Password:
    """``{"type": "password", "password": ...}``: the password of the registered nickname
    just chosen, after a ``password`` message asked for it. Never cleaned, never logged."""

    password: str = field(repr=False)


ClientMessage = Nick | Say | Password


class BadMessage(ValueError):
    """A frame the server will not act on; ``str(error)`` is the sentence the sender gets."""

    def __init__(self, why: str, about: str = ABOUT_MESSAGE) -> None:
        super().__init__(why)
        self.about = about


_FIELDS: dict[str, str] = {"nick": "nick", "say": "text", "password": "password"}


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(payload: bytes, max_text: int) -> ClientMessage:
    """The message in one text frame, its string cleaned like a telnet line (a nickname
    is not cleaned: it is checked as sent, like a telnet user's).

    Raises ``BadMessage`` when the frame is not UTF-8 JSON, not one of our objects, or its
    string is longer than ``max_text`` bytes of UTF-8 (the line limit). Keys that are not
    part of the schema are ignored, so a newer page still works with this server.
    """
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadMessage("not valid UTF-8: send JSON text") from None
    except (ValueError, RecursionError):
        raise BadMessage("not valid JSON") from None
    if not isinstance(data, dict):
        raise BadMessage('expected a JSON object such as {"type": "say", "text": "hi"}')
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise BadMessage('"type" must be "nick", "say" or "password"')
    field = _FIELDS[kind]
    value = data.get(field)
    if not isinstance(value, str):
        raise BadMessage(f'a "{kind}" message needs a string "{field}"')
    raw = value.encode("utf-8", "surrogatepass")  # a lone surrogate becomes U+FFFD
    if len(raw) > max_text:
        raise BadMessage(f"{field} too long ({max_text} bytes max)", ABOUT_TEXT)
    typed = decode(raw)
    if kind == "password":
        return Password(typed)
    return Nick(typed) if kind == "nick" else Say(clean_text(typed), typed)


# -- server to client ---------------------------------------------------------------


def frame(message: dict[str, Any]) -> bytes:
    """``message`` as JSON in one complete, unmasked WebSocket text frame (RFC 6455 5.2).

    Built here rather than per connection so a broadcast is encoded once; no extension
    (compression) is ever negotiated, so the same bytes are right for every browser.
    """
    payload = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "replace"
    )
    size = len(payload)
    if size < 126:
        header = bytes((_OPCODE_TEXT_FIN, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", _OPCODE_TEXT_FIN, 126, size)
    else:
        header = struct.pack("!BBQ", _OPCODE_TEXT_FIN, 127, size)
    return header + payload


def event_message(event: Event) -> dict[str, Any]:
    """The object a browser gets for an event: a room's carry its ``room``, public ones
    the ``id`` their record will have."""
    message = _event_fields(event)
    if event.room:
        message["room"] = event.room
    row = row_for(event)
    if row is not None:
        message["id"] = line_id(row)
    return message


def _event_fields(event: Event) -> dict[str, Any]:
    kind = type(event)
    if kind is Said:
        assert isinstance(event, Said)
        return {"type": "said", "time": event.time, "nick": event.nick, "text": event.text}
    if kind is Acted:
        assert isinstance(event, Acted)
        return {"type": "acted", "time": event.time, "nick": event.nick, "text": event.text}
    if kind is Joined:
        return {"type": "joined", "time": event.time, "nick": event.nick}
    if kind is Left:
        assert isinstance(event, Left)
        left = {"type": "left", "time": event.time, "nick": event.nick}
        if event.message:
            left["text"] = event.message
        if event.by:  # kicked or banned by an operator
            left["by"] = event.by
            left["how"] = "banned" if event.reason == "banned" else "kicked"
        return left
    if kind is TopicSet:
        assert isinstance(event, TopicSet)
        return {"type": "topic", "time": event.time, "nick": event.nick, "text": event.text}
    if kind is Renamed:
        assert isinstance(event, Renamed)
        return {
            "type": "renamed", "time": event.time, "nick": event.nick, "new_nick": event.new_nick
        }
    if kind is Whispered:
        assert isinstance(event, Whispered)
        return {
            "type": "private", "time": event.time, "nick": event.nick,
            "to": event.target_nick, "text": event.text,
        }
    if kind is Notice:
        assert isinstance(event, Notice)
        return {"type": "notice", "time": event.time, "text": event.text}
    if kind is ModeSet:
        assert isinstance(event, ModeSet)
        return {"type": "mode", "time": event.time, "nick": event.nick, "change": event.change,
                "text": moderation_text(event)}
    if kind is RoleSet:
        assert isinstance(event, RoleSet)
        return {"type": "role", "time": event.time, "nick": event.nick,
                "target": event.target_nick, "change": event.change,
                "text": moderation_text(event)}
    if kind is MaskSet:
        assert isinstance(event, MaskSet)
        return {"type": "mask", "time": event.time, "nick": event.nick, "change": event.change,
                "mask": event.mask, "reason": event.reason, "text": moderation_text(event)}
    if kind is Invited:
        assert isinstance(event, Invited)
        return {"type": "invited", "time": event.time, "nick": event.nick,
                "to": event.target_nick, "text": moderation_text(event)}
    raise TypeError(f"no message for {event!r}")


def render(event: Event) -> bytes:
    """The frame every web recipient of ``event`` gets; encoded once per event."""
    return frame(event_message(event))


def prompt(time: float) -> bytes:
    return frame({"type": "prompt", "time": time, "text": "Choose a nickname"})


def password_prompt(time: float, nick: str) -> bytes:
    """``nick`` is registered: the page asks for its password, then sends a ``password``."""
    return frame({"type": "password", "time": time, "nick": nick,
                  "text": f"{nick} is a registered nickname: type its password"})


def welcome(time: float, nick: str, count: int, max_text: int, room: str = "") -> bytes:
    """Joined as ``nick``, in ``room``; ``max_text`` is the line limit, so the page can
    check first."""
    others = "nobody else is" if count <= 1 else f"{count} people are"
    text = f"welcome, {nick}! {others} here; /who lists them, /help lists commands"
    message = {"type": "welcome", "time": time, "nick": nick, "text": text,
               "max_text": max_text}
    if room:
        message["room"] = room
    return frame(message)


def motd(time: float, lines: Sequence[str]) -> bytes:
    """The message of the day (``--motd``), after ``welcome`` and ``members``."""
    return frame({"type": "motd", "time": time, "lines": list(lines)})


Roles = tuple[Sequence[str], Sequence[str]]
"""``(operators, voiced)``: the nicknames of a room's operators and voiced members."""


def members(time: float, nicks: Sequence[str], room: str = "",
            roles: Roles | None = None) -> bytes:
    message: dict[str, Any] = {"type": "members", "time": time, "nicks": list(nicks)}
    if room:
        message["room"] = room
    _add_roles(message, roles)
    return frame(message)


def _add_roles(message: dict[str, Any], roles: Roles | None) -> None:
    """``ops`` and ``voiced``, where the room has any (none: both left out)."""
    if roles is not None and (roles[0] or roles[1]):
        message["ops"], message["voiced"] = list(roles[0]), list(roles[1])


def room(time: float, name: str, topic: str, nicks: Sequence[str], entered: bool,
         roles: Roles | None = None) -> bytes:
    """The member is in ``name`` and it is now current (``entered``: newly joined);
    ``ops`` and ``voiced`` say who runs it and who may talk when it is moderated."""
    message: dict[str, Any] = {"type": "room", "time": time, "room": name, "topic": topic,
                               "nicks": list(nicks), "entered": entered}
    _add_roles(message, roles)
    return frame(message)


def parted(time: float, name: str, current: str | None) -> bytes:
    """The member left ``name``; ``current`` is the room it talks in now, or null."""
    return frame({"type": "parted", "time": time, "room": name, "current": current})


def rooms(time: float, rows: Sequence[tuple[str, int, str]]) -> bytes:
    """``/rooms``: every room the member may see, with its member count and topic."""
    return frame({"type": "rooms", "time": time, "rooms": [
        {"room": name, "count": count, "topic": topic} for name, count, topic in rows
    ]})


def topic(time: float, name: str, text: str, nick: str) -> bytes:
    """``/topic``: the room's topic (empty: none), and who set it."""
    return frame({"type": "topic", "time": time, "room": name, "nick": nick, "text": text,
                  "query": True})


def record_message(record: Record) -> dict[str, Any]:
    """A stored event as a ``history`` record: the same shape as the live message."""
    message: dict[str, Any] = {"type": str(record.kind), "time": record.time}
    if record.kind is not Kind.NOTICE:
        message["nick"] = record.nick
    if record.kind in (Kind.SAID, Kind.ACTED, Kind.NOTICE, Kind.TOPIC):
        message["text"] = record.text
    elif record.kind is Kind.RENAMED:
        message["new_nick"] = record.new_nick
    message["id"] = record.line_id
    return message  # a LEFT record's text is the reason, for operators: not sent


def history(
    time: float, records: Iterable[Record], context: str, query: str | None = None,
    room: str = "",
) -> bytes:
    """Earlier lines of the room in one message. ``context`` says why: ``join`` (the replay
    before the welcome, oldest first), ``history`` (``/history``, oldest first) or
    ``search`` (``/search``, newest first, with the ``query``)."""
    message: dict[str, Any] = {
        "type": "history", "time": time, "context": context,
        "records": [record_message(record) for record in records],
    }
    if query is not None:
        message["query"] = query
    if room:
        message["room"] = room
    return frame(message)


def notice(time: float, text: str) -> bytes:
    return frame({"type": "notice", "time": time, "text": text})


def error(time: float, text: str, about: str) -> bytes:
    return frame({"type": "error", "time": time, "text": text, "about": about})


def help_notices(time: float) -> bytes:
    """``/help``: one notice per command, in one write."""
    return b"".join(notice(time, f"{usage:<21}{what}") for usage, what in HELP)
