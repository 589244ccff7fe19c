"""PROTOCOL.md, "Rooms", on the line front end with StringTransport and a Clock: prefixes,
renames told once, a disconnect told per room, the current room, and every answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.helpers import Client, Server, serving


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


def enter(server: Server, room: str, *clients: Client) -> None:
    for client in clients:
        client.send(f"/join {room}")
    server.flush()
    for client in server.clients:
        client.clear()


def test_lines_of_another_room_come_prefixed_and_the_current_room_unprefixed(
    server: Server,
) -> None:
    alice, bob, carol = server.members("alice", "bob", "carol")
    enter(server, "#dev", alice, bob)  # alice and bob talk in #dev now
    carol.send("lobby line")
    carol.send("/me waves")
    bob.send("dev line")
    server.flush()
    assert alice.lines() == ["#lobby carol: lobby line", "#lobby * carol waves", "bob: dev line"]
    assert carol.lines() == []  # carol is not in #dev
    alice.send("/join #lobby")
    server.flush()
    assert alice.lines() == ["*** now talking in #lobby"]
    carol.send("again")
    bob.send("dev again")
    server.flush()
    assert alice.lines() == ["carol: again", "#dev bob: dev again"]


def test_a_rename_is_told_once_unprefixed_to_those_sharing_a_room(server: Server) -> None:
    alice, bob, carol = server.members("alice", "bob", "carol")
    enter(server, "#dev", alice, bob)
    carol.send("/part")
    server.flush()
    for client in (alice, bob, carol):
        client.clear()
    bob.send("/nick robert")
    server.flush()
    assert alice.lines() == ["*** bob is now known as robert"]
    assert bob.lines() == ["*** you are now known as robert"]
    assert carol.lines() == []  # shares no room with bob


def test_a_disconnect_is_told_in_each_room(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    enter(server, "#dev", alice, bob)
    bob.lose()
    server.flush()
    assert sorted(alice.lines()) == ["#lobby *** bob left", "*** bob left"]
    assert server.chat.names.lookup("bob") is None


def test_joining_shows_topic_replay_and_a_line_naming_the_room(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    enter(server, "#dev", alice)
    alice.send("/topic release day")
    server.flush()
    assert alice.lines() == []
    bob.send("/join dev")
    server.flush()
    assert bob.lines() == [
        "*** topic of #dev: release day",
        "*** you joined #dev; 2 people are here",
    ]
    assert alice.lines() == ["*** bob joined"]


def test_who_rooms_and_topic_answers(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    enter(server, "#dev", alice, bob)
    bob.send_lines(["/who", "/who #lobby", "/rooms", "/topic", "/who #nowhere"])
    server.flush()
    assert bob.lines() == [
        "*** 2 in the room: @alice, bob",
        "*** 2 in #lobby: alice, bob",
        "*** #dev (2)",
        "*** #lobby (2)",
        "*** #dev has no topic",
        "! no such room: #nowhere",
    ]


def test_with_no_room_a_typed_line_says_to_join(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/part going")
    server.flush()
    assert alice.lines() == ["*** you left #lobby; you are in no room now: /join one"]
    assert bob.lines() == ["*** alice left (going)"]
    alice.send_lines(["anyone?", "/me looks", "/topic", "/who"])
    server.flush()
    lines = alice.lines()
    assert len(lines) == 4 and all(line.startswith("! ") and "/join" in line for line in lines)
    assert bob.lines() == []
    alice.send("/msg bob still works")
    server.flush()
    assert bob.lines() == ["[private] alice: still works"]


def test_a_v1_member_sees_exactly_v1(server: Server) -> None:
    """Someone who never types a rooms command is not told about other rooms at all."""
    alice, bob = server.members("alice", "bob")
    enter(server, "#dev", alice)
    alice.send("in dev")
    alice.send("/join #lobby")
    alice.send("in the lobby")
    server.flush()
    assert bob.lines() == ["alice: in the lobby"]


def test_a_room_name_is_checked_as_typed_never_cleaned_into_another(server: Server) -> None:
    (alice,) = server.members("alice")
    alice.send("/join #d\x01ev")
    alice.send("/join #dev\x1b[31m")
    server.flush()
    lines = alice.lines()
    assert len(lines) == 2 and all(line.startswith("! a room name cannot hold") for line in lines)
    assert server.chat.directory.find("#dev") is None
