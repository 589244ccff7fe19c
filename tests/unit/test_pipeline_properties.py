"""Property-based tests of the input pipeline: telnet filter -> line buffer -> sanitising.

Whatever bytes a member sends, split however the network likes, the others receive only
valid UTF-8 lines ending in CRLF, with no terminal controls in them, and nothing raises or
logs a failure. The pieces give the same result however their input is split.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chatroom.domain.charclasses import (
    BIDI_CONTROLS,
    BLANKS,
    INVISIBLE_FORMAT,
    INVISIBLE_MARKS,
    JOINERS,
)
from chatroom.lines.framing import TOO_LONG, LineBuffer, TooLong
from chatroom.lines.sanitize import clean
from chatroom.lines.telnet import STILL_HERE, TelnetFilter
from tests.unit.helpers import RELAXED, Server, parse_lines, serving, split_negotiation

# Bytes a hostile or careless client might send, as building blocks; random binary fills in.
PIECES = [
    b"\r", b"\x00", b"\t", b" ", b"\x7f", b"\x1b", b"\x1b[", b"\x1b[31m", b"\x1b]0;title\x07",
    b"\x1b]8;;x\x1b\\", b"\x1bP", b"\x1b\\", b"\x07", b"\x08", b"\x0c", b"\xff", b"\xff\xff",
    b"\xff\xfb\x01", b"\xff\xfd\x18", b"\xff\xfa\x18\x00xterm\xff\xf0", b"\xff\xfa", b"\xff\xf0",
    b"\xff\xf1", b"\xc2\x9b", b"\xc2\x85", b"\xc3", b"\x80", b"\xed\xa0\x80",
    b"\xf0\x9f\x99\x82", "é".encode(), "日本".encode(), "\u2028".encode(), "\ufeff".encode(),
    b"bob", b"hello", b"x" * 300, b"y" * 600,
    # what Debian's telnet sends: a timing mark, AYT, BINARY, and UTF-8 whose 0x9C became BRK
    b"\xff\xfd\x06", b"\xff\xf6", b"\xff\xfb\x00", b"\xe6\xff\xf3\xff\xfd\x06\xac",
    # issue 12, point 6: blanks, bidi controls, invisible characters
    b"\t\t", b" " * 40, "\u3000".encode(), "\u00a0".encode(), "\u3164".encode(),
    "\u2800".encode(), "\u034f".encode(), "\ufe0f".encode(), "\u200b".encode(),
    "\u200d".encode(), "\u200e".encode(), "\u202e".encode(), "\u2066".encode(),
    "\u00ad".encode(), "\U000e0041".encode(),
]
STARTS = [b"", b"", b"", b"/", b"//", b"/me ", b"/msg bob ", b"/msg BOB ", b"/msg alice ",
          b"/nick ", b"/who", b"/help", b"/x", b"/quit", b"\xff\xfd\x01/me ",
          b"/nick zed ", b"/nick Bob "]
ENDS = [b"\n", b"\r\n", b"\r\n", b"\r\r\n", b""]
TOKENS = PIECES + STARTS[3:] + ENDS

chunks = st.one_of(st.sampled_from(PIECES), st.binary(min_size=1, max_size=12))
lines = st.tuples(
    st.sampled_from(STARTS), st.lists(chunks, max_size=6).map(b"".join), st.sampled_from(ENDS)
).map(b"".join)
streams = st.lists(lines, max_size=12).map(b"".join)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return [p for p in pieces if p]


cut_lists = st.lists(st.integers(min_value=0, max_value=10_000), max_size=30)

# C0 (TAB too), DEL, ESC, C1; bidi controls and invisible format characters
FORBIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}{INVISIBLE_FORMAT}]")
# Three blanks in a row: the sanitiser leaves at most one, the "NICK: " before it another.
BLANK_RUN = re.compile(f"[{BLANKS}](?:[{INVISIBLE_MARKS}{JOINERS}]*[{BLANKS}]){{2}}")


def _check_safe(data: bytes) -> list[str]:
    """Every line ends in CRLF, is UTF-8, and holds no control, no bidi control, no
    invisible format character and no run of blanks."""
    lines = parse_lines(data)
    for line in lines:
        assert not FORBIDDEN.search(line), repr(line)
        assert not BLANK_RUN.search(line), repr(line)
    return lines


def _run(pieces: list[bytes], server: Server) -> tuple[bytes, bytes, bytes]:
    """Feed ``pieces`` from alice; return what alice, bob and carol were sent."""
    alice, bob, carol = server.members("alice", "bob", "carol")
    for piece in pieces:
        alice.feed(piece)
    server.flush()
    for _ in range(10_000):  # let flood control release everything it held
        protocol = alice.protocol
        if alice.lost or not (protocol.session.gate.held or protocol._held is not None):
            break
        # a quarter second at 4 lines/s: exact in binary floating point (see
        # test_protocol_limits.py, test_throttle_never_spins_at_one_instant)
        server.clock.advance(0.25)
    server.flush()
    alice.finish()
    server.flush()
    return alice.take_raw(), bob.take_raw(), carol.take_raw()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, cut_lists)
def test_whatever_a_member_sends_others_receive_only_clean_lines(
    data: bytes, cuts: list[int]
) -> None:
    with serving(max_line=512) as server:
        mine, to_bob, to_carol = _run(_split(data, cuts), server)
        text, negotiation = split_negotiation(mine)
        parse_lines(text)  # even the sender's own replies are well-formed
        if b"\xff" not in data:
            assert not negotiation  # only a client that negotiated first gets negotiation
        for received in (to_bob, to_carol):
            for line in _check_safe(received):
                assert line.startswith(("*** ", "* ", "[private] ")) or ": " in line, line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, cut_lists)
def test_what_others_receive_does_not_depend_on_how_input_is_split(
    data: bytes, cuts: list[int]
) -> None:
    with serving(max_line=512) as whole:
        expected = _settled(*_run([data] if data else [], whole))
    with serving(max_line=512) as split:
        assert _settled(*_run(_split(data, cuts), split)) == expected


def _settled(mine: bytes, to_bob: bytes, to_carol: bytes) -> tuple[bytes, ...]:
    """What does not depend on when each read came: telnet answers go out as each read is
    handled (so where they sit among the sender's lines does), the rest must not."""
    text, negotiation = split_negotiation(mine)
    return text.replace(STILL_HERE, b""), negotiation, to_bob, to_carol


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([*ENDS, b"\r", b"\x1b[1m", b"line", b"/me x", b"/msg bob y",
                                 b"/who", b"z" * 600]), max_size=120).map(b"".join),
       cut_lists)
