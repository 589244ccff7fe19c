"""One room over several nodes sharing a real ``redis-server``.

Most tests run several ``Room`` + ``RedisHub`` nodes in this process (what crosses between
them is only Redis); the last ones start two real server processes and talk to them as
``nc`` would. Leases are short here (1.5 to 3 s) so node death shows quickly; every wait
is for an event, bounded in time.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from chatroom.domain import nicknames
from chatroom.domain.chat import Member
from chatroom.domain.errors import NicknameTaken
from chatroom.domain.events import Acted, Event, Joined, Left, Notice, Renamed, Said
from chatroom.hubs.redis import SPLIT, WHOLE, RedisHub, State
from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
from tests.integration.serverproc import LineClient, ServerProcess
from tests.roomhandle import DefaultRoom as Room

ROOM = "#lobby"
LAUNCHER = Path(__file__).with_name("redis_server.py")


def _reactor() -> Any:
    from twisted.internet import reactor  # noqa: TID251 - tests run on the real reactor

    return reactor


async def eventually(check: Callable[[], bool], timeout: float = 10.0,
                     what: str | Callable[[], str] = "") -> None:
    reactor = _reactor()
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await deferLater(reactor, 0.02, lambda: None)
    assert check(), f"not in {timeout} s: {what if isinstance(what, str) else what()}"


async def pause(seconds: float) -> None:
    """Give a duplicate or a stray event the chance to show up (only after the awaited
    event already came)."""
    await deferLater(_reactor(), seconds, lambda: None)


class Node:
    """A room on one server: its hub, and everything its front end would have received."""

    def __init__(self, server: RedisServer, name: str, lease: float, retry: float) -> None:
        self.name = name
        self.hub = RedisHub(server.url, ROOM, _reactor(), lease=lease, timeout=1.0,
                            node=name, retry=lambda attempt: retry)
        self.room = Room(ROOM, self.hub, _reactor(), node=name, names=self.hub)
        self.events: list[Event] = []
        self.hub.subscribe(self.events.append)
        self.passes = 0  # periodic passes (renew, then reap) finished: a condition to await
        hub_pass = self.hub._pass

        async def counted(cmd: Any) -> None:
            try:
                await hub_pass(cmd)
            finally:
                self.passes += 1

        cast(Any, self.hub)._pass = counted

    async def start(self) -> Node:
        self.hub.startService()
        await self.hub.when_connected()
        return self

    def said(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Said)]

    def notices(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Notice)]

    def lefts(self) -> list[str]:
        return [e.nick for e in self.events if isinstance(e, Left)]

    def joins(self) -> list[str]:
        return [e.nick for e in self.events if isinstance(e, Joined)]

    def crash(self) -> None:
        """Die without a goodbye: no Left events, no released nicknames, no heartbeat."""
        hub = self.hub
        if hub._ticker.running:
            hub._ticker.stop()
        hub.state = State.STOPPED
        hub._drop_connections()  # and, being stopped, it does not reconnect


async def more_passes(nodes: tuple[Node, ...], count: int) -> None:
    """Until each node's hub has finished ``count`` more periodic passes."""
    done = {node.name: node.passes for node in nodes}
    await eventually(lambda: all(node.passes >= done[node.name] + count for node in nodes),
                     what=f"{count} more passes")


class Cluster:
    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.nodes: list[Node] = []

    async def node(self, name: str, lease: float = 3.0, retry: float = 0.2) -> Node:
        node = Node(self.server, name, lease, retry)
        self.nodes.append(node)
        return await node.start()

    async def close(self) -> None:
        for node in reversed(self.nodes):
            if node.hub.state is not State.STOPPED:
                await node.hub.stopService()


