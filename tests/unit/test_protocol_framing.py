"""PROTOCOL.md, "Framing and encoding", through a whole connection and piece by piece."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatroom.lines import render
from chatroom.lines.framing import TOO_LONG, LineBuffer
from chatroom.lines.sanitize import clean
from chatroom.lines.telnet import TelnetFilter
from tests.unit.helpers import Client, Server, serving, split_negotiation

IAC, SB, SE = b"\xff", b"\xfa", b"\xf0"
WILL, WONT, DO, DONT = b"\xfb", b"\xfc", b"\xfd", b"\xfe"
NOP = b"\xf1"


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


@pytest.fixture
def pair(server: Server) -> tuple[Client, Client]:
    alice, bob = server.members("alice", "bob")
    return alice, bob


def said(server: Server, sender: Client, receiver: Client, data: bytes) -> list[str]:
    """What ``receiver`` sees after ``sender`` sends the raw ``data``."""
    sender.feed(data)
    server.flush()
    return receiver.lines()


# -- line endings and packets -------------------------------------------------------------


@pytest.mark.parametrize("end", [b"\n", b"\r\n"])
def test_lf_and_crlf_both_end_a_line(
    server: Server, pair: tuple[Client, Client], end: bytes
) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"one" + end + b"two" + end) == ["alice: one", "alice: two"]


def test_mixed_line_endings_in_one_packet(server: Server, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"a\nb\r\nc\nd\r\n") == [
        "alice: a", "alice: b", "alice: c", "alice: d",
    ]


def test_incomplete_line_waits_for_its_end(server: Server, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"one\r\ntw") == ["alice: one"]
    assert said(server, alice, bob, b"o") == []
    assert said(server, alice, bob, b"\r") == []
    assert said(server, alice, bob, b"\n") == ["alice: two"]


def test_one_line_byte_by_byte(server: Server, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    alice.feed_bytewise("héllo wörld 日本\r\n".encode())
    server.flush()
    assert bob.lines() == ["alice: héllo wörld 日本"]


def test_nickname_byte_by_byte(server: Server) -> None:
    (alice,) = server.members("alice")
    client = server.connect()
    client.feed_bytewise("Zoë\r\n".encode())
    server.flush()
    assert client.nick == "Zoë"
    assert alice.lines() == ["*** Zoë joined"]


def test_trailing_cr_is_dropped(server: Server, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"hi\r\n") == ["alice: hi"]


@pytest.mark.parametrize(
    ("data", "seen"),
    [(b"a\rb\n", "ab"), (b"\rab\r\n", "ab"), (b"ab\r\r\n", "ab"), (b"a\r\rb\r\n", "ab")],
)
def test_bare_cr_inside_a_line_is_removed(
    server: Server, pair: tuple[Client, Client], data: bytes, seen: str
) -> None:
    alice, bob = pair
    assert said(server, alice, bob, data) == [f"alice: {seen}"]


# -- telnet negotiation ---------------------------------------------------------------------

NEGOTIATIONS = [
    IAC + WILL + b"\x01",
    IAC + WONT + b"\x03",
    IAC + DO + b"\x18",
    IAC + DONT + b"\x1f",
    IAC + SB + b"\x18\x00xterm-256color" + IAC + SE,
    IAC + SB + b"\x1f\x00\x50\x00\x18" + IAC + SE,  # NAWS 80x24
    IAC + SB + b"\x18" + IAC + IAC + b"x" + IAC + SE,  # an escaped 0xFF inside SB
    IAC + NOP,
    IAC + WILL + IAC,  # the option byte may be 0xFF too
]


@pytest.mark.parametrize("sequence", NEGOTIATIONS)
def test_telnet_negotiation_is_removed(
    server: Server, pair: tuple[Client, Client], sequence: bytes
) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"he" + sequence + b"llo\r\n") == ["alice: hello"]
    lines, _ = alice.lines_and_negotiation()  # answered, perhaps, but never echoed
    assert lines == []


@pytest.mark.parametrize("sequence", NEGOTIATIONS)
def test_telnet_negotiation_split_at_every_point_is_removed(sequence: bytes) -> None:
    data = b"he" + sequence + b"llo"
    for cut in range(len(data) + 1):
        for second in range(cut, len(data) + 1):
            telnet = TelnetFilter()
            out = telnet.feed(data[:cut]) + telnet.feed(data[cut:second])
            out += telnet.feed(data[second:])
            assert out == b"hello", (cut, second)


def test_telnet_negotiation_byte_by_byte_through_a_connection(
    server: Server, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    alice.feed_bytewise(b"".join(NEGOTIATIONS) + b"hi" + b"".join(NEGOTIATIONS) + b"\r\n")
    server.flush()
    assert bob.lines() == ["alice: hi"]
    assert alice.lines_and_negotiation()[0] == []


def test_telnet_negotiation_alone_on_a_line_is_an_empty_line(
    server: Server, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"".join(NEGOTIATIONS) + b"\r\n") == []
    assert alice.lines_and_negotiation()[0] == []


def test_telnet_negotiation_before_the_nickname(server: Server) -> None:
    client = server.connect()
    client.clear()
    client.feed(IAC + DO + b"\x01" + IAC + WILL + b"\x1f" + b"alice\r\n")
    assert client.nick == "alice"


def test_telnet_negotiation_is_never_text_in_a_nickname(server: Server) -> None:
    client = server.connect()
    client.feed(b"ali" + IAC + SB + b"\x18\x00vt100" + IAC + SE + b"ce\r\n")
    assert client.nick == "alice"


def test_telnet_iac_iac_is_removed(server: Server, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"hi" + IAC + IAC + b"there\r\n") == ["alice: hithere"]


def test_telnet_iac_iac_never_reaches_others_as_a_raw_byte(
    server: Server, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    alice.feed(b"hi" + IAC + IAC + b"there\r\n")
    server.flush()
    raw = bob.take_raw()
    assert b"\xff" not in raw
    raw.decode("utf-8")


# -- controls and ANSI escapes ----------------------------------------------------------------

C0_EXCEPT_TAB_LF_CR = [bytes([c]) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)]


@pytest.mark.parametrize("control", [*C0_EXCEPT_TAB_LF_CR, b"\x7f"], ids=lambda b: b.hex())
def test_c0_controls_and_del_are_removed(
    server: Server, pair: tuple[Client, Client], control: bytes
) -> None:
    alice, bob = pair
    # not an ASCII letter after the control: "ESC b" would be a whole escape sequence
    assert said(server, alice, bob, b"a" + control + "é\r\n".encode()) == ["alice: aé"]


def test_tab_becomes_a_space(server: Server, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"a\tb\r\n") == ["alice: a b"]


@pytest.mark.parametrize("c1", [chr(c) for c in range(0x80, 0xA0)], ids=lambda c: f"{ord(c):x}")
def test_c1_controls_are_removed(server: Server, pair: tuple[Client, Client], c1: str) -> None:
    alice, bob = pair
    assert said(server, alice, bob, f"a{c1}b\r\n".encode()) == ["alice: ab"]


@pytest.mark.parametrize(
    "escape",
    [
        b"\x1b[31m",
        b"\x1b[0m",
        b"\x1b[2J",
        b"\x1b[1;1H",
        b"\x1b[?25l",
        b"\x1b[38;5;196m",
        b"\x1b[ q",  # with an intermediate byte
        b"\x1b]0;owned\x07",  # OSC ended by BEL
        b"\x1b]0;owned\x1b\\",  # OSC ended by ST
        b"\x1b]8;;http://example.com\x1b\\",  # hyperlink
        b"\x1b]52;c;ZXZpbA==\x07",  # clipboard write
        b"\x1bPq#0;2;0;0;0\x1b\\",  # DCS (sixel)
        b"\x1b(B",
        b"\x1bc",  # full reset
        b"\x1b7",
        b"\x1b",  # lone ESC
    ],
)
def test_ansi_escapes_are_removed_whole(
    server: Server, pair: tuple[Client, Client], escape: bytes
) -> None:
    alice, bob = pair
    # after it, a character that cannot continue an escape ("ESC Z" is a sequence itself)
    assert said(server, alice, bob, b"A" + escape + "é\r\n".encode()) == ["alice: Aé"]


@pytest.mark.parametrize("cut", [b"\x1b[", b"\x1b[31", b"\x1b]0;title", b"\x1b]", b"\x1b"])
def test_escape_cut_off_by_the_end_of_the_line_is_removed(
    server: Server, pair: tuple[Client, Client], cut: bytes
) -> None:
    alice, bob = pair
    assert said(server, alice, bob, b"hi" + cut + b"\r\n") == ["alice: hi"]


def test_escape_split_across_packets_is_removed_whole(
    server: Server, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    alice.feed_bytewise(b"A\x1b[1;31mB\x1b]0;t\x07C\r\n")
    server.flush()
    assert bob.lines() == ["alice: ABC"]


def test_escapes_in_private_messages_and_actions_are_removed(
    server: Server, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    alice.send(b"/msg bob \x1b[2Jpsst\x07")
    alice.send(b"/me \x1b]0;x\x07waves\x00")
    server.flush()
    assert bob.lines() == ["[private] alice: psst", "* alice waves"]


# -- blanks, bidi and invisible characters (issue 12, point 6) ---------------------------------

FORGERIES = [
    b"ok" + b" " * 70 + b"*** bob left",  # on an 80-column terminal: a line of its own
    b"ok" + b"\t" * 10 + b"*** bob left",
    b"ok" + "\u3000".encode() * 35 + b"*** bob left",  # ideographic spaces, two columns each
    b"ok" + "\u00a0".encode() * 70 + b"*** bob left",
    b"ok" + "\u2003".encode() * 70 + b"*** bob left",  # em spaces
    b"ok" + "\u2800".encode() * 70 + b"*** bob left",  # the blank Braille pattern
    b"ok" + "\u3164".encode() * 70 + b"*** bob left",  # Hangul fillers
    b"ok" + " \u034f".encode() * 70 + b"*** bob left",  # space, CGJ: no two spaces in a row
    b"ok" + " \u200b".encode() * 70 + b"*** bob left",  # space, zero width space
    b"ok" + " \ufe0f".encode() * 70 + b"*** bob left",  # space, variation selector
    b"ok" + b" \x1b[0m" * 70 + b"*** bob left",  # space, an escape that is removed
    b"ok \t \xc2\xa0 \xe3\x80\x80 \xe2\x80\x8b \t*** bob left",  # a mix
]


@pytest.mark.parametrize("data", FORGERIES, ids=range(len(FORGERIES)))
def test_no_run_of_blanks_can_push_text_onto_a_line_of_its_own(
    server: Server, pair: tuple[Client, Client], data: bytes
) -> None:
    alice, bob = pair
    assert said(server, alice, bob, data + b"\r\n") == ["alice: ok *** bob left"]


@pytest.mark.parametrize(
    "mark",
    ["\u200e", "\u200f", "\u061c", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
     "\u2066", "\u2067", "\u2068", "\u2069"],
    ids=lambda c: f"{ord(c):x}",
)
def test_bidi_controls_are_removed(server: Server, pair: tuple[Client, Client], mark: str) -> None:
    alice, bob = pair
    assert said(server, alice, bob, f"a{mark}b\r\n".encode()) == ["alice: ab"]


@pytest.mark.parametrize(
    "invisible",
    ["\u00ad", "\u2060", "\ufeff", "\u200b", "\u180e", "\u2061", "\u2064", "\u206a",
     "\ufff9", "\ufffb", "\U0001bca0", "\U0001d173", "\U000e0001", "\U000e0041"],
    ids=lambda c: f"{ord(c):x}",
)
def test_invisible_format_characters_are_removed(
    server: Server, pair: tuple[Client, Client], invisible: str
) -> None:
    alice, bob = pair
    assert said(server, alice, bob, f"a{invisible}b\r\n".encode()) == ["alice: ab"]


@pytest.mark.parametrize(
    "text",
    [
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467 here",  # ZWJ sequence
        "love \u2764\ufe0f",  # a variation selector picks the emoji form
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f flag",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian needs ZWNJ
        "\u0915\u094d\u200d\u0937",  # Devanagari half form with ZWJ
        "Bonjour\u202f! 50\u00a0km, \u65e5\u672c\u3000\u8a9e",  # single spaces of any kind
        "one space between words, Zo\u00eb",
    ],
)
def test_text_that_needs_its_invisible_characters_keeps_them(
    server: Server, pair: tuple[Client, Client], text: str
) -> None:
    alice, bob = pair
    assert said(server, alice, bob, text.encode() + b"\r\n") == [f"alice: {text}"]


def test_a_line_of_only_blanks_is_not_said(server: Server, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    alice.send_lines(["\t\t", " \u3000 ", "\u3164"])
    assert said(server, alice, bob, b"next\r\n") == ["alice: next"]


# -- UTF-8 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [b"\xc3(", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
     b"\xfe", b"\xf8\x88\x80\x80\x80"],
    ids=lambda b: b.hex(),
)
def test_invalid_utf8_never_reaches_others(
    server: Server, pair: tuple[Client, Client], bad: bytes
) -> None:
    alice, bob = pair
    alice.feed(b"x" + bad + b"y\r\n")
    server.flush()
    raw = bob.take_raw()
    text = raw.decode("utf-8")  # strictly valid
    assert text.startswith("alice: x") and text.endswith("y\r\n")
    assert "\ufffd" in text  # replaced (rejecting would also be allowed, and then no line)
    assert not alice.closing
    assert said(server, alice, bob, b"still here\r\n") == ["alice: still here"]


def test_utf8_split_across_packets_is_joined(server: Server, pair: tuple[Client, Client]) -> None:
    alice, bob = pair
    data = "日本語 🙂\r\n".encode()
    for i in range(len(data)):
        alice.feed(data[i : i + 1])
    server.flush()
    assert bob.lines() == ["alice: 日本語 🙂"]


# -- output -----------------------------------------------------------------------------------


def test_every_output_line_ends_in_crlf_and_is_utf8(
    server: Server, pair: tuple[Client, Client]
) -> None:
    alice, bob = pair
    for data in [b"hi\n", b"/who\n", b"/help\n", b"/nope\n", b"/msg zed x\n", b"\xff\xfe\n",
                 b"\xc3\n", b"/nick \xc3\xa9\xff\n", b"/me \x9b\n"]:
        alice.feed(data)
    server.flush()
    for client in (alice, bob):
        # alice's IAC DONT LF made her a telnet: she alone may get negotiation, between lines
        raw, negotiation = split_negotiation(client.take_raw())
        assert bool(negotiation) == (client is alice)
        assert raw.endswith(b"\r\n")
        assert raw.count(b"\n") == raw.count(b"\r\n")
        raw.decode("utf-8")


def test_render_line_never_fails_and_ends_in_crlf() -> None:
    data = render.line("lone surrogate \ud800 here")
    assert data.endswith(b"\r\n")
    data.decode("utf-8")


# -- the pieces on their own ---------------------------------------------------------------


def test_line_buffer_hands_out_lines_one_at_a_time() -> None:
    buffer = LineBuffer(16)
    buffer.feed(b"a\r\nbb\ncc")
    assert buffer.next_line() == b"a"
    assert buffer.next_line() == b"bb"
    assert buffer.next_line() is None
    assert buffer.pending() == 2
    buffer.feed(b"c\r\n")
    assert buffer.next_line() == b"ccc"
    assert buffer.pending() == 0


def test_line_buffer_limit_is_exclusive_of_the_line_ending() -> None:
    buffer = LineBuffer(4)
    buffer.feed(b"abcd\r\nabcde\r\nabcd\n")
    assert buffer.next_line() == b"abcd"
    assert buffer.next_line() is TOO_LONG
    assert buffer.next_line() == b"abcd"


def test_telnet_filter_passes_text_untouched() -> None:
    text = "plain text, ünïcödé\r\n".encode()
    assert TelnetFilter().feed(text) == text


def test_clean_keeps_printable_text() -> None:
    assert clean("Zoë says hi 日本 🙂 !".encode()) == "Zoë says hi 日本 🙂 !"
