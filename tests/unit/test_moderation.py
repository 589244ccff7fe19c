"""Moderation in the domain: who may do what to a room, and what every node then enforces.

Two ``Chat``s on one ``LocalHub`` stand for two nodes: each has its own directory and its
own ``Moderation``, and only events pass between them, as over Redis.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import provider

from chatroom.domain.chat import Chat, Member
from chatroom.domain.directory import Directory
from chatroom.domain.errors import (
    BadKey,
    BadMask,
    Banned,
    CannotSpeak,
    ChatError,
    InviteOnly,
    MemberNotInRoom,
    Muted,
    NotOperator,
    NotServerOperator,
    RoomFull,
)
from chatroom.domain.events import (
    Event,
    Invited,
    Joined,
    Left,
    MaskSet,
    ModeSet,
    RoleSet,
    RoomKnown,
)
from chatroom.domain.moderation import SERVER_BANNED, Moderation, Rules
from chatroom.domain.roommodes import snapshot
from chatroom.hubs.local import LocalHub, LocalNicknames


def value(d: Deferred[Any]) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class Node:
    def __init__(self, world: World, name: str) -> None:
        self.chat = Chat(world.hub, world.names, world.clock, node=name)
        self.moderation = Moderation(self.chat, world.clock, world.rules)
        self.evicted: list[tuple[str, str, str]] = []
        self.world = world

    def person(self, nick: str, host: str | None = "198.51.100.1",
               account: str | None = None) -> Member:
        member: Member = value(self.chat.sign_in(nick))
        member.host, member.account = host, account
        self.chat.enter(member, self.chat.default_room)

        world = self

        class Connection:
            def evict(self, why: str, reason: str) -> None:
                world.evicted.append((member.nick, why, reason))
                world.chat.quit(member, reason)

        self.moderation.attach(member, Connection())
        return member


class World:
    def __init__(self, max_bans: int = 100) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.hub = LocalHub()
        self.names = LocalNicknames()
        self.rules = Rules(max_bans=max_bans)
        self.events: list[Event] = []
        self.hub.subscribe(self.events.append)
        self.one = Node(self, "one")
        self.two = Node(self, "two")

    def take(self) -> list[Event]:
        events, self.events[:] = list(self.events), []
        return events

    def settle(self) -> None:
        """Let each node do what an event asks of it (next turn)."""
        self.clock.advance(0)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def audit() -> Any:
    seen: list[LogEvent] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if event.get("audit"):
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


def dev(world: World) -> tuple[Member, Member, Member]:
    """alice (on one) makes #dev and runs it; bob (on two) and carol (on one) join it."""
    alice = world.one.person("alice")
    bob = world.two.person("bob", host="203.0.113.7")
    carol = world.one.person("carol", host="198.51.100.3")
    world.one.chat.enter(alice, "#dev")
    world.two.chat.enter(bob, "#dev")
    world.one.chat.enter(carol, "#dev")
    world.take()
    return alice, bob, carol


def room(node: Node, name: str = "#dev") -> Any:
    state = node.chat.directory.find(name)
    assert state is not None
    return state


# -- permissions ------------------------------------------------------------------------


@pytest.mark.parametrize("action", [
    lambda m, who: m.kick(who, None, "alice"),
    lambda m, who: m.ban(who, None, "alice"),
    lambda m, who: m.unban(who, None, "alice"),
    lambda m, who: m.mute(who, None, "alice"),
    lambda m, who: m.unmute(who, None, "alice"),
    lambda m, who: m.op(who, None, "carol"),
    lambda m, who: m.deop(who, None, "alice"),
    lambda m, who: m.voice(who, None, "carol"),
    lambda m, who: m.devoice(who, None, "carol"),
    lambda m, who: m.invite(who, None, "dora"),
    lambda m, who: m.set_modes(who, None, "+m", []),
])
def test_operator_commands_from_others_are_refused_and_change_nothing(
    world: World, action: Any
) -> None:
    _alice, bob, _carol = dev(world)
    world.one.person("dora")
    world.take()
    with pytest.raises(NotOperator) as caught:
        action(world.two.moderation, bob)
    assert str(caught.value) == "you are not an operator of #dev"
    assert world.take() == []