@pytest_twisted.async_yield_fixture  # type: ignore[untyped-decorator]
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:  # noqa: F811
    made = Cluster(redis_server)
    try:
        yield made
    finally:
        await made.close()


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_chat_crosses_nodes_once_in_order(cluster: Cluster) -> None:
    a, b, c = await cluster.node("a"), await cluster.node("b"), await cluster.node("c")
    alice = await a.room.join("alice")
    bob = await b.room.join("bob")
    await eventually(lambda: all(sorted(n.room.members()) == ["alice", "bob"]
                                 for n in (a, b, c)), what="roster everywhere")
    for i in range(300):
        a.room.say(alice, f"a{i}")
        b.room.act(bob, f"b{i}")
        if i % 100 == 0:
            a.room.notice(f"notice {i}")
    await eventually(lambda: len(c.said()) == 300 and len(b.said()) == 300, what="all lines")
    await pause(0.2)
    for node in (a, b, c):
        assert node.said() == [f"a{i}" for i in range(300)]
        acted = [e.text for e in node.events if isinstance(e, Acted)]
        assert acted == [f"b{i}" for i in range(300)]
        assert [t for t in node.notices() if t.startswith("notice")] == [
            "notice 0", "notice 100", "notice 200"]


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_whisper_and_who_across_nodes(cluster: Cluster) -> None:
    a, b = await cluster.node("a"), await cluster.node("b")
    alice = await a.room.join("Alice")
    await b.room.join("bob")
    await eventually(lambda: a.room.members() == b.room.members() == ["Alice", "bob"])
    assert a.room.whisper(alice, "BOB", "psst") == "bob"
    await eventually(lambda: any(type(e).__name__ == "Whispered" for e in b.events))
    whisper = next(e for e in b.events if type(e).__name__ == "Whispered")
    assert (whisper.target_nick, whisper.text, whisper.nick) == ("bob", "psst", "Alice")  # type: ignore[attr-defined]
    assert whisper.target == b.hub.lookup("bob")[1]  # type: ignore[attr-defined,index]


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_two_clients_on_two_nodes_race_for_one_nickname(cluster: Cluster) -> None:
    a, b = await cluster.node("a"), await cluster.node("b")
    for round_ in range(25):
        nick = f"Racer{round_}"
        results = await DeferredList([a.room.join(nick), b.room.join(nick.upper())],
                                     consumeErrors=True)
        winners = [value for ok, value in results if ok]
        losers = [value for ok, value in results if not ok]
        assert len(winners) == 1 and len(losers) == 1, results
        assert cast(Failure, losers[0]).check(NicknameTaken)
    await eventually(lambda: len(a.room.members()) == len(b.room.members()) == 25)
    assert a.room.members() == b.room.members()


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_dead_nodes_members_are_announced_left_once(cluster: Cluster) -> None:
    lease = 1.5
    a = await cluster.node("a", lease)
    b = await cluster.node("b", lease)
    c = await cluster.node("c", lease)
    await a.room.join("alice")
    await a.room.join("ann")
    await b.room.join("bob")
    await eventually(lambda: len(c.room.members()) == 3 and len(b.room.members()) == 3)
    started = _reactor().seconds()
    a.crash()
    await eventually(lambda: sorted(b.lefts()) == sorted(c.lefts()) == ["alice", "ann"],
                     timeout=3 * lease, what="Left for a's members")
    took = _reactor().seconds() - started
    assert took <= lease + 0.5, took
    await pause(lease)  # more passes of both survivors: still exactly once
    assert sorted(b.lefts()) == sorted(c.lefts()) == ["alice", "ann"]
    assert b.room.members() == c.room.members() == ["bob"]
    again = await c.room.join("ALICE")  # the nickname is free again
    assert again.nick == "ALICE"


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_redis_restart_during_chat(cluster: Cluster) -> None:
    server = cluster.server
    a, b = await cluster.node("a"), await cluster.node("b")
    alice = await a.room.join("alice")
    bob = await b.room.join("bob")
    await eventually(lambda: len(a.room.members()) == len(b.room.members()) == 2)
    for i in range(100):
        a.room.say(alice, f"before {i}")
    # Stop Redis while lines are on their way: none accepted before the stop may be lost.
    await server.stop_async(_reactor())
    await eventually(lambda: SPLIT in a.notices() and SPLIT in b.notices(), what="split")
    a.room.say(alice, "alone")  # still reaches the members on a's own server
    assert a.said()[-1] == "alone"
    carol = await a.room.join("carol")  # joining works while split, decided locally
    b.room.say(bob, "bob alone")
    server.start()
    await server.ready(_reactor())
    await eventually(lambda: WHOLE in a.notices() and WHOLE in b.notices(), timeout=15,
                     what="whole again")
    await eventually(lambda: "carol" in b.room.members(), what="carol seen from b")
    assert b.joins().count("carol") == 1
    a.room.say(carol, "after")
    await eventually(lambda: b.said()[-1:] == ["after"], what="chat after the restart")
    before = [t for t in b.said() if t.startswith("before")]
    assert before == [f"before {i}" for i in range(100)]
    assert "alone" not in b.said()
    assert sorted(a.room.members()) == sorted(b.room.members()) == ["alice", "bob", "carol"]
    assert a.notices().count(SPLIT) == 1 and a.notices().count(WHOLE) == 1


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_frozen_redis_splits_the_room_then_it_heals(cluster: Cluster) -> None:
    server = cluster.server
    a, b = await cluster.node("a"), await cluster.node("b")
    alice = await a.room.join("alice")
    await b.room.join("bob")
    await eventually(lambda: len(b.room.members()) == 2)
    server.pause()
    try:
        await eventually(lambda: SPLIT in a.notices() and SPLIT in b.notices(), timeout=10,
                         what="split noticed without any closed connection")
    finally:
        server.resume()
    await eventually(lambda: WHOLE in a.notices() and WHOLE in b.notices(), timeout=15)
    a.room.say(alice, "hello again")
    await eventually(lambda: "hello again" in b.said())


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_one_nickname_taken_on_both_sides_of_a_split(cluster: Cluster) -> None:
    server = cluster.server
    # a comes back first and wins; b, back later, must learn of a's carol although a
    # announced it before b was reading (and the stream was empty before the split).
    a, b = await cluster.node("a", retry=0.05), await cluster.node("b", retry=1.0)
    await server.stop_async(_reactor())
    await eventually(lambda: SPLIT in a.notices() and SPLIT in b.notices())
    on_a: Member = await a.room.join("carol")
    on_b: Member = await b.room.join("Carol")
    server.start()
    await server.ready(_reactor())
    await eventually(lambda: WHOLE in a.notices() and WHOLE in b.notices(), timeout=15)
    await eventually(lambda: sorted(a.room.members()) == sorted(b.room.members())
                     and len(a.room.members()) == 2,
                     what=lambda: f"one roster: a has {a.room.members()}, b {b.room.members()}")
    names = sorted(a.room.members(), key=str.lower)
    assert [n.lower() for n in names] == ["carol", "carol-2"]
    renames = [e for n in (a, b) for e in n.events if isinstance(e, Renamed)]
    loser = on_a if any(e.member == on_a.id for e in renames) else on_b
    assert any(e.member == loser.id and e.new_nick.lower() == "carol-2" for e in renames)
    assert on_a.id != on_b.id


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_redis_that_lost_its_data_gets_the_claims_back(cluster: Cluster) -> None:
    server = cluster.server
    a, b = await cluster.node("a"), await cluster.node("b")
    await a.room.join("alice")
    await b.room.join("bob")
    await eventually(lambda: len(a.room.members()) == len(b.room.members()) == 2)
    server.restart_empty()
    await server.ready(_reactor())
    await eventually(lambda: WHOLE in a.notices() and WHOLE in b.notices(), timeout=15)
    with pytest.raises(NicknameTaken):
        await b.room.join("ALICE")  # a claimed it again when it came back
    assert sorted(a.room.members()) == sorted(b.room.members()) == ["alice", "bob"]


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_redis_restart_without_data_announces_nobody_left(cluster: Cluster) -> None:
    """Redis restarted empty, again and again: every heartbeat went with it, which says
    nothing about the nodes. A node slower to come back (1 s, within its 2 s heartbeat)
    is never announced left (and so its members' nicknames are never "free" while they
    are here); a node that really died is, once, with its nicknames freed at that moment."""
    server = cluster.server
    lease, rounds = 3.0, 4
    a = await cluster.node("a", lease, retry=1.0)  # back after b and c have done a pass
    b = await cluster.node("b", lease, retry=0.05)
    c = await cluster.node("c", lease, retry=0.05)
    survivors = (b, c)
    await a.room.join("alice")
    await a.room.join("ann")
    await b.room.join("bob")
    everyone = ["alice", "ann", "bob"]
    await eventually(lambda: all(n.room.members() == everyone for n in (a, b, c)))
    false_leaves: list[str] = []
    taken_after_left: list[str] = []
    for round_ in range(1, rounds + 1):
        seen = {n.name: len(n.events) for n in survivors}
        server.restart_empty()
        await server.ready(_reactor())

        def whole(times: int = round_) -> bool:
            return all(n.notices().count(WHOLE) == times for n in (a, b, c))

        await eventually(whole, timeout=15, what=f"whole again after restart {round_}")
        # Passes spanning more than a heartbeat after a is back: a survivor that takes a
        # for dead has done so by then.
        await more_passes(survivors, 6)
        for n in survivors:
            for event in n.events[seen[n.name]:]:
                if not isinstance(event, Left):
                    continue
                false_leaves.append(f"restart {round_}: {n.name} announced {event.nick} left")
                try:  # announced left, so the nickname should be free now
                    member = await n.room.join(event.nick)
                except NicknameTaken:
                    taken_after_left.append(f"restart {round_}: {event.nick} on {n.name}")
                else:
                    n.room.leave(member, "test")
    assert not false_leaves and not taken_after_left, (
        f"{len(false_leaves)} false leaves in {rounds} restarts: {false_leaves}; "
        f"{len(taken_after_left)} nicknames still taken after their Left: {taken_after_left}")
    assert all(n.room.members() == everyone for n in (a, b, c))
    assert not [e for n in (a, b, c) for e in n.events if isinstance(e, Renamed)]

    # a dies, then Redis restarts empty: its heartbeat is gone for both reasons. Its
    # members are announced left once, and their claims are gone when that is said.
    still_claimed: list[str] = []

    def check_claims(event: Event) -> None:
        if isinstance(event, Left):
            held = server.command("EXISTS", a.hub.keys.nick(nicknames.key(event.nick)))
            if held != b":0":
                still_claimed.append(f"{event.nick}: {held!r}")

    for n in survivors:
        n.hub.subscribe(check_claims)
    seen = {n.name: len(n.events) for n in survivors}
    a.crash()
    server.restart_empty()
    await server.ready(_reactor())
    started = _reactor().seconds()

    def new_lefts(n: Node) -> list[str]:
        return sorted(e.nick for e in n.events[seen[n.name]:] if isinstance(e, Left))

    await eventually(lambda: all(new_lefts(n) == ["alice", "ann"] for n in survivors),
                     timeout=15, what=lambda: f"b: {new_lefts(b)}, c: {new_lefts(c)}")
    took = _reactor().seconds() - started
    assert took <= lease + 1.0, took  # a heartbeat to settle, then the next pass
    assert not still_claimed, still_claimed
    assert (await c.room.join("ALICE")).nick == "ALICE"
    assert (await b.room.join("Ann")).nick == "Ann"
    await more_passes(survivors, 2)
    assert all(new_lefts(n) == ["alice", "ann"] for n in survivors)  # once


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_flushed_script_cache_changes_nothing(cluster: Cluster) -> None:
    """SCRIPT FLUSH in the middle of the chat: lines still arrive once and in order
    (several lines in one turn go out as one script call), and claims still decide."""
    server = cluster.server
    a, b = await cluster.node("a"), await cluster.node("b")
    alice = await a.room.join("alice")
    await b.room.join("bob")
    await eventually(lambda: len(b.room.members()) == 2)
    for i in range(50):
        a.room.say(alice, f"x{i}")
    await eventually(lambda: len(b.said()) == 50)
    assert server.command("SCRIPT", "FLUSH") == b"+OK"
    for i in range(50, 99):
        a.room.say(alice, f"x{i}")
    await pause(0)  # the next turn: one line, one XADD, right behind the script call
    a.room.say(alice, "x99")
    await b.room.join("carol")  # the claim script is gone from Redis: sent again
    with pytest.raises(NicknameTaken):
        await a.room.join("Carol")
    await eventually(lambda: len(b.said()) == 100, what=lambda: f"{len(b.said())} lines")
    await pause(0.2)
    assert b.said() == [f"x{i}" for i in range(100)]


