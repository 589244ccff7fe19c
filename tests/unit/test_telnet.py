"""Real telnet never goes deaf: what Debian's telnet sends, and what the server answers.

The byte sequences are the ones Debian's telnet (inetutils 2.4) was seen to send to a port
other than 23: nothing at connect; on Ctrl-C ``IAC IP IAC DO TIMING-MARK``; and, until it
sends BINARY, a typed byte whose low seven bits are a terminal key turned into that key's
command (``本`` = E6 9C AC, whose 0x9C is Ctrl-\\, arrives as E6 IAC BRK IAC DO TM AC).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatroom.lines.outbox import Outbox
from chatroom.lines.telnet import Command, TelnetFilter
from tests.unit.helpers import Server, serving

IAC, IP, BRK, AO, AYT, SUSP, NOP = b"\xff", b"\xf4", b"\xf3", b"\xf5", b"\xf6", b"\xed", b"\xf1"
WILL, WONT, DO, DONT = b"\xfb", b"\xfc", b"\xfd", b"\xfe"
BINARY, ECHO, TM, SGA, NAWS = b"\x00", b"\x01", b"\x06", b"\x03", b"\x1f"

SIGMA_U = "\u03c3\u0443"
"""Greek sigma and Cyrillic u: CF 83 D1 83, so two Ctrl-C's to a telnet before BINARY."""

CTRL_C = IAC + IP + IAC + DO + TM
"""What Debian's telnet sends for Ctrl-C: interrupt, then "tell me when you got that"."""

OFFER = IAC + DO + BINARY
"""The server's request, once a client shows it speaks telnet, that it send 8-bit bytes as
typed."""


def mangled(text: str) -> bytes:
    """``text`` as Debian's telnet sends it before BINARY (stty's default keys)."""
    keys = {0x83: IP, 0x8F: AO, 0x9A: SUSP, 0x9C: BRK}
    return b"".join(
        IAC + keys[byte] + IAC + DO + TM if byte in keys else bytes((byte,))
        for byte in text.encode()
    )


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


# -- timing mark: the answer that keeps telnet listening ----------------------------------


def test_a_timing_mark_is_answered(server: Server) -> None:
    (alice,) = server.members("alice")
    alice.feed(IAC + DO + TM)
    assert alice.lines_and_negotiation() == ([], OFFER + IAC + WILL + TM)


def test_every_timing_mark_is_answered(server: Server) -> None:
    (alice,) = server.members("alice")
    alice.feed(IAC + BRK + IAC + DO + TM)
    alice.feed(IAC + SUSP + IAC + DO + TM + IAC + AO + IAC + DO + TM)
    assert alice.lines_and_negotiation() == ([], OFFER + (IAC + WILL + TM) * 3)


def test_a_timing_mark_split_byte_by_byte_is_answered(server: Server) -> None:
    client = server.connect()
    client.clear()
    client.feed_bytewise(IAC + DO + TM)
    assert client.lines_and_negotiation() == ([], OFFER + IAC + WILL + TM)


def test_after_a_break_output_keeps_coming(server: Server) -> None:
    """Ctrl-\\ (IAC BRK) is ignored, but its timing mark is answered; then a line said
    afterwards reaches the member as usual."""
    alice, bob = server.members("alice", "bob")
    alice.feed(IAC + BRK + IAC + DO + TM)
    bob.send("still there?")
    server.flush()
    assert alice.lines_and_negotiation() == (["bob: still there?"], OFFER + IAC + WILL + TM)
    assert not alice.closing


def test_the_answer_waits_behind_output_already_on_its_way(server: Server) -> None:
    """A transport that cannot take more pauses the outbox; the answer queues behind what
    waits there, so it never overtakes, or splits, a line."""
    alice, bob = server.members("alice", "bob")
    outbox = alice.protocol.outbox
    assert isinstance(outbox, Outbox)  # a StringTransport has no socket to write to
    outbox.pauseProducing()
    bob.send("/msg alice first")
    server.flush()
    alice.feed(IAC + DO + TM)
    assert alice.take_raw() == b""
    outbox.resumeProducing()
    assert alice.take_raw() == b"[private] bob: first\r\n" + OFFER + IAC + WILL + TM


