"""IRC's moderation on StringTransport and a Clock: KICK, INVITE, channel MODE (roles, bans,
mutes, modes), what JOIN and PRIVMSG meet, OPER, KILL and GBAN; next to line members."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from chatroom.domain import masks
from chatroom.domain.errors import BadMask
from tests.unit.helpers import Client
from tests.unit.irchelpers import SERVER, Both, IRCClient, with_accounts


@pytest.fixture
def server() -> Iterator[Both]:
    with with_accounts() as s:
        yield s


def dev(server: Both) -> tuple[IRCClient, Client, IRCClient]:
    """alice (IRC) made #dev and runs it; bob (line) and carol (IRC) are in it too."""
    alice = server.irc("alice", "multi-prefix")
    bob = server.join("bob")
    carol = server.irc("carol", "multi-prefix")
    alice.send("JOIN #dev")
    server.flush()
    bob.send("/join #dev")
    server.flush()
    carol.send("JOIN #dev")
    server.flush()
    for client in (alice, bob, carol):
        client.clear()
    return alice, bob, carol


def run(server: Both, client: IRCClient | Client, *lines: str) -> list[str]:
    if isinstance(client, IRCClient):
        client.send(*lines)
    else:
        for line in lines:
            client.send(line)
    server.flush()
    server.flush()  # what moderation does next turn (a ban's removals)
    return client.lines()


def untagged(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] if line.startswith("@") else line for line in lines]


# -- KICK and INVITE ----------------------------------------------------------------------


def test_kick_reaches_irc_and_line_members_and_is_refused_to_others(server: Both) -> None:
    alice, bob, carol = dev(server)
    assert run(server, alice, "KICK #dev bob,carol :too loud") == [
        ":alice!alice@chatroom KICK #dev bob :too loud",
        ":alice!alice@chatroom KICK #dev carol :too loud",
    ]
    assert bob.lines() == ["#dev *** bob was kicked by alice (too loud)"]
    assert carol.lines() == [":alice!alice@chatroom KICK #dev bob :too loud",
                             ":alice!alice@chatroom KICK #dev carol :too loud"]
    carol.send("JOIN #dev")  # not banned: may come back
    server.flush()
    assert carol.lines()[0] == ":carol!carol@chatroom JOIN #dev"
    alice.clear()
    assert run(server, carol, "KICK #dev alice", "KICK #dev nobody", "KICK #lobby x",
               "KICK #dev", "KICK #nope bob") == [
        f":{SERVER} 482 carol #dev :You're not channel operator",
        f":{SERVER} 482 carol #dev :You're not channel operator",
        f":{SERVER} 482 carol #lobby :You're not channel operator",
        f":{SERVER} 461 carol KICK :Not enough parameters",
        f":{SERVER} 403 carol #nope :No such channel",
    ]
    assert run(server, alice, "KICK #dev nobody", "KICK #lobby bob") == [
        f":{SERVER} 441 alice nobody #dev :They aren't on that channel",
        f":{SERVER} 482 alice #lobby :You're not channel operator",
    ]
    alice.send("PART #dev")
    server.flush()
    alice.clear()
    assert run(server, alice, "KICK #dev carol") == [
        f":{SERVER} 442 alice #dev :You're not on that channel"]


def test_invite_lets_into_an_invite_only_channel(server: Both) -> None:
    alice, bob, carol = dev(server)
    alice.send("JOIN #ops", "MODE #ops +i")
    server.flush()
    alice.clear()
    carol.send("JOIN #ops")
    assert carol.lines() == [f":{SERVER} 473 carol #ops :Cannot join channel (+i)"]
    assert run(server, alice, "INVITE carol #ops", "INVITE bob #ops", "INVITE alice #ops",
               "INVITE nobody #ops", "INVITE carol #nope", "INVITE carol") == [
        f":{SERVER} 341 alice carol #ops",
        f":{SERVER} 341 alice bob #ops",
        f":{SERVER} 443 alice alice #ops :is already on channel",
        f":{SERVER} 401 alice nobody :No such nick/channel",
        f":{SERVER} 403 alice #nope :No such channel",
        f":{SERVER} 461 alice INVITE :Not enough parameters",
    ]
    assert untagged(carol.lines()) == [":alice!alice@chatroom INVITE carol #ops"]
    assert "#ops" in " ".join(bob.lines())
    carol.send("JOIN #ops")
    server.flush()
    assert carol.lines()[0] == ":carol!carol@chatroom JOIN #ops"
    assert run(server, carol, "INVITE bob #ops") == [
        f":{SERVER} 482 carol #ops :You're not channel operator"]
    assert run(server, carol, "INVITE bob #dev") == [
        f":{SERVER} 443 carol bob #dev :is already on channel"]


