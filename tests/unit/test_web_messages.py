"""The web front end's JSON schema: what a browser may send, and what it gets."""

import json

import pytest

from chatroom.domain.events import Acted, Joined, Left, Notice, Renamed, Said, TopicSet, Whispered
from chatroom.history.store import Kind, Record
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
    assert parse({"type": "say", "text": text}) == Say("ared bell done\ttab")


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
    assert decode(messages.render(event)) == expected


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
    assert message["records"] == [
        {"type": "said", "time": 1.0, "nick": "alice", "text": "one"},
        {"type": "acted", "time": 2.0, "nick": "bob", "text": "waves"},
        {"type": "joined", "time": 3.0, "nick": "carol"},
        {"type": "left", "time": 4.0, "nick": "carol"},  # the reason is for operators
        {"type": "renamed", "time": 5.0, "nick": "bob", "new_nick": "robert"},
        {"type": "notice", "time": 6.0, "text": "maintenance"},
    ]
    assert "query" not in decode(messages.history(7.0, records, "join"))


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
