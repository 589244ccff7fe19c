"""Classes of characters that the nickname rules and the sanitiser share.

Each is a fragment for a regular expression's character class (``f"[{INVISIBLE}]"``), so
the sanitiser, which runs on every line, can compile them into one pattern. The data is
Unicode's (15.1): Python's ``unicodedata`` has categories but not the properties used here.
"""

from __future__ import annotations

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""What steers the direction of text: ALM, LRM, RLM, the embeddings and overrides, the
isolates. With them a line can show its parts in another order than they were typed."""

JOINERS = "\u200c\u200d"
"""ZWNJ and ZWJ: invisible, but they make emoji sequences (a family: man ZWJ woman ZWJ
girl) and the right shapes of Indic and Arabic-script words, so chat keeps them (a nickname
does not)."""

INVISIBLE_MARKS = "\u034f\u17b4\u17b5\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef"
"""The default-ignorable combining marks: the combining grapheme joiner, Khmer's inherent
vowels, Mongolian free variation selectors and the variation selectors (which pick an
emoji's colour form, or an ideograph's variant). Zero width on their own."""

LAYOUT_CONTROLS = "\U00013430-\U0001343f"
"""The Egyptian hieroglyph format controls (category Cf, not default-ignorable): they
arrange the signs around them, so chat keeps them, but on their own they show nothing, and
a nickname refuses them as it refuses every format character."""

FILLERS = "\u115f\u1160\u3164\uffa0"
"""The Hangul fillers: letters (category Lo) that show as nothing, or as a blank."""

INVISIBLE_FORMAT = (
    "\u00ad\u180e\u200b\u2060-\u2065\u206a-\u206f\ufeff\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e001f\U000e0080-\U000e00ff"
    "\U000e01f0-\U000e0fff"
)
"""The default-ignorable format characters that are neither a bidi control, a joiner nor a
tag (see ``TAGS``): soft hyphen, Mongolian vowel separator, zero width space, word joiner
and the invisible operators, the deprecated format controls, BOM (ZWNBSP), shorthand and
musical format controls, and the reserved code points kept default-ignorable."""

TAGS = "\U000e0020-\U000e007f"
"""Tag characters: invisible, meaningful only in an emoji tag sequence (the flags of
England, Scotland, Wales: 🏴 + tags + CANCEL TAG)."""

DEFAULT_IGNORABLE = BIDI_CONTROLS + JOINERS + INVISIBLE_MARKS + FILLERS + INVISIBLE_FORMAT + TAGS
"""Unicode's Default_Ignorable_Code_Point, in full: what a renderer shows as nothing."""

SPACES = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
"""Category Zs, every kind of space (NBSP, the en/em/thin spaces, the ideographic one),
listed one by one, so that it also serves ``str.strip``."""

BLANKS = "\t" + SPACES + FILLERS + "\u2800"
"""What shows as empty columns: TAB, the spaces, the Hangul fillers and the blank Braille
pattern. Runs of them could push text to where a terminal starts a new line."""
