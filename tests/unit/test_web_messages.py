"""The web front end's JSON schema: what a browser may send, and what it gets."""

import json
import re

import pytest

from chatroom.domain.events import Acted, Joined, Left, Notice, Renamed, Said, TopicSet, Whispered
from chatroom.history.recent import RecentRecords
from chatroom.history.store import Kind, Record, record_from_row, row_for
from chatroom.hubs import redis_wire
from chatroom.web import messages
from chatroom.web.messages import BadMessage, Nick, Say
from tests.unit.test_web_harness import server_frames


def parse(obj, max_text=100):
    return messages.parse(json.dumps(obj).encode("utf-8"), max_text)


def test_nick_and_say_are_parsed():
    assert parse({"type": "nick", "nick": "alice"}) == Nick("alice")
    assert parse({"type": "say", "text": "hello"}) == Say("hello")


def test_keys_outside_the_schema_are_ignored():
    assert parse({"type": "say", "text": "hi", "id": 7, "extra": [1]}) == Say("hi")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"say"', "expected a JSON object"),
        (b"NaN", "not valid JSON"),
        (b'{"text": "hi"}', '"type" must be'),
        (b'{"type": "shout", "text": "hi"}', '"type" must be'),
        (b'{"type": 1}', '"type" must be'),
        (b'{"type": "say"}', 'needs a string "text"'),
        (b'{"type": "say", "text": 5}', 'needs a string "text"'),
        (b'{"type": "nick", "nick": null}', 'needs a string "nick"'),
        (b'{"type": "say", "text": ["a"]}', 'needs a string "text"'),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),  # too deep for the parser
        (b'{"type": "say", "text": "' + b"9" * 10 + b'", "n": ' + b"9" * 5000 + b"}",
         "not valid JSON"),  # an integer past Python's digit limit
    ],
)
def test_frames_outside_the_schema_are_refused_with_a_reason(payload, why):
    with pytest.raises(BadMessage, match=why) as caught:
        messages.parse(payload, 100)
    assert caught.value.about == messages.ABOUT_MESSAGE


def test_text_is_limited_in_utf8_bytes_like_a_line():
    assert parse({"type": "say", "text": "é" * 50}, max_text=100) == Say("é" * 50)
    with pytest.raises(BadMessage, match=r"text too long \(100 bytes max\)") as caught:
        parse({"type": "say", "text": "é" * 50 + "x"}, max_text=100)
    assert caught.value.about == messages.ABOUT_TEXT
    with pytest.raises(BadMessage, match="nick too long"):
        parse({"type": "nick", "nick": "n" * 101}, max_text=100)


def test_text_is_cleaned_like_a_telnet_line():
    text = "a\x1b[31mred\x1b[0m \x07bell\x00 \x1b]0;title\x07done\x7f\u0085\ttab"
    assert parse({"type": "say", "text": text}) == Say("ared bell done tab")


def test_a_lone_surrogate_becomes_replacement_characters():
    parsed = messages.parse(b'{"type": "say", "text": "a\\ud800b"}', 100)
    assert isinstance(parsed, Say)
    assert parsed.text.startswith("a") and parsed.text.endswith("b")
    assert "\ufffd" in parsed.text
    parsed.text.encode("utf-8")  # never fails: safe to send on


def test_markup_is_kept_as_text_for_the_page_to_show_as_text():
    payload = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    assert parse({"type": "say", "text": payload}) == Say(payload)