def test_flood_control_delays_but_never_drops_or_reorders(
    data: bytes, cuts: list[int]
) -> None:
    with serving(max_line=512) as free:
        expected = _run([data] if data else [], free)
    with serving(RELAXED, max_line=512, rate=4.0, burst=3) as slowed:
        assert _run(_split(data, cuts), slowed) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, streams, cut_lists)
def test_telnet_ctrl_c_is_quit_after_the_lines_before_it(
    before: bytes, after: bytes, cuts: list[int]
) -> None:
    """Ctrl-C in Debian's telnet (``IAC IP IAC DO TIMING-MARK``, sent between lines) does
    what a ``/quit`` line there would; whatever follows it is not handled."""
    before += b"\n"
    telnet = TelnetFilter()
    # The newline ends a line (an IAC just before it would eat it as a command byte), and
    # no telnet command is left open: Ctrl-C comes on its own, between lines.
    assume(telnet.feed(before).endswith(b"\n"))
    assume(telnet.feed(b"x") == b"x")
    with serving(max_line=512) as quit_line:
        mine, *others = _run([before + b"/quit\n"], quit_line)
        expected = split_negotiation(mine)[0].replace(STILL_HERE, b""), *others
    with serving(max_line=512) as interrupted:
        mine, *others = _run(_split(before + b"\xff\xf4\xff\xfd\x06" + after, cuts), interrupted)
        text, negotiation = split_negotiation(mine)
        assert (text.replace(STILL_HERE, b""), *others) == expected
        assert b"\xff\xfb\x06" in negotiation  # the timing mark, answered


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_nickname_choice_from_any_bytes_is_safe(data: bytes) -> None:
    with serving(max_line=512) as server:
        (watcher,) = server.members("watcher")
        client = server.connect()
        client.feed(data.replace(b"\n", b"") + b"\r\n")  # one line: a nickname attempt
        server.flush()
        parse_lines(split_negotiation(client.take_raw())[0])
        for line in _check_safe(watcher.take_raw()):
            assert line.startswith("*** ")  # only joined / renamed / left notices
        if client.nick is not None:
            assert not FORBIDDEN.search(client.nick)
            assert client.nick[0].isalnum()


