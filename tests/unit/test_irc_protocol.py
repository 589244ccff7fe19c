"""The IRC front end on StringTransport and a Clock: registration, every command, the
numerics, and one chat shared with the line front end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatroom.lines.outbox import Outbox
from tests.unit.irchelpers import SERVER, Both, both


@pytest.fixture
def server() -> Iterator[Both]:
    with both() as s:
        yield s


def test_registration_welcomes_and_joins_the_default_room(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc_connect()
    alice.send("NICK alice", "USER al 0 * :Alice Liddell")
    server.flush()
    lines = alice.lines()
    assert lines[0] == (
        f":{SERVER} 001 alice :Welcome to the chatroom IRC network, alice!alice@chatroom")
    assert [line.split(" ")[1] for line in lines[:4]] == ["001", "002", "003", "004"]
    isupport = " ".join(line for line in lines if " 005 " in line)
    for token in ("CASEMAPPING=ascii", "UTF8MAPPING=rfc8265", "CHANTYPES=#", "NICKLEN=32",
                  "CHANNELLEN=33", "PREFIX=(ov)@+", "CHANMODES=bq,k,l,imnst", "TARGMAX=",
                  "UTF8ONLY"):
        assert token in isupport
    assert any(" 376 alice " in line for line in lines)  # end of MOTD
    joined = lines.index(":alice!alice@chatroom JOIN #lobby")
    assert lines[joined + 1] == f":{SERVER} 353 alice = #lobby :bob alice"
    assert lines[joined + 2] == f":{SERVER} 366 alice #lobby :End of /NAMES list"
    assert bob.lines() == ["*** alice joined"]


def test_cap_negotiation_holds_registration_until_cap_end(server: Both) -> None:
    alice = server.irc_connect()
    alice.send("CAP LS 302", "NICK alice", "USER al 0 * :A")
    lines = alice.lines()
    assert lines[0].startswith(f":{SERVER} CAP * LS :")
    assert "server-time" in lines[0] and "echo-message" in lines[0]
    assert alice.protocol.member is None
    alice.send("CAP REQ :server-time echo-message", "CAP REQ :bogus")
    assert alice.lines() == [f":{SERVER} CAP alice ACK :server-time echo-message",
                             f":{SERVER} CAP alice NAK :bogus"]
    alice.send("CAP LIST")
    assert "echo-message server-time" in alice.lines()[0]
    alice.send("CAP END")
    assert alice.protocol.member is not None
    assert " 001 " in alice.lines()[0]


def test_nickname_rules_are_the_chats(server: Both) -> None:
    server.join("bob")
    alice = server.irc_connect()
    alice.send("NICK")
    assert alice.lines() == [f":{SERVER} 431 * :No nickname given"]
    alice.send("NICK bad|nick")
    assert alice.lines()[0].startswith(f":{SERVER} 432 * bad|nick :Erroneous nickname")
    alice.send("NICK BOB")  # taken by a telnet user, whatever the case
    assert alice.lines() == [f":{SERVER} 433 * BOB :Nickname is already in use"]
    alice.send("NICK \u0412\u043eb")  # Cyrillic look-alike: the same nickname
    assert " 433 " in alice.lines()[0]
    alice.send("NICK alice", "USER a 0 * :A")
    assert alice.protocol.member is not None


def test_commands_before_registration_get_451(server: Both) -> None:
    alice = server.irc_connect()
    alice.send("JOIN #dev", "PRIVMSG #lobby :hi")
    assert alice.commands() == ["451", "451"]
    alice.send("PING :x")
    assert alice.lines() == [f":{SERVER} PONG {SERVER} :x"]


def test_a_claim_lost_in_a_race_gets_433_and_registration_can_go_on(server: Both) -> None:
    alice = server.irc_connect()
    alice.send("NICK alice")
    server.join("alice")  # a telnet user takes it before USER comes
    alice.send("USER a 0 * :A")
    assert alice.lines() == [f":{SERVER} 433 * alice :Nickname is already in use"]
    alice.send("NICK alice2")
    assert alice.protocol.member is not None and alice.protocol.member.nick == "alice2"


def test_irc_and_telnet_users_talk_in_one_room(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    alice.send("PRIVMSG #lobby :hi \x02there\x02 \x0304red")
    server.flush()
    assert bob.lines() == ["alice: hi there red"]
    assert alice.lines() == []  # no echo unless asked
    bob.send("hello irc")
    bob.send("/me waves")
    server.flush()
    assert alice.lines() == [":bob!bob@chatroom PRIVMSG #lobby :hello irc",
                             ":bob!bob@chatroom PRIVMSG #lobby :\x01ACTION waves\x01"]
    alice.send("PRIVMSG #lobby :\x01ACTION nods\x01")
    server.flush()
    assert bob.lines() == ["* alice nods"]
    alice.send("PRIVMSG #lobby :\x01VERSION\x01")  # other CTCP: not relayed
    server.flush()
    assert bob.lines() == []


def test_long_lines_from_telnet_reach_irc_whole_in_several_messages(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    text = " ".join(f"word{i}" for i in range(250))
    bob.send(text)
    server.flush()
    lines = alice.lines()
    assert len(lines) > 1
    assert all(len(line.encode()) + 2 <= 512 for line in lines)
    prefix = ":bob!bob@chatroom PRIVMSG #lobby :"
    assert "".join(line.removeprefix(prefix) for line in lines) == text


def test_private_messages_both_ways(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    alice.send("PRIVMSG bob :psst", "PRIVMSG nobody :x", "PRIVMSG #nowhere :x")
    server.flush()
    assert bob.lines() == ["[private] alice: psst"]
    assert alice.lines() == [f":{SERVER} 401 alice nobody :No such nick/channel",
                             f":{SERVER} 403 alice #nowhere :No such channel"]
    bob.send("/msg alice back")
    server.flush()
    assert alice.lines() == [":bob!bob@chatroom PRIVMSG alice :back"]


def test_invalid_utf8_is_replaced_and_the_sender_warned(server: Both) -> None:
    # UTF8ONLY is advertised: the line is relayed with U+FFFD, and its sender told with
    # WARN <command> INVALID_UTF8 (IRCv3 UTF8ONLY, standard replies; irctest's
    # testUtf8Validation)
    bob = server.join("bob")
    alice = server.irc("alice")
    alice.send(b"PRIVMSG bob :hi\xaa", "PRIVMSG bob :fine")
    server.flush()
    assert bob.lines() == ["[private] alice: hi\ufffd", "[private] alice: fine"]
    assert alice.lines() == [
        f":{SERVER} WARN PRIVMSG INVALID_UTF8 :Invalid UTF-8 was replaced with U+FFFD"]


def test_numeric_errors_for_messages(server: Both) -> None:
    alice = server.irc("alice")
    server.join("carol").send("/join #dev")
    server.flush()
    alice.clear()
    alice.send("PRIVMSG", "PRIVMSG #lobby", "PRIVMSG #dev :x", "FROB", "JOIN", "PART #dev")
    assert alice.lines() == [
        f":{SERVER} 411 alice :No recipient given (PRIVMSG)",
        f":{SERVER} 412 alice :No text to send",
        f":{SERVER} 404 alice #dev :Cannot send to channel",
        f":{SERVER} 421 alice FROB :Unknown command",
        f":{SERVER} 461 alice JOIN :Not enough parameters",
        f":{SERVER} 442 alice #dev :You're not on that channel",
    ]


def test_a_notice_gets_no_error_back(server: Both) -> None:
    # RFC 1459/2812 and Modern IRC: no automatic reply to a NOTICE, errors included
    # (irctest's testNoticeNonexistentChannel)
    alice = server.irc("alice")
    server.join("carol").send("/join #dev")
    server.flush()
    alice.clear()
    alice.send("NOTICE", "NOTICE #lobby", "NOTICE #nowhere :x", "NOTICE #dev :x",
               "NOTICE nobody :x", "PING :done")
    assert alice.lines() == [f":{SERVER} PONG {SERVER} :done"]


def test_join_several_channels_part_and_names(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    alice.send("JOIN #dev,#ops,bad,#bad.name key1,key2")
    server.flush()
    lines = alice.lines()
    assert ":alice!alice@chatroom JOIN #dev" in lines
    assert ":alice!alice@chatroom JOIN #ops" in lines
    assert f":{SERVER} 353 alice = #dev :@alice" in lines  # the creator is its operator
    assert f":{SERVER} 403 alice bad :No such channel" in lines
    assert any(line.startswith(f":{SERVER} 479 alice #bad.name :") for line in lines)
    bob.send("/join #dev")
    server.flush()
    bob.clear()
    assert alice.lines() == [":bob!bob@chatroom JOIN #dev"]
    alice.send("NAMES #dev")
    assert alice.lines() == [f":{SERVER} 353 alice = #dev :@alice bob",
                             f":{SERVER} 366 alice #dev :End of /NAMES list"]
    alice.send("PART #dev :see you")
    server.flush()
    assert alice.lines() == [":alice!alice@chatroom PART #dev :see you"]
    assert bob.lines() == ["*** alice left (see you)"]
    bob.send("/part #dev")
    alice.send("JOIN #dev")
    server.flush()
    alice.clear()
    bob.send("/join #dev")
    bob.send("/part #dev bye")
    server.flush()
    assert alice.lines() == [":bob!bob@chatroom JOIN #dev", ":bob!bob@chatroom PART #dev :bye"]


def test_join_0_parts_every_channel(server: Both) -> None:
    alice = server.irc("alice")
    alice.send("JOIN #dev", "JOIN 0")
    server.flush()
    assert alice.lines()[-2:] == [":alice!alice@chatroom PART #lobby",
                                  ":alice!alice@chatroom PART #dev"]
    assert server.chat.directory.rooms_of(alice.protocol.member.id) == []  # type: ignore[union-attr]


def test_topic_query_set_and_operator_rule(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    alice.send("TOPIC #lobby")
    assert alice.lines() == [f":{SERVER} 331 alice #lobby :No topic is set"]
    alice.send("TOPIC #lobby :release day")
    server.flush()
    assert alice.lines() == [":alice!alice@chatroom TOPIC #lobby :release day"]
    assert bob.lines() == ["*** alice set the topic: release day"]
    alice.send("TOPIC #lobby")
    lines = alice.lines()
    assert lines[0] == f":{SERVER} 332 alice #lobby :release day"
    assert lines[1].startswith(f":{SERVER} 333 alice #lobby alice ")
    bob.send("/join #dev")
    alice.send("JOIN #dev", "TOPIC #dev :mine now")
    server.flush()
    assert f":{SERVER} 482 alice #dev :You're not channel operator" in alice.lines()
    bob.send("/topic #dev from telnet")
    server.flush()
    assert alice.lines() == [":bob!bob@chatroom TOPIC #dev :from telnet"]


def test_who_whois_list_ison_userhost(server: Both) -> None:
    server.join("bob")
    alice = server.irc("alice")
    alice.send("AWAY :lunch")
    alice.clear()
    alice.send("WHO #lobby")
    assert alice.lines() == [
        f":{SERVER} 352 alice #lobby bob chatroom {SERVER} bob H :0 bob",
        f":{SERVER} 352 alice #lobby alice chatroom {SERVER} alice G :0 alice the tester",
        f":{SERVER} 315 alice #lobby :End of /WHO list",
    ]
    alice.send("WHOIS bob", "WHOIS nobody")
    assert alice.lines() == [
        f":{SERVER} 311 alice bob bob chatroom * :bob",
        f":{SERVER} 319 alice bob :#lobby",
        f":{SERVER} 312 alice bob {SERVER} :chatroom",
        f":{SERVER} 318 alice bob :End of /WHOIS list",
        f":{SERVER} 401 alice nobody :No such nick/channel",
        f":{SERVER} 318 alice nobody :End of /WHOIS list",
    ]
    alice.send("JOIN #dev", "TOPIC #dev :the dev room")
    server.flush()
    alice.clear()
    alice.send("LIST")
    assert alice.lines() == [
        f":{SERVER} 321 alice Channel :Users  Name",
        f":{SERVER} 322 alice #lobby 2 :",
        f":{SERVER} 322 alice #dev 1 :the dev room",
        f":{SERVER} 323 alice :End of /LIST",
    ]
    alice.send("ISON bob nobody ALICE", "USERHOST bob alice")
    assert alice.lines() == [f":{SERVER} 303 alice :bob alice",
                             f":{SERVER} 302 alice :bob=+bob@chatroom alice=-alice@chatroom"]


def test_away_is_told_to_whoever_messages_and_away_notify(server: Both) -> None:
    alice = server.irc("alice")
    carol = server.irc("carol", "away-notify")
    alice.send("AWAY :lunch")
    assert alice.lines() == [f":{SERVER} 306 alice :You have been marked as being away"]
    assert carol.lines() == [":alice!alice@chatroom AWAY :lunch"]
    carol.send("PRIVMSG alice :there?")
    server.flush()
    assert carol.lines() == [f":{SERVER} 301 carol alice :lunch"]
    alice.send("AWAY")
    server.flush()
    assert alice.lines()[-1] == f":{SERVER} 305 alice :You are no longer marked as being away"
    assert carol.lines() == [":alice!alice@chatroom AWAY"]


def test_renames_cross_front_ends(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    alice.send("NICK alicia")
    server.flush()
    assert alice.lines() == [":alice!alice@chatroom NICK alicia"]
    assert bob.lines() == ["*** alice is now known as alicia"]
    bob.send("/nick robert")
    server.flush()
    assert alice.lines() == [":bob!bob@chatroom NICK robert"]
    alice.send("NICK robert", "NICK x.y")
    assert alice.commands() == ["433", "432"]


def test_quit_says_error_and_telnet_sees_the_message(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    alice.send("QUIT :gone fishing")
    server.flush()
    lines = alice.lines()
    assert lines[-1].startswith("ERROR :Closing link: 127.0.0.1 (goodbye, alice)")
    assert alice.closing
    alice.finish()
    server.flush()
    assert bob.lines() == ["*** alice left (gone fishing)"]


def test_a_quit_in_several_shared_rooms_is_one_quit_line(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    alice.send("JOIN #dev")
    bob.send("/join #dev")
    server.flush()
    alice.clear()
    bob.lose()
    server.flush()
    assert alice.lines() == [":bob!bob@chatroom QUIT :Quit"]


def test_server_pings_a_silent_client_and_drops_one_that_stays_silent(server: Both) -> None:
    bob = server.join("bob")
    alice = server.irc("alice")
    server.clock.advance(119)
    assert alice.lines() == []
    server.clock.advance(1)
    assert alice.lines() == [f"PING :{SERVER}"]
    alice.send(f"PONG :{SERVER}")
    server.clock.advance(200)
    assert alice.lines() == [f"PING :{SERVER}"]  # the next one, an interval after the reply
    server.clock.advance(120)
    assert alice.lines()[-1] == "ERROR :Closing link: 127.0.0.1 (Ping timeout: 120 seconds)"
    alice.finish()
    server.flush()
    assert bob.lines() == ["*** alice left"]


def test_an_unregistered_client_is_dropped_after_the_nick_timeout() -> None:
    with both(nick_timeout=30.0) as server:
        alice = server.irc_connect()
        alice.send("NICK alice")
        server.clock.advance(30)
        assert alice.lines()[-1].startswith("ERROR :Closing link: 127.0.0.1 (no nickname")
        assert alice.closing


def test_input_too_long_gets_417_and_the_next_line_works(server: Both) -> None:
    alice = server.irc("alice")
    alice.send(b"PRIVMSG #lobby :" + b"x" * 600, b"PING :ok")
    assert alice.lines() == [f":{SERVER} 417 alice :Input line was too long",
                             f":{SERVER} PONG {SERVER} :ok"]
    alice.send(b"PRIVMSG #lobby :" + b"x" * 9000, b"PING :again")
    assert alice.lines() == [f":{SERVER} 417 alice :Input line was too long",
                             f":{SERVER} PONG {SERVER} :again"]


def test_modes_and_moderation_get_numerics(server: Both) -> None:
    server.join("bob").send("/join #dev")
    alice = server.irc("alice")
    alice.send("MODE #lobby", "MODE #lobby b", "MODE #lobby +m", "MODE alice", "MODE alice +i",
               "MODE alice +z", "MODE bob")
    lines = alice.lines()
    assert lines[0] == f":{SERVER} 324 alice #lobby +n"
    assert lines[1].startswith(f":{SERVER} 329 alice #lobby ")
    assert lines[2:] == [
        f":{SERVER} 368 alice #lobby :End of channel ban list",
        f":{SERVER} 482 alice #lobby :You're not channel operator",
        f":{SERVER} 221 alice :+",
        ":alice!alice@chatroom MODE alice :+i",
        f":{SERVER} 501 alice :Unknown MODE flag",
        f":{SERVER} 502 alice :Can't change mode for other users",
    ]
    server.flush()
    alice.send("JOIN #dev", "JOIN #mine")
    server.flush()
    alice.clear()
    alice.send("KICK #dev bob", "KICK #mine bob", "INVITE bob #nope", "KICK #nope bob")
    assert alice.lines() == [
        f":{SERVER} 482 alice #dev :You're not channel operator",
        f":{SERVER} 441 alice bob #mine :They aren't on that channel",
        f":{SERVER} 403 alice #nope :No such channel",
        f":{SERVER} 403 alice #nope :No such channel",
    ]


def test_flood_control_slows_an_irc_client_without_losing_lines() -> None:
    with both(rate=1.0, burst=3) as server:
        bob = server.join("bob")
        alice = server.irc("alice")
        server.clock.advance(10)  # a full bucket again after registration
        alice.send(*[f"PRIVMSG #lobby :{i}" for i in range(6)])
        server.flush()
        assert bob.lines() == ["alice: 0", "alice: 1", "alice: 2"]
        assert alice.transport.producerState == "paused"
        server.clock.advance(3)
        server.flush()
        assert bob.lines() == ["alice: 3", "alice: 4", "alice: 5"]


def test_a_slow_irc_reader_is_dropped_and_announced() -> None:
    with both(max_out=4096) as server:
        bob = server.join("bob")
        alice = server.irc("alice")
        outbox = alice.protocol.outbox
        assert isinstance(outbox, Outbox)  # StringTransport: no socket of its own
        outbox.pauseProducing()  # the socket's buffer is full: alice stopped reading
        for i in range(50):
            bob.send(f"line {i} " + "x" * 100)
            server.flush()
        assert not alice.transport.disconnected
        server.clock.advance(1.0)  # over the cap for a second: slow
        assert alice.transport.disconnected
        alice.lose()
        server.flush()
        assert "*** alice left" in bob.lines()


def test_shutdown_says_error_to_every_irc_client(server: Both) -> None:
    alice = server.irc("alice")
    unregistered = server.irc_connect()
    server.irc_factory.shutdown()
    assert alice.lines()[-1] == "ERROR :Closing link: server shutting down"
    assert unregistered.lines() == ["ERROR :Closing link: server shutting down"]
    assert alice.closing and unregistered.closing


def test_idle_timeout_counts_messages_not_keepalives() -> None:
    with both(idle_timeout=300.0) as server:
        alice = server.irc("alice")
        server.clock.advance(10)
        alice.send("PRIVMSG #lobby :hi")
        for _ in range(3):
            server.clock.advance(95)
            alice.send("PING :still here")  # at 105, 200, 295
        server.clock.advance(14)
        assert not alice.closing
        server.clock.advance(1)  # 300 s after the message
        server.flush()
        assert alice.closing
        assert alice.lines()[-1].startswith("ERROR :Closing link: 127.0.0.1 (idle for 300")


def test_lusers_counts_local_and_global_users_with_their_maxima(server: Both) -> None:
    server.join("bob")
    alice = server.irc("alice")
    carol = server.irc("carol")
    carol.protocol.connectionLost()
    server.flush()
    alice.clear()
    alice.send("LUSERS")
    server.flush()
    lines = alice.lines()
    assert f":{SERVER} 265 alice 1 2 :Current local users 1, max 2" in lines
    assert f":{SERVER} 266 alice 2 2 :Current global users 2, max 2" in lines
