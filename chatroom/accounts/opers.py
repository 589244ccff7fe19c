"""The server operators file (``--opers FILE``): who may ``/oper``, and with what password.

One operator a line, its name and the Argon2id hash of its password, which
``chatroom-passwd`` prints; blank lines and lines starting with ``#`` are skipped::

    # name   hash
    root     $argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$...

The file holds hashes only, never a password. It is read at start, where a line that is
not right stops the server with a sentence that names it, and again on every reload
(SIGHUP, ``/rehash``), where such a line refuses the reload.
"""

from __future__ import annotations

import re

from chatroom.accounts.passwords import BadHash, check_hash
from chatroom.files import open_regular

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
"""An operator's name: ASCII letters, digits, ``_ . -``, 1 to 32, a letter or digit first."""


class OperatorsFileError(ValueError):
    """The operators file cannot be used; ``str(error)`` names the file and the line."""


def parse_operators(text: str, where: str = "the operators file") -> dict[str, str]:
    """``{name: hash}`` from the file's text."""
    operators: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2:
            raise OperatorsFileError(f"{where}, line {number}: expected NAME HASH, got "
                                     f"{len(words)} words")
        name, hashed = words
        if NAME.fullmatch(name) is None:
            raise OperatorsFileError(f"{where}, line {number}: {name!r} is not a name "
                                     "(letters, digits, _ . -, at most 32)")
        try:
            check_hash(hashed)
        except BadHash as e:
            raise OperatorsFileError(f"{where}, line {number}: {e}") from None
        if name.casefold() in {known.casefold() for known in operators}:
            raise OperatorsFileError(f"{where}, line {number}: {name} is there twice")
        operators[name] = hashed
    return operators


def load_operators(path: str) -> dict[str, str]:
    """The operators of the file at ``path`` (read at start, before the reactor runs)."""
    try:
        with open_regular(path) as file:
            text = file.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OperatorsFileError(f"cannot read {path}: {e}") from None
    return parse_operators(text, path)
