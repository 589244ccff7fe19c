"""The WebSocket adapter, driven frame by frame: the room's rules hold on this wire too."""

from __future__ import annotations

import json
import struct

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs

from chatroom.commands import HELP
from chatroom.history.memory import MemoryHistory
from chatroom.history.recent import RecentRecords
from chatroom.limits import Limits
from chatroom.lines.factory import ChatFactory
from chatroom.web.protocol import max_frame
from tests.unit.test_web_harness import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FakeBrowser,
    client_frame,
    make_site,
)
from tests.unit.turns import Reactor


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def site(clock):
    return make_site(clock)


def joined(site, clock, nick, port):
    browser = FakeBrowser(site, port)
    replies = browser.join(nick, clock)
    assert [m["type"] for m in replies] == ["welcome", "members"], replies
    return browser


def texts(received, kind=None):
    return [m.get("text") for m in received if kind is None or m["type"] == kind]


# -- joining ----------------------------------------------------------------------------


def test_a_new_browser_is_prompted_for_a_nickname(site):
    browser = FakeBrowser(site)
    (prompt,) = browser.received()
    assert prompt["type"] == "prompt" and "nickname" in prompt["text"].lower()


def test_a_bad_nickname_gets_an_error_and_a_new_prompt_and_may_retry(site, clock):
    browser = FakeBrowser(site)
    browser.received()
    for bad in ("_alice", "", "x" * 33, "al ice", "<img>"):
        browser.nick(bad)
        error, prompt = browser.received()
        assert error["type"] == "error" and error["about"] == "nick", bad
        assert prompt["type"] == "prompt"
    welcome, members = browser.join("alice", clock)
    assert welcome["type"] == "welcome" and welcome["nick"] == "alice"
    assert "alice" in welcome["text"] and welcome["max_text"] == Limits().max_line
    assert members == {"type": "members", "time": members["time"], "nicks": ["alice"],
                       "room": "#lobby"}


def test_a_taken_nickname_is_refused_case_insensitively(site, clock):
    joined(site, clock, "Alice", 1)
    bob = FakeBrowser(site, 2)
    bob.received()
    bob.nick("ALICE")
    error, prompt = bob.received()
    assert error["about"] == "nick" and "taken" in error["text"]
    assert prompt["type"] == "prompt"