# -- MODE ---------------------------------------------------------------------------------


def test_roles_several_in_one_line_and_the_prefixes_they_give(server: Both) -> None:
    alice, bob, carol = dev(server)
    assert run(server, alice, "MODE #dev +ov-t bob carol") == [
        ":alice!alice@chatroom MODE #dev +ov-t bob carol"]
    assert untagged(carol.lines()) == [
        ":alice!alice@chatroom MODE #dev +o bob",
        ":alice!alice@chatroom MODE #dev +v carol",
        ":alice!alice@chatroom MODE #dev -t",
    ]
    assert bob.lines()  # the line front end tells it its way
    assert run(server, alice, "MODE #dev +o bob") == []  # so already: nothing
    alice.send("MODE #dev +v bob")
    server.flush()
    alice.clear()
    assert run(server, alice, "NAMES #dev") == [
        f":{SERVER} 353 alice = #dev :@alice @+bob +carol",
        f":{SERVER} 366 alice #dev :End of /NAMES list"]
    dan = server.irc("dan")  # no multi-prefix: the highest only
    dan.send("JOIN #dev")
    server.flush()
    assert f":{SERVER} 353 dan = #dev :@alice @bob +carol dan" in dan.lines()
    alice.clear()
    carol.clear()
    who = run(server, alice, "WHO #dev")
    assert [line.split(" ")[8] for line in who[:-1]] == ["H@", "H@+", "H+", "H"], who
    whois = run(server, alice, "WHOIS bob")
    assert f":{SERVER} 319 alice bob :@+bob" not in whois
    assert any(line.endswith(":#lobby @+#dev") for line in whois)
    assert run(server, carol, "MODE #dev +o carol") == [
        f":{SERVER} 482 carol #dev :You're not channel operator"]
    assert run(server, alice, "MODE #dev +o nobody", "MODE #dev +z", "MODE #dev +o",
               "MODE #dev +o :", "KICK #dev ,", "INVITE : #dev") == [
        f":{SERVER} 441 alice nobody #dev :They aren't on that channel",
        f":{SERVER} 472 alice z :is unknown mode char to me",
        f":{SERVER} 461 alice MODE :Not enough parameters",
        f":{SERVER} 441 alice * #dev :They aren't on that channel",
        f":{SERVER} 461 alice KICK :Not enough parameters",
        f":{SERVER} 461 alice INVITE :Not enough parameters",
    ]


def test_moderated_and_muted_members_get_404(server: Both) -> None:
    alice, bob, carol = dev(server)
    run(server, alice, "MODE #dev +m")
    assert untagged(carol.lines()) == [":alice!alice@chatroom MODE #dev +m"]
    assert run(server, carol, "PRIVMSG #dev :hello?") == [
        f":{SERVER} 404 carol #dev :Cannot send to channel (+m)"]
    assert bob.lines() == ["*** alice set mode +m"]
    run(server, alice, "MODE #dev -m+q carol")
    carol.clear()
    assert run(server, carol, "PRIVMSG #dev :hello?") == [
        f":{SERVER} 404 carol #dev :Cannot send to channel (you are muted)"]
    assert run(server, alice, "MODE #dev q") == [
        f":{SERVER} 728 alice #dev q carol!*@* alice {int(server.clock.seconds())}",
        f":{SERVER} 729 alice #dev q :End of channel quiet list"]
    assert run(server, alice, "MODE #dev -q carol!*@*") == [
        ":alice!alice@chatroom MODE #dev -q carol!*@*"]
    carol.send("PRIVMSG #dev :free")
    server.flush()
    assert bob.lines()[-1:] == ["carol: free"]


def test_one_mode_line_makes_at_most_a_dozen_changes(server: Both) -> None:
    """The review's amplification, over IRC: flags need no parameter, so one line of
    ``+m-m+m-m...`` was hundreds of changes, each broadcast to every front end."""
    from chatroom.domain.moderation import MAX_MODE_CHANGES

    alice, bob, carol = dev(server)
    carol.clear()
    bob.clear()
    run(server, alice, "MODE #dev " + "+m-m" * 100)
    assert len(untagged(carol.lines())) == MAX_MODE_CHANGES
    assert len(bob.lines()) == MAX_MODE_CHANGES


