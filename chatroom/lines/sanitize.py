"""Turns a received line into text that is safe to show on anyone's terminal.

Invalid UTF-8 becomes U+FFFD. ANSI escape sequences (CSI, OSC, DCS and friends, and a lone
ESC) are removed whole, so a half-removed sequence cannot still move a cursor. Then these
are removed: every C0 control but TAB, DEL and the C1 controls (U+0080-U+009F, which include
the 8-bit CSI); U+2028/U+2029; the bidi controls (ALM, LRM, RLM, embeddings, overrides,
isolates), which could make a line look like another; the invisible format characters
(soft hyphen, zero width space, word joiner, BOM, ... see ``charclasses.INVISIBLE_FORMAT``)
and the interlinear annotation controls, which could hide text; and tag characters, except
in an emoji tag sequence (the flag of Scotland is U+1F3F4, tags, CANCEL TAG). ZWJ and ZWNJ
stay: emoji sequences and many scripts need them.

Last, the blanks (``charclasses.BLANKS``): a run of two or more (with any invisible marks
or joiners among them) becomes one space, and a lone TAB, Hangul filler or blank Braille
pattern becomes a space. A lone space of another kind (NBSP, the ideographic space) stays.
So no run of blanks can push text to the start of a terminal's next line, where it would
pose as a line of its own.

A line left with nothing that shows (only blanks, invisible marks such as U+034F COMBINING
GRAPHEME JOINER, joiners) becomes empty, so every front end ignores it like an empty line
instead of broadcasting a line that looks blank.

A nickname is not cleaned: it is checked on the text as decoded (``decode``), and refused
when it holds any of this.
"""

from __future__ import annotations

import re

from chatroom.domain.charclasses import (
    BIDI_CONTROLS,
    BLANKS,
    FILLERS,
    INVISIBLE_FORMAT,
    INVISIBLE_MARKS,
    JOINERS,
    LAYOUT_CONTROLS,
    TAGS,
)

_ESCAPES = re.compile(
    "\x1b(?:"
    r"\[[0-?]*[ -/]*[@-~]?"  # CSI: parameters, intermediates, final (or cut off)
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: up to BEL or ST (or the end of the line)
    r"|[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC: up to ST
    r"|[ -/]*[0-~]?"  # two-character and nF sequences, or a lone ESC
    ")"
)
# Removed: C0 but TAB, DEL, C1, the line and paragraph separators, bidi controls, invisible
# format characters, the interlinear annotation controls, and tag characters...
_REMOVED = re.compile(
    f"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ufff9-\ufffb"
    f"{BIDI_CONTROLS}{INVISIBLE_FORMAT}{TAGS}]"
)
# ... but for an emoji tag sequence, which is kept whole.
_FLAG = "\U0001f3f4"
_TAG_SEQUENCE = re.compile(f"({_FLAG}[\U000e0020-\U000e007e]+\U000e007f)")
# Two or more blanks, with invisible marks or joiners among them; then a lone blank that
# is not a space.
_BLANK_RUN = re.compile(f"[{BLANKS}][{BLANKS}{INVISIBLE_MARKS}{JOINERS}]+")
_ODD_BLANK = re.compile(f"[\t{FILLERS}\u2800]")
# What Python calls printable but the blank rule may change: the blanks that are not
# spaces, and the invisible marks (which count as blank after a space).
_PRINTABLE_ODD = re.compile(f"[{FILLERS}\u2800{INVISIBLE_MARKS}]")
# What is left when nothing in a line shows.
_NOTHING_SHOWN = re.compile(f"[{BLANKS}{INVISIBLE_MARKS}{JOINERS}{LAYOUT_CONTROLS}]*")


def decode(raw: bytes) -> str:
    """``raw`` as UTF-8, invalid sequences as U+FFFD; nothing removed."""
    return raw.decode("utf-8", "replace")


def clean(raw: bytes) -> str:
    """Decode ``raw`` as UTF-8 and remove everything that is not text."""
    return clean_text(raw.decode("utf-8", "replace"))


def clean_text(text: str) -> str:
    """``text`` without what is not text, and with runs of blanks collapsed; empty when
    nothing of it would show."""
    if text.isascii():  # the common cases first: nothing to change
        if text.isprintable() and "  " not in text:
            return text
    elif text.isprintable() and "  " not in text and _PRINTABLE_ODD.search(text) is None:
        return text
    if "\x1b" in text:
        text = _ESCAPES.sub("", text)
    if _FLAG in text:
        pieces = _TAG_SEQUENCE.split(text)  # odd pieces are tag sequences
        text = "".join(p if i % 2 else _REMOVED.sub("", p) for i, p in enumerate(pieces))
    else:
        text = _REMOVED.sub("", text)
    text = _ODD_BLANK.sub(" ", _BLANK_RUN.sub(" ", text))
    return "" if _NOTHING_SHOWN.fullmatch(text) else text
