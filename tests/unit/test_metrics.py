"""The metrics: each front end's tally counts what was really sent and refused, and the
collector shows the server's state under the documented names (docs/metrics.md)."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from chatroom import metrics
from chatroom.admission import NO_CAP, Admission
from chatroom.cli import chatroom_version
from chatroom.domain.chat import Member
from chatroom.domain.events import Event, Joined, Left, Notice, Renamed, Said, Whispered
from chatroom.limits import Limits
from chatroom.lines.factory import prefixed
from chatroom.lines.fanout import Fanout
from chatroom.lines.outbox import GRACE, Outbox
from chatroom.metrics import ServerCollector, build_registry, on_reactor
from chatroom.options import Options
from chatroom.registry import SHUTTING_DOWN
from chatroom.stats import Latency
from tests.unit.helpers import RELAXED, Server, serving

# -- the fan-out's tally, against what its members received ------------------------------


@dataclass(eq=False)
class Recorder:
    writes: list[bytes] = field(default_factory=list)

    def send(self, data: bytes) -> None:
        self.writes.append(data)


MEMBERS = ["m0", "m1", "m2", "m3"]
REPLY = b"*** a reply\r\n"
ROOMS = ["#a", "#b"]

script = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(MEMBERS)),
        st.tuples(st.just("remove"), st.sampled_from(MEMBERS)),
        st.tuples(st.just("join"), st.sampled_from(MEMBERS), st.sampled_from(ROOMS)),
        st.tuples(st.just("part"), st.sampled_from(MEMBERS), st.sampled_from(ROOMS)),
        st.tuples(st.just("say"), st.sampled_from(MEMBERS), st.sampled_from(ROOMS)),
        st.tuples(st.just("whisper"), st.sampled_from(MEMBERS), st.sampled_from(MEMBERS)),
        st.tuples(st.just("rename"), st.sampled_from(MEMBERS)),
        st.tuples(st.just("reply"), st.sampled_from(MEMBERS)),
        st.tuples(st.just("notice")),
        st.tuples(st.just("flush")),
    ),
    max_size=50,
)


@dataclass(eq=False)
class ThroughReplies:
    """A recipient that sends as the line protocol does: by ``fanout.reply``, so that an
    answer never overtakes what the room has on its way."""

    fanout: Fanout
    member: str
    recorder: Recorder

    def send(self, data: bytes) -> None:
        self.fanout.reply(self.member, self.recorder, data)


@settings(max_examples=300, deadline=None)
@given(script, st.booleans(), st.booleans())
def test_the_tally_counts_every_line_and_byte_the_members_were_handed(
    actions: list[tuple[str, ...]], echo: bool, through_replies: bool
) -> None:
    """Whatever the mix (the one-line fast path, batches, members of two rooms getting the
    prefixed form, whispers, renames, notices, replies queued behind them, late joiners),
    the fan-out's deliveries are the lines its members got from its passes, and its bytes
    the bytes they got; even when every write of a pass goes through ``reply``."""
    clock = Clock()
    fanout = Fanout(clock, echo=echo, prefix=prefixed)
    recorders = {m: Recorder() for m in MEMBERS}
    recipients: dict[str, Recorder | ThroughReplies] = {
        m: ThroughReplies(fanout, m, r) if through_replies else r for m, r in recorders.items()
    }
    rooms: dict[str, set[str]] = {m: set() for m in MEMBERS}
    uncounted = 0
    for action in actions:
        kind, who = action[0], action[1] if len(action) > 1 else ""
        event: Event | None = None
        if kind == "add" and who not in fanout._members:
            fanout.add(Member(who, who, current="#a"), recipients[who])
        elif kind == "remove":
            fanout.remove(who)
            rooms[who].clear()
        elif kind == "join" and action[2] not in rooms[who]:
            rooms[who].add(action[2])
            event = Joined(action[2], 0.0, who, who)
        elif kind == "part" and action[2] in rooms[who]:
            rooms[who].discard(action[2])
            event = Left(action[2], 0.0, who, who)
        elif kind == "say":
            event = Said(action[2], 0.0, who, who, "hi")
        elif kind == "whisper":
            event = Whispered("", 0.0, who, who, "psst", action[2], action[2])
        elif kind == "rename":
            event = Renamed("", 0.0, who, who, who, tuple(sorted(rooms[who])))
        elif kind == "notice":
            event = Notice("", 0.0, "", "", "server news")
        elif kind == "reply" and who in fanout._members:
            if not fanout._pending:
                uncounted += len(REPLY)  # goes out at once: not one of the passes' writes
            fanout.reply(who, recorders[who], REPLY)
        elif kind == "flush":
            clock.advance(0)
        if event is not None:
            fanout.deliver(event)
    clock.advance(0)
    received = b"".join(b"".join(r.writes) for r in recorders.values())
    assert fanout.tally.bytes_out == len(received) - uncounted
    assert fanout.tally.deliveries == received.count(b"\r\n") - uncounted // len(REPLY)


# -- what the sessions count ----------------------------------------------------------------


def test_sessions_count_lines_in_refusals_by_reason_and_slow_readers() -> None:
    with serving(RELAXED, rate=1.0, burst=3, max_line=512, max_out=8192) as s:
        tally = s.factory.fanout.tally
        newcomer = s.connect()
        newcomer.send("/who")  # before choosing a nickname
        newcomer.send("bad nick!")
        assert tally.refused == {"state": 1, "nick": 1}
        assert tally.lines_in == 2
        s.clock.advance(10)  # a full allowance again
        newcomer.send("alice")
        alice = newcomer
        bob = s.join("bob")
        alice.send("x" * 600)  # over --max-line: never handled
        alice.send("/nosuchcommand")
        alice.send_lines(["one", "two", "three", "four"])  # one past the allowance
        assert tally.refused["line"] == 1 and tally.refused["command"] == 1
        assert tally.refused["flood"] == 1
        for _ in range(10):
            s.clock.advance(1)
        assert tally.lines_in == 2 + 1 + 1 + 1 + 4  # bob's nickname too
        assert tally.slow_readers == 0
        assert isinstance(bob.protocol.outbox, Outbox)
        bob.protocol.outbox.pauseProducing()
        for i in range(100):
            s.clock.advance(1)
            alice.send(f"{i:04d} " + "x" * 95)
            s.flush()
        s.clock.advance(GRACE)
        assert bob.aborted
        assert tally.slow_readers == 1


# -- the collector ------------------------------------------------------------------------------


def collector_of(s: Server, reactor: Any = None, **sources: Any) -> ServerCollector:
    """A collector of ``s``'s chat and admission (and ``sources``), on ``s``'s clock unless
    another reactor is given."""
    admission = s.services.admission
    assert admission is not None
    chosen: Any = s.clock if reactor is None else reactor  # only its callFromThread is used
    return ServerCollector(chosen, s.chat, admission, **sources)


def samples(collector: ServerCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, as Prometheus would read the text."""
    text = generate_latest(build_registry(collector)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_the_collector_shows_front_ends_rooms_and_admission_under_their_names() -> None:
    with serving(RELAXED, max_line=512) as s:
        collector = collector_of(s, history=s.services.history)
        collector.add_front_end("line", s.factory.registry, s.factory.fanout)
        before = samples(collector)
        assert value(before, "chatroom_members", front_end="line") == 0
        assert value(before, "chatroom_input_refused_total", front_end="line",
                     reason="too_long") == 0  # there before the first
        assert value(before, "chatroom_rooms") == 1  # the default room
        alice, _ = s.members("alice", "bob")
        s.connect()  # not signed in: a connection, not a member
        quiet = samples(collector)
        alice.send("hello")
        s.flush()
        found = samples(collector)
        for name, more in (("chatroom_deliveries_total", 1),  # to bob
                           ("chatroom_bytes_out_total", len(b"alice: hello\r\n"))):
            assert value(found, name, front_end="line") == value(quiet, name,
                                                                 front_end="line") + more
        alice.send("/join #dev")
        alice.send("x" * 600)
        s.flush()
        found = samples(collector)
        assert value(found, "chatroom_connections", front_end="line") == 3
        assert value(found, "chatroom_members", front_end="line") == 2
        assert value(found, "chatroom_rooms") == 2
        assert value(found, "chatroom_lines_in_total", front_end="line") == 4
        assert value(found, "chatroom_input_refused_total", front_end="line",
                     reason="too_long") == 1
        tally = s.factory.fanout.tally
        assert value(found, "chatroom_deliveries_total", front_end="line") == tally.deliveries
        assert value(found, "chatroom_bytes_out_total", front_end="line") == tally.bytes_out
        assert value(found, "chatroom_sockets_open") == 3
        # --max-clients 0 and no open files limit known here: no cap at all
        assert RELAXED.max_clients == 0
        assert value(found, "chatroom_connections_max") == NO_CAP
        assert value(found, "chatroom_accepting_paused") == 0
        info = [key for key in found if key[0] == "chatroom_build_info"]
        assert len(info) == 1 and ("version", chatroom_version()) in info[0][1]
        assert ("process_open_fds", ()) in found  # prometheus_client's own collectors too


def test_a_new_front_end_is_counted_by_its_name_alone(clock: Clock) -> None:
    """What an IRC front end would take: a registry, a fan-out, a name; nothing else."""
    with serving(RELAXED) as s:
        collector = collector_of(s)
        collector.add_front_end("line", s.factory.registry, s.factory.fanout)

        class Registry:
            connections = {"one", "two"}

        irc = Fanout(clock)
        irc.add(Member("m1", "carol", current="#lobby"), Recorder())
        irc.tally.refused["nick"] += 2
        collector.add_front_end("irc", Registry(), irc)
        found = samples(collector)
        assert value(found, "chatroom_connections", front_end="irc") == 2
        assert value(found, "chatroom_members", front_end="irc") == 1
        assert value(found, "chatroom_input_refused_total", front_end="irc",
                     reason="nickname") == 2
        assert value(found, "chatroom_connections", front_end="line") == 0


def test_refused_connections_are_counted_by_reason(clock: Clock) -> None:
    admission = Admission(Limits(max_clients=2, max_per_ip=1), clock)
    with serving(RELAXED) as s:
        collector = ServerCollector(cast(Any, clock), s.chat, admission)
        admission.enter("10.0.0.1")
        admission.enter("10.0.0.1")  # a second from one address
        admission.enter("10.0.0.2")
        admission.enter("10.0.0.3")  # a third in all
        admission.enter("10.0.0.4", SHUTTING_DOWN)
        found = samples(collector)
    assert value(found, "chatroom_connections_refused_total", reason="server_full") == 1
    assert value(found, "chatroom_connections_refused_total", reason="per_address") == 1
    assert value(found, "chatroom_connections_refused_total", reason="shutting_down") == 1


def test_reloads_are_counted() -> None:
    with serving(RELAXED) as s:
        collector = collector_of(s)
        before = value(samples(collector), "chatroom_reloads_total")
        metrics.reloaded()
        metrics.reloaded()
        assert value(samples(collector), "chatroom_reloads_total") == before + 2


def test_the_latency_histogram_counts_cumulatively() -> None:
    latency = Latency((0.01, 0.1))
    for seconds in (0.005, 0.01, 0.05, 3.0):
        latency.observe(seconds)
    assert latency.cumulative() == [("0.01", 2), ("0.1", 3), ("+Inf", 4)]
    assert latency.count == 4 and latency.total == pytest.approx(3.065)
    assert latency.last == 3.0


def test_redis_splits_lag_and_state_are_shown() -> None:
    from chatroom.hubs.redis import SPLIT, RedisHub, State

    reactor = MemoryReactorClock()
    reactor.advance(1_800_000_000)
    hub = RedisHub("redis://127.0.0.1:1", "#lobby", reactor)
    heard: list[Event] = []
    hub.subscribe(heard.append)
    with serving(RELAXED) as s:
        collector = collector_of(s, reactor, redis=hub)
        found = samples(collector)
        assert value(found, "chatroom_redis_up") == 0
        assert value(found, "chatroom_redis_state", chatroom_redis_state="idle") == 1
        # In step, then Redis goes away: the room splits, once.
        hub.state = State.CONNECTED
        hub._announced_once = True
        assert value(samples(collector), "chatroom_redis_up") == 1
        # An entry stored by Redis 1.5 s ago, read now: the read lag.
        stored_ms = int((reactor.seconds() - 1.5) * 1000)
        entry = [b"%d-0" % stored_ms, [b"n", hub.node.encode(), b"s", b"1", b"e", b"x"]]
        hub._got([[b"stream", [entry]]])
        hub._drop_connections()
        found = samples(collector)
    assert [e.text for e in heard if isinstance(e, Notice)] == [SPLIT]
    assert value(found, "chatroom_redis_splits_total") == 1
    assert value(found, "chatroom_redis_state", chatroom_redis_state="split") == 1
    assert value(found, "chatroom_redis_up") == 0
    assert value(found, "chatroom_redis_read_lag_seconds") == pytest.approx(1.5, abs=0.01)
    assert value(found, "chatroom_redis_unconfirmed_events") == 0


# -- scraped from another thread -----------------------------------------------------------------


def test_a_scrape_from_another_thread_is_taken_on_the_reactor_thread() -> None:
    """prometheus_client's Twisted resource collects on a pool thread: the snapshot is
    taken where the reactor runs (here: the test's thread, standing in for it)."""
    asked: queue.Queue[Any] = queue.Queue()

    class Reactor:
        def callFromThread(self, f: Any, *args: Any) -> None:
            asked.put(f)

    with serving(RELAXED) as s:
        collector = collector_of(s, Reactor())
        taken_on: list[int] = []
        original = collector.snapshot

        def snapshot() -> Any:
            taken_on.append(threading.get_ident())
            return original()

        collector.snapshot = snapshot  # type: ignore[method-assign]
        result: list[Any] = []
        scraper = threading.Thread(target=lambda: result.append(list(collector.collect())))
        scraper.start()
        asked.get(timeout=5)()  # what the scraper asked for, run as the reactor would
        scraper.join(5)
    assert taken_on == [threading.get_ident()]
    assert any(m.name == "chatroom_rooms" for m in result[0])


def test_a_reactor_that_does_not_answer_fails_the_scrape_in_time() -> None:
    class Stopped:
        def callFromThread(self, f: Any, *args: Any) -> None:
            pass

    with pytest.raises(TimeoutError, match="did not answer"):
        on_reactor(Stopped(), lambda: 1, timeout=0.05)  # type: ignore[arg-type]


# -- the option ------------------------------------------------------------------------------------


def metrics_endpoint(*argv: str) -> str | None:
    options = Options()
    options.parseOptions(list(argv))
    endpoint: str | None = options["metrics-endpoint"]
    return endpoint


def test_metrics_are_off_unless_asked_for_and_a_port_listens_on_the_interface() -> None:
    assert metrics_endpoint() is None
    assert metrics_endpoint("--metrics", "9100") == "tcp:9100:interface=127.0.0.1"
    assert metrics_endpoint("--metrics", "9100", "--interface", "::") == r"tcp:9100:interface=\:\:"
    assert metrics_endpoint("--metrics", "unix:/run/m.sock") == "unix:/run/m.sock"
    with pytest.raises(usage.UsageError, match=r"--metrics 70000: must be from 0 to 65535"):
        metrics_endpoint("--metrics", "70000")