# -- two real server processes --------------------------------------------------------


def start_node(tmp_path: Path, server: RedisServer, name: str, lease: float,
               pure_python: bool = False) -> ServerProcess:
    workdir = tmp_path / name
    workdir.mkdir()
    command = [sys.executable, str(LAUNCHER), "node", "--redis", server.url,
               "--lease", str(lease), "--node", name]
    if pure_python:
        command.append("--pure-python-parser")
    return ServerProcess(workdir, command=command)


def test_two_server_processes_share_one_room(
    tmp_path: Path, redis_server: RedisServer  # noqa: F811
) -> None:
    one = start_node(tmp_path, redis_server, "one", 2.0)
    # The other node reads Redis's replies with txredisapi's own parser, not hiredis's.
    two = start_node(tmp_path, redis_server, "two", 2.0, pure_python=True)
    clients: list[LineClient] = []
    try:
        alice = one.join("alice")
        clients.append(alice)
        bob = two.join("bob")
        clients.append(bob)
        alice.expect(r"^\*\*\* bob joined")
        carol = two.join("carol")
        clients.append(carol)
        alice.expect(r"^\*\*\* carol joined")
        for i in range(50):
            alice.send(f"line {i}")
        for i in range(50):
            assert bob.expect(r"^alice: ") == f"alice: line {i}"
            assert carol.expect(r"^alice: ") == f"alice: line {i}"
        bob.send("/me waves")
        alice.expect(r"^\* bob waves$")
        alice.send("/msg CAROL secret")
        assert carol.expect(r"private") == "[private] alice: secret"
        alice.send("/who")
        assert re.search(r"3 in the room: alice, bob, carol", alice.expect(r"in the room"))
        bob.send("/who")
        assert re.search(r"3 in the room: alice, bob, carol", bob.expect(r"in the room"))
        assert not [line for line in bob.quiet(0.3) if "secret" in line]
        # A client on one racing a client on two for one nickname: exactly one wins.
        racers = [one.connect(), two.connect()]
        clients += racers
        for racer in racers:
            racer.expect("nickname")
        for racer in racers:
            racer.send("dora")
        answers = [racer.expect(r"welcome|taken") for racer in racers]
        assert sum("welcome" in answer for answer in answers) == 1, answers
        # Node two dies without a word: its members are announced left on node one.
        two.kill()
        gone = {alice.expect(r"^\*\*\* (bob|carol) left", timeout=6) for _ in range(2)}
        assert gone == {"*** bob left", "*** carol left"}
        alice.send("/who")
        who = alice.expect(r"in the room")
        assert "bob" not in who and "carol" not in who
        bob_again = one.join("bob")
        clients.append(bob_again)
    finally:
        for client in clients:
            client.close()
        one.kill()
        two.kill()