def test_key_limit_invite_only_and_secret_hold_at_join(server: Both) -> None:
    alice, _bob, carol = dev(server)
    dan = server.irc("dan")
    assert run(server, alice, "MODE #dev +kl sesame 3") == [
        ":alice!alice@chatroom MODE #dev +kl sesame 3"]
    carol.clear()
    assert run(server, alice, "MODE #dev")[0] == f":{SERVER} 324 alice #dev +klnt sesame 3"
    assert run(server, carol, "MODE #dev")[0] == f":{SERVER} 324 carol #dev +klnt 3"
    dan.send("JOIN #dev")
    assert dan.lines() == [f":{SERVER} 475 dan #dev :Cannot join channel (+k)"]
    dan.send("JOIN #x,#dev y,wrong")
    server.flush()
    assert f":{SERVER} 475 dan #dev :Cannot join channel (+k)" in dan.lines()
    dan.send("JOIN #dev sesame")
    assert dan.lines() == [f":{SERVER} 471 dan #dev :Cannot join channel (+l)"]
    run(server, alice, "MODE #dev -l+s", "MODE #dev -k *")
    assert untagged(carol.lines()) == [":alice!alice@chatroom MODE #dev -l",
                                       ":alice!alice@chatroom MODE #dev +s",
                                       ":alice!alice@chatroom MODE #dev -k *"]
    assert run(server, dan, "LIST") and "#dev" not in " ".join(dan.lines())
    dan.send("JOIN #dev")
    server.flush()
    assert dan.lines()[0] == ":dan!dan@chatroom JOIN #dev"
    alice.clear()
    assert run(server, alice, "MODE #dev +l x", "MODE #dev -n", "MODE #dev +n") == [
        f":{SERVER} 696 alice #dev l x :+l needs a number of members from 1 to 100000",
        f":{SERVER} 472 alice n :is always set here: only a channel's members talk in it",
    ]


def test_bans_by_irc_mask_remove_keep_out_and_are_listed(server: Both) -> None:
    alice, bob, carol = dev(server)
    assert run(server, alice, "MODE #dev +b bob!*@*") == [
        ":alice!alice@chatroom MODE #dev +b bob!*@*",
        ":alice!alice@chatroom KICK #dev bob :alice",
    ]
    assert untagged(carol.lines()) == [":alice!alice@chatroom MODE #dev +b bob!*@*",
                                       ":alice!alice@chatroom KICK #dev bob :alice"]
    assert bob.lines()[-1] == "#dev *** bob was banned by alice"
    bob.send("/join #dev")
    assert bob.lines() == ["! you are banned from #dev"]
    now = int(server.clock.seconds())
    assert run(server, carol, "MODE #dev b", "MODE #dev +b") == [
        f":{SERVER} 367 carol #dev bob!*@* alice {now}",
        f":{SERVER} 368 carol #dev :End of channel ban list",
        f":{SERVER} 367 carol #dev bob!*@* alice {now}",
        f":{SERVER} 368 carol #dev :End of channel ban list",
    ]
    assert run(server, alice, "MODE #dev -b *!bob@chatroom") == [
        ":alice!alice@chatroom MODE #dev -b bob!*@*"]
    assert run(server, alice, "MODE #dev +b *!*@*", "MODE #dev +b b*!*@*",
               "MODE #dev +b alice") == [
        f":{SERVER} 696 alice #dev b *!*@* :* names everyone or too wide a network: only a "
        "server operator may ban it",
        f":{SERVER} 696 alice #dev b b*!*@* :b*!*@*: wildcards in nicknames are not "
        "supported here; ban a nickname, ~a:ACCOUNT, an address or a network",
        f":{SERVER} 696 alice #dev b alice :alice names you: you would ban yourself",
    ]


def test_an_address_ban_names_irc_members_by_their_address(server: Both) -> None:
    alice, _bob, _carol = dev(server)
    eve = server.irc_connect("203.0.113.9")
    eve.send("NICK eve", "USER eve 0 * :Eve", "JOIN #dev")
    server.flush()
    eve.clear()
    alice.clear()
    assert run(server, alice, "MODE #dev +b *!*@203.0.113.*") == [
        ":alice!alice@chatroom MODE #dev +b *!*@203.0.113.0/24",
        ":alice!alice@chatroom KICK #dev eve :alice",
    ]
    eve.send("JOIN #dev")
    assert f":{SERVER} 474 eve #dev :Cannot join channel (+b)" in eve.lines()


