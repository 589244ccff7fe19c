"""PROTOCOL.md, "Moderation", on the line front end with StringTransport and a Clock: every
command's answer, what the room and the member concerned see, and the errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from chatroom.domain.chat import Member
from tests.unit.helpers import Client, Server, serving


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


def dev(server: Server) -> tuple[Client, Client, Client]:
    """alice made #dev; bob and carol are in it too; everyone's output read."""
    alice, bob, carol = server.members("alice", "bob", "carol")
    for client in (alice, bob, carol):
        client.send("/join #dev")
        server.flush()
    for client in server.clients:
        client.clear()
    return alice, bob, carol


def run(server: Server, client: Client, line: str) -> list[str]:
    client.send(line)
    server.flush()
    server.flush()  # what a node does next turn (a ban's removals)
    return client.lines()


def oper(server: Server, client: Client) -> None:
    member = client.protocol.member
    assert isinstance(member, Member) and server.services.moderation is not None
    server.services.moderation.make_server_operator(member, "root")


def test_operator_only_commands_from_others_get_the_contracts_error(server: Server) -> None:
    alice, bob, carol = dev(server)
    for line in ("/kick carol", "/ban carol", "/unban carol", "/mute carol", "/unmute carol",
                 "/op carol", "/deop alice", "/voice carol", "/devoice carol",
                 "/invite carol", "/mode +m", "/topic mine now"):
        assert run(server, bob, line) == ["! you are not an operator of #dev"], line
    assert alice.lines() == [] and carol.lines() == []


def test_server_operator_commands_from_others(server: Server) -> None:
    alice, _bob, _ = dev(server)
    for line in ("/kill bob", "/gban 203.0.113.7", "/ungban 203.0.113.7", "/gbans"):
        [error] = run(server, alice, line)
        assert error.startswith("! only a server operator may do that"), line


def test_kick_is_told_to_the_room_and_to_whoever_was_kicked(server: Server) -> None:
    alice, bob, carol = dev(server)
    assert run(server, alice, "/kick bob too loud") == ["*** bob was kicked by alice (too loud)"]
    assert carol.lines() == ["*** bob was kicked by alice (too loud)"]
    assert bob.lines() == ["#dev *** bob was kicked by alice (too loud)"]
    bob.send("still here?")  # in #lobby now, his room before #dev
    server.flush()
    assert carol.lines() == ["#lobby bob: still here?"]
    assert run(server, bob, "/join #dev")[-1] == "*** you joined #dev; 3 people are here"


def test_ban_removes_keeps_out_and_bans_tells_who_when_why(server: Server) -> None:
    alice, bob, carol = dev(server)
    assert run(server, alice, "/ban bob spamming") == [
        "*** you set a ban on bob in #dev", "*** bob was banned by alice (spamming)"]
    assert carol.lines() == ["*** alice set a ban on bob (spamming)",
                             "*** bob was banned by alice (spamming)"]
    assert bob.lines() == ["#dev *** alice set a ban on bob (spamming)",
                           "#dev *** bob was banned by alice (spamming)"]
    assert run(server, bob, "/join #dev") == ["! you are banned from #dev"]
    bans = run(server, bob, "/bans #dev")
    assert bans[0] == "*** 1 ban in #dev:"
    assert re.fullmatch(r"\*\*\* bob \(by alice, \d{4}-\d\d-\d\d \d\d:\d\d UTC\): spamming",
                        bans[1])
    assert run(server, alice, "/unban BOB") == ["*** you lifted the ban on bob in #dev"]
    assert carol.lines() == ["*** alice lifted the ban on bob"]
    assert run(server, carol, "/bans") == ["*** #dev has no bans"]
    assert run(server, bob, "/join #dev")[-1].startswith("*** you joined #dev")


def test_a_ban_for_everyone_needs_a_server_operator(server: Server) -> None:
    alice, _, carol = dev(server)
    [error] = run(server, alice, "/ban 0.0.0.0/0")
    assert error == ("! 0.0.0.0/0 names everyone or too wide a network: only a server "
                     "operator may ban it")
    [error] = run(server, alice, "/ban *")
    assert "only a server operator" in error
    [error] = run(server, alice, "/ban bob@host")
    assert error.startswith("! bob@host is not a nickname")
    oper(server, alice)
    assert run(server, alice, "/ban * maintenance")[0] == "*** you set a ban on * in #dev"
    assert carol.lines()[-1] == "#dev *** carol was banned by alice (maintenance)"