def test_server_operator_commands_from_others_are_refused(world: World) -> None:
    alice, _bob, _carol = dev(world)
    m = world.one.moderation
    for action in (lambda: m.kill(alice, "bob"), lambda: m.gban(alice, "203.0.113.7"),
                   lambda: m.ungban(alice, "203.0.113.7"), lambda: m.gbans(alice)):
        with pytest.raises(NotServerOperator):
            action()
    assert world.take() == []


def test_the_default_room_has_no_operator_but_server_operators(world: World) -> None:
    alice = world.one.person("alice")
    world.two.person("bob")
    with pytest.raises(NotOperator):
        world.one.moderation.kick(alice, "#lobby", "bob")
    world.one.moderation.make_server_operator(alice, "root")
    world.one.moderation.kick(alice, "#lobby", "bob", "testing")
    assert world.two.chat.members("#lobby") == ["alice"]


def test_an_operator_cannot_be_kicked_by_a_non_operator_and_a_server_operator_only_by_one(
    world: World,
) -> None:
    alice, bob, carol = dev(world)
    with pytest.raises(NotOperator):
        world.two.moderation.kick(bob, None, "alice")
    world.one.moderation.op(alice, None, "carol")
    world.one.moderation.make_server_operator(alice, "root")
    world.take()
    with pytest.raises(NotServerOperator):  # carol runs #dev, but alice runs the server
        world.one.moderation.kick(carol, None, "alice")
    with pytest.raises(NotServerOperator):
        world.one.moderation.deop(carol, None, "alice")
    assert world.take() == []
    assert "alice" in world.two.chat.members("#dev")


# -- kick -------------------------------------------------------------------------------


def test_kick_takes_a_member_on_another_node_out_and_says_who_and_why(
    world: World, audit: list[LogEvent]
) -> None:
    alice, bob, _carol = dev(world)
    assert world.one.moderation.kick(alice, None, "BOB", "flooding") == "bob"
    [left] = world.take()
    assert left == Left("#dev", left.time, bob.id, "bob", "kicked", "flooding", "alice")
    for node in (world.one, world.two):
        assert node.chat.members("#dev") == ["alice", "carol"]
    assert bob.current == "#lobby"  # the room he was in before
    world.two.chat.enter(bob, "#dev")  # and may come back: a kick is not a ban
    [entry] = audit
    assert (entry["actor"], entry["action"], entry["target"], entry["room"], entry["reason"]) \
        == ("alice", "kicked", "bob", "#dev", "flooding")
    assert entry["actor_host"] == "198.51.100.1"


def test_kick_of_someone_not_in_the_room_says_so(world: World) -> None:
    alice, _bob, _carol = dev(world)
    world.one.person("dora")
    with pytest.raises(MemberNotInRoom, match="dora is not in #dev"):
        world.one.moderation.kick(alice, None, "dora")


# -- bans -------------------------------------------------------------------------------


def test_a_ban_removes_matching_members_on_every_node_and_keeps_them_out(
    world: World,
) -> None:
    alice, bob, _carol = dev(world)
    world.one.moderation.ban(alice, None, "203.0.113.0/24", "spam from there")
    [ban] = world.take()
    assert isinstance(ban, MaskSet) and ban.change == "+b" and ban.mask == "203.0.113.0/24"
    world.settle()  # node two removes bob, its own member
    [left] = world.take()
    assert left == Left("#dev", left.time, bob.id, "bob", "banned", "spam from there", "alice")
    assert world.one.chat.members("#dev") == ["alice", "carol"]
    with pytest.raises(Banned, match="you are banned from #dev"):
        world.two.chat.enter(bob, "#dev")
    dora = world.two.person("dora", host="203.0.113.99")
    with pytest.raises(Banned):
        world.two.chat.enter(dora, "#DEV")
    world.one.moderation.unban(alice, None, "203.0.113.9/24")  # the same network
    world.two.chat.enter(bob, "#dev")


def test_bans_by_nickname_and_account(world: World) -> None:
    alice, _bob, _carol = dev(world)
    world.one.moderation.ban(alice, None, "Carol")
    world.one.moderation.ban(alice, None, "~a:eve")
    world.settle()
    assert world.two.chat.members("#dev") == ["alice", "bob"]
    eve = world.two.person("evelyn", account="eve")
    with pytest.raises(Banned):
        world.two.chat.enter(eve, "#dev")
    carol2 = world.two.person("frank")
    world.two.chat.enter(carol2, "#dev")  # another nickname, another person