def test_others_see_the_join_and_the_newcomer_gets_the_member_list(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = FakeBrowser(site, 2)
    welcome, members = bob.join("bob", clock)
    assert "2 people are here" in welcome["text"]
    assert members["nicks"] == ["alice", "bob"]
    clock.advance(0)
    (event,) = alice.received()
    assert event["type"] == "joined" and event["nick"] == "bob"
    assert bob.received() == []  # no echo of one's own join


def test_a_browser_still_choosing_hears_no_chat(site, clock):
    alice = joined(site, clock, "alice", 1)
    lurker = FakeBrowser(site, 2)
    lurker.received()
    alice.say("hello")
    alice.say("/msg lurker hi")
    clock.advance(0)
    assert lurker.received() == []


def test_chat_before_a_nickname_is_refused_but_help_and_quit_work(site, clock):
    browser = FakeBrowser(site)
    browser.received()
    browser.say("hello")
    error, prompt = browser.received()
    assert error["about"] == "state" and "nickname first" in error["text"]
    assert prompt["type"] == "prompt"
    browser.say("/help")
    received = browser.received()
    assert received[-1]["type"] == "prompt"
    assert any(t.startswith("/quit") for t in texts(received, "notice"))
    browser.say("/quit")
    (goodbye,) = browser.received()
    assert goodbye == {"type": "notice", "time": goodbye["time"], "text": "goodbye"}
    assert browser.closes == [(1000, "goodbye")]


# -- talking ------------------------------------------------------------------------


def test_chat_reaches_everyone_and_comes_back_to_the_sender(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    alice.received()
    alice.say("hello <b>world</b>")
    assert alice.received() == []  # nothing until the turn ends: then in room order
    clock.advance(0)
    for browser in (alice, bob):
        (said,) = browser.received()
        assert said == {"type": "said", "time": said["time"], "nick": "alice",
                        "text": "hello <b>world</b>", "id": said["id"], "room": "#lobby"}


def test_commands_behave_as_on_the_line_protocol(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    carol = joined(site, clock, "carol", 3)
    clock.advance(0)
    for browser in (alice, bob, carol):
        browser.received()

    alice.say("/me waves")
    alice.say("//not a command")
    alice.say("   ")
    alice.say("")
    alice.say("/msg bob psst")
    clock.advance(0)
    assert [(m["type"], m["text"]) for m in carol.received()] == [
        ("acted", "waves"), ("said", "/not a command")
    ]
    bob_got = bob.received()
    assert [m["type"] for m in bob_got] == ["acted", "said", "private"]
    assert bob_got[-1] == {"type": "private", "time": bob_got[-1]["time"], "nick": "alice",
                           "to": "bob", "text": "psst"}
    assert [m["type"] for m in alice.received()] == ["acted", "said", "private"]  # echoes

    alice.say("/who")
    (members,) = alice.received()
    assert members["type"] == "members" and members["nicks"] == ["alice", "bob", "carol"]

    alice.say("/help")
    assert len(texts(alice.received(), "notice")) == len(HELP)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("/msg nobody hi", "no such member: nobody"),
        ("/msg bob", "usage: /msg NICK TEXT"),
        ("/me", "usage: /me TEXT"),
        ("/nick", "usage: /nick NEW"),
        ("/dance", "unknown command /dance"),
        ("/", "unknown command /"),
        ("/ x", "unknown command /"),
    ],
)
def test_misused_commands_get_an_error_and_nothing_is_broadcast(site, clock, line, why):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    alice.received()
    bob.received()
    alice.say(line)
    clock.advance(0)
    (error,) = alice.received()
    assert error["type"] == "error" and error["about"] == "command"
    assert why in error["text"]
    assert bob.received() == []


def test_renaming_by_command_or_by_message_is_announced_to_all(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    alice.received()
    alice.say("/nick alicia")
    clock.advance(0)
    for browser in (alice, bob):  # the sender learns it from the same event
        (renamed,) = browser.received()
        assert renamed == {"type": "renamed", "time": renamed["time"], "nick": "alice",
                           "new_nick": "alicia", "id": renamed["id"]}
    alice.nick("Ally")
    clock.advance(0)
    assert bob.received()[0]["new_nick"] == "Ally"
    alice.received()
    alice.nick("BOB")
    clock.advance(0)
    (error,) = alice.received()
    assert error["about"] == "nick" and "taken" in error["text"]
    assert bob.received() == []
    alice.say("/who")
    assert alice.received()[0]["nicks"] == ["Ally", "bob"]


def test_web_and_line_members_share_the_room(site, clock):
    lines = ChatFactory(site.chat.services)
    tcp = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 60000))
    line_client = lines.buildProtocol(tcp.getPeer())
    line_client.makeConnection(tcp)
    alice = joined(site, clock, "alice", 1)
    line_client.dataReceived(b"bob\r\n")
    clock.advance(0)
    assert alice.received()[0]["nick"] == "bob"
    tcp.clear()
    alice.say("hi bob")
    line_client.dataReceived(b"hi alice\r\n/msg alice psst\r\n")
    clock.advance(0)
    assert tcp.value() == b"alice: hi bob\r\n"
    assert [(m["type"], m["nick"], m["text"]) for m in alice.received()] == [
        ("said", "alice", "hi bob"), ("said", "bob", "hi alice"), ("private", "bob", "psst")
    ]


# -- the rules: sizes, sanitising, bad frames ---------------------------------------------


