"""PROTOCOL.md, "Talking": every row of the table, line shapes, order, and leaving."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from twisted.internet import error as net_error

from chatroom.commands import HELP
from tests.unit.helpers import Client, Server, SlowNames, serving


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


@pytest.fixture
def trio(server: Server) -> tuple[Client, Client, Client]:
    alice, bob, carol = server.members("alice", "bob", "carol")
    return alice, bob, carol


SHAPES = {
    "chat": re.compile(r"^[^\s*!\[/:_-][^\s:]*: .*$"),
    "action": re.compile(r"^\* [^\s*!\[/:_-]\S* .*$"),
    "notice": re.compile(r"^\*\*\* .+$"),
    "error": re.compile(r"^! .+$"),
    "private": re.compile(r"^\[private\] [^\s*!\[/:_-][^\s:]*: .*$"),
}


def shape(line: str) -> str:
    """The one line shape ``line`` has; fails if it has none."""
    kinds = [kind for kind, pattern in SHAPES.items() if pattern.match(line)]
    assert len(kinds) == 1, f"{line!r} has shapes {kinds}"
    return kinds[0]


# -- chat -------------------------------------------------------------------------------


def test_chat_line_reaches_others_exactly_and_is_not_echoed(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    alice.send("hello")
    server.flush()
    assert bob.lines() == ["alice: hello"]
    assert carol.lines() == ["alice: hello"]
    assert alice.lines() == []


@pytest.mark.parametrize(
    ("text", "seen"),
    [(text, text) for text in [
        "hello world", " leading space", "trailing ", "ünïcödé 日本語 🙂", "* not an action",
        "*** not a notice", "! not an error", "[private] x: not private", "a: b: c", "x" * 500,
    ]] + [  # a TAB is a space, a run of blanks one space (issue 12: no forged lines)
        ("  leading spaces", " leading spaces"), ("trailing  ", "trailing "),
        ("tab\there", "tab here"), ("a \t b", "a b"),
    ],
)
def test_chat_text_is_kept_as_typed(server: Server, text: str, seen: str) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(text)
    server.flush()
    assert bob.lines() == [f"alice: {seen}"]


@pytest.mark.parametrize("line", ["", " ", "   ", "\t", " \t \t", "\x00", "\x1b[31m", "\x07"])
def test_empty_or_whitespace_line_is_ignored(server: Server, line: str) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(line)
    server.flush()
    assert bob.lines() == []
    assert alice.lines() == []


@pytest.mark.parametrize(("typed", "seen"), [("//text", "/text"), ("//", "/"),
                                              ("///x", "//x"), ("//me waves", "/me waves")])
def test_double_slash_says_text_with_one_slash(
    server: Server, typed: str, seen: str
) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(typed)
    server.flush()
    assert bob.lines() == [f"alice: {seen}"]
    assert alice.lines() == []


# -- /me --------------------------------------------------------------------------------


def test_me_is_an_action_for_others_only(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    alice.send("/me waves")
    server.flush()
    assert bob.lines() == ["* alice waves"]
    assert carol.lines() == ["* alice waves"]
    assert alice.lines() == []


def test_me_keeps_the_rest_of_the_line(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/me waves at   everyone: /who")
    server.flush()
    assert bob.lines() == ["* alice waves at everyone: /who"]  # a run of blanks is one


def test_me_without_text_is_an_error_to_sender_only(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/me")
    server.flush()
    assert shape(alice.lines()[0]) == "error"
    assert bob.lines() == []


# -- /msg -------------------------------------------------------------------------------


def test_msg_reaches_only_the_target(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    alice.send("/msg bob some text")
    server.flush()
    (private,) = bob.lines()
    assert private == "[private] alice: some text"
    assert "alice" in private and "some text" in private
    assert carol.lines() == []
    assert alice.lines() == []


def test_msg_target_is_matched_caselessly(server: Server) -> None:
    alice, bob = server.members("alice", "Bob")
    alice.send("/msg BOB hi there")
    server.flush()
    assert bob.lines() == ["[private] alice: hi there"]


def test_msg_to_nobody_is_an_error(server: Server, trio: tuple[Client, Client, Client]) -> None:
    alice, bob, carol = trio
    alice.send("/msg dave hello")
    server.flush()
    (error,) = alice.lines()
    assert shape(error) == "error"
    assert "dave" in error
    assert bob.lines() == [] and carol.lines() == []


def test_msg_to_someone_who_left_is_an_error(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    bob.lose()
    alice.send("/msg bob are you there")
    server.flush()
    assert [shape(line) for line in alice.lines()] == ["notice", "error"]  # left, then why


@pytest.mark.parametrize("typed", ["/msg", "/msg bob", "/msg bob   "])
def test_msg_without_target_or_text_is_an_error(server: Server, typed: str) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(typed)
    server.flush()
    assert shape(alice.lines()[0]) == "error"
    assert bob.lines() == []


def test_msg_after_target_renamed_follows_the_new_nick(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    bob.send("/nick robert")
    alice.send("/msg robert hi")
    alice.send("/msg bob hi")
    server.flush()
    assert bob.lines() == ["*** you are now known as robert", "[private] alice: hi"]
    # a direct reply is written at once, the broadcast at the end of the turn, so the two
    # may arrive in either order; both must arrive
    lines = sorted(alice.lines())
    assert lines[0] == "! no such member: bob"
    assert lines[1] == "*** bob is now known as robert"


# -- /nick ------------------------------------------------------------------------------


def test_nick_announces_to_others_and_confirms_to_sender(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    alice.send("/nick alicia")
    server.flush()
    assert bob.lines() == ["*** alice is now known as alicia"]
    assert carol.lines() == ["*** alice is now known as alicia"]
    (confirmation,) = alice.lines()
    assert shape(confirmation) == "notice" and "alicia" in confirmation
    alice.send("hi")
    server.flush()
    assert bob.lines() == ["alicia: hi"]


def test_nick_frees_the_old_nickname_at_once(server: Server) -> None:
    (alice,) = server.members("alice")
    alice.send("/nick alicia")
    assert server.join("alice").nick == "alice"


def test_nick_case_only_change_is_allowed(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/nick Alice")
    server.flush()
    assert bob.lines() == ["*** alice is now known as Alice"]
    bob.send("/who")
    assert "Alice" in bob.lines()[0]


@pytest.mark.parametrize("new", ["BOB", "bob", "_x", "a b", "x" * 33, "alice", "a.b", ""])
def test_nick_invalid_or_taken_is_an_error_and_nothing_changes(
    server: Server, new: str
) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(f"/nick {new}")
    server.flush()
    (error,) = alice.lines()
    assert shape(error) == "error"
    assert bob.lines() == []
    assert alice.nick == "alice"
    alice.send("still me")
    server.flush()
    assert bob.lines() == ["alice: still me"]
    assert sorted(server.room.members()) == ["alice", "bob"]


# -- /who /help -------------------------------------------------------------------------


def test_who_lists_every_member_to_the_sender_only(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    bob.send("/who")
    server.flush()
    lines = bob.lines()
    text = "\n".join(lines)
    for nick in ("alice", "bob", "carol"):
        assert nick in text
    assert all(shape(line) == "notice" for line in lines)
    assert alice.lines() == [] and carol.lines() == []


def test_help_has_one_line_per_command(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    alice.send("/help")
    server.flush()
    lines = alice.lines()
    for command in ("/who", "/msg", "/me", "/nick", "/help", "/quit"):
        matching = [line for line in lines if command + " " in line + " "]
        assert len(matching) == 1, (command, lines)
    assert len(lines) == len(HELP)
    assert bob.lines() == [] and carol.lines() == []


@pytest.mark.parametrize("typed", ["/WHO", "/Who", "/HELP"])
def test_command_names_are_caseless(server: Server, typed: str) -> None:
    (alice,) = server.members("alice")
    alice.send(typed)
    assert all(shape(line) == "notice" for line in alice.lines())


# -- /quit ------------------------------------------------------------------------------


def test_quit_says_goodbye_closes_and_is_announced_once(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    alice.send("/quit")
    (goodbye,) = alice.lines()
    assert "goodbye" in goodbye.lower()
    assert alice.closing
    server.flush()
    alice.finish()
    server.flush()
    assert bob.lines() == ["*** alice left"]
    assert carol.lines() == ["*** alice left"]


def test_quit_frees_the_nickname_at_once(server: Server) -> None:
    (alice,) = server.members("alice")
    alice.send("/quit")
    assert server.join("alice").nick == "alice"


def test_nothing_after_quit_in_the_same_packet_is_handled(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send_lines(["/quit", "after quit", "/nick zed"])
    server.flush()
    alice.finish()
    server.flush()
    assert bob.lines() == ["*** alice left"]


# -- unknown commands -------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["/x", "/", "/ x", "/anything-else", "/mee", "/ who",
                                   "/msgbob hi", "/éclair", "/\tx"])
def test_unknown_command_is_an_error_to_sender_only(server: Server, typed: str) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(typed)
    server.flush()
    (error,) = alice.lines()
    assert error.startswith("! unknown command")
    assert bob.lines() == []
    assert not alice.closing


# -- line shapes ------------------------------------------------------------------------


def test_every_line_has_one_parseable_shape(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    for typed in ["hello", "/me waves", "/msg bob psst", "/nick alicia", "/who", "/help",
                  "/nope", "/msg nobody x", "//slash", "/quit"]:
        alice.send(typed)
    server.flush()
    alice.finish()
    server.flush()
    seen: dict[str, set[str]] = {}
    for client in (alice, bob, carol):
        for line in client.lines():
            seen.setdefault(shape(line), set()).add(line)
    assert set(seen) == set(SHAPES)


# -- order ------------------------------------------------------------------------------


def test_lines_from_one_sender_arrive_in_order_none_lost_none_twice(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    sent = [f"line {i}" for i in range(300)]
    # in one packet, one per packet, and across several turns of the reactor
    alice.send_lines(sent[:100])
    for text in sent[100:200]:
        alice.send(text)
    for text in sent[200:]:
        alice.send(text)
        server.flush()
    server.flush()
    expected = [f"alice: {text}" for text in sent]
    assert bob.lines() == expected
    assert carol.lines() == expected


def test_two_senders_interleaved_keep_each_senders_order(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, carol = trio
    for i in range(50):
        alice.send(f"a{i}")
        bob.send(f"b{i}")
    server.flush()
    lines = carol.lines()
    assert [x for x in lines if x.startswith("alice")] == [f"alice: a{i}" for i in range(50)]
    assert [x for x in lines if x.startswith("bob")] == [f"bob: b{i}" for i in range(50)]
    assert bob.lines() == [f"alice: a{i}" for i in range(50)]


# -- leaving in every way ---------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [net_error.ConnectionDone, net_error.ConnectionLost, net_error.ConnectionAborted,
     net_error.TimeoutError],
)
def test_disconnect_is_announced_once_and_frees_the_nickname(
    server: Server, trio: tuple[Client, Client, Client], how: type[Exception]
) -> None:
    alice, bob, carol = trio
    alice.lose(how)
    assert server.join("alice").nick == "alice"  # free again at once
    server.flush()
    assert bob.lines() == ["*** alice left", "*** alice joined"]
    assert carol.lines() == ["*** alice left", "*** alice joined"]


def test_quit_then_connection_lost_is_announced_once(
    server: Server, trio: tuple[Client, Client, Client]
) -> None:
    alice, bob, _ = trio
    alice.send("/quit")
    server.flush()
    alice.lose(net_error.ConnectionLost)
    server.flush()
    assert bob.lines() == ["*** alice left"]


def test_leaving_after_rename_announces_the_new_nick(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/nick alicia")
    alice.lose()
    server.flush()
    assert bob.lines() == ["*** alice is now known as alicia", "*** alicia left"]
    assert server.room.members() == ["bob"]


def test_connection_is_forgotten_after_it_is_lost(server: Server) -> None:
    (alice,) = server.members("alice")
    alice.lose()
    assert alice.protocol not in server.factory.connections
    assert len(server.factory.fanout) == 0


# -- /nick on a hub that makes the room wait ------------------------------------------------------


def _slow_pair(hub: SlowNames, s: Server) -> tuple[Client, Client]:
    pair = []
    for nick in ("alice", "bob"):
        client = s.connect()
        client.send(nick)
        hub.answer()
        pair.append(client)
    s.flush()
    for client in pair:
        client.clear()
    return pair[0], pair[1]


def test_lines_after_nick_wait_for_the_rename() -> None:
    hub = SlowNames()
    with serving(names=hub) as s:
        alice, bob = _slow_pair(hub, s)
        alice.send_lines(["/nick alicia", "after"])
        s.flush()
        assert bob.lines() == [] and alice.lines() == []
        hub.answer()
        s.flush()
        assert bob.lines() == ["*** alice is now known as alicia", "alicia: after"]
        assert alice.lines() == ["*** you are now known as alicia"]


def test_leaving_while_a_rename_waits_is_announced_once_and_holds_no_nickname() -> None:
    hub = SlowNames()
    with serving(names=hub) as s:
        alice, bob = _slow_pair(hub, s)
        alice.send("/nick alicia")
        alice.lose()
        hub.answer()
        s.flush()
        assert bob.lines() == ["*** alice left"]
        assert s.room.members() == ["bob"]
        assert hub.lookup("alicia") is None and hub.lookup("alice") is None


def test_msg_to_oneself_is_delivered_to_oneself_only(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/msg ALICE note to self")
    server.flush()
    assert alice.lines() == ["[private] alice: note to self"]
    assert bob.lines() == []


def test_msg_text_keeps_slashes_and_inner_spaces(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/msg bob /quit   now and then")
    server.flush()
    assert bob.lines() == ["[private] alice: /quit now and then"]  # a run of blanks is one
    assert not alice.closing
