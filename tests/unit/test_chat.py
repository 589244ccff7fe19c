"""The chat on a LocalHub, in its default room: which events each call publishes, and what
it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatroom.domain.chat import Member
from chatroom.domain.errors import NicknameInvalid, NicknameTaken, NoSuchMember
from chatroom.domain.events import (
    PUBLIC_EVENTS,
    Acted,
    Event,
    Joined,
    Left,
    Notice,
    Renamed,
    Said,
    Whispered,
)
from chatroom.hubs.local import LocalHub, LocalNicknames
from tests.roomhandle import DefaultRoom


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000.0)
        self.hub = LocalHub()
        self.names = LocalNicknames()
        self.room = DefaultRoom("#lobby", self.hub, self.clock, node="n", names=self.names)
        self.events: list[Event] = []
        self.hub.subscribe(self.events.append)

    def join(self, nick: str) -> Member:
        member: Member = value(self.room.join(nick))
        return member

    def take(self) -> list[Event]:
        events = list(self.events)
        self.events.clear()
        return events


def value(d: Deferred[Any]) -> Any:
    """The result of a Deferred that has already fired (LocalHub never waits)."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    result = results[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


@pytest.fixture
def world() -> World:
    return World()


def test_join_publishes_joined_and_returns_a_member(world: World) -> None:
    member = world.join("Zoe\u0308")
    assert member.nick == "Zoë" and member.present
    assert world.take() == [Joined("#lobby", 1000.0, member.id, "Zoë")]
    assert world.room.members() == ["Zoë"]


def test_member_ids_are_unique(world: World) -> None:
    a = world.join("a")
    world.room.leave(a, "quit")
    b = world.join("a")
    assert a.id != b.id


def test_join_taken_nickname_fails_caselessly_and_publishes_nothing(world: World) -> None:
    world.join("Alice")
    world.take()
    with pytest.raises(NicknameTaken) as caught:
        world.join("ALICE")
    assert caught.value.nick == "ALICE"
    assert "taken" in str(caught.value)
    assert world.take() == []
    assert world.room.members() == ["Alice"]


def test_join_invalid_nickname_fails_and_publishes_nothing(world: World) -> None:
    with pytest.raises(NicknameInvalid):
        world.join("_x")
    assert world.take() == []
    assert world.room.members() == []


def test_rename_publishes_renamed_and_moves_the_claim(world: World) -> None:
    alice = world.join("alice")
    world.take()
    assert value(world.room.rename(alice, "alicia")) == "alicia"
    assert alice.nick == "alicia"
    assert world.take() == [Renamed("", 1000.0, alice.id, "alice", "alicia", ("#lobby",))]
    assert world.room.members() == ["alicia"]
    assert world.names.lookup("alice") is None
    assert world.join("alice").nick == "alice"


def test_rename_case_only_change_keeps_the_claim_and_shows_the_new_spelling(
    world: World,
) -> None:
    alice = world.join("alice")
    world.take()
    assert value(world.room.rename(alice, "ALICE")) == "ALICE"
    assert world.take() == [Renamed("", 1000.0, alice.id, "alice", "ALICE", ("#lobby",))]
    assert world.room.members() == ["ALICE"]
    assert world.names.lookup("alice") == ("ALICE", alice.id)
    with pytest.raises(NicknameTaken):
        world.join("Alice")


def test_rename_to_the_same_nickname_is_refused(world: World) -> None:
    alice = world.join("Zoë")
    world.take()
    with pytest.raises(NicknameInvalid):
        value(world.room.rename(alice, "Zoe\u0308"))
    assert world.take() == []


def test_rename_to_a_taken_nickname_changes_nothing(world: World) -> None:
    alice = world.join("alice")
    world.join("bob")
    world.take()
    with pytest.raises(NicknameTaken):
        value(world.room.rename(alice, "BOB"))
    assert alice.nick == "alice"
    assert world.take() == []
    assert sorted(world.room.members()) == ["alice", "bob"]


def test_rename_invalid_changes_nothing(world: World) -> None:
    alice = world.join("alice")
    world.take()
    with pytest.raises(NicknameInvalid):
        value(world.room.rename(alice, "no spaces"))
    assert alice.nick == "alice" and world.take() == []


def test_leave_publishes_left_once_and_frees_the_nickname(world: World) -> None:
    alice = world.join("alice")
    world.take()
    world.room.leave(alice, "closed")
    world.room.leave(alice, "closed again")
    assert world.take() == [Left("#lobby", 1000.0, alice.id, "alice", "closed")]
    assert not alice.present
    assert world.room.members() == []
    assert world.join("ALICE").nick == "ALICE"


def test_say_and_act_publish_with_the_current_nick(world: World) -> None:
    alice = world.join("alice")
    value(world.room.rename(alice, "alicia"))
    world.take()
    world.room.say(alice, "hello")
    world.room.act(alice, "waves")
    assert world.take() == [
        Said("#lobby", 1000.0, alice.id, "alicia", "hello"),
        Acted("#lobby", 1000.0, alice.id, "alicia", "waves"),
    ]


def test_whisper_finds_the_target_caselessly(world: World) -> None:
    alice = world.join("alice")
    bob = world.join("Bob")
    world.take()
    assert world.room.whisper(alice, " BOB ", "psst") == "Bob"
    assert world.take() == [
        Whispered("", 1000.0, alice.id, "alice", "psst", bob.id, "Bob")
    ]


def test_whisper_to_nobody_raises_and_publishes_nothing(world: World) -> None:
    alice = world.join("alice")
    bob = world.join("bob")
    world.room.leave(bob, "quit")
    world.take()
    for target in ("carol", "bob", ""):
        with pytest.raises(NoSuchMember):
            world.room.whisper(alice, target, "x")
    assert world.take() == []


def test_whispers_are_not_public_events() -> None:
    public: set[type[Event]] = set(PUBLIC_EVENTS)
    assert Whispered not in public
    assert {Joined, Left, Renamed, Said, Acted, Notice} <= public


def test_notice_is_from_the_server(world: World) -> None:
    world.room.notice("restart at noon")
    assert world.take() == [Notice("#lobby", 1000.0, "", "", "restart at noon")]


def test_members_are_sorted_caselessly(world: World) -> None:
    for nick in ("bob", "Alice", "carol", "BERT"):
        world.join(nick)
    assert world.room.members() == ["Alice", "BERT", "bob", "carol"]


def test_events_carry_the_clock_time(world: World) -> None:
    alice = world.join("alice")
    world.clock.advance(5)
    world.room.say(alice, "x")
    assert world.take()[-1].time == 1005.0


def test_events_are_frozen_and_compare_by_value() -> None:
    event = Said("#lobby", 1.0, "m", "n", "t")
    assert event == Said("#lobby", 1.0, "m", "n", "t")
    with pytest.raises(AttributeError):
        event.text = "changed"  # type: ignore[misc]


def test_one_broken_listener_does_not_starve_the_others(
    world: World, logged_failures: list[dict[str, Any]]
) -> None:
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    world.hub.subscribe(broken)
    world.hub.subscribe(seen.append)
    world.room.notice("x")
    assert len(seen) == 1
    assert len(logged_failures) == 1  # the broken one is logged, as it should be
    logged_failures.clear()


def test_unsubscribe_stops_delivery(world: World) -> None:
    seen: list[Event] = []
    stop = world.hub.subscribe(seen.append)
    stop()
    stop()  # twice is fine
    world.room.notice("x")
    assert seen == []
