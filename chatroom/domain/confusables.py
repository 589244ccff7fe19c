"""When two nicknames look the same: a caseless UTS #39 skeleton.

``skeleton(text)`` is what two strings share when a person cannot tell them apart (Unicode
Technical Standard #39, section 4), made caseless, since nicknames are compared caselessly:

1. NFKC and casefold (``NFKC(casefold(NFKC(text)))``): fullwidth a (U+FF41), mathematical
   bold a (U+1D41A) and ``A`` become ``a``, as in PRECIS (RFC 8264) and the server ergo;
2. the skeleton proper: NFD, each code point replaced by its prototype from Unicode's
   ``confusables.txt`` (Cyrillic a, U+0430, and Greek alpha by ``a``; ``0`` by ``O``),
   NFD again; the prototypes casefolded in turn, until nothing changes;
3. two changes to the table. Like ergo, ``m`` is not ``rn`` (it would make two ASCII names
   the same), and what looks like ``m`` counts as ``m``. And as nicknames are caseless, a
   small letter whose capital looks like a Latin letter or digit counts as that letter when
   the small letter itself only looks like a letter of no other case: Cyrillic en (U+043D,
   capital U+041D) counts as ``h``, Cyrillic te as ``t``, Greek mu as ``m``.

Because the key is caseless, a look-alike that exists only between a capital and a
*different* small letter is not caught: capital ``I`` and small ``l``; the Greek capitals
beta, eta, nu and upsilon against ``B``, ``H``, ``N``, ``Y`` (their small letters look like
``ß``, ``n``, ``v``, ``u``). Counting those as the same would make ``Neil`` and ``Nell`` one
nickname.

The table comes from the ``confusable-homoglyphs`` package, which ships ``confusables.txt``
as JSON: every entry ``source → prototype`` is stored in both directions, so it is read back
here. A prototype is never a source (the file is idempotent), so each connected group of
single code points is a star around its prototype; in a group of two, the one that comes
first in the file (which is sorted by source) is the source. Built once, at import (about
50 ms); every node of a scaled-out room must run the same versions, as the key is what they
claim nicknames by.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources

_DATA_PACKAGE = "confusable_homoglyphs"
_LRM = "\u200e"  # the JSON wraps right-to-left characters in LRMs, for display

TWEAKS: dict[str, str | None] = {
    "m": None,  # m → rn: two ASCII names would be one
    "\U000118e3": "m",  # WARANG CITI DIGIT THREE → rn, so → m
    "\U00011700": "m",  # AHOM LETTER KA → rn, so → m
    "\u0271": "m",  # LATIN SMALL LETTER M WITH HOOK → rn̦, but it looks like m
}
"""Changes to ``confusables.txt``: None removes an entry. ergo makes the same ones."""


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def load_prototypes() -> dict[str, str]:
    """``confusables.txt`` as ``{source: prototype}``, from the package's JSON."""
    text = resources.files(_DATA_PACKAGE).joinpath("confusables.json").read_text("utf-8")
    graph: dict[str, list[str]] = {}
    for key, entries in json.loads(text).items():
        graph[key.replace(_LRM, "")] = [entry["c"].replace(_LRM, "") for entry in entries]
    order = {key: i for i, key in enumerate(graph)}
    prototypes: dict[str, str] = {}
    for key, neighbours in graph.items():
        if len(key) != 1 or len(neighbours) != 1:
            continue  # a source is one code point with one prototype
        (other,) = neighbours
        if len(other) > 1 or len(graph[other]) > 1 or order[key] < order[other]:
            prototypes[key] = other
    for source, prototype in TWEAKS.items():
        if prototype is None:
            prototypes.pop(source, None)
        else:
            prototypes[source] = prototype
    return prototypes


def build_table(prototypes: dict[str, str]) -> dict[int, str]:
    """A ``str.translate`` table from each code point of NFKC-casefolded, NFD text to its
    part of the skeleton (step 2 and 3 of the module's docstring)."""
    step = {ord(source): prototype for source, prototype in prototypes.items()}

    def settle(text: str) -> str:
        for _ in range(8):
            mapped = _nfd(_nfd(text).translate(step).casefold())
            if mapped == text:
                return text
            text = mapped
        raise ValueError(f"the confusables table does not settle on {text!r}")

    table = {source: settle(prototype) for source, prototype in step.items()}
    # A small letter that looks like nothing of another case, whose capital looks like a
    # Latin letter or digit: the small letter's group counts as that letter.
    capitals: dict[str, str] = {}
    for capital in sorted(prototypes):
        small = capital.casefold()
        if len(small) != 1 or small == capital:
            continue
        looks, capital_looks = settle(small), settle(capital)
        if (
            len(looks) == 1 and not looks.isascii()
            and len(capital_looks) == 1 and capital_looks.isascii() and capital_looks.isalnum()
        ):
            capitals.setdefault(looks, capital_looks)
    redirect = {ord(looks): latin for looks, latin in capitals.items()}
    for source, mapped in table.items():
        table[source] = mapped.translate(redirect)
    table.update(redirect)
    return {source: mapped for source, mapped in table.items() if mapped != chr(source)}


_TABLE = build_table(load_prototypes())


@lru_cache(maxsize=4096)
def skeleton(text: str) -> str:
    """The caseless skeleton of ``text``: equal for two strings a person cannot tell apart
    (see the module's docstring for what it does and does not catch)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    # A dot above a letter that has one already (i, j: Unicode's "soft dotted") is not
    # seen: ``i`` + U+0307 looks like ``i`` (UTS #39 section 5.4's own example).
    found = _SOFT_DOTTED_DOT.sub(r"\1", _nfd(_nfd(folded).translate(_TABLE)))
    # Most nicknames are their own skeleton: the same string then, not an equal copy (a
    # registry of 15 000 nicknames keeps each once, not twice).
    return text if found == text else found


_SOFT_DOTTED_DOT = re.compile("([ij])\u0307+")
