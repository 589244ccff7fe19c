"""Nickname rules: what a nickname may look like, and when two are the same.

A nickname is 1 to 32 Unicode code points after NFC normalisation. The first is a letter
or a decimal digit of any script; the rest are letters, digits, combining marks (so that
scripts such as Devanagari can write names at all), ``_`` or ``-``. Two nicknames are the
same when their caseless forms match (Unicode canonical caseless matching), so ``Alice``
and ``ALICE`` cannot both be present. Since the first character is a letter or digit, a
nickname never starts with ``*``, ``!``, ``[``, ``/``, ``:``, ``_`` or ``-`` and line
shapes cannot be confused.
"""

from __future__ import annotations

import unicodedata

from chatroom.domain.errors import NicknameInvalid

MAX_NICK_LENGTH = 32

_FIRST_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd"})
_REST_CATEGORIES = _FIRST_CATEGORIES | {"Mn", "Mc"}
_REST_EXTRA = frozenset("_-")


def normalize(raw: str) -> str:
    """Return the nickname as it will be shown, or raise ``NicknameInvalid`` saying why."""
    nick = unicodedata.normalize("NFC", raw.strip())
    if not nick:
        raise NicknameInvalid("a nickname needs at least one character")
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
    """The form two nicknames share when they are the same person's: caseless and NFC."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", nick).casefold())


def _describe(char: str) -> str:
    if char.isspace():
        return "a space"
    if unicodedata.category(char).startswith("C"):
        return f"the control character U+{ord(char):04X}"
    return repr(char)