def test_bans_list_who_set_each_when_and_why_to_anyone_even_the_banned(world: World) -> None:
    alice, bob, _carol = dev(world)
    world.one.moderation.ban(alice, None, "bob", "rude")
    world.clock.advance(60)
    world.one.moderation.ban(alice, None, "~a:eve")
    world.settle()
    _state, entries = world.two.moderation.bans(bob, "#dev")  # bob is out, and may look
    assert [(e.mask.text, e.by, e.reason) for e in entries] == [
        ("bob", "alice", "rude"), ("~a:eve", "alice", "")]
    assert entries[1].time - entries[0].time == 60


def test_a_mask_for_everyone_needs_a_server_operator_and_nobody_bans_themselves(
    world: World,
) -> None:
    alice, _bob, _carol = dev(world)
    for broad in ("*", "0.0.0.0/0", "::/0", "10.0.0.0/8"):
        with pytest.raises(NotServerOperator, match="only a server operator"):
            world.one.moderation.ban(alice, None, broad)
    with pytest.raises(ChatError, match="names you"):
        world.one.moderation.ban(alice, None, "198.51.100.0/24")
    with pytest.raises(BadMask):
        world.one.moderation.ban(alice, None, "bob!*@*")
    assert world.take() == []
    world.one.moderation.make_server_operator(alice, "root")
    world.one.moderation.ban(alice, None, "*", "closed for the night")
    world.settle()
    assert world.one.chat.members("#dev") == ["alice"]  # a server operator stays


def test_a_room_holds_at_most_max_bans() -> None:
    world = World(max_bans=2)
    alice, _bob, _carol = dev(world)
    world.one.moderation.ban(alice, None, "x1")
    world.one.moderation.ban(alice, None, "x2")
    with pytest.raises(ChatError, match="2 bans, the most"):
        world.one.moderation.ban(alice, None, "x3")
    with pytest.raises(ChatError, match="already"):
        world.one.moderation.ban(alice, None, "X1")


# -- mutes, voice, moderated ----------------------------------------------------------------


def test_a_muted_member_reads_but_its_lines_reach_nobody_through_renames(
    world: World,
) -> None:
    alice, bob, _carol = dev(world)
    world.one.moderation.mute(alice, None, "bob", "calm down")
    world.take()
    for speak in (lambda: world.two.chat.say(bob, "hi"), lambda: world.two.chat.act(bob, "x")):
        with pytest.raises(Muted, match="you are muted in #dev"):
            speak()
    value(world.two.chat.rename(bob, "robert"))
    with pytest.raises(Muted):
        world.two.chat.say(bob, "now?")
    world.two.chat.switch(bob, "#lobby")
    world.two.chat.say(bob, "in the lobby he speaks")
    world.two.chat.switch(bob, "#dev")
    world.one.moderation.unmute(alice, None, "robert")
    world.two.chat.say(bob, "thanks")


def test_moderated_room_only_operators_and_voiced_members_speak(world: World) -> None:
    alice, bob, _carol = dev(world)
    assert world.one.moderation.set_modes(alice, None, "+m", []) == ["+m"]
    with pytest.raises(CannotSpeak, match="moderated"):
        world.two.chat.say(bob, "hi")
    world.one.chat.say(alice, "operators speak")
    world.one.moderation.voice(alice, None, "bob")
    world.two.chat.say(bob, "voiced now")
    world.one.moderation.devoice(alice, None, "bob")
    with pytest.raises(CannotSpeak):
        world.two.chat.say(bob, "hi")
    roles = [e.change for e in world.take() if isinstance(e, RoleSet)]
    assert roles == ["+v", "-v"]


# -- modes --------------------------------------------------------------------------------


def test_new_rooms_start_topic_locked_and_modes_show(world: World) -> None:
    alice, bob, _carol = dev(world)
    assert world.two.moderation.modes(bob, "#dev")[1] == "+t"
    world.one.moderation.set_modes(alice, None, "+kl-t", ["sesame", "10"])
    assert world.two.moderation.modes(bob, "#dev")[1] == "+kl 10"  # the key only to ops
    assert world.one.moderation.modes(alice, None)[1] == "+kl sesame 10"
    assert world.one.moderation.set_modes(alice, None, "+l", ["10"]) == []  # as it was
    world.two.chat.set_topic(bob, "#dev", "anyone may now")


