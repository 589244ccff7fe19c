"""Room events as the lines a telnet user reads; each is encoded once, for every recipient.

The shapes let a program tell lines apart: chat ``NICK: text``, action ``* NICK text``,
server notices ``*** text``, errors ``! text``, private ``[private] NICK: text``.
"""

from __future__ import annotations

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
    raise TypeError(f"no line shape for {event!r}")