def test_mute_and_unmute(server: Server) -> None:
    alice, bob, carol = dev(server)
    assert run(server, alice, "/mute bob") == ["*** you muted bob in #dev"]
    assert carol.lines() == ["*** alice muted bob"]
    assert bob.lines() == ["*** alice muted bob"]
    assert run(server, bob, "hello?") == ["! you are muted in #dev"]
    assert run(server, bob, "/me waves") == ["! you are muted in #dev"]
    assert run(server, bob, "//slashed") == ["! you are muted in #dev"]
    assert carol.lines() == []
    bob.send("/msg carol a private line is not the room's")
    server.flush()
    assert carol.lines() == ["[private] bob: a private line is not the room's"]
    assert run(server, alice, "/unmute bob") == ["*** you unmuted bob in #dev"]
    run(server, bob, "thanks")
    assert carol.lines() == ["*** alice unmuted bob", "bob: thanks"]


def test_op_voice_and_who_marks(server: Server) -> None:
    alice, bob, carol = dev(server)
    assert run(server, alice, "/op bob") == ["*** you made bob an operator of #dev"]
    assert carol.lines() == ["*** alice made bob an operator"]
    assert run(server, alice, "/voice carol") == ["*** you gave voice to carol in #dev"]
    carol.clear()
    assert run(server, carol, "/who") == ["*** 3 in the room: @alice, @bob, +carol"]
    bob.clear()
    assert run(server, bob, "/deop alice") == ["*** you took operator status from alice in #dev"]
    alice.clear()
    assert run(server, alice, "/kick bob") == ["! you are not an operator of #dev"]
    [error] = run(server, bob, "/op nobody")
    assert error == "! nobody is not in #dev"


def test_modes_invite_and_key(server: Server) -> None:
    alice, bob, carol = dev(server)
    dora = server.join("dora")
    for client in server.clients:
        client.clear()
    assert run(server, bob, "/mode") == ["*** modes of #dev: +t"]
    assert run(server, alice, "/mode +ik sesame") == ["*** you set mode +i +k sesame on #dev"]
    assert carol.lines() == ["*** alice set mode +i", "*** alice set mode +k sesame"]
    bob.clear()
    assert run(server, bob, "/mode #dev") == ["*** modes of #dev: +itk"]
    assert run(server, alice, "/mode") == ["*** modes of #dev: +itk sesame"]
    assert run(server, dora, "/join #dev sesame") == [
        "! #dev is invite-only: an operator of it can /invite you"]
    assert run(server, alice, "/invite dora") == ["*** you invited dora to #dev"]
    assert dora.lines() == ["*** alice invites you to #dev: /join #dev"]
    assert bob.lines() == []  # an invitation is for the invitee only
    assert run(server, dora, "/join #dev") == ["! #dev needs its key: /join #dev KEY"]
    assert run(server, dora, "/join #dev sesame")[-1].startswith("*** you joined #dev")
    assert alice.lines() == ["*** dora joined"]
    assert run(server, alice, "/mode -i+l") == ["! mode +l needs a number of members"]
    assert run(server, alice, "/mode m") == ["*** you set mode +m on #dev"]
    assert carol.lines() == ["*** dora joined", "*** alice set mode +m"]
    assert run(server, carol, "talk?") == [
        "! #dev is moderated: only its operators and voiced members speak"]
    assert run(server, alice, "/mode +m") == ["*** modes of #dev unchanged"]
    assert run(server, alice, "/mode +z") == [
        "! unknown mode z: the modes are mitkls, and o v b q with a nickname or a mask"]


def test_secret_rooms_are_listed_to_members_only(server: Server) -> None:
    alice, _, _ = dev(server)
    dora = server.join("dora")
    run(server, alice, "/mode +s")
    assert run(server, dora, "/rooms") == ["*** #lobby (4)"]
    assert "#dev" in " ".join(run(server, alice, "/rooms"))


