"""The chat's rooms on a LocalHub: entering, parting, the current room, limits, topics, and
what a rename and a quit publish."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatroom.domain.chat import Chat, Member, RoomRules
from chatroom.domain.errors import ChatError, NoSuchRoom, NotInRoom, RoomLimit, RoomNameInvalid
from chatroom.domain.events import Event, Joined, Left, Renamed, Said, TopicSet
from chatroom.hubs.local import LocalHub, LocalNicknames


def value(d: Deferred[Any]) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class World:
    def __init__(self, rules: RoomRules | None = None) -> None:
        self.clock = Clock()
        self.hub = LocalHub()
        self.chat = Chat(self.hub, LocalNicknames(), self.clock, rules=rules, node="n")
        self.events: list[Event] = []
        self.hub.subscribe(self.events.append)

    def person(self, nick: str) -> Member:
        member: Member = value(self.chat.sign_in(nick))
        self.chat.enter(member, self.chat.default_room)
        return member

    def take(self) -> list[Event]:
        events = list(self.events)
        self.events.clear()
        return events


@pytest.fixture
def world() -> World:
    return World()


def test_signing_in_claims_the_nickname_but_enters_no_room(world: World) -> None:
    member = value(world.chat.sign_in("alice"))
    assert member.current is None and world.take() == []
    with pytest.raises(NotInRoom):
        world.chat.say(member, "hi")


def test_enter_creates_a_room_makes_it_current_and_again_only_switches(world: World) -> None:
    alice = world.person("alice")
    world.take()
    state, entered = world.chat.enter(alice, "dev")
    assert entered and state.name == "#dev" and alice.current == "#dev"
    assert world.take() == [Joined("#dev", 0.0, alice.id, "alice")]
    world.chat.enter(alice, "#lobby")
    assert alice.current == "#lobby" and world.take() == []  # in it already: only current
    world.chat.say(alice, "hi")
    assert world.take() == [Said("#lobby", 0.0, alice.id, "alice", "hi")]


def test_part_makes_the_room_joined_most_recently_current(world: World) -> None:
    alice = world.person("alice")
    for room in ("#a", "#b", "#c"):
        world.chat.enter(alice, room)
    world.chat.enter(alice, "#a")  # switching does not change the join order
    world.take()
    assert world.chat.part(alice, None, "bye") == "#a"
    assert world.take() == [Left("#a", 0.0, alice.id, "alice", "part", "bye")]
    assert alice.current == "#c"
    world.chat.part(alice, "#lobby")
    assert alice.current == "#c"  # not the current room: current stays
    for room in ("#c", "#b"):
        world.chat.part(alice, room)
    assert alice.current is None
    with pytest.raises(NotInRoom):
        world.chat.part(alice, None)


def test_parting_a_room_one_is_not_in_says_so(world: World) -> None:
    alice = world.person("alice")
    bob = world.person("bob")
    world.chat.enter(bob, "#dev")
    with pytest.raises(NoSuchRoom, match="you are not in #dev"):
        world.chat.part(alice, "#dev")
    with pytest.raises(NoSuchRoom, match="no such room"):
        world.chat.part(alice, "#nowhere!")


def test_room_names_follow_the_nickname_rules(world: World) -> None:
    alice = world.person("alice")
    for bad in ("#", "#a b", "#_x", "#" + "x" * 33, "#dev!"):
        with pytest.raises(RoomNameInvalid):
            world.chat.enter(alice, bad)
    state, _ = world.chat.enter(alice, "#Zoë-2")
    assert state.name == "#Zoë-2" and world.chat.room("#ZOË-2") is state


def test_limits_on_rooms() -> None:
    world = World(RoomRules(max_rooms=3, max_rooms_per_member=2, max_name=4))
    alice = world.person("alice")  # #lobby is one
    world.chat.enter(alice, "#a")
    with pytest.raises(RoomLimit, match="2 rooms already"):
        world.chat.enter(alice, "#b")
    bob = world.person("bob")
    with pytest.raises(RoomNameInvalid, match="at most 4"):
        world.chat.enter(bob, "#abcde")
    world.chat.enter(bob, "#b")
    carol = world.person("carol")
    with pytest.raises(RoomLimit, match="3 rooms"):
        world.chat.enter(carol, "#c")
    world.chat.enter(carol, "#a")  # an existing room is always fine


def test_the_creator_sets_the_topic_of_a_new_room_others_may_not(world: World) -> None:
    alice, bob = world.person("alice"), world.person("bob")
    for member in (alice, bob):
        world.chat.enter(member, "#dev")
    world.take()
    world.chat.set_topic(alice, None, "plans")
    assert world.take() == [TopicSet("#dev", 0.0, alice.id, "alice", "plans")]
    with pytest.raises(ChatError, match="not an operator of #dev"):
        world.chat.set_topic(bob, None, "mine")
    world.chat.set_topic(bob, "#lobby", "anyone may, in the default room")
    assert world.chat.room("#lobby").topic == "anyone may, in the default room"


def test_a_rename_is_one_event_naming_the_rooms_and_a_quit_one_left_per_room(
    world: World,
) -> None:
    alice = world.person("alice")
    world.chat.enter(alice, "#dev")
    world.take()
    value(world.chat.rename(alice, "alicia"))
    assert world.take() == [Renamed("", 0.0, alice.id, "alice", "alicia", ("#lobby", "#dev"))]
    world.chat.quit(alice, "quit")
    assert world.take() == [
        Left("#lobby", 0.0, alice.id, "alicia", "quit"),
        Left("#dev", 0.0, alice.id, "alicia", "quit"),
    ]
    assert world.chat.directory.rooms_of(alice.id) == []
    assert world.chat.names.lookup("alicia") is None