def test_the_answer_goes_ahead_of_room_lines_not_yet_written(server: Server) -> None:
    """Room lines wait for the end of the reactor's turn; the answer does not. Telnet throws
    away what comes before the answer, so it goes as soon as it can: between lines."""
    alice, bob = server.members("alice", "bob")
    bob.send("said in the same turn")
    alice.feed(IAC + DO + TM)
    server.flush()
    assert alice.take_raw() == OFFER + IAC + WILL + TM + b"bob: said in the same turn\r\n"


# -- Ctrl-C: leave, as /quit does --------------------------------------------------------


def test_ctrl_c_leaves_like_quit(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.feed(CTRL_C)
    server.flush()
    assert alice.lines_and_negotiation() == (["*** goodbye, alice"], OFFER + IAC + WILL + TM)
    assert alice.closing and not alice.aborted  # a clean close, after the goodbye
    assert bob.lines() == ["*** alice left"]
    alice.finish()
    server.flush()
    assert bob.lines() == []  # announced once


def test_ctrl_c_while_choosing_a_nickname_says_goodbye(server: Server) -> None:
    client = server.connect()
    client.clear()
    client.feed(CTRL_C)
    assert client.lines_and_negotiation() == (["*** goodbye"], OFFER + IAC + WILL + TM)
    assert client.closing


def test_lines_before_ctrl_c_are_handled_and_nothing_after(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.feed(b"one\r\ntwo\r\nhalf-typ" + CTRL_C + b"three\r\n")
    server.flush()
    assert bob.lines() == ["alice: one", "alice: two", "*** alice left"]


def test_ctrl_c_waits_behind_lines_held_by_flood_control() -> None:
    with serving(rate=1.0, burst=1) as server:
        alice, bob = server.members("alice", "bob")
        server.clock.advance(1.0)  # a full allowance: one line now, one a second
        alice.feed(b"one\r\ntwo\r\n" + CTRL_C)
        server.flush()
        assert bob.lines() == ["alice: one"]
        assert not alice.closing
        server.clock.advance(1.0)
        server.flush()
        assert bob.lines() == ["alice: two"]
        server.clock.advance(1.0)
        server.flush()
        assert bob.lines() == ["*** alice left"]
        assert alice.closing


def test_abort_process_leaves_too(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.feed(IAC + b"\xee")  # IAC ABORT: telnet's "send abort"
    server.flush()
    assert bob.lines() == ["*** alice left"]


# -- UTF-8 that telnet turned into keys --------------------------------------------------


@pytest.mark.parametrize("text", ["日本", "Grüße 日本 🎉", SIGMA_U, "Ώ Ě ď ă", "本本"])
def test_utf8_typed_before_binary_arrives_whole(server: Server, text: str) -> None:
    alice, bob = server.members("alice", "bob")
    data = mangled(text)
    assert IAC in data
    alice.feed(data + b"\r\n")
    server.flush()
    assert bob.lines() == [f"alice: {text}"]
    lines, negotiation = alice.lines_and_negotiation()
    assert lines == []  # not a goodbye: 0x83 in a character is not Ctrl-C
    assert negotiation == OFFER + (IAC + WILL + TM) * data.count(IAC + DO + TM)


def test_utf8_typed_before_binary_arrives_whole_however_it_is_split(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    data = mangled("σ本") + b"\r\n"
    for cut in range(1, len(data)):
        alice.feed(data[:cut])
        alice.feed(data[cut:])
    server.flush()
    assert bob.lines() == ["alice: σ本"] * (len(data) - 1)


def test_utf8_in_a_nickname_arrives_whole(server: Server) -> None:
    client = server.connect()
    client.feed(mangled("日本") + b"\r\n")
    assert client.nick == "日本"


def test_a_key_between_characters_is_a_key(server: Server) -> None:
    """Only inside a character does IAC IP stand for a byte: after a whole one it is Ctrl-C."""
    alice, bob = server.members("alice", "bob")
    alice.feed("本".encode() + CTRL_C)
    server.flush()
    assert bob.lines() == ["*** alice left"]


def test_once_binary_is_agreed_nothing_is_put_back() -> None:
    telnet = TelnetFilter()
    assert telnet.feed(IAC + WILL + BINARY) == b""  # it offers: agreed
    assert telnet.take_answer() == IAC + DO + BINARY
    assert telnet.feed(b"\xe6" + IAC + BRK + b"\x9c\xac") == "本".encode()
    assert telnet.feed(b"\xcf" + IAC + IP) == b"\xcf"
    assert telnet.next_command() is Command.INTERRUPT


# -- negotiation ----------------------------------------------------------------------------


def test_binary_is_offered_once_to_a_client_that_negotiated(server: Server) -> None:
    client = server.connect()
    client.clear()
    client.feed(IAC + NOP)
    assert client.lines_and_negotiation() == ([], OFFER)
    client.feed(IAC + WILL + BINARY)  # agreed: no answer to an answer
    client.feed(IAC + NOP + IAC + WILL + BINARY)
    assert client.lines_and_negotiation() == ([], b"")
    client.feed("日本\n".encode())  # binary telnet ends lines with a bare LF
    assert client.nick == "日本"


def test_a_client_that_offers_binary_first_is_not_asked_again() -> None:
    telnet = TelnetFilter()
    telnet.feed(IAC + WILL + BINARY + IAC + DO + BINARY + IAC + DO + BINARY)
    assert telnet.take_answer() == IAC + DO + BINARY + IAC + WILL + BINARY
    telnet.feed(IAC + DONT + BINARY + IAC + WONT + BINARY + IAC + WONT + BINARY)
    assert telnet.take_answer() == IAC + WONT + BINARY + IAC + DONT + BINARY


def test_a_refused_offer_is_not_repeated() -> None:
    telnet = TelnetFilter()
    telnet.feed(IAC + AYT)
    assert telnet.take_answer().startswith(OFFER)
    telnet.feed(IAC + WONT + BINARY + IAC + NOP + IAC + DO + TM)
    assert telnet.take_answer() == IAC + WILL + TM


@pytest.mark.parametrize(("asked", "refusal"), [
    (IAC + DO + SGA, IAC + WONT + SGA),  # line by line suits a chat: no character mode
    (IAC + DO + ECHO, IAC + WONT + ECHO),
    (IAC + WILL + NAWS, IAC + DONT + NAWS),
    (IAC + WILL + b"\x18", IAC + DONT + b"\x18"),  # TTYPE
    (IAC + WILL + b"\x22", IAC + DONT + b"\x22"),  # LINEMODE
    (IAC + WILL + TM, IAC + DONT + TM),
])
def test_other_options_are_refused(asked: bytes, refusal: bytes) -> None:
    telnet = TelnetFilter()
    telnet.feed(asked)
    assert telnet.take_answer() == OFFER + refusal


def test_turning_off_what_is_off_needs_no_answer() -> None:
    telnet = TelnetFilter()
    telnet.feed(IAC + NOP)
    telnet.take_answer()
    telnet.feed(IAC + WONT + SGA + IAC + DONT + ECHO + IAC + DONT + TM + IAC + DONT + BINARY)
    assert telnet.take_answer() == b""


def test_are_you_there_gets_a_line(server: Server) -> None:
    (alice,) = server.members("alice")
    alice.feed(IAC + AYT)
    assert alice.lines_and_negotiation() == (["*** yes, still here"], OFFER)


def test_a_burst_of_are_you_there_gets_one_line_per_read(server: Server) -> None:
    (alice,) = server.members("alice")
    alice.feed((IAC + AYT) * 1000)
    assert alice.lines_and_negotiation() == (["*** yes, still here"], OFFER)


def test_nc_users_get_nothing_but_lines(server: Server) -> None:
    """Bytes that telnet would have turned into keys, from a client that never sent IAC:
    text as before, and no negotiation."""
    alice, bob = server.members("alice", "bob")
    alice.feed(f"{SIGMA_U} 日本 Ώ\r\n".encode() + b"\x83\x9c\x03\x1c\r\n")
    server.flush()
    assert alice.take_raw() == b""
    assert bob.lines() == [f"alice: {SIGMA_U} 日本 Ώ", "alice: \ufffd\ufffd"]
