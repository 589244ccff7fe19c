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

from chatroom.domain.errors import NicknameTaken
from chatroom.domain.events import Acted, Event, Joined, Left, Notice, Renamed, Said
from chatroom.domain.room import Member, Room
from chatroom.hubs.redis import SPLIT, WHOLE, RedisHub, State
from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
from tests.integration.serverproc import LineClient, ServerProcess

ROOM = "lobby"
LAUNCHER = Path(__file__).with_name("redis_server.py")


def _reactor() -> Any:
    from twisted.internet import reactor  # noqa: TID251 - tests run on the real reactor

    return reactor


async def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    reactor = _reactor()
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await deferLater(reactor, 0.02, lambda: None)
    assert check(), f"not in {timeout} s: {what}"


async def pause(seconds: float) -> None:
    """Give a duplicate or a stray event the chance to show up (only after the awaited
    event already came)."""
    await deferLater(_reactor(), seconds, lambda: None)


class Node:
    """A room on one server: its hub, and everything its front end would have received."""

    def __init__(self, server: RedisServer, name: str, lease: float) -> None:
        self.name = name
        self.hub = RedisHub(server.url, ROOM, _reactor(), lease=lease, timeout=1.0,
                            node=name, retry=lambda attempt: 0.2)
        self.room = Room(ROOM, self.hub, _reactor(), node=name)
        self.events: list[Event] = []
        self.hub.subscribe(self.events.append)

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
        hub._drop_connections()
        hub._service.stopService()


class Cluster:
    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.nodes: list[Node] = []

    async def node(self, name: str, lease: float = 3.0) -> Node:
        node = Node(self.server, name, lease)
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
    a, b = await cluster.node("a"), await cluster.node("b")
    await server.stop_async(_reactor())
    await eventually(lambda: SPLIT in a.notices() and SPLIT in b.notices())
    on_a: Member = await a.room.join("carol")
    on_b: Member = await b.room.join("Carol")
    server.start()
    await server.ready(_reactor())
    await eventually(lambda: WHOLE in a.notices() and WHOLE in b.notices(), timeout=15)
    await eventually(lambda: sorted(a.room.members()) == sorted(b.room.members())
                     and len(a.room.members()) == 2, what="one roster")
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
    server.kill()
    for name in ("appendonlydir", "dump.rdb"):
        path = server.directory / name
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
        elif path.exists():
            path.unlink()
    server.start()
    await server.ready(_reactor())
    await eventually(lambda: WHOLE in a.notices() and WHOLE in b.notices(), timeout=15)
    with pytest.raises(NicknameTaken):
        await b.room.join("ALICE")  # a claimed it again when it came back
    assert sorted(a.room.members()) == sorted(b.room.members()) == ["alice", "bob"]


# -- two real server processes --------------------------------------------------------


def start_node(tmp_path: Path, server: RedisServer, name: str, lease: float) -> ServerProcess:
    workdir = tmp_path / name
    workdir.mkdir()
    command = [sys.executable, str(LAUNCHER), "node", "--redis", server.url,
               "--lease", str(lease), "--node", name]
    return ServerProcess(workdir, command=command)


def test_two_server_processes_share_one_room(
    tmp_path: Path, redis_server: RedisServer  # noqa: F811
) -> None:
    one = start_node(tmp_path, redis_server, "one", 2.0)
    two = start_node(tmp_path, redis_server, "two", 2.0)
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
    assert (plain.host, plain.port, plain.db, plain.password, plain.tls) == (
        "10.0.0.5", 6380, 2, None, False)
    assert plain.login() == [["SELECT", 2]]
    secret = parse_url("redis://:p%40ss@localhost")
    assert (secret.port, secret.db, secret.password, secret.login()) == (
        6379, 0, "p@ss", [["AUTH", "p@ss"]])
    user = parse_url("rediss://chat:pw@[::1]:6390/1?ca=/etc/ca.pem")
    assert (user.host, user.port, user.tls, user.ca, user.login()) == (
        "::1", 6390, True, "/etc/ca.pem", [["AUTH", "chat", "pw"], ["SELECT", 1]])
    assert str(user) == "rediss://[::1]:6390/1"  # no password in logs
    unix = parse_url("unix:///run/redis.sock?db=3")
    assert (unix.path, unix.db) == ("/run/redis.sock", 3)
    for bad in ("http://x", "redis://", "redis://h/x", "redis://h:99999", "unix://"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_resp_parser_takes_replies_in_any_pieces() -> None:
    from chatroom.hubs.redis_resp import ReplyError, RespParser

    wire = (b"+OK\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n*0\r\n-ERR bad thing\r\n"
            b"*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nn\r\n$0\r\n\r\n:7\r\n")
    expected = [b"OK", 42, b"he\r\no", None, None, [], "ERR bad thing",
                [[b"1-0", [b"n", b""]], 7]]

    def plain(replies: list[Any]) -> list[Any]:
        return [r.message if isinstance(r, ReplyError) else r for r in replies]

    assert plain(RespParser().feed(wire)) == expected
    for cut in range(1, len(wire)):
        parser = RespParser()
        assert plain(parser.feed(wire[:cut]) + parser.feed(wire[cut:])) == expected
    parser = RespParser()
    bytewise = [r for i in range(len(wire)) for r in parser.feed(wire[i:i + 1])]
    assert plain(bytewise) == expected


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_password_protected_redis(tmp_path: Path) -> None:
    from tests.integration.redis_server import REDIS_SERVER

    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, password="s3cret")
    server.start()
    try:
        server.wait_ready()
        assert server.url.startswith("redis://:s3cret@")
        hub = RedisHub(server.url, ROOM, _reactor(), lease=3.0)
        hub.startService()
        try:
            await hub.when_connected()
            assert await hub.claim("x", "x", "m1")
        finally:
            await hub.stopService()
    finally:
        server.stop()