def decode(frame_bytes):
    ((opcode, payload),) = server_frames(frame_bytes)
    assert opcode == 1
    return json.loads(payload.decode("utf-8"))


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (Said("lobby", 1.5, "m1", "alice", "hi"),
         {"type": "said", "time": 1.5, "nick": "alice", "text": "hi", "room": "lobby"}),
        (Acted("lobby", 1.5, "m1", "alice", "waves"),
         {"type": "acted", "time": 1.5, "nick": "alice", "text": "waves", "room": "lobby"}),
        (Joined("lobby", 1.5, "m1", "alice"),
         {"type": "joined", "time": 1.5, "nick": "alice", "room": "lobby"}),
        (Left("lobby", 1.5, "m1", "alice", "quit"),
         {"type": "left", "time": 1.5, "nick": "alice", "room": "lobby"}),
        (Renamed("lobby", 1.5, "m1", "alice", "alicia"),
         {"type": "renamed", "time": 1.5, "nick": "alice", "new_nick": "alicia", "room": "lobby"}),
        (Whispered("", 1.5, "m1", "alice", "psst", "m2", "bob"),
         {"type": "private", "time": 1.5, "nick": "alice", "to": "bob", "text": "psst"}),
        (Notice("lobby", 1.5, "", "", "maintenance at 5"),
         {"type": "notice", "time": 1.5, "text": "maintenance at 5", "room": "lobby"}),
        (Notice("", 1.5, "", "", "server restarting"),
         {"type": "notice", "time": 1.5, "text": "server restarting"}),
        (TopicSet("lobby", 1.5, "m1", "alice", "plans"),
         {"type": "topic", "time": 1.5, "nick": "alice", "text": "plans", "room": "lobby"}),
        (Left("lobby", 1.5, "m1", "alice", "part", "bye"),
         {"type": "left", "time": 1.5, "nick": "alice", "text": "bye", "room": "lobby"}),
    ],
)
def test_every_event_renders_to_one_documented_message(event, expected):
    message = decode(messages.render(event))
    if not isinstance(event, Whispered):  # never replayed: nothing to know it again by
        assert re.fullmatch("[0-9a-f]{16}", message.pop("id"))
    assert message == expected


def test_non_ascii_is_sent_as_utf8_not_escapes():
    data = messages.render(Said("lobby", 0.0, "m1", "Zoë", "日本語"))
    assert "日本語".encode() in data and "Zoë".encode() in data


def test_history_records_have_the_shape_of_live_messages():
    records = [
        Record(1, 1.0, "lobby", Kind.SAID, "alice", "one"),
        Record(2, 2.0, "lobby", Kind.ACTED, "bob", "waves"),
        Record(3, 3.0, "lobby", Kind.JOINED, "carol"),
        Record(4, 4.0, "lobby", Kind.LEFT, "carol", "slow reader"),
        Record(5, 5.0, "lobby", Kind.RENAMED, "bob", "", "robert"),
        Record(6, 6.0, "lobby", Kind.NOTICE, "", "maintenance"),
    ]
    message = decode(messages.history(7.0, records, "search", "one"))
    assert message["type"] == "history" and message["context"] == "search"
    assert message["query"] == "one"
    ids = [record.pop("id") for record in message["records"]]
    assert ids == [record.line_id for record in records]
    assert message["records"] == [
        {"type": "said", "time": 1.0, "nick": "alice", "text": "one"},
        {"type": "acted", "time": 2.0, "nick": "bob", "text": "waves"},
        {"type": "joined", "time": 3.0, "nick": "carol"},
        {"type": "left", "time": 4.0, "nick": "carol"},  # the reason is for operators
        {"type": "renamed", "time": 5.0, "nick": "bob", "new_nick": "robert"},
        {"type": "notice", "time": 6.0, "text": "maintenance"},
    ]
    assert "query" not in decode(messages.history(7.0, records, "join"))


ALICE_SAID = Said("lobby", 1_795_505_920.051234, "m1", "alice", "hi there")
EVENTS = [
    Joined("lobby", 1_795_505_919.5, "m1", "alice"),
    ALICE_SAID,
    Acted("lobby", 1_795_505_921.25, "m1", "alice", "waves"),
    Renamed("lobby", 1_795_505_922.125, "m1", "alice", "alicia"),
    Notice("lobby", 1_795_505_923.0, "", "", "maintenance at 5"),
    Left("lobby", 1_795_505_924.0625, "m1", "alicia", "connection lost"),
]