# -- the pieces ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(streams, cut_lists)
def test_telnet_filter_output_does_not_depend_on_splitting(
    data: bytes, cuts: list[int]
) -> None:
    assert _filtered(_split(data, cuts)) == _filtered([data])


def _filtered(pieces: list[bytes]) -> tuple[bytes, bytes, object]:
    """The data, the answers (but AYT's, one per read) and the command."""
    telnet = TelnetFilter()
    data = b"".join(telnet.feed(piece) for piece in pieces)
    return data, telnet.take_answer().replace(STILL_HERE, b""), telnet.next_command()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200).filter(lambda b: b"\xff" not in b))
def test_telnet_filter_passes_data_without_iac_untouched(data: bytes) -> None:
    assert TelnetFilter().feed(data) == data


def _all_lines(buffer: LineBuffer, pieces: list[bytes]) -> list[bytes | TooLong]:
    out: list[bytes | TooLong] = []
    for piece in pieces:
        buffer.feed(piece)
        while (line := buffer.next_line()) is not None:
            out.append(line)
        assert buffer.pending() <= buffer.max_line + 1
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"\n", b"\r\n", b"\r", b"a", b"bc", b"d" * 7, b"\xff"]),
                max_size=60).map(b"".join),
       cut_lists, st.integers(min_value=1, max_value=12))
def test_line_buffer_gives_the_same_lines_however_input_is_split(
    data: bytes, cuts: list[int], max_line: int
) -> None:
    whole = _all_lines(LineBuffer(max_line), [data])
    split = _all_lines(LineBuffer(max_line), _split(data, cuts))
    assert split == whole
    for line in whole:
        if line is not TOO_LONG:
            assert isinstance(line, bytes)
            assert b"\n" not in line and len(line) <= max_line


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), max_size=10))
def test_line_buffer_returns_every_short_line(lines: list[bytes]) -> None:
    buffer = LineBuffer(64)
    got = _all_lines(buffer, [line + b"\n" for line in lines])
    assert got == [line[:-1] if line.endswith(b"\r") else line for line in lines]


@settings(max_examples=200, deadline=None)
@given(streams)
def test_clean_removes_every_control_and_is_idempotent(data: bytes) -> None:
    text = clean(data)
    assert not FORBIDDEN.search(text)
    assert not BLANK_RUN.search(text)
    assert clean(text.encode("utf-8")) == text


def test_a_failure_inside_the_pipeline_drops_only_that_connection_and_is_caught(
    logged_failures: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log check the properties rely on does see a failure, and a failure costs only
    the connection it happened on."""
    with pytest.raises(AssertionError, match="logged failures"), serving() as server:
        alice, bob, carol = server.members("alice", "bob", "carol")

        def boom(*args: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(server.room, "act", boom)
        alice.send_lines(["/me breaks", "never handled"])
        assert alice.aborted
        alice.finish()
        bob.send("fine")
        server.flush()
        assert carol.lines() == ["*** alice left", "bob: fine"]
    assert len(logged_failures) == 1
    logged_failures.clear()
