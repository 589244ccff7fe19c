"""A line of nothing but invisible characters is an empty line (issue 15 leftovers, point 4).

U+034F COMBINING GRAPHEME JOINER, a variation selector or a joiner alone survive the
sanitiser (they are kept inside text), yet on their own they show as an empty-looking
line. The contract says an empty or whitespace-only line shows nothing to anyone: every
front end that shares the sanitiser ignores such a line.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.internet.task import Clock

from chatroom.lines.sanitize import clean_text
from tests.unit.helpers import Server, serving
from tests.unit.irchelpers import both
from tests.unit.test_web_harness import FakeBrowser, make_site

INVISIBLE = [
    "\u034f",  # combining grapheme joiner
    "\u034f\u034f\u034f",
    "\ufe0f",  # variation selector 16
    "\u200d",  # zero width joiner
    "\u200c\u200d",
    "\U000e0100",  # variation selector 17
    "\u17b4",  # Khmer inherent vowel
    " \u034f ",
    "\u00a0\u034f",
    "\u3164",  # Hangul filler
    "\u200b\u034f",  # a removed character, then a kept invisible one
    "\U00013430",  # Egyptian hieroglyph vertical joiner (a nickname refuses it as invisible)
    "\U00013436 \U00013431",
]


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


@pytest.mark.parametrize("line", INVISIBLE)
def test_a_line_of_invisible_characters_is_cleaned_to_nothing(line: str) -> None:
    assert clean_text(line) == ""


@pytest.mark.parametrize(
    "line", ["a\u034f", "\u034fa", "\u2764\ufe0f", "\U0001f468\u200d\U0001f469",
             "\U00013000\U00013430\U00013001"]
)
def test_invisible_characters_beside_text_stay(line: str) -> None:
    assert clean_text(line) == line


@pytest.mark.parametrize("line", INVISIBLE)
def test_the_line_front_end_ignores_it(server: Server, line: str) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(line)
    server.flush()
    assert bob.lines() == []
    assert alice.lines() == []


@pytest.mark.parametrize("line", ["/me \u034f", "/msg bob \u034f\u034f"])
def test_commands_with_only_invisible_text_are_refused_as_empty(server: Server, line: str) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(line)
    server.flush()
    assert bob.lines() == []
    assert alice.lines()[0].startswith("! ")


def test_the_page_ignores_it() -> None:
    clock = Clock()
    site = make_site(clock)
    alice, bob = FakeBrowser(site, 1), FakeBrowser(site, 2)
    alice.join("alice", clock)
    bob.join("bob", clock)
    clock.advance(0)
    alice.received()
    for line in INVISIBLE:
        bob.say(line)
    bob.say("visible")
    clock.advance(0)
    said = [m["text"] for m in alice.received() if m["type"] == "said"]
    assert said == ["visible"]


def test_irc_ignores_it() -> None:
    with both() as server:
        bob = server.join("bob")
        alice = server.irc("alice")
        for line in INVISIBLE:
            alice.send(f"PRIVMSG #lobby :{line}", f"PRIVMSG #lobby :\x01ACTION {line}\x01")
        alice.send("PRIVMSG #lobby :visible")
        server.flush()
        assert bob.lines() == ["alice: visible"]
