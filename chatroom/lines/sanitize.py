"""Turns a received line into text that is safe to show on anyone's terminal.

Invalid UTF-8 becomes U+FFFD. ANSI escape sequences (CSI, OSC, DCS and friends, and a lone
ESC) are removed whole, so a half-removed sequence cannot still move a cursor. Then every
C0 control except TAB, DEL and the C1 controls (U+0080-U+009F, which include the 8-bit CSI)
are removed, and so are U+2028/U+2029 and the bidirectional override and isolate controls,
which could make a line look like another (or like several).

A nickname is not cleaned: it is checked on the text as decoded (``decode``), and refused
when it holds any of this.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    "\x1b(?:"
    r"\[[0-?]*[ -/]*[@-~]?"  # CSI: parameters, intermediates, final (or cut off)
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: up to BEL or ST (or the end of the line)
    r"|[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC: up to ST
    r"|[ -/]*[0-~]?"  # two-character and nF sequences, or a lone ESC
    ")"
)
# C0 but TAB, DEL, C1; then the line and paragraph separators and the bidirectional
# embedding, override and isolate controls, with which a line could pose as another.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def decode(raw: bytes) -> str:
    """``raw`` as UTF-8, invalid sequences as U+FFFD; nothing removed."""
    return raw.decode("utf-8", "replace")


def clean(raw: bytes) -> str:
    """Decode ``raw`` as UTF-8 and remove everything that is not text."""
    return clean_text(raw.decode("utf-8", "replace"))


def clean_text(text: str) -> str:
    """``text`` without what is not text."""
    if text.isprintable():  # the common case: nothing to remove
        return text
    return _CONTROLS.sub("", _ESCAPES.sub("", text))
