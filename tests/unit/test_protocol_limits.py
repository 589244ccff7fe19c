"""PROTOCOL.md, "Limits and misbehaving clients" and "Stopping", with chatroom/limits.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.internet import error as net_error
from twisted.internet.task import Clock

from chatroom.limits import DEFAULTS, MAX_LINE, MIN_LINE
from chatroom.lines.outbox import GRACE, HARD_CAP_FACTOR, Outbox
from chatroom.throttle import TokenBucket
from tests.unit.helpers import RELAXED, Client, Server, serving


@pytest.fixture
def server() -> Iterator[Server]:
    with serving(max_line=512) as s:
        yield s


def test_defaults_are_within_the_documented_bounds() -> None:
    assert MIN_LINE <= DEFAULTS.max_line <= MAX_LINE
    assert MIN_LINE >= 512 and MAX_LINE <= 64 * 1024
    assert DEFAULTS.idle_timeout == 0  # off by default
    assert DEFAULTS.shutdown_grace < 5  # the process must exit within 5 seconds
    assert DEFAULTS.rate > 0 and DEFAULTS.burst >= 1 and DEFAULTS.max_out > 0


# -- long lines ---------------------------------------------------------------------------


def test_line_at_the_limit_is_fine(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(b"x" * 512)
    server.flush()
    assert bob.lines() == ["alice: " + "x" * 512]
    assert alice.lines() == []


@pytest.mark.parametrize("size", [513, 600, 5000, 100_000])
def test_over_long_line_is_an_error_and_never_broadcast(server: Server, size: int) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send(b"x" * size)
    server.flush()
    assert alice.lines() == ["! line too long (512 bytes max)"]
    assert bob.lines() == []
    alice.send("next line works")
    server.flush()
    assert bob.lines() == ["alice: next line works"]


def test_limit_counts_bytes_not_characters(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("é" * 257)  # 514 bytes
    server.flush()
    assert alice.lines() == ["! line too long (512 bytes max)"]
    assert bob.lines() == []


def test_over_long_line_byte_by_byte_gets_one_error_and_no_part_is_broadcast(
    server: Server,
) -> None:
    alice, bob = server.members("alice", "bob")
    alice.feed_bytewise(b"y" * 2000 + b"\r\nafter\r\n")
    server.flush()
    assert alice.lines() == ["! line too long (512 bytes max)"]
    assert bob.lines() == ["alice: after"]


def test_rest_of_an_over_long_line_is_discarded_not_read_as_lines(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.feed(b"z" * 600)
    alice.feed(b"/quit")  # still the same (over-long) line: not a command
    alice.feed(b" more\r\nreal line\r\n")
    server.flush()
    assert alice.lines() == ["! line too long (512 bytes max)"]
    assert not alice.closing
    assert bob.lines() == ["alice: real line"]


def test_lines_around_an_over_long_line_in_one_packet_are_kept(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.feed(b"before\r\n" + b"q" * 1000 + b"\r\nafter\r\n")
    server.flush()
    assert bob.lines() == ["alice: before", "alice: after"]
    assert alice.lines() == ["! line too long (512 bytes max)"]


def test_endless_bytes_without_newline_cost_bounded_memory(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    for _ in range(2000):  # 8 MB in 4 KiB packets
        alice.feed(b"w" * 4096)
        assert alice.protocol._lines.pending() <= 512 + 2
    alice.feed(b"\r\nok\r\n")
    server.flush()
    assert alice.lines() == ["! line too long (512 bytes max)"]
    assert bob.lines() == ["alice: ok"]


def test_endless_bytes_while_choosing_cost_bounded_memory(server: Server) -> None:
    client = server.connect()
    for _ in range(500):
        client.feed(b"n" * 4096)
        assert client.protocol._lines.pending() <= 512 + 2
    client.feed(b"\r\nalice\r\n")
    assert client.nick == "alice"


def test_over_long_nickname_line_gets_an_error_then_a_prompt(server: Server) -> None:
    client = server.connect()
    client.clear()
    client.send(b"n" * 1000)
    lines = client.lines()
    assert lines[0].startswith("! ")
    assert "nickname" in lines[-1]


# -- flood control -------------------------------------------------------------------------


@pytest.fixture
def flood() -> Iterator[Server]:
    with serving(RELAXED, rate=2.0, burst=5) as s:
        yield s


def _advance_until_drained(server: Server, client: Client, limit: int = 1000) -> None:
    for _ in range(limit):
        if not client.protocol.session.gate.held and client.protocol._held is None:
            return
        server.clock.advance(0.25)  # exact in binary: see test_throttle_never_spins_...
    raise AssertionError("flood control never released the client")


def test_flood_pauses_reading_then_resumes_and_drops_nothing(flood: Server) -> None:
    alice, bob = flood.members("alice", "bob")
    flood.clock.advance(10)  # refill alice's bucket after the nickname
    sent = [f"line {i}" for i in range(30)]
    alice.send_lines(sent)
    flood.flush()
    first = bob.lines()
    assert first == [f"alice: {t}" for t in sent[:5]]
    assert alice.transport.producerState == "paused"
    flood.clock.advance(0.5)  # one token at 2 lines/s
    flood.flush()
    assert bob.lines() == ["alice: line 5"]
    _advance_until_drained(flood, alice)
    flood.flush()
    assert [*first, "alice: line 5", *bob.lines()] == [f"alice: {t}" for t in sent]
    assert alice.transport.producerState == "producing"
    assert not alice.closing


def test_flood_keeps_order_with_data_arriving_while_paused(flood: Server) -> None:
    alice, bob = flood.members("alice", "bob")
    flood.clock.advance(10)
    alice.send_lines([f"a{i}" for i in range(10)])
    assert alice.transport.producerState == "paused"
    alice.send_lines([f"b{i}" for i in range(10)])  # a transport may still deliver a bit
    _advance_until_drained(flood, alice)
    flood.flush()
    assert bob.lines() == [f"alice: a{i}" for i in range(10)] + [
        f"alice: b{i}" for i in range(10)
    ]


def test_flooder_does_not_slow_anyone_else(flood: Server) -> None:
    alice, bob, carol = flood.members("alice", "bob", "carol")
    flood.clock.advance(10)
    alice.send_lines([f"spam {i}" for i in range(50)])
    flood.flush()
    carol.clear()
    bob.send("I am not slowed down")
    flood.flush()
    assert carol.lines() == ["bob: I am not slowed down"]
    assert bob.transport.producerState == "producing"


def test_flooder_closing_while_paused_is_announced_once(flood: Server) -> None:
    alice, bob = flood.members("alice", "bob")
    alice.send_lines([f"x{i}" for i in range(50)])
    flood.flush()
    bob.clear()
    alice.lose()
    flood.clock.advance(100)
    flood.flush()
    assert bob.lines() == ["*** alice left"]


def test_flood_control_applies_while_choosing(flood: Server) -> None:
    client = flood.connect()
    client.send_lines(["_bad"] * 20 + ["alice"])
    assert client.transport.producerState == "paused"
    assert client.nick is None
    _advance_until_drained(flood, client)
    assert client.nick == "alice"


BUG_THROTTLE_SPIN = (
    "BUG: TokenBucket.wait() can return a delay so small (1e-17) that "
    "clock.seconds() + wait == clock.seconds() while take() still fails, so _throttle "
    "reschedules itself at the same instant forever: a hang under task.Clock, a busy "
    "loop on a real reactor until its clock ticks"
)


def test_a_token_is_there_after_waiting_as_long_as_wait_says() -> None:
    clock = Clock()
    bucket = TokenBucket(20.0, 3, clock)
    for _ in range(6):
        clock.advance(0.05)
        while bucket.take():
            pass
    delay = bucket.wait()
    clock.advance(delay)
    assert bucket.take(), f"no token after waiting {delay!r}"


def test_throttle_never_spins_at_one_instant() -> None:
    with serving(RELAXED, rate=20.0, burst=3) as s:
        alice, bob = s.members("alice", "bob")
        alice.send_lines([f"l{i}" for i in range(40)])
        for _ in range(100):
            s.clock.advance(0.05)
        s.flush()
        assert bob.lines() == [f"alice: l{i}" for i in range(40)]


# -- a client that stops reading ---------------------------------------------------------------


def test_slow_reader_is_dropped_past_max_out_and_announced() -> None:
    with serving(max_out=8192) as s:
        alice, bob, carol = s.members("alice", "bob", "carol")
        assert isinstance(bob.protocol.outbox, Outbox)
        bob.protocol.outbox.pauseProducing()  # the kernel buffer is full: bob stopped reading
        sent = []
        for i in range(100):  # 10 KB: over the cap, under the hard cap
            text = f"{i:04d} " + "x" * 95
            sent.append(text)
            alice.send(text)
            s.flush()
        assert not bob.aborted  # one busy moment is not yet a slow reader
        s.clock.advance(GRACE)
        assert bob.aborted, "never dropped"
        assert bob.protocol.outbox.queued == 0
        lines = carol.lines()
        assert lines == [f"alice: {t}" for t in sent] + ["*** bob left"]
        assert alice.lines() == ["*** bob left"]
        assert "bob" not in s.room.members()
        bob.finish()
        s.flush()
        assert carol.lines() == [] and alice.lines() == []  # once only
        assert s.join("bob").nick == "bob"


def test_queue_past_the_hard_cap_is_cut_at_once() -> None:
    with serving(max_out=8192) as s:
        alice, bob = s.members("alice", "bob")
        assert isinstance(bob.protocol.outbox, Outbox)
        bob.protocol.outbox.pauseProducing()
        for i in range(HARD_CAP_FACTOR * 8192 // 100 + 10):
            alice.send(f"{i:04d} " + "x" * 95)
            s.flush()
            if bob.aborted:
                break
        assert bob.aborted
        assert alice.lines() == ["*** bob left"]


def test_a_burst_over_the_cap_that_drains_in_time_is_not_a_slow_reader() -> None:
    with serving(max_out=8192) as s:
        alice, bob = s.members("alice", "bob")
        assert isinstance(bob.protocol.outbox, Outbox)
        bob.protocol.outbox.pauseProducing()  # one busy turn: the transport's buffer is full
        for i in range(100):
            alice.send(f"{i:04d} " + "x" * 95)
        s.flush()
        s.clock.advance(GRACE / 2)
        bob.protocol.outbox.resumeProducing()  # the next turns drained it to the kernel
        s.clock.advance(GRACE)
        assert not bob.aborted
        assert len(bob.lines()) == 100


def test_reader_that_catches_up_gets_everything_in_order() -> None:
    with serving(max_out=8192) as s:
        alice, bob = s.members("alice", "bob")
        assert isinstance(bob.protocol.outbox, Outbox)
        bob.protocol.outbox.pauseProducing()
        for i in range(50):
            alice.send(f"m{i}")
            s.flush()
        assert bob.lines() == []
        bob.protocol.outbox.resumeProducing()
        assert bob.lines() == [f"alice: m{i}" for i in range(50)]
        assert not bob.closing


def test_quit_unregisters_the_outbox_so_the_close_can_complete() -> None:
    with serving(max_out=8192) as s:
        _alice, bob = s.members("alice", "bob")
        assert isinstance(bob.protocol.outbox, Outbox)
        bob.protocol.outbox.pauseProducing()  # a paused producer would hold a TLS close up
        bob.send("/quit")
        s.flush()
        assert bob.transport.producer is None
        assert bob.closing and not bob.aborted


def test_a_member_who_quits_but_never_reads_the_backlog_is_still_cut() -> None:
    with serving(max_out=8192) as s:
        alice, bob = s.members("alice", "bob")
        assert isinstance(bob.protocol.outbox, Outbox)
        bob.protocol.outbox.pauseProducing()  # bob stopped reading
        for i in range(90):  # 9 KB: over the cap, under the hard cap
            alice.send(f"{i:04d} " + "x" * 95)
            s.flush()
        bob.send("/quit")
        s.flush()
        assert bob.closing and not bob.aborted
        s.clock.advance(GRACE)
        assert bob.aborted  # not held open by a peer that never reads its goodbye


def test_dropped_member_says_nothing_more() -> None:
    with serving(max_out=4096, burst=500) as s:
        alice, bob = s.members("alice", "bob")
        assert isinstance(alice.protocol.outbox, Outbox)
        alice.protocol.outbox.pauseProducing()
        # /help answers ~600 bytes: 200 of them pass the hard cap within the packet
        alice.send_lines(["/help"] * 200 + ["said after being dropped", "/nick ghost"])
        s.flush()
        assert alice.aborted
        assert bob.lines() == ["*** alice left"]


# -- timeouts ---------------------------------------------------------------------------------


def test_nick_timeout_closes_a_silent_chooser_with_an_error() -> None:
    with serving(nick_timeout=10.0) as s:
        (alice,) = s.members("alice")
        client = s.connect()
        client.clear()
        s.clock.advance(9.9)
        assert not client.closing
        client.send("_bad")  # a refused attempt does not restart the clock
        client.clear()
        s.clock.advance(0.2)
        (line,) = client.lines()
        assert line.startswith("! ") and "nickname" in line
        assert client.closing
        client.finish()
        s.flush()
        assert alice.lines() == []


def test_nick_timeout_is_cancelled_when_the_chooser_closes() -> None:
    with serving(nick_timeout=10.0) as s:
        client = s.connect()
        client.lose()
        assert s.clock.getDelayedCalls() == []


def test_nick_timeout_is_cancelled_on_join() -> None:
    with serving(nick_timeout=10.0) as s:
        alice = s.join("alice")
        s.clock.advance(1000)
        assert not alice.closing
        assert alice.lines() == []


def test_idle_timeout_is_off_by_default() -> None:
    with serving(RELAXED, idle_timeout=DEFAULTS.idle_timeout) as s:
        alice, bob = s.members("alice", "bob")
        s.clock.advance(365 * 24 * 3600)
        s.flush()
        assert not alice.closing and not bob.closing
        assert alice.lines() == [] and bob.lines() == []


def test_idle_timeout_drops_a_silent_member_and_announces_it_once() -> None:
    with serving(idle_timeout=30.0) as s:
        alice, bob = s.members("alice", "bob")
        for _ in range(5):
            s.clock.advance(20)
            alice.send("still here")
        s.flush()
        assert not alice.closing
        assert bob.closing
        lines = bob.lines()
        assert lines[-1].startswith("! ") and "idle" in lines[-1]
        assert alice.lines() == ["*** bob left"]
        bob.finish()
        s.flush()
        assert alice.lines() == []


def test_idle_timeout_counts_any_line_as_activity() -> None:
    with serving(idle_timeout=30.0) as s:
        alice, _ = s.members("alice", "bob")
        for command in ["/who", "", "/help", "   "]:
            s.clock.advance(25)
            alice.send(command)
        assert not alice.closing


# -- refusing connections ------------------------------------------------------------------------


def test_max_clients_refuses_with_a_line_and_counts_choosers() -> None:
    with serving(max_clients=2) as s:
        s.join("alice")
        s.connect("10.0.0.2")  # still choosing: counts too
        refused = s.connect("10.0.0.3")
        assert refused.lines() == ["! server full"]
        assert refused.closing
        assert len(s.factory.connections) == 2


def test_max_clients_frees_a_slot_when_one_leaves() -> None:
    with serving(max_clients=1) as s:
        alice = s.join("alice")
        assert s.connect("10.0.0.2").lines() == ["! server full"]
        alice.lose()
        again = s.connect("10.0.0.2")
        assert "nickname" in again.lines()[0]


def test_max_per_ip_refuses_with_a_line_per_address() -> None:
    with serving(max_per_ip=2) as s:
        first = s.connect("10.0.0.1")
        s.connect("10.0.0.1")
        refused = s.connect("10.0.0.1")
        assert refused.lines() == ["! too many connections from your address"]
        assert refused.closing
        other = s.connect("10.0.0.2")
        assert "nickname" in other.lines()[0]
        first.lose()
        assert "nickname" in s.connect("10.0.0.1").lines()[0]


def test_refused_connections_do_not_count() -> None:
    with serving(max_per_ip=1) as s:
        s.connect("10.0.0.1")
        for _ in range(10):
            s.connect("10.0.0.1").lose()
        assert len(s.factory.connections) == 1


# -- shutdown ----------------------------------------------------------------------------------


def test_shutdown_tells_everyone_joined_or_choosing_and_closes_them() -> None:
    with serving() as s:
        alice, bob = s.members("alice", "bob")
        chooser = s.connect()
        chooser.clear()
        done: list[object] = []
        s.factory.shutdown().addBoth(done.append)
        for client in (alice, bob, chooser):
            assert client.lines() == ["*** server shutting down"]
            assert client.closing
        assert not done
        s.finish_all()
        s.flush()
        assert done
        for client in (alice, bob, chooser):
            assert client.lines() == []  # nobody hears that everybody else left
        assert s.factory.connections == set()
        assert s.clock.getDelayedCalls() == []


def test_shutdown_aborts_stuck_connections_after_the_grace_period() -> None:
    with serving(RELAXED, shutdown_grace=2.0) as s:
        alice, bob = s.members("alice", "bob")
        assert isinstance(bob.protocol.outbox, Outbox)
        bob.protocol.outbox.pauseProducing()  # bob never reads
        done: list[object] = []
        s.factory.shutdown().addBoth(done.append)
        alice.finish()
        s.clock.advance(1.9)
        assert not bob.aborted and not done
        s.clock.advance(0.2)
        assert bob.aborted
        bob.finish()
        assert done


def test_shutdown_refuses_new_connections() -> None:
    with serving() as s:
        s.factory.shutdown()
        late = s.connect()
        assert late.lines() == ["! server shutting down"]
        assert late.closing


def test_shutdown_with_nobody_connected_is_done_at_once() -> None:
    with serving() as s:
        done: list[object] = []
        s.factory.shutdown().addBoth(done.append)
        assert done


def test_shutdown_stops_handling_input() -> None:
    with serving() as s:
        alice, bob = s.members("alice", "bob")
        s.factory.shutdown()
        alice.clear()
        bob.clear()
        alice.send("anyone?")
        s.flush()
        assert bob.lines() == []


# -- churn ---------------------------------------------------------------------------------------


def test_chooser_that_stops_reading_is_dropped_silently() -> None:
    with serving(max_out=4096) as s:
        (alice,) = s.members("alice")
        client = s.connect()
        assert isinstance(client.protocol.outbox, Outbox)
        client.protocol.outbox.pauseProducing()
        client.send_lines(["_bad nickname"] * 100)  # two lines of reply each
        assert not client.aborted
        s.clock.advance(GRACE)
        assert client.aborted
        client.finish()
        s.flush()
        assert alice.lines() == []
        assert s.factory.connections == {alice.protocol}


def test_connection_churn_leaves_no_trace() -> None:
    with serving(RELAXED, nick_timeout=30.0, idle_timeout=60.0, max_per_ip=4) as s:
        (alice,) = s.members("alice")
        for i in range(300):
            client = s.connect("10.9.9.9")
            how = i % 6
            if how == 0:
                client.lose()
            elif how == 1:
                client.feed(b"hal")  # half a nickname
                client.lose(net_error.ConnectionLost)
            elif how == 2:
                client.send(f"u{i}")
                client.lose(net_error.ConnectionLost)
            elif how == 3:
                client.send(f"u{i}")
                client.send("/quit")
                client.finish()
            elif how == 4:
                client.send("_bad")
                client.feed(b"\xff\xfd")  # half a telnet command
                client.lose()
            else:
                client.send(f"u{i}")
                client.send("hello")
                client.protocol.abort()
                client.finish()
        s.flush()
        assert s.factory.connections == {alice.protocol}
        assert s.room.members() == ["alice"]
        assert len(s.factory.fanout) == 1
        # only alice's idle timer is left
        assert len(s.clock.getDelayedCalls()) == 1
        lines = alice.lines()
        joined = [line for line in lines if line.endswith(" joined")]
        left = [line for line in lines if line.endswith(" left")]
        assert len(joined) == len(left) == 150  # each member announced once each way
        assert {line[4:-7] for line in joined} == {line[4:-5] for line in left}
