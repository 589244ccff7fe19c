"""``--motd FILE``: a message of the day, shown to every member once it has a nickname.

The file is the operator's text, one line a line. It is read when the options are (at
start: a file that cannot be read stops the start, naming ``--motd``; on SIGHUP and
``/rehash``: such a file refuses the reload and the old message stays) and shown as it
was read then: the line front end as ``*** `` notices after the welcome, the page as one
``motd`` message, IRC as 375/372/376 (and in answer to MOTD).

The file's lines end in LF, CRLF or CR (not at the other characters ``str.splitlines``
takes for line ends: IRC's italics and strikethrough codes are two of them). Each line is
cleaned as an IRC user's chat line is (IRC's colour and formatting codes go whole, then
control characters and escape sequences, runs of blanks made one), cut to ``MAX_CHARS``
characters; blank lines at either end are dropped, and lines past ``MAX_LINES`` too. Only
the first ``MAX_BYTES`` of the file are read, so a wrong path (a log file, a device) costs
bounded memory.
"""

from __future__ import annotations

import os
import re

from chatroom.files import open_regular
from chatroom.irc.message import strip_formatting
from chatroom.lines.sanitize import clean_text

MAX_LINES = 50
"""Lines of the file shown; the rest are left out."""
MAX_CHARS = 400
"""Characters of one line shown (an IRC client's line is cut to 512 bytes as a whole)."""
MAX_BYTES = 64 * 1024
"""Bytes of the file read."""

_LINE_END = re.compile(r"\r\n|\r|\n")


class MotdError(ValueError):
    """The file cannot be read; ``str(error)`` says why."""


def motd_path(value: str) -> str:
    """``--motd``'s value, made absolute: a reload reads the same file wherever the
    server's working directory is by then."""
    return os.path.abspath(os.path.expanduser(value))


motd_path.coerceDoc = "A UTF-8 text file."  # type: ignore[attr-defined]


def parse(text: str) -> list[str]:
    """The lines to show of ``text`` (see the module's docstring)."""
    lines = [clean_text(strip_formatting(line))[:MAX_CHARS].rstrip()
             for line in _LINE_END.split(text)]
    while lines and not lines[-1]:
        lines.pop()
    first = next((i for i, line in enumerate(lines) if line), len(lines))
    return lines[first:first + MAX_LINES]


def load(path: str) -> list[str]:
    """The lines to show of the file at ``path``: blocking (at start, or in a thread)."""
    try:
        with open_regular(path) as file:
            data = file.read(MAX_BYTES)
    except OSError as e:
        raise MotdError(f"cannot read it: {e.strerror or e}") from None
    return parse(data.decode("utf-8", "replace"))
