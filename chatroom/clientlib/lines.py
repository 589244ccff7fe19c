"""What the client makes of a received line: make it safe, tell its shape, style it.

Pure functions and one small state machine, no I/O, so every rule is unit tested. The
shapes are the protocol's (PROTOCOL.md): chat ``NICK: text``, action ``* NICK text``,
notice ``*** text``, error ``! text``, private ``[private] NICK: text``; a line that is
none of these and mentions ``nickname`` is the server's prompt.

History replay (a later server feature) brackets old lines with ``*** last N lines`` and
``*** end of history`` and prefixes each with a time, ``[12:34] alice: hi``. ``Parser``
understands both but needs neither: a time prefix is parsed wherever it appears, and
lines inside the brackets are marked ``replayed`` so the terminal can dim them.
"""

from __future__ import annotations

import enum
import re
import unicodedata
import zlib
from dataclasses import dataclass, replace

# -- sanitising -----------------------------------------------------------------------

_ESCAPES = re.compile(
    "(?:\x1b\\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI (7- or 8-bit): params, intermediates, final
    "|(?:\x1b\\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\\\|\x9c)?"  # OSC, up to BEL or ST
    "|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\\\|\x9c)?"  # DCS SOS PM APC
    "|\x1b[ -/]*[0-~]?"  # other escape sequences, or a lone ESC
)
# C0 but TAB, DEL, C1; bidi embeddings, overrides and isolates (they reorder the rest
# of the terminal line); line and paragraph separators (some terminals break on them).
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def sanitize(raw: bytes | str) -> str:
    """``raw`` as text that cannot move the cursor, recolour or retitle the terminal.

    The server already cleans what it relays; the client does not rely on that, since it
    may be talking to any server. Invalid UTF-8 becomes U+FFFD; escape sequences go
    whole, not just their ESC; then every remaining control character goes.
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if text.isprintable():  # the common case: nothing to remove
        return text
    return _UNSAFE.sub("", _ESCAPES.sub("", text))


# -- shapes ----------------------------------------------------------------------------


class Kind(enum.Enum):
    CHAT = "chat"
    ACTION = "action"
    NOTICE = "notice"
    ERROR = "error"
    PRIVATE = "private"
    PROMPT = "prompt"
    TEXT = "text"


@dataclass(frozen=True)
class Line:
    """One received line, sanitised, with its shape.

    ``text`` is the whole line as received (time prefix included): what a script sees.
    ``body`` is the message without the shape's decoration, ``nick`` its author if the
    shape has one, ``time`` the replay time prefix if any.
    """

    text: str
    kind: Kind
    body: str
    nick: str | None = None
    time: str | None = None
    replayed: bool = False


_TIME = re.compile(r"\[((?:\d{4}-\d\d-\d\d[ T])?\d{1,2}:\d\d(?::\d\d)?)\] (.*)", re.DOTALL)
_PRIVATE = re.compile(r"\[private\] ([^\s:]+): ?(.*)", re.DOTALL)
_NOTICE = re.compile(r"\*\*\*(?: (.*))?", re.DOTALL)
_ACTION = re.compile(r"\* ([^\s*]\S*)(?: (.*))?", re.DOTALL)
_ERROR = re.compile(r"!(?: (.*))?", re.DOTALL)
# A nickname never starts with * ! [ / : _ - (PROTOCOL.md) and holds no space or colon.
_CHAT = re.compile(r"([^\s:*!\[/_\-][^\s:]*): (.*)", re.DOTALL)


def parse(text: str) -> Line:
    """The shape of one sanitised line, without any state (see ``Parser`` for replays)."""
    time: str | None = None
    rest = text
    timed = _TIME.fullmatch(text)
    if timed is not None:
        time, rest = timed.group(1), timed.group(2)
    line = _shape(rest)
    return replace(line, text=text, time=time)


def _shape(text: str) -> Line:
    if m := _PRIVATE.fullmatch(text):
        return Line(text, Kind.PRIVATE, m.group(2), nick=m.group(1))
    if m := _NOTICE.fullmatch(text):
        return Line(text, Kind.NOTICE, m.group(1) or "")
    if m := _ACTION.fullmatch(text):
        return Line(text, Kind.ACTION, m.group(2) or "", nick=m.group(1))
    if m := _ERROR.fullmatch(text):
        return Line(text, Kind.ERROR, m.group(1) or "")
    if m := _CHAT.fullmatch(text):
        return Line(text, Kind.CHAT, m.group(2), nick=m.group(1))
    if "nickname" in text.casefold():
        return Line(text, Kind.PROMPT, text)
    return Line(text, Kind.TEXT, text)


_REPLAY_START = re.compile(r"last (\d+) (?:lines?|messages?)\b.*", re.IGNORECASE | re.DOTALL)
_REPLAY_END = re.compile(r"end of (?:the )?history\b.*", re.IGNORECASE | re.DOTALL)


class Parser:
    """``parse`` plus the one thing that needs memory: being inside a history replay.

    A replay ends at its end marker, or after as many lines as its start marker
    announced (and a few more), so a lost marker cannot dim the rest of the session.
    """

    SLACK = 4

    def __init__(self) -> None:
        self._replay_left: int | None = None

    @property
    def replaying(self) -> bool:
        return self._replay_left is not None

    def feed(self, text: str) -> Line:
        line = parse(text)
        if line.kind is Kind.NOTICE and line.time is None:
            start = _REPLAY_START.fullmatch(line.body)
            if start is not None:
                self._replay_left = int(start.group(1)) + self.SLACK
                return replace(line, replayed=True)
            if self._replay_left is not None and _REPLAY_END.fullmatch(line.body):
                self._replay_left = None
                return replace(line, replayed=True)
        if self._replay_left is None:
            return line
        self._replay_left -= 1
        if self._replay_left <= 0:
            self._replay_left = None
        return replace(line, replayed=True)


# -- styling ---------------------------------------------------------------------------

Fragments = list[tuple[str, str]]
"""(style, text) pairs, the shape prompt_toolkit calls formatted text. A style is
space-separated names: ``nick-N``, ``action``, ``notice``, ``error``, ``private``,
``time``, ``replay``, ``me``."""

# Nick colours: none of the colours that mark a shape (red errors, cyan notices, magenta
# private messages, faint replays), so a nickname never looks like one.
NICK_COLOURS = ("32", "33", "34", "92", "93", "94", "95", "96")

_SGR = {
    "notice": "36",
    "error": "1;31",
    "private": "1;35",
    "action": "3",
    "time": "2",
    "replay": "2",
    "me": "1",
}


def nick_key(nick: str) -> str:
    """The form two spellings of one nickname share (as the server compares them)."""
    return unicodedata.normalize("NFC", nick).casefold()


def nick_style(nick: str) -> str:
    """The same nickname gets the same colour in every session and on every machine."""
    return f"nick-{zlib.crc32(nick_key(nick).encode('utf-8')) % len(NICK_COLOURS)}"


def fragments(line: Line) -> Fragments:
    """How ``line`` is shown on a colour terminal: the shape picks the style."""
    parts: Fragments
    kind = line.kind
    if kind is Kind.CHAT and line.nick is not None:
        parts = [(nick_style(line.nick), line.nick), ("", ": " + line.body)]
    elif kind is Kind.ACTION and line.nick is not None:
        tail = " " + line.body if line.body else ""
        parts = [("action", "* "), (nick_style(line.nick) + " action", line.nick),
                 ("action", tail)]
    elif kind is Kind.PRIVATE and line.nick is not None:
        parts = [("private", "[private]"), ("", " "), (nick_style(line.nick), line.nick),
                 ("", ": "), ("private", line.body)]
    elif kind is Kind.NOTICE:
        parts = [("notice", _strip_time(line))]
    elif kind is Kind.ERROR:
        parts = [("error", _strip_time(line))]
    else:
        parts = [("", _strip_time(line))]
    if line.time is not None:
        parts.insert(0, ("time", f"[{line.time}] "))
    if line.replayed:
        parts = [(f"{style} replay".strip(), text) for style, text in parts]
    return [(style, text) for style, text in parts if text]


def _strip_time(line: Line) -> str:
    if line.time is None:
        return line.text
    return line.text[len(line.time) + 3:]


def plain(parts: Fragments) -> str:
    return "".join(text for _, text in parts)


def sgr(style: str) -> str:
    """The SGR parameters for a style, e.g. ``"1;31"``; empty for the default look."""
    codes: list[str] = []
    for name in style.split():
        if name.startswith("nick-"):
            codes.append(NICK_COLOURS[int(name[5:]) % len(NICK_COLOURS)])
        elif name in _SGR:
            codes.append(_SGR[name])
    return ";".join(codes)


def to_ansi(parts: Fragments) -> str:
    """``parts`` with ANSI colours, each styled run closed so nothing leaks past it."""
    out: list[str] = []
    for style, text in parts:
        codes = sgr(style)
        out.append(f"\x1b[{codes}m{text}\x1b[0m" if codes else text)
    return "".join(out)


def render(line: Line, colour: bool) -> str:
    """The text to print for ``line``: as received, or coloured."""
    return to_ansi(fragments(line)) if colour else line.text