def test_a_secret_rooms_topic_and_members_are_hidden_from_outsiders(server: Server) -> None:
    """As on IRC (442 to TOPIC, empty NAMES and WHO): no topic and no members of a secret
    room to those outside it; its members and server operators still see them."""
    alice, _, _ = dev(server)
    dora = server.join("dora")
    run(server, alice, "/topic #dev plans")
    run(server, alice, "/mode +s")
    assert run(server, dora, "/topic #dev") == ["! no such room: #dev"]
    assert run(server, dora, "/who #dev") == ["! no such room: #dev"]
    assert run(server, alice, "/who #dev") == ["*** 3 in #dev: @alice, bob, carol"]
    oper(server, dora)
    assert run(server, dora, "/topic #dev") == ["*** topic of #dev: plans"]


def test_a_member_banned_from_the_default_room_cannot_sign_in(server: Server) -> None:
    alice = server.join("alice")
    oper(server, alice)
    assert run(server, alice, "/ban #lobby 10.9.8.7") == ["*** you set a ban on 10.9.8.7 in #lobby"]
    eve = server.connect(host="10.9.8.7")
    eve.send("eve")
    server.flush()
    assert eve.lines()[-2:] == ["! you are banned from #lobby", "Choose a nickname:"]
    assert eve.nick is None and server.chat.names.lookup("eve") is None
    assert alice.lines() == []


def test_kill_and_gban(server: Server) -> None:
    alice, bob, carol = dev(server)
    eve = server.join("eve", host="203.0.113.9")
    oper(server, alice)
    for client in server.clients:
        client.clear()
    assert run(server, alice, "/kill bob bye now") == [
        "*** you disconnected bob", "#lobby *** bob left", "*** bob left"]
    assert bob.lines()[-1] == "! you were disconnected by alice: bye now"
    assert bob.closing
    assert carol.lines() == ["#lobby *** bob left", "*** bob left"]
    assert run(server, alice, "/gban 203.0.113.0/24 2h abuse") == [
        "*** 203.0.113.0/24 is banned from the server for 2h", "#lobby *** eve left"]
    assert eve.lines()[-1] == "! you are banned from this server" and eve.closing
    late = server.connect(host="203.0.113.77")
    assert late.lines() == ["! you are banned from this server"] and late.closing
    [title, ban] = run(server, alice, "/gbans")
    assert title == "*** 1 server ban:"
    assert ban.startswith("*** 203.0.113.0/24 (by alice, ") and ban.endswith(": abuse")
    assert run(server, alice, "/ungban 203.0.113.0/24") == [
        "*** 203.0.113.0/24 is no longer banned from the server"]
    assert server.connect(host="203.0.113.77").lines() == ["Choose a nickname:"]


def test_moderation_commands_take_a_room_first(server: Server) -> None:
    alice, _bob, _carol = dev(server)
    alice.send("/join #lobby")
    server.flush()
    alice.clear()
    assert run(server, alice, "/kick #dev bob") == ["#dev *** bob was kicked by alice"]
    assert run(server, alice, "/mode #dev +m") == ["*** you set mode +m on #dev"]
    assert run(server, alice, "/kick carol") == ["! you are not an operator of #lobby"]


def test_a_member_who_may_not_speak_parts_without_words(server: Server) -> None:
    """A part's message is words to the room: a muted member's (or a voiceless one's in
    a moderated room) are not passed on; the part itself is."""
    alice, bob, carol = dev(server)
    run(server, alice, "/mute bob")
    alice.clear()
    run(server, bob, "/part #dev buy cheap pills at spam.example")
    assert alice.lines() == ["*** bob left"]
    run(server, alice, "/mode +m")
    alice.clear()
    run(server, carol, "/part #dev more spam")
    assert alice.lines() == ["*** carol left"]
    bob.send("/join #dev")
    server.flush()
    run(server, alice, "/unmute bob")
    run(server, alice, "/voice bob")
    alice.clear()
    run(server, bob, "/part #dev goodbye")
    assert alice.lines() == ["*** bob left (goodbye)"]


def test_a_member_who_may_not_speak_sets_no_topic(server: Server) -> None:
    """In a room without +t a topic is anyone's words to the room: not a muted member's,
    nor a voiceless one's in +m."""
    alice, bob, carol = dev(server)
    run(server, alice, "/mode -t")
    run(server, alice, "/mute bob")
    for client in (alice, bob, carol):
        client.clear()
    assert run(server, bob, "/topic #dev spam.example") == ["! you are muted in #dev"]
    run(server, alice, "/mode +m")
    alice.clear()
    carol.clear()
    assert run(server, carol, "/topic #dev spam") == [
        "! #dev is moderated: only its operators and voiced members speak"]
    assert alice.lines() == []
