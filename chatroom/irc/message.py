"""IRC messages: parsing a received line, writing one, and fitting text into 512 bytes.

The shape is the Modern IRC one: ``[@tags] [:source] COMMAND [params] [:trailing]``. A
message (less its tags) is at most 512 bytes with its CRLF; client tags add at most 4094
bytes more (IRCv3 message-tags). Text longer than one line allows is split on a UTF-8
boundary (at a space where there is one) into several messages, never cut short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_MESSAGE = 512
"""Bytes in a message without its tags, CRLF included."""

MAX_CLIENT_TAGS = 4094
"""Bytes of tags a client may send (after the ``@``, before the space)."""

MAX_LINE = MAX_CLIENT_TAGS + 2 + MAX_MESSAGE
"""The longest line read from a client, without its line ending."""

_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPE = re.compile(r"[; \\\r\n]")
_UNESCAPE = re.compile(r"\\(.?)", re.DOTALL)

# mIRC formatting: colours (``^C`` with up to two numbers), hex colours (``^D``), bold,
# italics, underline, strike-through, monospace, reverse, reset. Other front ends show
# none of it, and the sanitiser would leave a colour's digits behind.
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    r"|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)


class TooLong(ValueError):
    """The message part of a received line is over 512 bytes, or its tags over 4094."""


@dataclass(frozen=True, slots=True)
class Message:
    """One received message; ``params`` holds the trailing parameter last, if any."""

    command: str
    params: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    source: str | None = None


def escape_value(value: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], value)


def unescape_value(value: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(1)), value)


def parse_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in text.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        tags[key] = unescape_value(value)
    return tags


def parse(line: bytes) -> Message | None:
    """The message in ``line`` (no line ending), or ``None`` if it holds none (blank).

    Bytes that are not UTF-8 become U+FFFD; raises ``TooLong`` past the limits."""
    tags: dict[str, str] = {}
    if line.startswith(b"@"):
        raw_tags, _, line = line[1:].partition(b" ")
        if len(raw_tags) > MAX_CLIENT_TAGS:
            raise TooLong("tags")
        tags = parse_tags(raw_tags.decode("utf-8", "replace"))
    line = line.lstrip(b" ")
    if len(line) > MAX_MESSAGE - 2:
        raise TooLong("message")
    text = line.decode("utf-8", "replace")
    source = None
    if text.startswith(":"):
        source, _, text = text[1:].partition(" ")
        text = text.lstrip(" ")
    text, colon, trailing = text.partition(" :")
    if not colon and text.startswith(":"):  # no command, just a trailing: nothing
        return None
    words = text.split()
    if not words:
        return None
    params = words[1:]
    if colon:
        params.append(trailing)
    return Message(words[0].upper(), params, tags, source)


def format_tags(tags: dict[str, str]) -> str:
    return ";".join(f"{k}={escape_value(v)}" if v else k for k, v in tags.items())


def build(
    source: str | None,
    command: str,
    *params: str,
    tags: dict[str, str] | None = None,
    trailing: bool = True,
) -> bytes:
    """One message with its CRLF. The last parameter is written as a trailing one (with
    its ``:``) unless ``trailing`` is false and it needs none; the message part is cut to
    512 bytes on a character boundary (callers split text that must not be cut)."""
    parts: list[str] = []
    if source:
        parts.append(":" + source)
    parts.append(command)
    if params:
        parts.extend(params[:-1])
        last = params[-1]
        if trailing or not last or " " in last or last.startswith(":"):
            last = ":" + last
        parts.append(last)
    body = " ".join(parts).encode("utf-8", "replace")
    if len(body) > MAX_MESSAGE - 2:
        body = cut(body, MAX_MESSAGE - 2)
    head = ("@" + format_tags(tags) + " ").encode("utf-8", "replace") if tags else b""
    return head + body + b"\r\n"


def cut(data: bytes, size: int) -> bytes:
    """``data`` cut to at most ``size`` bytes, never inside a UTF-8 sequence."""
    if len(data) <= size:
        return data
    end = size
    while end > 0 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return data[:end]


def split_text(text: str, room: int) -> list[str]:
    """``text`` in pieces of at most ``room`` bytes of UTF-8 each, split after a space
    where one is near the end of a piece, else on a character boundary."""
    data = text.encode("utf-8", "replace")
    if len(data) <= room:
        return [text]
    room = max(room, 4)
    pieces: list[str] = []
    while len(data) > room:
        piece = cut(data, room)
        space = piece.rfind(b" ", len(piece) // 2)
        if space > 0:
            piece = piece[: space + 1]
        pieces.append(piece.decode("utf-8"))
        data = data[len(piece):]
    if data:
        pieces.append(data.decode("utf-8", "replace"))
    return pieces


def strip_formatting(text: str) -> str:
    """``text`` without mIRC colours and formatting codes."""
    if "\x03" in text or "\x04" in text or any(c in text for c in "\x02\x0f\x11\x16\x1d\x1e\x1f"):
        return _FORMATTING.sub("", text)
    return text
