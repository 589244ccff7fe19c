"""The chat's small additions for front ends whose messages name their room (IRC): saying
in a named room, and a quit that says something."""

from __future__ import annotations

import pytest

from chatroom.domain.errors import NoSuchRoom
from chatroom.domain.events import Acted, Left, Said
from tests.unit.test_chat_rooms import World


def test_say_and_act_in_a_named_room_leave_the_current_room_alone() -> None:
    world = World()
    alice = world.person("alice")
    world.chat.enter(alice, "#dev")
    world.chat.say(alice, "to the lobby", "#LOBBY")
    world.chat.act(alice, "waves", "#lobby")
    world.chat.say(alice, "here")
    said = [e for e in world.events if isinstance(e, Said | Acted)]
    assert [(e.room, e.text) for e in said] == [
        ("#lobby", "to the lobby"), ("#lobby", "waves"), ("#dev", "here")]
    assert alice.current == "#dev"


def test_saying_in_a_room_one_is_not_in_is_refused() -> None:
    world = World()
    alice = world.person("alice")
    bob = world.person("bob")
    world.chat.enter(bob, "#dev")
    with pytest.raises(NoSuchRoom, match="you are not in #dev"):
        world.chat.say(alice, "hi", "#dev")
    with pytest.raises(NoSuchRoom):
        world.chat.act(alice, "hi", "#nowhere")


def test_a_quit_carries_what_the_member_said_on_leaving() -> None:
    world = World()
    alice = world.person("alice")
    world.chat.enter(alice, "#dev")
    world.chat.quit(alice, "quit", "gone fishing")
    left = [e for e in world.events if isinstance(e, Left)]
    assert [(e.room, e.reason, e.message) for e in left] == [
        ("#lobby", "quit", "gone fishing"), ("#dev", "quit", "gone fishing")]
