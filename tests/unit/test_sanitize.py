"""The sanitiser on its own (issue 12, point 6): no forged lines, no hidden characters.

Whatever text comes in, what comes out holds no TAB, no run of blanks, no bidi control and
no invisible format character, and cleaning it again changes nothing.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

from chatroom.domain.charclasses import (
    BIDI_CONTROLS,
    BLANKS,
    INVISIBLE_FORMAT,
    INVISIBLE_MARKS,
    JOINERS,
    SPACES,
)
from chatroom.lines.sanitize import clean, clean_text, decode
from tests.unit.test_web_harness import FakeBrowser, make_site

BLANK_RUN = re.compile(f"[{BLANKS}][{BLANKS}{INVISIBLE_MARKS}{JOINERS}]+")
NEVER = re.compile(f"[\t\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029{BIDI_CONTROLS}{INVISIBLE_FORMAT}]")

# Characters the rules are about, mixed with ordinary text by the strategies below.
SPECIAL = list(
    "\t\x1b\x7f\x9b\u00ad\u034f\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202e\u2060\u2066"
    "\u2069\u3164\u115f\uffa0\u2800\ufe0f\ufeff\ufff9\U000e0041\U000e007f\U0001f3f4\U000e0100"
) + list(SPACES) + ["\x1b[31m", "\x1b]0;t\x07", " " * 5]
texts = st.lists(
    st.one_of(st.sampled_from(SPECIAL), st.text(max_size=4)), max_size=40
).map("".join)


@given(texts)
def test_no_tab_no_run_of_blanks_no_hidden_control_and_idempotent(text: str) -> None:
    out = clean_text(text)
    assert not BLANK_RUN.search(out), repr(out)
    assert not NEVER.search(out), repr(out)
    assert clean_text(out) == out


@given(st.text(st.characters(codec="utf-8", exclude_categories=("C", "Z"))))
def test_text_without_blanks_or_controls_is_kept_as_it_is(text: str) -> None:
    out = clean_text(text)
    assert out == text or any(c in "\u3164\u115f\u1160\uffa0\u2800" for c in text)


@given(st.text(st.sampled_from([*SPACES, "\t"]), min_size=2))
def test_any_run_of_blanks_is_one_space(blanks: str) -> None:
    assert clean_text(f"a{blanks}b") == "a b"


FORGED = "ok" + " " * 70 + "*** bob left"


@pytest.mark.parametrize(
    ("raw", "out"),
    [
        (FORGED.encode(), "ok *** bob left"),
        (b"ok" + b"\t" * 10 + b"*** bob left", "ok *** bob left"),
        (b"a\tb", "a b"),
        (b"a  b", "a b"),
        ("a\u00a0b".encode(), "a\u00a0b"),  # one NBSP stays
        ("a\u3000\u3000b".encode(), "a b"),
        ("a\u3164b".encode(), "a b"),  # a filler is a blank, not a letter
        ("a\u200e\u200f\u061cb".encode(), "ab"),
        ("soft\u00adhyphen, word\u2060joiner, \ufeffBOM".encode(), "softhyphen, wordjoiner, BOM"),
        (b"esc\x1b[31mred", "escred"),
        # unassigned in Python 3.11's Unicode 14, an emoji since 15: kept, as it may be one
        ("shaking \U0001fae8".encode(), "shaking \U0001fae8"),
        (b"\xff\xfe", "\ufffd\ufffd"),
    ],
)
def test_examples(raw: bytes, out: str) -> None:
    assert clean(raw) == out


def test_decode_removes_nothing() -> None:
    assert decode(b"ctl\x01x\t \x1b[0m\xff") == "ctl\x01x\t \x1b[0m\ufffd"


@pytest.mark.parametrize("forged", [FORGED, "ok" + "\t" * 10 + "*** bob left"])
def test_the_web_page_sends_through_the_same_sanitiser(forged: str) -> None:
    clock = Clock()
    site = make_site(clock)
    alice, bob = FakeBrowser(site, 1), FakeBrowser(site, 2)
    alice.join("alice", clock)
    bob.join("bob", clock)
    clock.advance(0)
    alice.received()
    bob.say(forged)
    bob.say("a\u200eb\u00adc\u2060d\ufeffe")
    clock.advance(0)
    said = [m["text"] for m in alice.received() if m["type"] == "said"]
    assert said == ["ok *** bob left", "abcde"]