def test_a_stopped_server_says_goodbye_for_its_members_at_once(
    tmp_path: Path, redis_server: RedisServer  # noqa: F811
) -> None:
    one = start_node(tmp_path, redis_server, "one", 15.0)  # the default lease: no waiting
    two = start_node(tmp_path, redis_server, "two", 15.0)
    clients: list[LineClient] = []
    try:
        alice = one.join("alice")
        clients.append(alice)
        bob = two.join("bob")
        clients.append(bob)
        alice.expect(r"^\*\*\* bob joined")
        two.terminate()
        bob.expect("shutting down")
        alice.expect(r"^\*\*\* bob left", timeout=3)
        assert two.wait(5) == 0
        assert "Traceback" not in two.log()
        assert one.join("BOB")  # free again at once, not after the lease
    finally:
        for client in clients:
            client.close()
        one.kill()
        two.kill()


# -- the client's pieces -------------------------------------------------------------------


def test_redis_urls() -> None:
    from chatroom.hubs.redis_resp import parse_url

    plain = parse_url("redis://10.0.0.5:6380/2")
    assert (plain.host, plain.port, plain.db, plain.username, plain.password, plain.tls) == (
        "10.0.0.5", 6380, 2, None, None, False)
    secret = parse_url("redis://:p%40ss@localhost")
    assert (secret.port, secret.db, secret.username, secret.password) == (
        6379, 0, None, "p@ss")
    user = parse_url("rediss://chat:pw@[::1]:6390/1?ca=/etc/ca.pem")
    assert (user.host, user.port, user.tls, user.ca, user.username, user.password, user.db) == (
        "::1", 6390, True, "/etc/ca.pem", "chat", "pw", 1)
    assert str(user) == "rediss://[::1]:6390/1"  # no password in logs
    unix = parse_url("unix:///run/redis.sock?db=3")
    assert (unix.path, unix.db) == ("/run/redis.sock", 3)
    for bad in ("http://x", "redis://", "redis://h/x", "redis://h:99999", "unix://"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_a_node_waiting_for_redis_is_back_before_its_heartbeat_runs_out() -> None:
    """After an outage too short for Redis to give everyone time to come back (under
    ``hearing``), a node's heartbeat, renewed at most ``interval`` before the outage,
    lives ``heartbeat - interval`` more: the default wait between attempts to reconnect
    must bring the node back before that, at every lease the option allows."""
    for lease in (1.0, 3.0, 15.0, 300.0):
        hub = RedisHub("redis://127.0.0.1:1", ROOM, _reactor(), lease=lease)  # not started
        longest = max(hub._retry(attempt) for attempt in range(1, 40) for _ in range(20))
        assert hub.hearing + longest < hub.heartbeat - hub.interval, (lease, longest)


# What Redis sends the hub, nested as it comes: an XREAD with two entries (one field
# empty), the RENEW script's [reaped, [statuses]] and an empty one, SCAN, an XREAD that
# timed out (null array), a nil bulk, an error, a status.
REPLIES = (b"*1\r\n*2\r\n$10\r\nchat:{x}:l\r\n*2\r\n"
           b"*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\nn\r\n$1\r\na\r\n$1\r\ne\r\n$0\r\n\r\n"
           b"*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\ne\r\n$6\r\nhe\r\nlo\r\n"
           b":5\r\n*2\r\n:1\r\n*3\r\n:0\r\n:1\r\n:2\r\n*2\r\n:0\r\n*0\r\n"
           b"*2\r\n$1\r\n0\r\n*1\r\n$5\r\nk:{x}\r\n*-1\r\n$-1\r\n-ERR bad thing\r\n+OK\r\n")
PARSED: list[Any] = [
    [[b"chat:{x}:l", [[b"1-0", [b"n", b"a", b"e", b""]], [b"2-0", [b"e", b"he\r\nlo"]]]]],
    5, [1, [0, 1, 2]], [0, []], [b"0", [b"k:{x}"]], None, None, "error", "OK",
]


@pytest.mark.parametrize("parser", ["python", "hiredis"])
def test_txredisapi_reads_nested_replies_in_any_pieces(parser: str) -> None:
    """The hub reads nested arrays (XREAD, scripts) through txredisapi, with hiredis when
    it is installed and with its own parser when not: both, whatever the TCP pieces."""
    import txredisapi
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    if parser == "hiredis" and txredisapi.hiredis is None:
        pytest.skip("hiredis is not installed")
    base = txredisapi.HiredisProtocol if parser == "hiredis" else txredisapi.BaseRedisProtocol

    def parse(pieces: list[bytes]) -> list[Any]:
        clock = Clock()
        protocol = base(charset=None, convertNumbers=False)  # as RedisConnection sets it
        protocol.callLater = clock.callLater
        protocol.makeConnection(StringTransport())
        for piece in pieces:
            protocol.dataReceived(piece)
            for _ in range(10_000):  # txredisapi's parser resumes on a later turn
                if not clock.getDelayedCalls():
                    break
                clock.advance(0)
        replies = list(protocol.replyQueue.pending)  # nobody waits: they queue up
        return [("error" if isinstance(r, txredisapi.ResponseError) else
                 "OK" if r in (b"OK", "OK") else r) for r in replies]

    assert parse([REPLIES]) == PARSED
    for cut in range(1, len(REPLIES)):
        assert parse([REPLIES[:cut], REPLIES[cut:]]) == PARSED, cut
    assert parse([REPLIES[i:i + 1] for i in range(len(REPLIES))]) == PARSED


def test_the_hubs_shortcuts_in_txredisapi_give_its_own_results() -> None:
    """RedisConnection builds commands and passes replies on faster than txredisapi
    does, and must stay byte for byte what txredisapi would have done."""
    import txredisapi
    from twisted.internet.task import Clock

    from chatroom.hubs.redis import RedisConnection
    from chatroom.hubs.redis_resp import RedisAddress

    ours = RedisConnection(RedisAddress(), Clock())
    theirs = txredisapi.BaseRedisProtocol(charset=None, convertNumbers=False)
    commands: list[tuple[Any, ...]] = [
        (b"XADD", "chatroom:{lobby}:log", b"MAXLEN", b"~", 10_000, b"*", b"n", "n\u00e9",
         b"s", b"17", b"e", b'["Said","lobby",1.5,"m","alice","h\xc3\xa9"]'),
        ("EVAL", "return 1", 1, "k", 0, -7, 1.5, 2.0e-7, b"", bytearray(b"ab"), "x" * 5000),
        ("PING",),
    ]
    for command in commands:
        assert ours._build_command(*command) == theirs._build_command(*command)
    for reply in [*PARSED, [b"1", [b"2.5", [b"-3", None]]], b"", b"0", 0, None, []]:
        assert ours.tryConvertData(reply) == theirs.tryConvertData(reply)


# -- ways to log in and to connect ---------------------------------------------------------


def _own_server(tmp_path: Path, **options: Any) -> RedisServer:
    from tests.integration.redis_server import REDIS_SERVER

    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, **options)
    server.start()
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        server.remove_socket_dir()
        raise
    return server


