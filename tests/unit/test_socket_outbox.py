"""SocketOutbox: bytes go straight to the socket, never ahead of what the transport holds.

A real socket pair (the kernel decides how much it takes) and a fake transport that only
records what it was handed: the drain signal is the test's to give, as Twisted gives it
(``resumeProducing`` once the transport's buffer is empty).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet.interfaces import ISSLTransport, ISystemHandle
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import alsoProvides, implementer

from chatroom.lines.outbox import GRACE, HARD_CAP_FACTOR, SocketOutbox, writable_socket


class FakeTransport:
    """What SocketOutbox uses of a transport, remembering each call."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def writeSequence(self, data: list[bytes]) -> None:
        self.written.extend(data)

    def take(self) -> bytes:
        data, self.written = b"".join(self.written), []
        return data


class Rig:
    def __init__(self, cap: int = 64 * 1024) -> None:
        self.ours, self.peer = socket.socketpair()
        self.ours.setblocking(False)
        self.peer.setblocking(False)
        self.transport = FakeTransport()
        self.clock = Clock()
        self.overflows: list[int] = []
        self.outbox = SocketOutbox(self.transport, self.ours, cap, self, self.clock)

    def overflowed(self, queued: int) -> None:
        self.overflows.append(queued)

    def fill_the_kernel(self) -> None:
        """Write until the kernel takes no more: the peer has stopped reading."""
        chunk = b"k" * 65536
        while True:
            try:
                self.ours.send(chunk)
            except BlockingIOError:
                return

    def received(self) -> bytes:
        data = b""
        while True:
            try:
                more = self.peer.recv(1 << 20)
            except BlockingIOError:
                return data
            if not more:
                return data
            data += more

    def close(self) -> None:
        self.ours.close()
        self.peer.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


def test_bytes_go_straight_to_the_socket(rig: Rig) -> None:
    rig.outbox.send(b"one\r\n")
    rig.outbox.send(b"two\r\n")
    assert rig.received() == b"one\r\ntwo\r\n"
    assert rig.transport.written == []
    assert rig.outbox.queued == 0


def test_what_the_kernel_refuses_goes_to_the_transport_and_later_bytes_wait_behind_it(
    rig: Rig,
) -> None:
    rig.fill_the_kernel()
    rig.outbox.send(b"first\r\n")
    assert rig.transport.take() == b"first\r\n"
    rig.outbox.send(b"second\r\n")
    rig.outbox.send(b"third\r\n")
    assert rig.transport.written == []  # not yet: the transport still holds "first"
    assert rig.outbox.queued == len(b"first\r\nsecond\r\nthird\r\n")
    drained = rig.received()
    assert drained.strip(b"k") == b""  # nothing of ours overtook the kernel's backlog
    rig.outbox.resumeProducing()  # the transport sent "first" and is empty again
    assert rig.received() == b"second\r\nthird\r\n"
    assert rig.transport.written == []
    assert rig.outbox.queued == 0


def test_a_partial_send_hands_only_the_rest_to_the_transport(rig: Rig) -> None:
    rig.fill_the_kernel()
    rig.received()  # room for some, not all, of what comes next
    big = bytes(range(256)) * 40000  # ~10 MB: more than any loopback buffer
    rig.outbox.send(big)
    (rest,) = rig.transport.written
    assert 0 < len(rest) < len(big)
    sent = rig.received()
    assert sent + rest == big


def test_a_reader_stuck_for_the_grace_period_is_given_up() -> None:
    rig = Rig(cap=8192)
    try:
        rig.fill_the_kernel()
        for _ in range(100):
            rig.outbox.send(b"x" * 100)
        assert rig.overflows == []
        rig.clock.advance(GRACE)
        assert rig.overflows == [10_000]
        assert rig.outbox.closed and rig.outbox.queued == 0
        rig.outbox.send(b"more")
        assert rig.outbox.queued == 0
    finally:
        rig.close()


def test_a_burst_that_drains_within_the_grace_is_not_a_slow_reader() -> None:
    rig = Rig(cap=8192)
    try:
        rig.fill_the_kernel()
        for _ in range(100):
            rig.outbox.send(b"x" * 100)
        rig.clock.advance(GRACE / 2)
        rig.received()
        rig.outbox.resumeProducing()
        rig.clock.advance(GRACE)
        assert rig.overflows == []
        assert rig.received() == b"x" * 9900  # the first 100 went to the transport
    finally:
        rig.close()