def live_ids(events):
    return [decode(messages.render(event))["id"] for event in events]


def replayed_ids(records):
    return [r["id"] for r in decode(messages.history(9.0, records, "join"))["records"]]


def test_a_line_has_the_same_id_live_and_in_a_replay_from_memory_or_the_store():
    recent = RecentRecords(10)
    for event in EVENTS:
        recent(event)
    live = live_ids(EVENTS)
    kept = [event for event in EVENTS if not isinstance(event, Notice)]  # the buffer's choice
    assert replayed_ids(recent.last("lobby", 10)) == live_ids(kept)
    # after a restart the replay comes from the store's rows, numbered by the store
    stored = []
    for number, event in enumerate(EVENTS, 1):
        row = row_for(event)
        assert row is not None
        stored.append(record_from_row(1000 + number, row))
    assert replayed_ids(stored) == live


def test_a_line_has_the_same_id_on_every_node_of_a_redis_room():
    carried = []
    for event in EVENTS:
        _, copy = redis_wire.decode_event(redis_wire.encode_event(event))
        carried.append(copy)
    assert live_ids(carried) == live_ids(EVENTS)


@pytest.mark.parametrize(
    "other",
    [
        Said("lobby", ALICE_SAID.time + 1e-6, "m1", "alice", "hi there"),  # said again
        Said("lobby", ALICE_SAID.time, "m2", "bob", "hi there"),
        Said("lobby", ALICE_SAID.time, "m1", "alice", "hi there!"),
        Said("attic", ALICE_SAID.time, "m1", "alice", "hi there"),
        Acted("lobby", ALICE_SAID.time, "m1", "alice", "hi there"),
        Notice("lobby", ALICE_SAID.time, "", "", "alice: hi there"),
    ],
)
def test_different_lines_have_different_ids(other):
    assert live_ids([other]) != live_ids([ALICE_SAID])


def test_a_leaves_id_does_not_depend_on_its_reason_which_stays_with_operators():
    quit_, dropped = (Left("lobby", 5.0, "m1", "alice", why) for why in ("quit", "slow reader"))
    assert live_ids([quit_]) == live_ids([dropped])
    assert live_ids([quit_]) != live_ids([Left("lobby", 5.0, "m2", "bob", "quit")])


def test_replies_to_one_browser_have_no_id():
    for data in (
        messages.prompt(1.0), messages.welcome(1.0, "alice", 1, 2048),
        messages.members(1.0, ["a"]), messages.notice(1.0, "goodbye, alice"),
        messages.error(1.0, "bad", messages.ABOUT_MESSAGE), messages.history(1.0, [], "join"),
    ):
        assert "id" not in decode(data)


def test_server_messages_carry_type_and_time():
    for data in (
        messages.prompt(1.0), messages.welcome(1.0, "alice", 1, 2048),
        messages.members(1.0, ["a", "b"]), messages.notice(1.0, "x"),
        messages.error(1.0, "bad", messages.ABOUT_MESSAGE),
    ):
        message = decode(data)
        assert isinstance(message["type"], str) and message["time"] == 1.0
    welcome = decode(messages.welcome(1.0, "alice", 3, 2048))
    assert welcome["nick"] == "alice" and welcome["max_text"] == 2048
    assert "3 people are here" in welcome["text"]


def test_help_lists_every_command_as_notices():
    texts = [json.loads(p)["text"] for _, p in server_frames(messages.help_notices(0.0))]
    for command in ("/who", "/msg", "/me", "/nick", "/history", "/search", "/help", "/quit", "//"):
        assert any(t.startswith(command) for t in texts)


def test_a_nickname_is_not_cleaned_but_kept_as_sent_for_the_rules_to_check():
    assert parse({"type": "nick", "nick": "ctl\x01x"}) == Nick("ctl\x01x")
    said = parse({"type": "say", "text": "/nick esc\x1b[31mred"})
    assert said == Say("/nick escred")
    assert isinstance(said, Say) and said.typed == "/nick esc\x1b[31mred"