def test_key_invite_only_limit_and_secret(world: World) -> None:
    alice, bob, _carol = dev(world)
    dora = world.two.person("dora")
    m = world.one.moderation
    m.set_modes(alice, None, "+k", ["sesame"])
    with pytest.raises(BadKey, match=r"/join #dev KEY"):
        world.two.chat.enter(dora, "#dev")
    with pytest.raises(BadKey):
        world.two.chat.enter(dora, "#dev", "open")
    world.two.chat.enter(dora, "#dev", "sesame")
    world.two.chat.part(dora, "#dev")
    m.set_modes(alice, None, "-k+i", [])
    with pytest.raises(InviteOnly, match="invite-only"):
        world.two.chat.enter(dora, "#dev")
    m.invite(alice, None, "dora")
    world.two.chat.enter(dora, "#dev")
    world.two.chat.part(dora, "#dev")
    with pytest.raises(InviteOnly):  # an invitation is used up by the join
        world.two.chat.enter(dora, "#dev")
    m.set_modes(alice, None, "-i+l", ["3"])
    with pytest.raises(RoomFull, match="3 members"):
        world.two.chat.enter(dora, "#dev")
    m.set_modes(alice, None, "+s-l", [])
    assert world.two.moderation.modes(bob, "#dev")[1] == "+ts"
    with pytest.raises(ChatError):
        world.two.moderation.modes(dora, "#dev")  # secret: not for outsiders


@pytest.mark.parametrize(("spec", "arguments", "why"), [
    ("+x", [], "unknown mode x"),
    ("+k", [], "needs a key"),
    ("+l", ["0"], "from 1 to"),
    ("+l", ["many"], "from 1 to"),
    ("+m", ["extra"], "too many arguments"),
    ("+o", [], "needs a nickname"),
    ("+", [], "usage"),
])
def test_bad_mode_changes_are_refused_whole(world: World, spec: str, arguments: list[str],
                                            why: str) -> None:
    alice, _bob, _carol = dev(world)
    with pytest.raises(ChatError, match=why):
        world.one.moderation.set_modes(alice, None, spec, arguments)
    assert world.take() == []


def test_mode_takes_roles_bans_and_mutes_too(world: World) -> None:
    alice, bob, carol = dev(world)
    done = world.one.moderation.set_modes(alice, None, "+ov-t", ["carol", "bob"])
    assert done == ["+o carol", "+v bob", "-t"]
    assert room(world.two).operators == {alice.id, carol.id}
    assert room(world.two).voiced == {bob.id}
    world.one.moderation.set_modes(alice, None, "+b", ["bob"])
    world.settle()
    assert world.two.chat.members("#dev") == ["alice", "carol"]


def test_invite_goes_to_the_invitee_and_op_and_deop(world: World) -> None:
    alice, bob, _carol = dev(world)
    dora = world.two.person("dora")
    world.take()
    world.one.moderation.invite(alice, None, "DORA")
    [invited] = world.take()
    assert invited == Invited("#dev", invited.time, alice.id, "alice", dora.id, "dora")
    world.one.moderation.op(alice, None, "bob")
    world.two.moderation.kick(bob, None, "carol")
    with pytest.raises(ChatError, match="already"):
        world.two.moderation.op(bob, None, "alice")
    world.two.moderation.deop(bob, None, "alice")
    with pytest.raises(NotOperator):
        world.one.moderation.kick(alice, None, "bob")


# -- server operators ----------------------------------------------------------------------


def test_kill_disconnects_the_member_on_its_own_node(world: World,
                                                     audit: list[LogEvent]) -> None:
    alice, _bob, _carol = dev(world)
    world.one.moderation.make_server_operator(alice, "root")
    world.one.moderation.kill(alice, "bob", "enough")
    world.settle()
    assert world.two.evicted == [("bob", "you were disconnected by alice: enough",
                                  "killed by alice")]
    assert sorted(e.room for e in world.take() if isinstance(e, Left)) == ["#dev", "#lobby"]
    assert [e["action"] for e in audit] == ["became server operator", "killed"]