def test_text_over_the_line_limit_is_refused_and_never_broadcast(clock):
    site = make_site(clock, Limits(max_line=512))
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    alice.received()
    bob.received()
    alice.say("x" * 512)
    alice.say("é" * 256 + "!")
    clock.advance(0)
    assert [len(m["text"]) for m in bob.received()] == [512]
    received = alice.received()
    assert [m["type"] for m in received] == ["said", "error"]
    assert received[1]["text"] == "text too long (512 bytes max)"
    assert received[1]["about"] == "text"


def test_control_characters_and_escapes_never_reach_anyone(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    bob.received()
    alice.say("\x1b[2J\x1b[31mred\x1b[0m\x00\x07 \x1b]0;pwned\x07ok")
    clock.advance(0)
    (said,) = bob.received()
    assert said["text"] == "red ok"


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (client_frame(b"{not json"), "not valid JSON"),
        (client_frame(b"\xc3\x28"), "not valid UTF-8"),
        (client_frame(b'{"type": "shout"}'), '"type" must be'),
        (client_frame(b'{"type": "say", "text": 1}'), 'needs a string "text"'),
        (client_frame(b"\x00\x01\x02", OP_BINARY), "binary frames are not accepted"),
    ],
)
def test_bad_frames_get_an_error_and_the_connection_and_neighbours_carry_on(
    site, clock, frame, why
):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    alice.received()
    bob.received()
    alice.feed(frame)
    (error,) = alice.received()
    assert error["type"] == "error" and error["about"] == "message" and why in error["text"]
    alice.say("still here")
    clock.advance(0)
    assert bob.received()[0]["text"] == "still here"
    assert not alice.transport.disconnecting


def test_an_oversized_message_is_counted_not_kept_and_gets_an_error(clock):
    site = make_site(clock, Limits(max_line=512))
    alice = joined(site, clock, "alice", 1)
    limit = max_frame(Limits(max_line=512))
    big = json.dumps({"type": "say", "text": "y" * (limit + 10)}).encode()
    # in pieces, as a fragmented message: nothing of it is kept past the limit
    alice.feed(client_frame(big[:1000], OP_TEXT, fin=False))
    alice.feed(client_frame(big[1000:], 0x0, fin=True))
    assert alice.ws is not None and alice.ws._parts == []
    (error,) = alice.received()
    assert error["text"] == f"message too large ({limit} bytes max)"
    alice.say("fine")
    clock.advance(0)
    assert alice.received()[0]["text"] == "fine"


def test_refused_input_is_logged_at_a_bounded_rate(clock):
    site = make_site(clock, Limits(rate=1000.0, burst=1000))
    alice = joined(site, clock, "alice", 1)
    with capturedLogs() as events:
        alice.feed(client_frame(b"garbage") * 200)
    warnings = [e for e in events if "refused input" in e.get("log_format", "")]
    assert 0 < len(warnings) <= 50
    assert len([m for m in alice.received() if m["type"] == "error"]) == 200  # each is told


def test_a_ping_gets_a_pong_and_is_not_a_message(site, clock):
    alice = joined(site, clock, "alice", 1)
    alice.feed(client_frame(b"are you there", 0x9))
    assert alice.frames() == [(0xA, b"are you there")]


# -- flood control ----------------------------------------------------------------------


def test_a_flooder_is_slowed_by_not_reading_and_loses_nothing(clock):
    limits = Limits(rate=5.0, burst=10)
    site = make_site(clock, limits)
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    bob.received()
    alice.feed(b"".join(client_frame(json.dumps({"type": "say", "text": str(i)}).encode())
                        for i in range(30)))
    clock.advance(0)
    assert len(bob.received()) == 9  # the burst, less the token the nickname took
    assert alice.transport.producerState == "paused"
    got = []
    for _ in range(100):
        clock.advance(0.2)
        got += [m["text"] for m in bob.received()]
        if len(got) == 21:
            break
    assert got == [str(i) for i in range(9, 30)]  # every line, in order
    assert alice.transport.producerState == "producing"


