"""IRC messages: parsing, writing, splitting long text, tags for each reader."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatroom.irc.message import (
    MAX_MESSAGE,
    Message,
    TooLong,
    build,
    escape_value,
    parse,
    split_text,
    strip_formatting,
    unescape_value,
)
from chatroom.irc.render import keep_tags, parse_time, server_time


def test_parse_command_params_and_trailing() -> None:
    assert parse(b"privmsg #lobby :hi there") == Message("PRIVMSG", ["#lobby", "hi there"])
    assert parse(b"NICK alice") == Message("NICK", ["alice"])
    assert parse(b"USER a 0 * :Real Name") == Message("USER", ["a", "0", "*", "Real Name"])
    assert parse(b"PRIVMSG #a :") == Message("PRIVMSG", ["#a", ""])
    assert parse(b"JOIN   #a   key") == Message("JOIN", ["#a", "key"])


def test_parse_tags_and_source() -> None:
    message = parse(rb"@label=a\sb\:c;+draft/typing=active;flag :nick!u@h TOPIC #a :x :y")
    assert message == Message(
        "TOPIC", ["#a", "x :y"], {"label": "a b;c", "+draft/typing": "active", "flag": ""},
        "nick!u@h",
    )


def test_parse_blank_and_bad_bytes() -> None:
    assert parse(b"") is None
    assert parse(b"   ") is None
    assert parse(b":onlysource") is None
    message = parse(b"PRIVMSG #a :caf\xe9")
    assert message is not None and message.params[1] == "caf\ufffd"


def test_parse_refuses_what_is_too_long() -> None:
    parse(b"PRIVMSG #a :" + b"x" * (MAX_MESSAGE - 2 - 12))
    with pytest.raises(TooLong):
        parse(b"PRIVMSG #a :" + b"x" * (MAX_MESSAGE - 2 - 11))
    parse(b"@" + b"a" * 4094 + b" PING x")
    with pytest.raises(TooLong):
        parse(b"@" + b"a" * 4095 + b" PING x")


def test_tag_values_round_trip() -> None:
    for value in ["plain", "a b;c\\d\r\n", "", "\\"]:
        assert unescape_value(escape_value(value)) == value
    assert unescape_value("trailing\\") == "trailing"
    assert unescape_value("\\x") == "x"


def test_build_writes_trailing_and_cuts_on_a_character() -> None:
    assert build("srv", "001", "bob", "Welcome") == b":srv 001 bob :Welcome\r\n"
    assert build("n!u@h", "JOIN", "#a", trailing=False) == b":n!u@h JOIN #a\r\n"
    assert build(None, "NICK", "x y", trailing=False) == b"NICK :x y\r\n"
    assert build("s", "X", "a", tags={"time": "t", "k": "v;w"}) == b"@time=t;k=v\\:w :s X :a\r\n"
    long = build("s", "NOTICE", "*", "é" * 400)
    assert len(long) <= MAX_MESSAGE
    long.decode("utf-8")  # cut between characters


def test_split_text_keeps_everything_in_lines_that_fit() -> None:
    text = "word " * 300
    pieces = split_text(text, 100)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 100 for p in pieces)
    assert all(p.endswith(" ") for p in pieces[:-1])  # split after spaces
    cjk = "日本語" * 100
    pieces = split_text(cjk, 100)
    assert "".join(pieces) == cjk and all(len(p.encode()) <= 100 for p in pieces)


def test_formatting_codes_are_removed_whole() -> None:
    assert strip_formatting("\x0304,12red\x03 \x02bold\x02 \x1funder\x0f") == "red bold under"
    assert strip_formatting("\x04ff0000hex") == "hex"
    assert strip_formatting("plain 03") == "plain 03"


def test_keep_tags_gives_each_reader_what_it_asked_for() -> None:
    data = b"@time=T;msgid=M :a PRIVMSG #x :@time=1;msgid=2 x\r\n@time=U;msgid=N :b JOIN #x\r\n"
    assert keep_tags(data, True, True) is data
    assert keep_tags(data, False, False) == b":a PRIVMSG #x :@time=1;msgid=2 x\r\n:b JOIN #x\r\n"
    assert keep_tags(data, True, False).startswith(b"@time=T :a PRIVMSG")
    assert keep_tags(data, False, True).endswith(b"@msgid=N :b JOIN #x\r\n")


def test_server_time_is_what_datetime_writes_across_seconds_and_roundings() -> None:
    # server_time keeps the last second's text: it must still be datetime's, to the
    # millisecond, whichever second comes next and however the microseconds round
    def by_datetime(seconds: float) -> str:
        moment = datetime.fromtimestamp(seconds, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    moments = [1700000000.0, 1700000000.9999996, 1700000000.9994, 1700000001.0004999,
               1699999999.5, 1700000000.123, 0.5, -0.25, -1.0000001, 1e9 + 0.0015]
    moments += [1700000000 + i * 0.0617 for i in range(200)]
    for seconds in moments + moments[::-1]:
        assert server_time(seconds) == by_datetime(seconds), seconds


def test_server_time_round_trips_to_the_millisecond() -> None:
    assert server_time(0.5) == "1970-01-01T00:00:00.500Z"
    assert parse_time(server_time(1700000000.123)) == pytest.approx(1700000000.123)
    assert parse_time("nonsense") is None