@pytest.mark.parametrize("form", ["password", "user", "tls", "unix"])
@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_every_form_of_redis_url_reaches_the_room(tmp_path: Path, form: str) -> None:
    """Password and database, an ACL user, TLS checked against a CA, a UNIX socket: two
    hubs meet in the same room, and the database number keeps rooms apart."""
    server = _own_server(tmp_path, password="s3cret" if form == "password" else None,
                         tls=form == "tls", unix=form == "unix")
    try:
        if form == "password":
            url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        elif form == "user":
            assert server.command("ACL", "SETUSER", "chat", "on", ">pw", "~*", "&*",
                                  "+@all") == b"+OK"
            url = f"redis://chat:pw@127.0.0.1:{server.port}/2"
        elif form == "tls":
            url = server.url
            assert url.startswith("rediss://")
        else:
            url = f"unix://{server.socket_path}?db=4"
        hubs = [RedisHub(url, ROOM, _reactor(), lease=3.0, node=f"n{i}") for i in range(2)]
        for hub in hubs:
            hub.startService()
        try:
            for hub in hubs:
                await hub.when_connected()
            got: list[Event] = []
            hubs[1].subscribe(got.append)
            assert await hubs[0].claim("x", "x", "m1")
            assert not await hubs[1].claim("x", "x", "m2")
            hubs[0].publish(Said(ROOM, 1.0, "m1", "x", "over " + form))
            await eventually(lambda: [e.text for e in got if isinstance(e, Said)]
                             == ["over " + form], what="a line across")
        finally:
            for hub in hubs:
                await hub.stopService()
        keyspace = server.command("INFO", "keyspace")
        db = {"password": "db3", "user": "db2", "unix": "db4", "tls": "db0"}[form]
        assert keyspace.count(b"keys=") == 1 and f"{db}:keys=".encode() in keyspace, keyspace
    finally:
        server.stop()
        server.remove_socket_dir()


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_wrong_password_is_retried_quietly_until_it_is_right(tmp_path: Path) -> None:
    """Redis refuses the login: the hub says why (no traceback), serves its own members
    alone, and gets in when Redis accepts the password (changed there meanwhile)."""
    from twisted.logger import ILogObserver, globalLogPublisher

    server = _own_server(tmp_path, password="right")
    events: list[dict[str, Any]] = []
    observer = cast(ILogObserver, events.append)
    globalLogPublisher.addObserver(observer)
    hub = RedisHub(f"redis://:wrong@127.0.0.1:{server.port}", ROOM, _reactor(), lease=3.0,
                   retry=lambda attempt: 0.1)
    hub.startService()
    try:
        def refusals() -> list[str]:
            return [str(e.get("why")) for e in events
                    if e.get("log_namespace", "").startswith("chatroom.hubs.redis")
                    and "could not get in step" in e.get("log_format", "")]

        await eventually(lambda: len(refusals()) >= 2, what="two refused attempts")
        assert "WRONGPASS" in refusals()[0] or "invalid" in refusals()[0], refusals()
        assert hub.state is State.IDLE
        assert await hub.claim("x", "x", "m1")  # decided here, as when split
        assert server.command("CONFIG", "SET", "requirepass", "wrong") == b"+OK"
        server.password = "wrong"
        await hub.when_connected()
        assert hub.lookup("x") == ("x", "m1")
        held = server.command("GET", f"chatroom:{{{ROOM}}}:nick:x")
        assert held.startswith(b"m1\t"), held  # the resync claimed it in Redis
    finally:
        await hub.stopService()
        globalLogPublisher.removeObserver(observer)
        server.stop()
    assert not [e for e in events if e.get("log_failure") is not None
                or e.get("isError")], "a traceback was logged"