def rested_pair(clock, limits):
    """alice and bob, joined, their flood allowances full again and nothing left unread."""
    site = make_site(clock, limits)
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(10)
    alice.frames()
    bob.frames()
    return alice, bob


def test_while_one_floods_the_others_are_served_at_once(clock):
    alice, bob = rested_pair(clock, Limits(rate=1.0, burst=2))
    alice.feed(b"".join(client_frame(b'{"type":"say","text":"x"}') for _ in range(50)))
    bob.say("me too")
    clock.advance(0)
    assert "me too" in texts(bob.received())


def test_pings_count_against_flood_control_and_past_it_reading_stops(clock):
    site = make_site(clock, Limits(rate=5.0, burst=10))
    alice = joined(site, clock, "alice", 1)  # the nickname took one token
    alice.feed(b"".join(client_frame(b"%03d" % i, OP_PING) for i in range(40)))
    pongs = alice.frames()
    assert pongs == [(OP_PONG, b"%03d" % i) for i in range(9)]
    assert alice.transport.producerState == "paused"
    for _ in range(100):
        clock.advance(0.2)
        pongs += alice.frames()
        if len(pongs) == 40:
            break
    assert pongs == [(OP_PONG, b"%03d" % i) for i in range(40)]  # each answered, in order
    assert alice.transport.producerState == "producing"
    assert clock.seconds() >= (40 - 9) / 5 - 0.2


def test_pongs_and_messages_share_one_allowance(clock):
    alice, bob = rested_pair(clock, Limits(rate=1.0, burst=3))
    alice.feed(client_frame(b"a", OP_PING) + client_frame(b"b", OP_PONG)
               + client_frame(b'{"type":"say","text":"x"}') + client_frame(b"c", OP_PING))
    clock.advance(0)
    assert texts(bob.received()) == ["x"]  # the third frame took the last token
    assert [f for f in alice.frames() if f[0] == OP_PONG] == [(OP_PONG, b"a")]
    assert alice.transport.producerState == "paused"
    clock.advance(1)
    assert alice.frames() == [(OP_PONG, b"c")]


def stop_reading(browser):
    """What the socket does when the browser's receive buffer is full: its outbox waits."""
    assert browser.ws is not None and browser.ws.outbox is not None
    browser.ws.outbox.pauseProducing()


def test_a_client_that_pings_and_never_reads_is_dropped_as_a_slow_reader(clock):
    site = make_site(clock, Limits(max_out=4096, rate=1000.0, burst=1000))
    bob = joined(site, clock, "bob", 1)
    pinger = joined(site, clock, "pinger", 2)
    stop_reading(pinger)  # it does not read its pongs
    pinger.feed(b"".join(client_frame(b"p" * 125, OP_PING) for _ in range(600)))
    assert pinger.transport.value() == b""  # not one pong past the outbox
    assert pinger.transport.disconnected  # 600 pongs are 16 times max_out: cut at once
    pinger.lose()
    clock.advance(0)
    assert [m["nick"] for m in bob.received() if m["type"] == "left"] == ["pinger"]


# -- slow readers -----------------------------------------------------------------------


def test_a_browser_that_stops_reading_is_dropped_and_announced_as_left(clock):
    site = make_site(clock, Limits(max_out=4096, rate=1000.0, burst=1000))
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    alice.received()
    stop_reading(bob)
    for i in range(40):
        alice.say(f"{i:03d} " + "z" * 200)
        clock.advance(0)
    assert not bob.transport.disconnected  # over the cap for a moment is not yet slow
    clock.advance(1.0)  # over it for the grace period: slow
    assert bob.transport.disconnected
    bob.lose()
    clock.advance(0)
    received = alice.received()
    assert [m["text"] for m in received if m["type"] == "said"] == [
        f"{i:03d} " + "z" * 200 for i in range(40)
    ]  # the room does not wait for bob, and nobody else misses a line
    assert [(m["time"], m["nick"]) for m in received if m["type"] == "left"] == [
        (clock.seconds(), "bob")
    ]
    assert "bob" not in site.chat.chat.members()


