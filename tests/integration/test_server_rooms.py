"""Rooms as nc users meet them: a real twistd process, real sockets, PROTOCOL.md's Rooms rows."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.serverproc import ServerProcess


def test_join_creates_a_room_makes_it_current_and_prefixes_the_other_rooms(
    server: ServerProcess,
) -> None:
    alice = server.join("alice")
    bob = server.join("bob")
    alice.expect(r"^\*\*\* bob joined")

    alice.send("/join dev")
    assert alice.expect("you joined") == "*** you joined #dev; nobody else is here"
    assert bob.quiet() == []  # bob is not in #dev: he hears nothing of it
    alice.send("in dev")
    assert bob.quiet() == []

    bob.send("/join #DEV")  # names compare like nicknames
    assert bob.expect("you joined") == "*** you joined #dev; 2 people are here"
    assert alice.expect("joined") == "*** bob joined"
    bob.send("hi dev")
    assert alice.expect("hi dev") == "bob: hi dev"

    carol = server.join("carol")
    alice.expect("carol joined")  # in #lobby, which is not alice's current room
    # alice is in #lobby and #dev, talking in #dev: #lobby's lines come prefixed
    carol.send("lobby talk")
    assert alice.expect("lobby talk") == "#lobby carol: lobby talk"
    assert bob.expect("lobby talk") == "#lobby carol: lobby talk"


def test_part_rooms_topic_and_who(server: ServerProcess) -> None:
    alice = server.join("alice")
    bob = server.join("bob")
    alice.expect("bob joined")
    alice.send("/join #dev")
    alice.expect("you joined")
    bob.send("/join #dev")
    bob.expect("you joined")
    alice.expect("bob joined")

    alice.send("/topic shipping on friday")
    assert bob.expect("topic") == "*** alice set the topic: shipping on friday"
    bob.send("/topic nope")  # new rooms are topic-locked, and bob did not create #dev
    assert bob.expect("^!") == "! you are not an operator of #dev"
    bob.send("/topic")
    assert bob.expect("topic of") == "*** topic of #dev: shipping on friday"

    bob.send("/who")
    assert bob.expect("in the room") == "*** 2 in the room: @alice, bob"
    bob.send("/who #lobby")
    assert bob.expect("in #lobby") == "*** 2 in #lobby: alice, bob"

    bob.send("/rooms")
    assert bob.expect("#dev") == "*** #dev (2) shipping on friday"
    assert bob.expect("#lobby") == "*** #lobby (2)"

    bob.send("/part #dev see you")
    assert bob.expect("you left") == "*** you left #dev; now talking in #lobby"
    assert alice.expect("left") == "*** bob left (see you)"
    bob.send("/part")
    assert bob.expect("you left") == "*** you left #lobby; you are in no room now: /join one"
    bob.send("anyone?")
    assert "/join" in bob.expect("^!")
    assert alice.quiet() == ["#lobby *** bob left"]


def test_rename_is_told_once_and_a_disconnect_once_per_room(server: ServerProcess) -> None:
    alice = server.join("alice")
    bob = server.join("bob")
    alice.expect("bob joined")
    for client in (alice, bob):
        client.send("/join #dev")
        client.expect("you joined")
    alice.expect("bob joined")

    bob.send("/nick robert")
    bob.expect("you are now known as robert")
    assert alice.expect("known as") == "*** bob is now known as robert"
    bob.send("/quit")
    bob.expect("goodbye")
    lines = sorted([alice.expect("left"), alice.expect("left")])
    assert lines == ["#lobby *** robert left", "*** robert left"]
    assert alice.quiet() == []


def test_room_limits_are_refused_with_one_line(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--max-rooms-per-member", "2", "--max-room-name", "4")
    alice = server.join("alice")
    alice.send("/join #toolong")
    assert "at most 4 characters" in alice.expect("^!")
    alice.send("/join #a")
    alice.expect("you joined")
    alice.send("/join #b")
    assert "2 rooms already" in alice.expect("^!")


def test_history_is_per_room(server: ServerProcess) -> None:
    alice = server.join("alice")
    alice.send("lobby line")
    alice.send("/join #dev")
    alice.expect("you joined")
    alice.send("dev line")
    alice.send("/history 5")
    alice.expect("last")
    assert alice.expect("line").endswith("alice: dev line")
    bob = server.join("bob")
    bob.send("/join #dev")
    replay = bob.expect("dev line")
    assert replay.endswith("alice: dev line")


def test_a_join_storm_is_told_as_one_summary_line(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--storm-rate", "3", "--storm-members", "2")
    watcher = server.join("watcher")
    server.join("other")
    watcher.expect("other joined")
    crowd = [server.connect() for _ in range(12)]
    for i, client in enumerate(crowd):
        client.expect("nickname")
        client.send(f"guest{i}")
    for client in crowd:
        client.expect("welcome")
    singles: list[str] = []
    summaries: list[str] = []
    while len(singles) + sum(int(line.split()[1]) for line in summaries) < 12:
        line = watcher.read_line(timeout=5)
        assert line is not None, f"12 joins not told: {singles!r} {summaries!r}"
        if line.startswith("*** guest"):
            singles.append(line)
        elif "people joined" in line or "person joined" in line:
            summaries.append(line)
    assert summaries and all(line.startswith("*** ") for line in summaries)
    assert len(singles) <= 3 * len(summaries)  # the rate's worth a second, then summaries
    assert watcher.quiet(1.5) == []