def test_mode_changes_from_the_line_front_end_reach_irc_as_mode(server: Both) -> None:
    _, bob, carol = dev(server)
    server.irc_clients[0].send("MODE #dev +o bob")
    server.flush()
    carol.clear()
    for line in ("/mode #dev +m", "/voice #dev carol", "/ban #dev 198.51.100.0/24"):
        bob.send(line)
    server.flush()
    assert untagged(carol.lines()) == [
        ":bob!bob@chatroom MODE #dev +m",
        ":bob!bob@chatroom MODE #dev +v carol",
        ":bob!bob@chatroom MODE #dev +b *!*@198.51.100.0/24",
    ]


def test_the_mask_mapping() -> None:
    from chatroom.irc.channelmodes import irc_form, irc_mask

    cases = {
        "bob": "bob!*@*", "bob!*@*": "bob!*@*", "*!bob@*": "bob!*@*",
        "*!~bob@chatroom": "bob!*@*", "bob!bob@chatroom": "bob!*@*", "~a:Bob": "~a:Bob",
        "$a:bob": "~a:bob", "*!*@203.0.113.7": "*!*@203.0.113.7",
        "*!*@10.1.*.*": "*!*@10.1.0.0/16", "*!*@2001:db8::/32": "*!*@2001:db8::/32",
        "198.51.100.0/24": "*!*@198.51.100.0/24", "*!*@*": "*!*@*", "*": "*!*@*",
    }
    for raw, shown in cases.items():
        assert irc_form(irc_mask(raw)) == shown, raw
    for bad in ("bo*", "bob!*@example.com", "bob!*@10.0.0.1", "bob!carol@*", "*!*@10.*.1.*"):
        with pytest.raises(BadMask):
            irc_mask(bad)
    assert irc_mask("bob!*@*") == masks.parse("bob")


def test_isupport_says_what_modes_there_are(server: Both) -> None:
    alice = server.irc_connect()
    alice.send("NICK alice", "USER a 0 * :A")
    lines = alice.lines()
    tokens = " ".join(line for line in lines if " 005 " in line).split()
    for token in ("CHANMODES=bq,k,l,imnst", "PREFIX=(ov)@+", "EXTBAN=~,a", "MAXLIST=bq:100",
                  "MODES=6", "KICKLEN=390"):
        assert token in tokens
    assert f":{SERVER} 004 alice {SERVER} chatroom-0.1 io biklmnoqstv bkloqv" in lines


# -- server operators -----------------------------------------------------------------------


def with_operator(server: Both) -> None:
    accounts = server.services.accounts
    assert accounts is not None
    accounts.operators["Root"] = PasswordHasher(time_cost=1, memory_cost=64,
                                                parallelism=1).hash("s3cret")


def test_oper_right_wrong_slowed_and_none_configured(server: Both) -> None:
    alice, bob, _ = dev(server)
    assert run(server, alice, "OPER root s3cret") == [
        f":{SERVER} 491 alice :No O-lines for your host"]
    with_operator(server)
    assert run(server, alice, "OPER root wrong") == [f":{SERVER} 464 alice :Password incorrect"]
    alice.send("OPER root s3cret")  # the next guess waits a second
    server.flush()
    assert alice.lines() == []
    server.clock.advance(1.0)
    assert alice.lines() == [f":{SERVER} 381 alice :You are now an IRC operator",
                             ":alice!alice@chatroom MODE alice :+o"]
    assert run(server, alice, "MODE alice") == [f":{SERVER} 221 alice :+o"]
    who = run(server, alice, "WHO #dev")
    assert [line.split(" ")[8] for line in who[:-1]] == ["H*@", "H", "H"]
    carol = server.irc_clients[1]
    carol.send("OPER root s3cret")  # no longer slowed: the right guess forgot the name
    server.flush()
    carol.clear()
    carol.send("TOPIC #dev :opers run every room")
    server.flush()
    assert carol.lines() == [":carol!carol@chatroom TOPIC #dev :opers run every room"]
    assert f":{SERVER} 313 x alice :is an IRC operator" in run(server, server.irc("x"),
                                                                 "WHOIS alice")
    assert "s3cret" not in repr(server.log)
    assert run(server, alice, "OPER") == [f":{SERVER} 461 alice OPER :Not enough parameters"]
    assert bob.lines() == []