def test_a_slow_reader_gets_its_backlog_when_it_drains_in_time(clock):
    site = make_site(clock, Limits(max_out=64 * 1024))
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    assert bob.ws is not None and bob.ws.outbox is not None
    bob.ws.outbox.pauseProducing()
    for i in range(5):
        alice.say(str(i))
        clock.advance(0)
    assert bob.received() == []
    bob.ws.outbox.resumeProducing()
    assert [m["text"] for m in bob.received()] == ["0", "1", "2", "3", "4"]


# -- leaving ------------------------------------------------------------------------------


def test_quit_says_goodbye_closes_normally_and_is_announced_once(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    alice.received()
    bob.received()
    alice.say("/quit")
    assert texts(alice.received()) == ["goodbye, alice"]
    assert alice.closes == [(1000, "goodbye")]
    alice.say("ignored: the socket is closing")
    alice.reply_close()
    assert alice.transport.disconnecting
    alice.lose()
    clock.advance(0)
    assert [(m["type"], m["nick"]) for m in bob.received()] == [("left", "alice")]
    assert site.chat.chat.members() == ["bob"]
    assert not site.chat.connections - {bob.ws}


def test_a_closed_tab_is_announced_as_left_and_its_nickname_is_free_again(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    bob.received()
    alice.feed(client_frame(struct.pack("!H", 1001), OP_CLOSE))  # the tab closes
    alice.lose()
    clock.advance(0)
    assert [m["type"] for m in bob.received()] == ["left"]
    joined(site, clock, "ALICE", 3)


def test_a_nickname_must_be_chosen_in_time(clock):
    site = make_site(clock, Limits(nick_timeout=30))
    browser = FakeBrowser(site)
    browser.received()
    clock.advance(29)
    assert browser.closes == []
    clock.advance(1)
    (error,) = browser.received()
    assert error["about"] == "server" and "no nickname chosen in 30 seconds" in error["text"]
    assert browser.closes == [(1008, "nickname timeout")]


def test_an_idle_member_is_closed_when_idle_timeout_is_on(clock):
    site = make_site(clock, Limits(idle_timeout=100))
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(60)
    alice.say("still here")
    clock.advance(60)
    clock.advance(0)
    (error,) = [m for m in bob.received() if m["type"] == "error"]
    assert error["about"] == "server" and error["text"] == "idle for 100 seconds; goodbye"
    assert bob.closes == [(1008, "idle timeout")]
    assert [m["type"] for m in alice.received()][-1] == "left"
    assert alice.closes == []


def test_an_unexpected_exception_drops_only_that_connection(
    site, clock, monkeypatch, logged_failures
):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    bob.received()
    room = site.chat.chat

    def broken(member, text):
        raise RuntimeError("boom")

    monkeypatch.setattr(room, "act", broken)
    alice.say("/me breaks things")
    assert alice.transport.disconnected
    (failure,) = logged_failures
    assert failure["log_failure"].check(RuntimeError)
    logged_failures.clear()
    alice.lose()
    monkeypatch.undo()
    bob.say("/me is fine")
    clock.advance(0)
    assert [m["type"] for m in bob.received()] == ["left", "acted"]


# -- the door: origins and connection limits ----------------------------------------------


def test_a_page_from_another_site_is_refused_at_the_handshake(site):
    browser = FakeBrowser(site, origin="http://evil.example")
    assert browser.status == 403
    assert not site.chat.chat.members()


def test_the_allow_list_decides_when_given(clock):
    site = make_site(clock, allowed_origins=["https://chat.example"])
    assert FakeBrowser(site, 1, origin="https://chat.example").status == 101
    assert FakeBrowser(site, 2, origin="http://chat.example:8081").status == 403


def test_a_program_without_origin_is_allowed(site):
    assert FakeBrowser(site, origin=None).status == 101


@pytest.mark.parametrize(
    ("limits", "why"),
    [(Limits(max_clients=2), "server full"),
     (Limits(max_per_ip=2), "too many connections from your address")],
)
def test_connections_past_the_limits_are_told_why_and_closed(clock, limits, why):
    site = make_site(clock, limits)
    FakeBrowser(site, 1)
    FakeBrowser(site, 2)
    third = FakeBrowser(site, 3)
    (error,) = third.received()
    assert error == {"type": "error", "time": error["time"], "text": why, "about": "server"}
    assert third.closes == [(1013, why)]
    assert len(site.chat.connections) == 2


# -- history -------------------------------------------------------------------------------


def history_site(clock, **limits):
    recent = RecentRecords(50)
    store = MemoryHistory(clock)
    return make_site(clock, Limits(**limits), history=store, recent=recent)


def test_a_newcomer_gets_what_was_said_before_then_the_welcome_then_live_lines(clock):
    site = history_site(clock, history_replay=3)
    alice = joined(site, clock, "alice", 1)
    for text in ("one", "two", "three", "four"):
        alice.say(text)
    alice.say("/msg alice a private note is never replayed")
    clock.advance(0)
    bob = FakeBrowser(site, 2)
    bob.received()
    bob.nick("bob")
    alice.say("five")  # the same turn: live, not in the replay
    clock.advance(0)
    history, welcome, members, live = bob.received()
    assert history["type"] == "history" and history["context"] == "join"
    assert [(r["type"], r["nick"], r["text"]) for r in history["records"]] == [
        ("said", "alice", "two"), ("said", "alice", "three"), ("said", "alice", "four")
    ]
    assert (welcome["type"], members["type"], live["text"]) == ("welcome", "members", "five")


def test_a_browser_that_comes_back_gets_the_lines_it_saw_with_the_ids_it_saw(clock):
    site = history_site(clock)
    alice = joined(site, clock, "alice", 1)
    bob = FakeBrowser(site, 2)
    bob.join("bob", clock)
    bob.say("hello")
    bob.say("/me waves")
    bob.say("/nick robert")
    clock.advance(0)
    live = [m for m in alice.received() if m["type"] in ("joined", "said", "acted", "renamed")]
    assert [m["type"] for m in live] == ["joined", "said", "acted", "renamed"]
    alice.lose()
    clock.advance(1)
    again = FakeBrowser(site, 3)
    replay = again.join("alice", clock)[0]["records"]
    assert [(r["type"], r["id"]) for r in replay[-5:]] == [
        *((m["type"], m["id"]) for m in live), ("left", replay[-1]["id"])
    ]
    assert len({r["id"] for r in replay}) == len(replay)


def test_the_replay_leaves_out_the_newcomers_own_join(clock):
    site = history_site(clock)
    joined(site, clock, "alice", 1)
    bob = FakeBrowser(site, 2)
    replies = bob.join("bob", clock)
    assert [r["type"] for r in replies] == ["history", "welcome", "members"]
    assert [(r["type"], r["nick"]) for r in replies[0]["records"]] == [("joined", "alice")]


def test_history_and_search_commands(clock):
    site = history_site(clock)
    alice = joined(site, clock, "alice", 1)
    alice.say("the quick brown fox")
    alice.say("/me jumps")
    alice.say("/nick alicia")
    clock.advance(0)
    alice.received()
    alice.say("/history 2")
    (last,) = alice.received()
    assert last["context"] == "history"
    assert [{k: v for k, v in r.items() if k != "id"} for r in last["records"]] == [
        {"type": "acted", "time": 0.0, "nick": "alice", "text": "jumps"},
        {"type": "renamed", "time": 0.0, "nick": "alice", "new_nick": "alicia"},
    ]
    alice.say("/search quick fox")
    clock.advance(0)
    (found,) = alice.received()
    assert found["context"] == "search" and found["query"] == "quick fox"
    assert [r["text"] for r in found["records"]] == ["the quick brown fox"]
    alice.say("/search zebra")
    clock.advance(0)
    assert texts(alice.received()) == ["no lines match zebra"]
    for line, why in (("/search", "usage: /search WORDS"), ("/history x", "usage: /history")):
        alice.say(line)
        (error,) = alice.received()
        assert error["about"] == "command" and why in error["text"]


def test_without_a_store_history_is_off(site, clock):
    alice = joined(site, clock, "alice", 1)
    for line in ("/history", "/search words"):
        alice.say(line)
        (error,) = alice.received()
        assert error["text"] == "history is off on this server"


# -- shutdown ------------------------------------------------------------------------------


def test_shutdown_says_goodbye_to_every_browser_and_fires_when_all_are_gone(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    chooser = FakeBrowser(site, 3)
    clock.advance(0)
    for browser in (alice, bob, chooser):
        browser.received()
    done = site.shutdown()
    for browser in (alice, bob, chooser):
        (notice,) = browser.received()
        assert notice == {"type": "notice", "time": notice["time"],
                          "text": "server shutting down"}
        assert browser.closes == [(1001, "server shutting down")]
    assert not done.called
    for browser in (alice, bob, chooser):
        browser.reply_close()
        assert browser.transport.disconnecting
        browser.lose()
    assert done.called
    clock.advance(0)
    assert alice.received() == [] and bob.received() == []  # nobody hears the others leave
    assert not clock.getDelayedCalls()
    late = FakeBrowser(site, 4)
    assert late.received()[0]["text"] == "server shutting down"
    assert late.closes == [(1013, "server shutting down")]


def test_shutdown_cuts_a_browser_that_never_reads_after_the_grace_period(clock):
    site = make_site(clock, Limits(shutdown_grace=2.0))
    alice = joined(site, clock, "alice", 1)
    stuck = joined(site, clock, "stuck", 2)
    clock.advance(0)
    assert stuck.ws is not None and stuck.ws.outbox is not None
    stuck.ws.outbox.pauseProducing()  # its socket buffer is full
    alice.say("something it will never read")
    clock.advance(0)
    done = site.shutdown()
    alice.reply_close()
    alice.lose()
    assert not done.called
    assert stuck.received() == [] and stuck.closes == []  # its goodbye waits behind the backlog
    clock.advance(2.0)
    assert stuck.transport.disconnected
    stuck.lose()
    assert done.called


def test_a_backlogged_browser_gets_its_goodbye_before_the_close_if_it_drains(site, clock):
    alice = joined(site, clock, "alice", 1)
    bob = joined(site, clock, "bob", 2)
    clock.advance(0)
    bob.received()
    assert bob.ws is not None and bob.ws.outbox is not None
    bob.ws.outbox.pauseProducing()
    alice.say("queued")
    clock.advance(0)
    site.shutdown()
    bob.ws.outbox.resumeProducing()
    assert [m.get("text") for m in bob.received()] == ["queued", "server shutting down"]
    assert bob.closes == [(1001, "server shutting down")]


def test_a_member_closed_by_the_server_first_gets_what_the_room_said_and_why() -> None:
    """Idle (or /kill'ed) while a line of its room is still on its way to it (queued this
    turn, or owed by a sweep over a big room): the page gets that line, then the error,
    then the close; the close frame must not go ahead of them and drop them."""
    reactor = Reactor()
    site = make_site(reactor, Limits(idle_timeout=100))
    alice = joined(site, reactor, "alice", 1)
    bob = joined(site, reactor, "bob", 2)
    reactor.rightNow = 100.0  # both idle checks are due; nothing has run yet
    alice.say("last words")  # queued for this turn's pass, after the idle checks
    reactor.turn()
    reactor.turn()
    got = bob.received()
    assert [(m["type"], m.get("text")) for m in got] == [
        ("said", "last words"), ("error", "idle for 100 seconds; goodbye")]
    assert bob.closes == [(1008, "idle timeout")]
