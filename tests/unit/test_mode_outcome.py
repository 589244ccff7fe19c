"""``/mode`` with several changes, one of them refused (issue 15 leftovers, point 2).

``/mode +o-v bob carol`` with carol not in the room made bob an operator and answered only
carol's error, so the operator could not tell what was made. Now each change is made or
refused on its own, as IRC servers do (ergo answers a refused change with its numeric and
makes the rest), and the answer names both: the changes made, one error per refused one.
Bad flags or arguments still refuse the whole command before anything changes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.internet.task import Clock

from chatroom.domain.errors import ChatError
from chatroom.domain.moderation import MAX_MODE_CHANGES, Moderation
from tests.unit.helpers import Server, serving
from tests.unit.test_protocol_moderation import dev, run
from tests.unit.test_web_harness import FakeBrowser, make_site


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


def moderation(server: Server) -> Moderation:
    assert server.services.moderation is not None
    return server.services.moderation


def test_each_change_is_made_or_refused_and_both_are_told(server: Server) -> None:
    alice, bob, carol = dev(server)
    carol.send("/part")
    server.flush()
    for client in (alice, bob):
        client.clear()
    assert run(server, alice, "/mode +o-v+m bob carol") == [
        "*** you set mode +o bob +m on #dev",
        "! mode -v carol refused: carol is not in #dev",
    ]
    assert bob.lines() == ["*** alice made bob an operator", "*** alice set mode +m"]
    state = server.services.chat.directory.find("#dev")
    assert state is not None and "m" in state.modes
    assert {state.members[m] for m in state.operators} == {"alice", "bob"}


def test_when_every_change_is_refused_nothing_is_confirmed(server: Server) -> None:
    alice, bob, _carol = dev(server)
    assert run(server, alice, "/mode +o-o nobody bob") == [
        "! mode +o nobody refused: nobody is not in #dev",
        "! mode -o bob refused: bob is not an operator of #dev",
    ]
    assert bob.lines() == []


def test_bad_flags_or_arguments_still_refuse_the_whole_command(server: Server) -> None:
    alice, bob, _carol = dev(server)
    assert run(server, alice, "/mode +mo-l+z bob") == [
        "! unknown mode z: the modes are mitkls, and o v b q with a nickname or a mask"]
    assert bob.lines() == []


def test_set_modes_names_what_was_made_and_what_was_refused(server: Server) -> None:
    alice, _bob, _carol = dev(server)
    member = alice.protocol.member
    assert member is not None
    with pytest.raises(ChatError) as refused:
        moderation(server).set_modes(member, None, "+io", ["nobody"])
    assert str(refused.value) == "made +i; refused +o nobody: nobody is not in #dev"


def test_the_page_gets_one_error_per_refused_change() -> None:
    clock = Clock()
    site = make_site(clock)
    alice, bob = FakeBrowser(site, 1), FakeBrowser(site, 2)
    alice.join("alice", clock)
    bob.join("bob", clock)
    alice.say("/join #dev")
    clock.advance(0)
    bob.say("/join #dev")
    clock.advance(0)
    alice.received()
    alice.say("/mode +v-o+m bob nobody")
    clock.advance(0)
    got = alice.received()
    errors = [m["text"] for m in got if m["type"] == "error"]
    assert errors == ["mode -o nobody refused: nobody is not in #dev"]
    assert {m["type"] for m in got} >= {"mode", "role"}, got




def test_one_mode_command_makes_a_bounded_number_of_changes(server: Server) -> None:
    # Each change is a broadcast line, an audit log line and (with Redis) an entry on the
    # shared stream: one 2 KiB line of "+b-b" pairs made 500 of each, past flood control
    # (one line, one token), enough to push other rooms' lines out of the stream's backlog.
    alice, bob, _carol = dev(server)
    most = MAX_MODE_CHANGES
    pairs = "+b-b" * most
    masks = " ".join(["x"] * 2 * most)
    assert run(server, alice, f"/mode {pairs} {masks}") == [
        f"! a /mode makes at most {most} changes (got {2 * most})"]
    assert bob.lines() == []
    assert run(server, alice, "/mode " + "+v-v" * (most // 2) + " bob" * most)[0].startswith(
        "*** you set mode +v bob -v bob")
