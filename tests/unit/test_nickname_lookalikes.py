"""Issue 12, point 5: a nickname is never silently altered and never a look-alike.

Through both front ends, joining and renaming: a control character or an escape sequence
is refused with a reason (not cleaned into another name), an invisible character is
refused, and a look-alike of a present nickname is taken.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.internet.task import Clock

from tests.unit.helpers import Server, serving
from tests.unit.test_web_harness import FakeBrowser, make_site

ALTERED = [
    (b"ctl\x01x", "control character U+0001"),
    (b"esc\x1b[31mred", "escape sequence"),
    (b"del\x7f", "control character U+007F"),  # a DEL typed in raw mode
    (b"bob\x1f", "control character U+001F"),
]
INVISIBLE = ["alice\u034f", "alice\ufe0f", "alice\u180b", "\u3164", "\u115f", "\u1160",
             "\uffa0", "al\u200bice", "alice\u200e"]
LOOKALIKES = ["\u0430lice", "\uff41\uff4c\uff49\uff43\uff45", "ALICE", "\u0391LICE", "a1ice"]


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


def _refused(lines: list[str], why: str) -> None:
    assert len(lines) == 2, lines
    error, prompt = lines
    assert error.startswith("! ") and why in error, error
    assert "nickname" in prompt.lower()


# -- the line protocol ----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "why"), ALTERED)
def test_a_control_character_in_a_nickname_is_refused_not_removed(
    server: Server, raw: bytes, why: str
) -> None:
    (alice,) = server.members("alice")
    client = server.connect()
    client.clear()
    client.send(raw)
    _refused(client.lines(), why)
    assert client.nick is None
    server.flush()
    assert alice.lines() == []  # nothing announced
    client.send("ctlx")
    assert client.nick == "ctlx"  # and the client may go on choosing


@pytest.mark.parametrize("raw", INVISIBLE)
def test_an_invisible_character_in_a_nickname_is_refused(server: Server, raw: str) -> None:
    client = server.connect()
    client.clear()
    client.send(raw)
    _refused(client.lines(), "invisible character")
    assert client.nick is None


@pytest.mark.parametrize("lookalike", LOOKALIKES)
def test_a_lookalike_of_a_present_nickname_is_taken(server: Server, lookalike: str) -> None:
    server.join("alice")
    client = server.connect()
    client.clear()
    client.send(lookalike)
    _refused(client.lines(), "already taken")
    assert client.nick is None
    assert server.room.members() == ["alice"]


def test_a_lookalike_is_shown_as_typed_when_nobody_holds_the_name(server: Server) -> None:
    client = server.join("\uff41\uff4c\uff49\uff43\uff45")
    assert client.nick == "\uff41\uff4c\uff49\uff43\uff45"
    other = server.connect()
    other.clear()
    other.send("alice")
    _refused(other.lines(), "already taken")


@pytest.mark.parametrize(("raw", "why"), [*ALTERED, ("al\u034fice".encode(), "invisible")])
def test_nick_command_refuses_what_it_would_have_cleaned(
    server: Server, raw: bytes, why: str
) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(b"/nick " + raw)
    server.flush()
    (error,) = alice.lines()
    assert error.startswith("! ") and why in error, error
    assert alice.nick == "alice"
    assert bob.lines() == []


@pytest.mark.parametrize(
    "raw", [b"/nick\tctl\x01x", b"/ni\x01ck ctl\x01x", b"/nick  ctl\x01x", b"/NICK \tctl\x01x"]
)
def test_nick_command_checks_the_argument_as_typed_however_the_command_is_spelt(
    server: Server, raw: bytes
) -> None:
    (alice,) = server.members("alice")
    alice.send(raw)
    server.flush()
    (error,) = alice.lines()
    assert "control character U+0001" in error
    assert alice.nick == "alice"


def test_nick_command_to_a_lookalike_of_another_member_is_taken(server: Server) -> None:
    _, bob = server.members("alice", "bob")
    bob.send("/nick \u0430lice")
    server.flush()
    (error,) = bob.lines()
    assert "already taken" in error
    assert bob.nick == "bob"


def test_nick_command_to_a_lookalike_of_ones_own_name_is_a_rename(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/nick \uff41\uff4c\uff49\uff43\uff45")
    server.flush()
    assert bob.lines() == ["*** alice is now known as \uff41\uff4c\uff49\uff43\uff45"]
    assert server.room.members() == ["\uff41\uff4c\uff49\uff43\uff45", "bob"]


def test_whisper_reaches_a_member_by_a_lookalike_of_the_name(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    bob.send("/msg \u0430lice hi")
    server.flush()
    assert alice.lines() == ["[private] bob: hi"]


# -- the web front end: the same rules -------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.mark.parametrize(("raw", "why"), ALTERED)
def test_a_browser_nickname_with_a_control_character_is_refused(
    clock: Clock, raw: bytes, why: str
) -> None:
    browser = FakeBrowser(make_site(clock))
    error, prompt = browser.join(raw.decode(), clock)
    assert error["type"] == "error" and error["about"] == "nick" and why in error["text"]
    assert prompt["type"] == "prompt"


@pytest.mark.parametrize("lookalike", [*LOOKALIKES, "alice\ufe0f", "\u3164"])
def test_a_browser_cannot_take_a_lookalike_or_invisible_name(
    clock: Clock, lookalike: str
) -> None:
    site = make_site(clock)
    FakeBrowser(site, 1).join("alice", clock)
    error, prompt = FakeBrowser(site, 2).join(lookalike, clock)
    assert error["about"] == "nick"
    assert "already taken" in error["text"] or "invisible" in error["text"]
    assert prompt["type"] == "prompt"


@pytest.mark.parametrize(("raw", "why"), ALTERED)
@pytest.mark.parametrize("how", ["nick", "say"])
def test_a_browser_rename_with_a_control_character_is_refused(
    clock: Clock, raw: bytes, why: str, how: str
) -> None:
    browser = FakeBrowser(make_site(clock))
    browser.join("alice", clock)
    if how == "nick":
        browser.nick(raw.decode())
    else:
        browser.say("/nick " + raw.decode())
    clock.advance(0)
    (error,) = browser.received()
    assert error["type"] == "error" and why in error["text"], error
    browser.say("/who")
    clock.advance(0)
    assert browser.received()[0]["nicks"] == ["alice"]