# -- rooms across nodes ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_rooms_members_and_topics_cross_nodes_and_reach_a_late_node(
    cluster: Cluster,
) -> None:
    a, b = await cluster.node("a"), await cluster.node("b")
    alice = await a.room.join("alice")
    bob = await b.room.join("bob")
    a.room.chat.enter(alice, "#dev")
    await eventually(lambda: b.room.chat.directory.find("#dev") is not None, what="#dev on b")
    b.room.chat.enter(bob, "#DEV")  # the room as first written, whoever writes it
    a.room.chat.set_topic(alice, "#dev", "shipping friday")

    def in_dev(node: Node) -> list[str]:
        return node.room.chat.members("#dev")

    await eventually(lambda: in_dev(a) == in_dev(b) == ["alice", "bob"], what="#dev on both")
    b_dev = b.room.chat.room("#dev")
    await eventually(lambda: b_dev.topic == "shipping friday", what="topic on b")
    b.room.chat.say(bob, "hello dev")
    await eventually(lambda: "hello dev" in a.said(), what="a line of #dev on a")
    said = next(e for e in a.events if isinstance(e, Said) and e.text == "hello dev")
    assert said.room == "#dev"

    # a node that comes later learns who is where, and the topic, without new events
    c = await cluster.node("c")
    await eventually(lambda: in_dev(c) == ["alice", "bob"], what="#dev on the late node")
    await eventually(lambda: c.room.chat.room("#dev").topic == "shipping friday",
                     what="topic on the late node")
    assert sorted(c.room.chat.members("#lobby")) == ["alice", "bob"]
    assert c.joins() == []  # it learnt the view: nobody was announced as joining

    # nicknames are the server's: a name in another room on another node is taken
    with pytest.raises(NicknameTaken):
        await c.room.join("ALICE")

    b.room.chat.part(bob, "#dev", "lunch")
    await eventually(lambda: in_dev(a) == in_dev(c) == ["alice"], what="bob parted")
    assert sorted(c.room.chat.members("#lobby")) == ["alice", "bob"]


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_dead_nodes_members_leave_every_room_they_were_in(cluster: Cluster) -> None:
    lease = 1.5
    a, b = await cluster.node("a", lease), await cluster.node("b", lease)
    alice = await a.room.join("alice")
    a.room.chat.enter(alice, "#dev")
    a.room.chat.enter(alice, "#ops")
    bob = await b.room.join("bob")
    b.room.chat.enter(bob, "#dev")
    await eventually(lambda: b.room.chat.members("#dev") == ["alice", "bob"])
    a.crash()
    await eventually(
        lambda: sorted(e.room for e in b.events if isinstance(e, Left)) == [
            "#dev", "#lobby", "#ops"],
        timeout=3 * lease, what="alice left each of her rooms on b",
    )
    assert b.room.chat.members("#dev") == ["bob"]
    assert b.room.chat.directory.find("#ops") is None  # empty: forgotten
    again = await b.room.join("Alice")  # and her nickname is free
    assert again.nick == "Alice"
