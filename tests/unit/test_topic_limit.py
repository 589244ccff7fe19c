"""The longest topic is the ``--max-topic`` option, on every front end (issue 15 leftovers,
point 5): it was 390 characters written into the chat's rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet.task import Clock
from twisted.python import usage

from chatroom.limits import DEFAULTS
from chatroom.options import Options
from chatroom.reload import apply_limits
from tests.unit.helpers import RELAXED, serving
from tests.unit.irchelpers import SERVER, both
from tests.unit.test_web_harness import FakeBrowser, make_site

SHORT = replace(RELAXED, max_topic=10)


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_the_option_is_a_limit_with_its_default() -> None:
    assert DEFAULTS.max_topic == 390
    assert parse()["limits"].max_topic == 390
    assert parse("--max-topic", "10")["limits"].max_topic == 10
    for bad in ("0", "1001", "x"):
        try:
            parse("--max-topic", bad)
        except usage.UsageError as e:
            assert "max-topic" in str(e) or "1 to 1000" in str(e)
        else:
            raise AssertionError(f"--max-topic {bad} was accepted")


def test_the_line_front_end_refuses_a_longer_topic() -> None:
    with serving(SHORT) as server:
        alice, bob = server.members("alice", "bob")
        alice.send("/topic 0123456789x")
        server.flush()
        assert alice.lines() == ["! a topic has at most 10 characters"]
        assert bob.lines() == []
        alice.send("/topic 0123456789")
        server.flush()
        assert bob.lines() == ["*** alice set the topic: 0123456789"]


def test_the_page_refuses_a_longer_topic() -> None:
    clock = Clock()
    site = make_site(clock, SHORT)
    alice = FakeBrowser(site, 1)
    alice.join("alice", clock)
    clock.advance(0)
    alice.received()
    alice.say("/topic 0123456789x")
    clock.advance(0)
    errors: list[dict[str, Any]] = [m for m in alice.received() if m["type"] == "error"]
    assert [m["text"] for m in errors] == ["a topic has at most 10 characters"]


def test_irc_cuts_a_longer_topic_and_says_the_length() -> None:
    with both(SHORT) as server:
        bob = server.join("bob")
        alice = server.irc_connect()
        alice.send("NICK alice", "USER alice 0 * :alice")
        isupport = " ".join(line for line in alice.lines() if f"{SERVER} 005 " in line)
        assert "TOPICLEN=10" in isupport
        server.flush()
        bob.clear()
        alice.send("TOPIC #lobby :0123456789xyz")
        server.flush()
        assert bob.lines() == ["*** alice set the topic: 0123456789"]


def test_a_reload_changes_it() -> None:
    with serving(RELAXED) as server:
        (alice,) = server.members("alice")
        apply_limits(server.services, SHORT)
        alice.send("/topic 0123456789x")
        server.flush()
        assert alice.lines() == ["! a topic has at most 10 characters"]