def test_gban_turns_away_connections_and_drops_members_on_every_node(world: World) -> None:
    alice, _bob, _carol = dev(world)
    world.one.moderation.make_server_operator(alice, "root")
    with pytest.raises(BadMask, match="address or a network"):
        world.one.moderation.gban(alice, "bob")
    with pytest.raises(ChatError, match="your own address"):
        world.one.moderation.gban(alice, "198.51.100.0/24")
    world.one.moderation.gban(alice, "203.0.113.0/24", 3600, "abuse")
    world.settle()
    assert world.two.evicted == [("bob", SERVER_BANNED, "banned from the server")]
    for node in (world.one, world.two):
        assert node.moderation.server_refusal("203.0.113.50") == SERVER_BANNED
        assert node.moderation.server_refusal("::ffff:203.0.113.50") == SERVER_BANNED
        assert node.moderation.server_refusal("198.51.100.1") is None
    [ban] = world.one.moderation.gbans(alice)
    assert (ban.mask.text, ban.by, ban.reason) == ("203.0.113.0/24", "alice", "abuse")
    world.clock.advance(3600)  # it ran out
    assert world.two.moderation.server_refusal("203.0.113.50") is None
    assert world.one.moderation.gbans(alice) == []


def test_ungban_lifts_it_everywhere(world: World) -> None:
    alice = world.one.person("alice")
    world.one.moderation.make_server_operator(alice, "root")
    world.one.moderation.gban(alice, "203.0.113.7")
    world.one.moderation.ungban(alice, "203.0.113.7/32")
    assert world.two.moderation.server_refusal("203.0.113.7") is None
    with pytest.raises(ChatError, match="not banned"):
        world.one.moderation.ungban(alice, "203.0.113.7")


def test_a_server_operator_enters_any_room_and_runs_it(world: World) -> None:
    alice, _bob, _carol = dev(world)
    world.one.moderation.set_modes(alice, None, "+ik", ["sesame"])
    world.one.moderation.ban(alice, None, "dora")
    dora = world.two.person("dora")
    world.two.moderation.make_server_operator(dora, "ops")
    world.two.chat.enter(dora, "#dev")
    world.two.moderation.set_modes(dora, None, "-i", [])
    assert world.one.moderation.is_operator_id(dora.id, room(world.one))


# -- a node that comes later ----------------------------------------------------------------


def test_a_late_directory_learns_every_rule_from_the_views(world: World) -> None:
    alice, _bob, _carol = dev(world)
    m = world.one.moderation
    m.set_modes(alice, None, "+mkl", ["sesame", "5"])
    m.voice(alice, None, "bob")
    m.ban(alice, None, "203.0.113.0/24", "why\tnot")
    m.mute(alice, None, "carol")
    world.settle()
    late = Directory()
    for event in world.one.moderation.views():
        late(event)
    assert late.find("#dev") is None  # nobody told it who is in #dev: a view needs a room
    late(Joined("#dev", 0.0, alice.id, "alice"))
    for event in world.one.moderation.views():
        late(event)
    mine, theirs = room(world.one), late.find("#dev")
    assert theirs is not None
    assert (theirs.modes, theirs.key, theirs.limit) == (mine.modes, "sesame", 5)
    assert theirs.operators == mine.operators and theirs.voiced == mine.voiced
    assert {k: (e.mask.text, e.by, e.reason) for k, e in theirs.bans.items()} == {
        k: (e.mask.text, e.by, e.reason.replace("\t", " ")) for k, e in mine.bans.items()}
    assert {k: e.members for k, e in theirs.mutes.items()} == {
        k: e.members for k, e in mine.mutes.items()}


def test_an_older_view_does_not_undo_a_newer_change(world: World) -> None:
    alice, _bob, _carol = dev(world)
    old = snapshot(room(world.one), "#dev")
    world.clock.advance(1)
    world.one.moderation.set_modes(alice, None, "+m", [])
    world.two.chat.directory(old)
    assert "m" in room(world.two).modes
    assert isinstance(old, RoomKnown)


def test_mode_events_are_one_flag_each(world: World) -> None:
    alice, _bob, _carol = dev(world)
    world.one.moderation.set_modes(alice, None, "+mi-t", [])
    assert [e.change for e in world.take() if isinstance(e, ModeSet)] == ["+m", "+i", "-t"]