def test_past_the_hard_cap_at_once() -> None:
    rig = Rig(cap=1024)
    try:
        rig.fill_the_kernel()
        for _ in range(HARD_CAP_FACTOR * 1024 // 100 + 1):
            rig.outbox.send(b"x" * 100)
        assert len(rig.overflows) == 1
        assert rig.overflows[0] > HARD_CAP_FACTOR * 1024
    finally:
        rig.close()


def test_finish_hands_everything_to_the_transport(rig: Rig) -> None:
    rig.fill_the_kernel()
    rig.outbox.send(b"a\r\n")
    rig.outbox.send(b"b\r\n")
    rig.outbox.finish()
    rig.outbox.send(b"goodbye\r\n")
    assert rig.transport.take() == b"a\r\nb\r\ngoodbye\r\n"
    rig.received()
    rig.outbox.resumeProducing()  # a late drain signal changes nothing
    rig.outbox.send(b"after\r\n")
    assert rig.transport.take() == b"after\r\n"


def test_a_closing_connection_whose_peer_never_reads_is_still_cut() -> None:
    rig = Rig(cap=8192)
    try:
        rig.fill_the_kernel()
        for _ in range(100):  # 10 KB waiting: over the cap
            rig.outbox.send(b"x" * 100)
        rig.outbox.finish()  # /quit: the goodbye and the close wait behind it
        rig.outbox.send(b"goodbye\r\n")
        rig.clock.advance(GRACE)
        assert len(rig.overflows) == 1  # not kept open for as long as the peer likes
    finally:
        rig.close()


def test_a_closing_connection_that_goes_away_in_time_is_not_judged() -> None:
    rig = Rig(cap=8192)
    try:
        rig.fill_the_kernel()
        for _ in range(100):
            rig.outbox.send(b"x" * 100)
        rig.outbox.finish()
        rig.outbox.stopProducing()  # the transport sent it all and closed: connectionLost
        rig.clock.advance(GRACE)
        assert rig.overflows == []
    finally:
        rig.close()


def test_stop_producing_means_not_one_more_byte(rig: Rig) -> None:
    rig.outbox.stopProducing()
    rig.outbox.send(b"never")
    rig.outbox.resumeProducing()
    rig.outbox.send(b"never")
    assert rig.received() == b""
    assert rig.transport.written == []


def test_a_broken_socket_leaves_the_error_to_the_transport(rig: Rig) -> None:
    rig.peer.close()
    rig.outbox.send(b"into the void\r\n")
    assert rig.transport.take() == b"into the void\r\n"  # its write reports the loss


# -- which transports qualify ---------------------------------------------------------------


@implementer(ISystemHandle)
class Handled:
    def __init__(self, handle: object) -> None:
        self.handle = handle

    def getHandle(self) -> object:
        return self.handle


def test_a_plain_non_blocking_stream_socket_qualifies(rig: Rig) -> None:
    assert writable_socket(Handled(rig.ours)) is rig.ours


def test_tls_a_blocking_socket_a_datagram_socket_or_no_handle_do_not(rig: Rig) -> None:
    tls = Handled(rig.ours)
    alsoProvides(tls, ISSLTransport)  # what startTLS does to a TCP transport
    assert writable_socket(tls) is None
    assert writable_socket(StringTransport()) is None
    assert writable_socket(Handled(object())) is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setblocking(False)
        assert writable_socket(Handled(udp)) is None
    with socket.socket() as blocking:
        assert writable_socket(Handled(blocking)) is None


def test_after_a_drain_the_queue_goes_out_in_one_go_and_in_order(rig: Rig) -> None:
    rig.fill_the_kernel()
    rig.outbox.send(b"handed\r\n")
    lines = [f"line {i}\r\n".encode() for i in range(2000)]  # more pieces than one sendmsg takes
    for line in lines:
        rig.outbox.send(line)
    assert rig.transport.take() == b"handed\r\n"
    rig.received()
    rig.outbox.resumeProducing()
    assert rig.received() == b"".join(lines)
    assert rig.transport.written == [] and rig.outbox.queued == 0


def test_when_the_kernel_fills_again_only_one_piece_goes_to_the_transport() -> None:
    rig = Rig(cap=1 << 30)
    try:
        rig.fill_the_kernel()
        rig.outbox.send(b"first")
        pieces = [bytes([65 + i % 26]) * 100_000 for i in range(100)]  # 10 MB
        for piece in pieces:
            rig.outbox.send(piece)
        rig.transport.take()
        rig.received()
        rig.outbox.resumeProducing()
        (handed,) = rig.transport.written  # the piece the kernel stopped in, or its rest
        sent = rig.received()
        assert rig.outbox.queued == 10_000_000 - len(sent)
        assert sent + handed == b"".join(pieces)[: len(sent) + len(handed)]
    finally:
        rig.close()


def test_a_reader_that_drains_a_little_but_stays_over_the_cap_is_given_up() -> None:
    rig = Rig(cap=8192)
    try:
        rig.fill_the_kernel()
        for _ in range(400):
            rig.outbox.send(b"x" * 100)
        for _ in range(4):
            rig.clock.advance(GRACE / 5)
            rig.peer.recv(4096)  # reads a trickle: the kernel takes some, not all
            rig.outbox.resumeProducing()
            assert rig.overflows == []
        rig.clock.advance(GRACE / 5)
        assert len(rig.overflows) == 1
    finally:
        rig.close()
