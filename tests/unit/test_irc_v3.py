"""IRCv3 on the IRC front end (StringTransport, Clock): server-time, message-tags,
echo-message, batch, labeled-response, multi-prefix, userhost-in-names, cap-notify, and
CHATHISTORY from the history store."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from chatroom.irc.render import parse_msgid, server_time
from tests.unit.irchelpers import SERVER, Both, both

TAGS = re.compile(r"^@(\S+) ")


def tags_of(line: str) -> dict[str, str]:
    match = TAGS.match(line)
    if match is None:
        return {}
    return dict(item.partition("=")[::2] for item in match.group(1).split(";"))


@pytest.fixture
def server() -> Iterator[Both]:
    with both(history=True) as s:
        s.clock.advance(1_795_500_000)
        yield s


def test_each_reader_gets_the_tags_it_asked_for(server: Both) -> None:
    bob = server.join("bob")
    plain = server.irc("plain")
    timed = server.irc("timed", "server-time")
    tagged = server.irc("tagged", "message-tags")
    both_tags = server.irc("all", "server-time", "message-tags")
    bob.send("hello")
    server.flush()
    assert plain.lines() == [":bob!bob@chatroom PRIVMSG #lobby :hello"]
    assert timed.lines() == [f"@time={server_time(server.clock.seconds())} "
                             ":bob!bob@chatroom PRIVMSG #lobby :hello"]
    (line,) = tagged.lines()
    assert set(tags_of(line)) == {"msgid"}
    (line,) = both_tags.lines()
    assert set(tags_of(line)) == {"time", "msgid"}
    parsed = parse_msgid(tags_of(line)["msgid"])
    assert parsed is not None and parsed[1] == server.clock.seconds()


def test_echo_message_gives_the_sender_its_own_line_as_others_got_it(server: Both) -> None:
    alice = server.irc("alice", "echo-message", "message-tags")
    carol = server.irc("carol", "message-tags")
    alice.send("PRIVMSG #lobby :hi", "NOTICE #lobby :note", "PRIVMSG carol :psst")
    server.flush()
    mine = alice.lines()
    theirs = carol.lines()
    assert [line.split(" ", 1)[1] for line in mine] == [
        ":alice!alice@chatroom PRIVMSG #lobby :hi",
        ":alice!alice@chatroom NOTICE #lobby :note",
        ":alice!alice@chatroom PRIVMSG carol :psst",
    ]
    assert tags_of(mine[0])["msgid"] == tags_of(theirs[0])["msgid"]
    assert tags_of(mine[2])["msgid"] == tags_of(theirs[2])["msgid"]


def test_labeled_response_one_line_none_and_several(server: Both) -> None:
    alice = server.irc("alice", "labeled-response", "batch", "echo-message")
    alice.send("@label=a1 PING :x")
    assert alice.lines() == [f"@label=a1 :{SERVER} PONG {SERVER} :x"]
    alice.send("@label=a2 PONG :x")
    assert alice.lines() == [f"@label=a2 :{SERVER} ACK"]
    alice.send("@label=a3 PRIVMSG #lobby :hi")
    server.flush()
    assert alice.lines() == ["@label=a3 :alice!alice@chatroom PRIVMSG #lobby :hi"]
    alice.send("@label=a4 WHOIS alice")
    server.flush()
    lines = alice.lines()
    start = re.fullmatch(rf"@label=a4 :{SERVER} BATCH \+(\S+) labeled-response", lines[0])
    assert start is not None
    ref = start.group(1)
    assert all(line.startswith(f"@batch={ref} :{SERVER} 3") for line in lines[1:-1])
    assert lines[-1] == f":{SERVER} BATCH -{ref}"


def test_a_message_to_oneself_comes_as_delivered_and_as_the_labeled_echo(server: Both) -> None:
    # labeled-response's own example: with echo-message, a PRIVMSG to oneself arrives
    # twice, once as any recipient gets it and once as the echo, which carries the label
    # (irctest's testLabeledPrivmsgResponsesToSelf)
    alice = server.irc("alice", "labeled-response", "batch", "echo-message")
    alice.send("@label=s1 PRIVMSG alice :hi")
    server.flush()
    assert sorted(alice.lines()) == [
        ":alice!alice@chatroom PRIVMSG alice :hi",
        "@label=s1 :alice!alice@chatroom PRIVMSG alice :hi",
    ]
    plain = server.irc("plain")
    plain.send("PRIVMSG plain :hi")  # without echo-message: once
    server.flush()
    assert plain.lines() == [":plain!plain@chatroom PRIVMSG plain :hi"]


def test_multi_prefix_userhost_in_names_and_cap_notify(server: Both) -> None:
    alice = server.irc("alice", "multi-prefix", "userhost-in-names")
    alice.send("JOIN #dev", "NAMES #dev", "CAP LIST")
    server.flush()
    lines = alice.lines()
    assert f":{SERVER} 353 alice = #dev :@alice!alice@chatroom" in lines
    assert "cap-notify" in lines[-1]  # implied by CAP LS 302


def test_joining_replays_history_in_a_batch_with_times(server: Both) -> None:
    bob = server.join("bob")
    bob.send("/join #dev")
    bob.send("first")
    server.clock.advance(5)
    bob.send("/me second")
    server.flush()
    alice = server.irc("alice", "server-time", "batch")
    alice.send("JOIN #dev")
    server.flush()
    lines = alice.lines()
    start = next(i for i, line in enumerate(lines) if " BATCH +" in line)
    assert lines[start].endswith(" chathistory #dev")
    ref = lines[start].split("+")[1].split(" ")[0]
    assert lines[start + 1] == (f"@batch={ref};time={server_time(server.clock.seconds() - 5)} "
                                ":bob!bob@chatroom PRIVMSG #dev :first")
    assert lines[start + 2].endswith(":bob!bob@chatroom PRIVMSG #dev :\x01ACTION second\x01")
    assert lines[start + 3] == f":{SERVER} BATCH -{ref}"


def test_without_server_time_the_replay_is_notices_saying_so(server: Both) -> None:
    bob = server.join("bob")
    bob.send_lines(["/join #dev", "earlier"])
    server.flush()
    alice = server.irc("alice")
    alice.send("JOIN #dev")
    server.flush()
    notices = [line for line in alice.lines() if " NOTICE #dev " in line]
    assert notices[0] == f":{SERVER} NOTICE #dev :last 2 lines (times in UTC):"
    assert notices[-2].endswith("bob: earlier")
    assert notices[-1] == f":{SERVER} NOTICE #dev :end of history"


def chathistory_lines(client: object, server: Both, command: str) -> tuple[list[str], str]:
    client.send(command)  # type: ignore[attr-defined]
    server.flush()
    lines: list[str] = client.lines()  # type: ignore[attr-defined]
    start = re.fullmatch(rf":{SERVER} BATCH \+(\S+) (\S+) ?(.*)", lines[0])
    assert start is not None, lines
    assert lines[-1] == f":{SERVER} BATCH -{start.group(1)}"
    texts = [line.split(" PRIVMSG ", 1)[1].split(" :", 1)[1] if " PRIVMSG " in line else line
             for line in lines[1:-1]]
    return texts, start.group(2)


def test_chathistory_latest_before_after_around_between(server: Both) -> None:
    bob = server.join("bob")
    for i in range(10):
        bob.send(f"m{i}")
        server.clock.advance(1)
    server.flush()
    alice = server.irc("alice", "draft/chathistory", "batch", "server-time", "message-tags")
    base = server.clock.seconds() - 10  # when m0 was said

    texts, kind = chathistory_lines(alice, server, "CHATHISTORY LATEST #lobby * 3")
    assert (texts, kind) == (["m7", "m8", "m9"], "chathistory")
    alice.send("CHATHISTORY LATEST #lobby * 1")
    server.flush()
    m9 = tags_of(alice.lines()[1])["msgid"]

    texts, _ = chathistory_lines(alice, server, f"CHATHISTORY BEFORE #lobby msgid={m9} 2")
    assert texts == ["m7", "m8"]
    texts, _ = chathistory_lines(
        alice, server, f"CHATHISTORY AFTER #lobby timestamp={server_time(base + 6)} 10")
    assert texts == ["m7", "m8", "m9"]
    texts, _ = chathistory_lines(
        alice, server, f"CHATHISTORY AROUND #lobby timestamp={server_time(base + 4.5)} 4")
    assert texts == ["m3", "m4", "m5", "m6"]
    between = (f"timestamp={server_time(base + 1.5)}", f"timestamp={server_time(base + 4.5)}")
    texts, _ = chathistory_lines(alice, server, f"CHATHISTORY BETWEEN #lobby {between[0]} "
                                                f"{between[1]} 10")
    assert texts == ["m2", "m3", "m4"]
    texts, _ = chathistory_lines(alice, server, f"CHATHISTORY BETWEEN #lobby {between[1]} "
                                                f"{between[0]} 2")
    assert texts == ["m3", "m4"]  # backwards: the newest of them


def test_chathistory_targets_and_refusals(server: Both) -> None:
    bob = server.join("bob")
    bob.send_lines(["/join #dev", "in dev", "/join #lobby", "in lobby"])
    server.flush()
    alice = server.irc("alice", "draft/chathistory", "batch")
    alice.send("JOIN #dev")
    server.flush()
    alice.clear()
    now = server.clock.seconds()
    window = f"timestamp={server_time(now - 60)} timestamp={server_time(now + 60)}"
    lines, kind = chathistory_lines(alice, server, f"CHATHISTORY TARGETS {window} 10")
    assert kind == "draft/chathistory-targets"
    assert [line.split(" ")[4] for line in lines] == ["#dev", "#lobby"]  # by time, then name
    server.join("carol").send("/join #secret")
    server.flush()
    alice.clear()
    alice.send("CHATHISTORY LATEST #secret * 10", "CHATHISTORY LATEST #lobby bogus 10",
               "CHATHISTORY FROB #lobby * 1", "CHATHISTORY LATEST #lobby *")
    server.flush()
    assert alice.lines() == [
        f":{SERVER} FAIL CHATHISTORY INVALID_TARGET LATEST #secret :You are not in that channel",
        f":{SERVER} FAIL CHATHISTORY INVALID_PARAMS LATEST bogus "
        ":A reference is timestamp= or msgid=",
        f":{SERVER} FAIL CHATHISTORY INVALID_PARAMS FROB :Unknown CHATHISTORY subcommand",
        f":{SERVER} FAIL CHATHISTORY NEED_MORE_PARAMS LATEST :Not enough parameters",
    ]


def test_the_chathistory_capability_and_token_only_with_history() -> None:
    with both() as server:
        alice = server.irc_connect()
        alice.send("CAP LS 302", "NICK a", "USER a 0 * :a", "CAP END")
        text = "\n".join(alice.lines())
        assert "draft/chathistory" not in text and "CHATHISTORY=" not in text
    with both(history=True) as server:
        alice = server.irc_connect()
        alice.send("CAP LS 302", "NICK a", "USER a 0 * :a", "CAP END")
        text = "\n".join(alice.lines())
        assert "draft/chathistory" in text and "CHATHISTORY=200" in text


def test_a_replay_of_one_line_says_one_line(server: Both) -> None:
    bob = server.join("bob")
    bob.send_lines(["/join #one"])
    server.flush()
    alice = server.irc("alice")
    alice.send("JOIN #one")
    server.flush()
    notices = [line for line in alice.lines() if " NOTICE #one " in line]
    assert notices[0] == f":{SERVER} NOTICE #one :last 1 line (times in UTC):"
