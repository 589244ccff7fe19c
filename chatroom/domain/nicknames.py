"""Nickname rules: what a nickname may look like, and when two are the same.

A nickname is checked as the client sent it, never cleaned into another one: blanks around
it are trimmed, and anything else that is not allowed is refused with the reason. It is 1
to 32 Unicode code points after NFC normalisation. The first is a letter or a decimal
digit of any script; the rest are letters, digits, combining marks (so that scripts such as
Devanagari can write names at all), ``_`` or ``-``. Control characters, escape sequences
and invisible characters (Unicode's default-ignorables: variation selectors, the combining
grapheme joiner, Hangul fillers, zero-width and bidi marks) are refused, even where their
category would pass. Since the first character is a letter or digit, a nickname never
starts with ``*``, ``!``, ``[``, ``/``, ``:``, ``_`` or ``-`` and line shapes cannot be
confused.

Two nicknames are the same when a person could not tell them apart: their caseless
skeletons match (``confusables.skeleton``), so ``Alice``, ``ALICE``, ``alice`` with a
Cyrillic a (U+0430) and ``alice`` in fullwidth letters are one nickname. The nickname is
shown as typed (NFC).
"""

from __future__ import annotations

import re
import unicodedata

from chatroom.domain import confusables
from chatroom.domain.charclasses import DEFAULT_IGNORABLE, SPACES
from chatroom.domain.errors import NicknameInvalid

MAX_NICK_LENGTH = 32

_FIRST_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd"})
_REST_CATEGORIES = _FIRST_CATEGORIES | {"Mn", "Mc"}
_REST_EXTRA = frozenset("_-")
_TRIMMED = "\t" + SPACES
_INVISIBLE = re.compile(f"[{DEFAULT_IGNORABLE}]")


def trim(raw: str) -> str:
    """``raw`` without the blanks (TAB and spaces of any kind) around it; nothing else."""
    return raw.strip(_TRIMMED)


def normalize(raw: str) -> str:
    """Return the nickname as it will be shown, or raise ``NicknameInvalid`` saying why.

    ``raw`` is the text as received (decoded, not sanitised), so that a control character
    or an escape sequence is refused rather than removed."""
    nick = unicodedata.normalize("NFC", trim(raw))
    if not nick:
        raise NicknameInvalid("a nickname needs at least one character")
    for char in nick:  # these first: the length or the first character is not the point
        if _INVISIBLE.match(char) or unicodedata.category(char) in ("Cc", "Cf"):
            raise NicknameInvalid(f"a nickname cannot hold {_describe(char)}")
    if len(nick) > MAX_NICK_LENGTH:
        raise NicknameInvalid(
            f"a nickname has at most {MAX_NICK_LENGTH} characters (got {len(nick)})"
        )
    first = nick[0]
    if unicodedata.category(first) not in _FIRST_CATEGORIES:
        raise NicknameInvalid(
            f"a nickname must start with a letter or a digit, not {_describe(first)}"
        )
    for char in nick[1:]:
        if char not in _REST_EXTRA and unicodedata.category(char) not in _REST_CATEGORIES:
            raise NicknameInvalid(
                f"a nickname may hold only letters, digits, _ and -, not {_describe(char)}"
            )
    return nick


def key(nick: str) -> str:
    """The form two nicknames share when a person could not tell them apart: the caseless
    confusable skeleton. Hubs claim nicknames by it; it is never shown."""
    return confusables.skeleton(nick)


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if char == "\x1b":
        return f"an escape sequence (ESC, {code})"
    if char == "\ufffd":
        return f"{code}, which stands for bytes that were not valid UTF-8"
    if char == "\t":
        return "a space (TAB)"
    if char.isspace() and unicodedata.category(char) != "Cc":
        return "a space"
    if unicodedata.category(char) == "Cc":
        return f"the control character {code}"
    if _INVISIBLE.match(char) or unicodedata.category(char).startswith("C"):
        name = unicodedata.name(char, "")
        return f"the invisible character {code}" + (f" ({name})" if name else "")
    return repr(char)
