"""The directory: rooms, members and topics kept from the hub's events alone."""

from __future__ import annotations

from chatroom.domain.directory import Directory
from chatroom.domain.events import Joined, Left, ModeSet, Renamed, Said, TopicSet


def test_a_room_exists_from_its_first_join_and_its_creator_runs_it() -> None:
    d = Directory()
    d(Joined("#Dev", 1.0, "m1", "alice"))
    d(Joined("#dev", 2.0, "m2", "bob"))  # the same room, spelt another way
    state = d.find("#DEV")
    assert state is not None and state.name == "#Dev" and state.created == 1.0
    assert state.members == {"m1": "alice", "m2": "bob"}
    assert state.operators == {"m1"} and state.modes == "t"
    assert d.rooms_of("m2") == ["#Dev"]


def test_an_empty_room_is_forgotten_unless_permanent() -> None:
    d = Directory(permanent=["#lobby"])
    d.ensure("#lobby", 0.0)
    for room in ("#lobby", "#dev"):
        d(Joined(room, 1.0, "m1", "alice"))
        d(Left(room, 2.0, "m1", "alice"))
    assert d.find("#dev") is None
    lobby = d.find("#lobby")
    assert lobby is not None and lobby.members == {} and lobby.operators == set()
    assert d.rooms_of("m1") == [] and len(d) == 1


def test_rooms_of_a_member_keep_the_order_they_were_joined() -> None:
    d = Directory()
    for room in ("#c", "#a", "#b"):
        d(Joined(room, 1.0, "m1", "alice"))
    d(Left("#a", 2.0, "m1", "alice"))
    assert d.rooms_of("m1") == ["#c", "#b"]


def test_a_rename_changes_the_nickname_in_every_room_of_the_member() -> None:
    d = Directory()
    for room in ("#a", "#b"):
        d(Joined(room, 1.0, "m1", "alice"))
    d(Joined("#b", 1.0, "m2", "bob"))
    d(Renamed("", 2.0, "m1", "alice", "alicia", ("#a", "#b")))
    assert [state.members for state in d.rooms()] == [
        {"m1": "alicia"}, {"m1": "alicia", "m2": "bob"}
    ]


def test_topic_and_operators_follow_events() -> None:
    d = Directory()
    d(Joined("#dev", 1.0, "m1", "alice"))
    d(TopicSet("#dev", 2.0, "m1", "alice", "plans"))
    d(Said("#dev", 3.0, "m1", "alice", "not a change of state"))
    state = d.find("#dev")
    assert state is not None
    assert (state.topic, state.topic_by, state.topic_time) == ("plans", "alice", 2.0)
    d(Left("#dev", 4.0, "m1", "alice"))
    assert d.find("#dev") is None


def test_a_left_for_someone_never_seen_changes_nothing() -> None:
    d = Directory()
    d(Left("#nowhere", 1.0, "m9", "ghost"))
    assert d.rooms() == [] and d.rooms_of("m9") == []



def test_two_nodes_that_each_made_a_room_first_agree_on_who_runs_it() -> None:
    alice = Joined("#dev", 1.0, "n1.1", "alice")  # on node one
    bob = Joined("#dev", 1.2, "n2.1", "bob")  # on node two, before it heard alice's join
    one, two = Directory(), Directory()
    for event in (alice, bob):
        one(event)
    for event in (bob, alice):
        two(event)
    for d in (one, two):
        state = d.find("#dev")
        assert state is not None
        assert state.operators == {"n1.1"} and state.created == 1.0


def test_once_a_room_is_ruled_a_late_join_does_not_take_it_over() -> None:
    d = Directory()
    d(Joined("#dev", 2.0, "m2", "bob"))
    d(ModeSet("#dev", 3.0, "m2", "bob", "+m"))
    d(Joined("#dev", 1.0, "m1", "alice"))  # older, but the room has rules by now
    state = d.find("#dev")
    assert state is not None and state.operators == {"m2"}


def test_on_one_node_the_first_join_heard_made_the_room_whatever_the_ids_and_times() -> None:
    d = Directory()
    d(Joined("#dev", 5.0, "n1.2", "alice"))
    d(Joined("#dev", 5.0, "n1.1", "bob"))  # a lower id, the same time: not earlier
    d(Joined("#dev", 4.0, "n1.3", "carol"))  # a clock that stepped back: still after
    state = d.find("#dev")
    assert state is not None and state.operators == {"n1.2"}
