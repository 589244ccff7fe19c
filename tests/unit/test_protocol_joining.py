"""PROTOCOL.md, "Joining": the prompt, the nickname rules, retries, the welcome, the race."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.internet import error as net_error

from chatroom.domain.events import Left
from chatroom.lines.protocol import ChatLineProtocol
from chatroom.services import ShutdownService
from tests.unit.helpers import Client, Server, SlowNames, connect, flush, serving


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


def _is_prompt(line: str) -> bool:
    return "nickname" in line.lower()


# -- 1. the prompt ---------------------------------------------------------------------


def test_prompt_with_the_word_nickname_comes_before_any_input(server: Server) -> None:
    client = server.connect()
    lines = client.lines()
    assert len(lines) == 1
    assert "nickname" in lines[0]
    assert not lines[0].startswith(("!", "***"))  # a prompt, not an error or a notice


def test_connect_helper_builds_protocol_from_factory(server: Server) -> None:
    (alice,) = server.members("alice")
    client = connect(server.factory, "10.1.2.3", 5555)
    assert isinstance(client.protocol, ChatLineProtocol)
    assert client.protocol.host == "10.1.2.3"
    assert _is_prompt(client.lines()[0])
    client.send("bob")
    flush(server.factory)
    assert alice.lines() == ["*** bob joined"]
    client.lose()


# -- 2. the nickname rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    "nick",
    [
        "alice",
        "Zoë",
        "日本",
        "7of9",
        "a",
        "9",
        "x" * 32,
        "bob_-1",
        "Ünï",
        "Ωmega",
        "Привет",
        "مرحبا",
        "٣abc",  # an Arabic-Indic digit first
        "नमस्ते",  # Devanagari: needs combining marks after the first letter
        "a_",
        "a-",
    ],
)
def test_valid_nickname_is_welcomed_by_name(server: Server, nick: str) -> None:
    client = server.connect()
    client.clear()
    client.send(nick)
    lines = client.lines()
    assert len(lines) == 1
    assert nick in lines[0]
    assert lines[0].startswith("***")
    assert client.nick == nick


def test_nickname_length_is_counted_in_code_points_after_nfc(server: Server) -> None:
    decomposed = "e\u0301" * 32  # 64 code points, 32 after NFC
    client = server.connect()
    client.send(decomposed)
    assert client.nick == "\u00e9" * 32


def test_decomposed_nickname_is_shown_composed(server: Server) -> None:
    client = server.connect()
    client.clear()
    client.send("Zoe\u0308")
    assert client.nick == "Zoë"
    assert "Zoë" in client.lines()[0]


def test_nickname_of_32_multibyte_characters_is_fine(server: Server) -> None:
    client = server.connect()
    client.send("日" * 32)
    assert client.nick == "日" * 32


@pytest.mark.parametrize(
    ("nick", "why"),
    [
        ("", "at least one"),
        ("   ", "at least one"),
        ("x" * 33, "at most 32"),
        ("日" * 33, "at most 32"),
        ("_alice", "start with a letter or a digit"),
        ("-alice", "start with a letter or a digit"),
        ("*alice", "start with a letter or a digit"),
        ("!alice", "start with a letter or a digit"),
        ("[alice", "start with a letter or a digit"),
        (":alice", "start with a letter or a digit"),
        ("\u0301a", "start with a letter or a digit"),  # a combining mark first
        ("🙂", "start with a letter or a digit"),
        ("al ice", "space"),
        ("al\tice", "space"),
        ("al.ice", "'.'"),
        ("al,ice", "','"),
        ("al:ice", "':'"),
        ("al🙂", "letters, digits"),
        ("bob\ufffd", "letters, digits"),
    ],
)
def test_bad_nickname_gets_a_reason_then_a_new_prompt(
    server: Server, nick: str, why: str
) -> None:
    client = server.connect()
    client.clear()
    client.send(nick)
    lines = client.lines()
    assert len(lines) == 2, lines
    error, prompt = lines
    assert error.startswith("! ")
    assert why in error
    assert _is_prompt(prompt)
    assert client.nick is None
    assert not client.closing


def test_invalid_utf8_in_nickname_is_refused_not_fatal(server: Server) -> None:
    client = server.connect()
    client.clear()
    client.send(b"bo\xc3(b")  # a truncated two-byte sequence (0xFF would be telnet IAC)
    lines = client.lines()
    assert lines[0].startswith("! ")
    assert _is_prompt(lines[-1])
    assert client.nick is None and not client.closing


@pytest.mark.parametrize(
    ("first", "second"),
    [("Alice", "ALICE"), ("alice", "Alice"), ("straße", "STRASSE"), ("Zoë", "ZOE\u0308")],
)
def test_nicknames_are_unique_caselessly(server: Server, first: str, second: str) -> None:
    server.join(first)
    other = server.connect()
    other.clear()
    other.send(second)
    lines = other.lines()
    assert len(lines) == 2
    assert lines[0].startswith("! ") and "taken" in lines[0]
    assert _is_prompt(lines[1])
    assert other.nick is None


def test_surrounding_whitespace_is_not_part_of_the_nickname(server: Server) -> None:
    client = server.connect()
    client.send("  alice\t ")
    assert client.nick == "alice"


# -- 3. retries, and nothing while choosing ----------------------------------------------


def test_client_may_retry_many_times_on_one_connection(server: Server) -> None:
    server.join("alice")
    client = server.connect()
    client.clear()
    for attempt in ["_x", "ALICE", "a b", "", "x" * 40] * 10:
        client.send(attempt)
        lines = client.lines()
        assert lines[0].startswith("! ") and _is_prompt(lines[1])
    client.send("bob")
    assert client.nick == "bob"
    assert not client.closing


def test_nothing_is_announced_while_choosing(server: Server) -> None:
    (alice,) = server.members("alice")
    chooser = server.connect()
    chooser.send_lines(["_bad", "al ice", "ALICE"])
    server.flush()
    assert alice.lines() == []


def test_chooser_receives_no_chat_and_no_private_messages(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    chooser = server.connect()
    chooser.clear()
    alice.send("hello all")
    alice.send("/me waves")
    alice.send("/nick alicia")
    bob.send("/msg alicia hi")
    carol = server.join("carol")
    carol.send("/quit")
    carol.finish()
    server.flush()
    assert chooser.lines() == []
    alice.clear()
    alice.send("/msg chooser hi")
    assert alice.lines()[0].startswith("! ")


def test_chooser_is_not_listed_by_who(server: Server) -> None:
    (alice,) = server.members("alice")
    chooser = server.connect()
    chooser.send("_bad")
    alice.send("/who")
    (who,) = alice.lines()
    assert "1 in the room" in who


def test_chooser_closing_announces_nothing(server: Server) -> None:
    (alice,) = server.members("alice")
    chooser = server.connect()
    chooser.send("_bad")
    chooser.lose()
    server.flush()
    assert alice.lines() == []
    assert chooser.protocol not in server.factory.connections


def test_chooser_may_quit(server: Server) -> None:
    chooser = server.connect()
    chooser.clear()
    chooser.send("/quit")
    lines = chooser.lines()
    assert len(lines) == 1 and "goodbye" in lines[0]
    assert chooser.closing


def test_chooser_may_ask_for_help_then_gets_a_prompt(server: Server) -> None:
    chooser = server.connect()
    chooser.clear()
    chooser.send("/help")
    lines = chooser.lines()
    assert len(lines) > 1
    assert _is_prompt(lines[-1])
    assert not chooser.closing


def test_chooser_other_command_is_an_error_then_a_prompt(server: Server) -> None:
    chooser = server.connect()
    chooser.clear()
    chooser.send("/who")
    lines = chooser.lines()
    assert lines[0].startswith("! ")
    assert _is_prompt(lines[1])


# -- 4. welcome and announcement -----------------------------------------------------------


def test_welcome_line_contains_the_nickname_and_others_see_joined(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    carol = server.connect()
    carol.clear()
    carol.send("Carol")
    (welcome,) = carol.lines()
    assert "Carol" in welcome
    server.flush()
    for other in (alice, bob):
        (line,) = other.lines()
        assert line.startswith("*** Carol joined")
    assert carol.lines() == []  # no announcement of oneself


def test_welcome_comes_before_any_broadcast(server: Server) -> None:
    (alice,) = server.members("alice")
    bob = server.connect()
    bob.clear()
    bob.send("bob")
    alice.send("hi bob")
    server.flush()
    lines = bob.lines()
    assert "bob" in lines[0]
    assert lines[1:] == ["alice: hi bob"]


def test_joined_member_gets_only_later_broadcasts(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("before")  # same turn, before carol joins
    carol = server.connect()
    carol.clear()
    carol.send("carol")
    bob.send("after")
    server.flush()
    lines = carol.lines()
    assert lines[1:] == ["bob: after"]
    assert alice.lines() == ["*** carol joined", "bob: after"]
    assert bob.lines() == ["alice: before", "*** carol joined"]


def test_nickname_and_chat_in_one_packet(server: Server) -> None:
    (alice,) = server.members("alice")
    bob = server.connect()
    bob.send_lines(["_bad", "bob", "hello"])
    server.flush()
    assert alice.lines() == ["*** bob joined", "bob: hello"]


def test_two_clients_racing_for_one_nickname_exactly_one_wins(server: Server) -> None:
    one, two = server.connect(), server.connect()
    one.clear()
    two.clear()
    one.send("alice")
    two.send("Alice")
    winners = [c for c in (one, two) if c.nick is not None]
    assert len(winners) == 1
    loser = two if winners[0] is one else one
    lines = loser.lines()
    assert lines[0].startswith("! ") and _is_prompt(lines[1])
    assert server.room.members() == ["alice"]


def test_nickname_timer_does_not_close_a_member() -> None:
    with serving(nick_timeout=10.0) as s:
        client = s.join("alice")
        s.clock.advance(100)
        assert not client.closing


def test_chooser_closed_by_reset_leaves_no_trace(server: Server) -> None:
    chooser = server.connect()
    chooser.feed(b"ali")  # half a nickname
    chooser.lose(net_error.ConnectionLost)
    server.clock.advance(1000)
    assert server.factory.connections == set()
    assert server.room.members() == []
    assert server.join("ali").nick == "ali"


# -- with a hub that makes the room wait (as a shared, remote hub would) -------------------------


@pytest.fixture
def slow() -> Iterator[tuple[Server, SlowNames, Client]]:
    """A server on a ``SlowNames``, with one member, ``watcher``, already in."""
    hub = SlowNames()
    with serving(names=hub) as s:
        watcher = s.connect()
        watcher.send("watcher")
        hub.answer()
        s.flush()
        watcher.clear()
        yield s, hub, watcher


def test_lines_after_the_nickname_wait_for_the_claim(
    slow: tuple[Server, SlowNames, Client],
) -> None:
    server, hub, watcher = slow
    client = server.connect()
    client.clear()
    client.send_lines(["alice", "hello", "/me waves"])
    server.flush()
    assert client.lines() == [] and watcher.lines() == []
    assert client.transport.producerState == "paused"  # reads nothing more meanwhile
    hub.answer()
    server.flush()
    (welcome,) = client.lines()
    assert "alice" in welcome
    assert watcher.lines() == ["*** alice joined", "alice: hello", "* alice waves"]
    assert client.transport.producerState == "producing"


def test_racing_claims_exactly_one_wins(slow: tuple[Server, SlowNames, Client]) -> None:
    server, hub, watcher = slow
    one, two = server.connect(), server.connect()
    one.clear()
    two.clear()
    one.send("alice")
    two.send("ALICE")
    hub.answer()
    hub.answer()
    server.flush()
    assert one.nick == "alice" and two.nick is None
    lines = two.lines()
    assert lines[0].startswith("! ") and "taken" in lines[0] and _is_prompt(lines[1])
    assert watcher.lines() == ["*** alice joined"]


def test_chooser_closing_while_its_claim_waits_keeps_no_nickname(
    slow: tuple[Server, SlowNames, Client],
) -> None:
    server, hub, _ = slow
    client = server.connect()
    client.send("alice")
    client.lose()
    hub.answer()
    server.flush()
    assert server.room.members() == ["watcher"]
    assert hub.lookup("alice") is None


def test_chooser_closing_while_its_claim_waits_is_never_announced(
    slow: tuple[Server, SlowNames, Client],
) -> None:
    server, hub, watcher = slow
    client = server.connect()
    client.send("alice")
    client.lose()
    hub.answer()
    server.flush()
    assert watcher.lines() == []


def test_nick_timeout_while_the_claim_waits() -> None:
    with serving(nick_timeout=5.0, names=SlowNames()) as s:
        client = s.connect()
        client.send("alice")
        s.clock.advance(6)
        assert client.closing
        assert isinstance(s.chat.names, SlowNames)
        s.chat.names.answer()
        client.finish()
        s.flush()
        assert s.room.members() == []


def test_past_a_turns_budget_a_lost_connections_leaving_waits_for_a_later_turn() -> None:
    """A reset storm: the reactor learns of thousands of lost connections in one poll, and
    each leaving costs something. Past the turn's budget the leaving waits its turn
    (``chatroom.entry``), so that the room's lines are not held up behind all of them."""
    server = Server()
    alice, bob, carol = server.members("alice", "bob", "carol")
    alice.lose()  # the turn's first: at once
    assert server.room.members() == ["bob", "carol"]
    server.clock.rightNow += 1.0  # a second into this turn: its budget is spent
    carol.lose()
    assert server.room.members() == ["bob", "carol"]  # not yet
    server.flush()  # the next turn
    assert server.room.members() == ["bob"]
    assert bob.lines() == ["*** alice left", "*** carol left"]


def test_a_stopping_server_hears_every_waiting_leaver_before_its_goodbyes_are_done() -> None:
    """SIGTERM in a reset storm: once the goodbyes are done the history and the hub close
    (``services.InOrder``), so a leaving still waiting its turn went unrecorded, or never ran
    (with the history on, 297 of 3000 reset members' leaves were kept)."""
    server = Server()
    alice, bob, carol = server.members("alice", "bob", "carol")
    left: list[tuple[str, str]] = []
    server.hub.subscribe(lambda e: left.append((e.nick, e.reason)) if type(e) is Left else None)
    alice.lose()
    server.clock.rightNow += 1.0  # the turn's budget is spent: carol's leaving waits
    carol.lose()
    stopping = ShutdownService([server.factory], server.services.entry)
    stopping.startService()
    done: list[object] = []
    stopping.stopService().addBoth(done.append)
    assert left == [("alice", "closed"), ("carol", "closed")]
    bob.finish()  # the goodbye's close completes, in the same turn
    assert done
    assert left[-1] == ("bob", "server shutdown")