def test_kill_and_gban_are_for_server_operators(server: Both) -> None:
    alice, bob, carol = dev(server)
    assert run(server, carol, "KILL bob :bye", "GBAN 10.0.0.0/8", "GBANS") == [
        f":{SERVER} 481 carol :Permission Denied- You're not an IRC operator"] * 3
    with_operator(server)
    run(server, alice, "OPER root s3cret")
    assert run(server, alice, "KILL nobody", "KILL") == [
        f":{SERVER} 401 alice nobody :No such nick/channel",
        f":{SERVER} 461 alice KILL :Not enough parameters"]
    run(server, alice, "KILL bob :go away")
    assert bob.lines()[-1] == "! you were disconnected by alice: go away"
    assert untagged(carol.lines()) == [":bob!bob@chatroom QUIT :Quit"]
    run(server, alice, "KILL carol :you too")
    assert carol.lines()[-1].startswith("ERROR :Closing link: 127.0.0.1 (you were "
                                        "disconnected by alice: you too)")
    assert run(server, alice, "GBAN *!*@192.0.2.0/24 1h :spam wave", "GBANS") [:2] == [
        f":{SERVER} NOTICE alice :192.0.2.0/24 is banned from the server for 1h",
        f":{SERVER} NOTICE alice :1 server ban:",
    ]
    assert run(server, alice, "UNGBAN 192.0.2.0/24") == [
        f":{SERVER} NOTICE alice :192.0.2.0/24 is no longer banned from the server"]


def test_the_cap_on_mode_changes_is_the_servers_option(server: Both) -> None:
    from dataclasses import replace

    moderation = server.services.moderation
    assert moderation is not None
    moderation.rules = replace(moderation.rules, max_mode_changes=3)
    alice, bob, _carol = dev(server)
    run(server, alice, "MODE #dev +o bob")
    bob.clear()
    run(server, alice, "MODE #dev " + "+m-m" * 10)
    assert len(bob.lines()) == 3
    bob.send("/mode #dev +m-m+m-m")
    server.flush()
    assert bob.lines()[-1] == "! a /mode makes at most 3 changes (got 4)"


def test_an_operator_who_kicks_itself_gets_its_kick_once(server: Both) -> None:
    """The KICK of oneself comes through the room; it is not sent again as to an outsider."""
    alice, bob, carol = dev(server)
    assert run(server, alice, "KICK #dev alice :bye") == [
        ":alice!alice@chatroom KICK #dev alice :bye",
    ]
    assert carol.lines() == [":alice!alice@chatroom KICK #dev alice :bye"]
    assert bob.lines() == ["*** alice was kicked by alice (bye)"]


def test_an_irc_client_banned_from_the_default_room_is_told_why(server: Both) -> None:
    """Not only 433 (which sends a client on to its next nickname, banned as before)."""
    alice = server.irc("alice")
    member = alice.protocol.session.member
    assert member is not None
    moderation = server.services.moderation
    assert moderation is not None
    moderation.make_server_operator(member, "root")
    moderation.ban(member, "#lobby", "10.9.8.7")
    server.flush()
    eve = server.irc_connect(host="10.9.8.7")
    eve.send("NICK eve", "USER eve 0 * :eve")
    server.flush()
    assert eve.lines() == [f":{SERVER} NOTICE eve :you are banned from #lobby",
                           f":{SERVER} 433 * eve :Nickname is already in use"]


def test_a_muted_irc_member_sets_no_topic(server: Both) -> None:
    alice, bob, carol = dev(server)
    run(server, alice, "MODE #dev -t+q carol")
    bob.clear()
    carol.clear()
    assert run(server, carol, "TOPIC #dev :spam") == [
        f":{SERVER} 404 carol #dev :Cannot send to channel (you are muted)"]
    assert bob.lines() == []


def test_a_muted_members_quit_message_reaches_only_rooms_where_it_may_speak(
    server: Both,
) -> None:
    """A QUIT's message is words to each room the member was in: not to one that muted
    it (the quit itself is announced everywhere)."""
    alice, bob, carol = dev(server)
    run(server, carol, "JOIN #other")
    run(server, bob, "/join #other")
    run(server, alice, "MODE #dev +q carol")
    bob.clear()
    run(server, carol, "QUIT :buy cheap pills at spam.example")
    assert sorted(bob.lines()) == sorted([
        "#dev *** carol left",
        "#lobby *** carol left (buy cheap pills at spam.example)",
        "*** carol left (buy cheap pills at spam.example)",
    ])
