"""Room events as the lines a telnet user reads; each is encoded once, for every recipient.

The shapes let a program tell lines apart: chat ``NICK: text``, action ``* NICK text``,
server notices ``*** text``, errors ``! text``, private ``[private] NICK: text``.
"""

from __future__ import annotations

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

CRLF = b"\r\n"


def line(text: str) -> bytes:
    """One wire line: UTF-8 (never failing) and CRLF."""
    return text.encode("utf-8", "replace") + CRLF


def notice(text: str) -> bytes:
    return line("*** " + text)


def error(text: str) -> bytes:
    return line("! " + text)


def render(event: Event) -> bytes:
    """The line everyone but the sender sees for ``event``."""
    kind = type(event)
    if kind is Said:
        assert isinstance(event, Said)
        return f"{event.nick}: {event.text}\r\n".encode("utf-8", "replace")
    if kind is Acted:
        assert isinstance(event, Acted)
        return f"* {event.nick} {event.text}\r\n".encode("utf-8", "replace")
    if kind is Joined:
        return notice(f"{event.nick} joined")
    if kind is Left:
        assert isinstance(event, Left)
        if event.by:
            how = "banned" if event.reason == "banned" else "kicked"
            why = f" ({event.message})" if event.message else ""
            return notice(f"{event.nick} was {how} by {event.by}{why}")
        if event.message:
            return notice(f"{event.nick} left ({event.message})")
        return notice(f"{event.nick} left")
    if kind is TopicSet:
        assert isinstance(event, TopicSet)
        if not event.text:
            return notice(f"{event.nick} cleared the topic")
        return notice(f"{event.nick} set the topic: {event.text}")
    if kind is Renamed:
        assert isinstance(event, Renamed)
        return notice(f"{event.nick} is now known as {event.new_nick}")
    if kind is Whispered:
        assert isinstance(event, Whispered)
        return line(f"[private] {event.nick}: {event.text}")
    if kind is Notice:
        assert isinstance(event, Notice)
        return notice(event.text)
    if kind in _MODERATION:
        return notice(moderation_text(event))
    raise TypeError(f"no line shape for {event!r}")


_MODERATION = frozenset((ModeSet, RoleSet, MaskSet, Invited))

_ROLES = {"+o": "made {target} an operator", "-o": "took operator status from {target}",
          "+v": "gave voice to {target}", "-v": "took voice from {target}"}
_MASKS = {"+b": "set a ban on {mask}", "-b": "lifted the ban on {mask}",
          "+q": "muted {mask}", "-q": "unmuted {mask}"}


def moderation_text(event: Event) -> str:
    """What a moderation event says, without the ``*** ``: the same words on every
    front end."""
    kind = type(event)
    if kind is ModeSet:
        assert isinstance(event, ModeSet)
        return f"{event.nick} set mode {event.change}"
    if kind is RoleSet:
        assert isinstance(event, RoleSet)
        if not event.nick:  # the room's own doing: an operator account of a registered room
            return f"{event.target_nick} is an operator here, by account"
        done = _ROLES.get(event.change, event.change + " {target}")
        return f"{event.nick} " + done.format(target=event.target_nick)
    if kind is MaskSet:
        assert isinstance(event, MaskSet)
        done = _MASKS.get(event.change, event.change + " {mask}").format(mask=event.mask)
        return f"{event.nick} {done}" + (f" ({event.reason})" if event.reason else "")
    if kind is Invited:
        assert isinstance(event, Invited)
        return f"{event.nick} invites you to {event.room}: /join {event.room}"
    raise TypeError(f"not a moderation event: {event!r}")
