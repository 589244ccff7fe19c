"""The ``IHub`` and ``INicknames`` contracts: every test here runs against the in-process
pair (``LocalHub`` and ``LocalNicknames``) and ``RedisHub`` (which is both).

A "node" is one process's hub. With ``LocalHub`` there is only one process, so every node
is the same hub; with ``RedisHub`` each node is its own hub on one shared, real
``redis-server`` (skipped if the binary is missing). Delivery through Redis takes a
moment, so the tests wait for what they expect (bounded), never for a fixed time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList
from twisted.internet.task import deferLater
from zope.interface.verify import verifyObject

from chatroom.domain.events import Event, Joined, Left, Renamed, Said, Whispered
from chatroom.domain.nicknames import key
from chatroom.hubs.local import LocalHub, LocalNicknames
from chatroom.hubs.redis import RedisHub
from chatroom.ports import IHub
from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401

ROOM = "#contract"


def _reactor() -> Any:
    from twisted.internet import reactor  # noqa: TID251 - tests run on the real reactor

    return reactor


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``check()`` is true, polling every 10 ms, at most ``timeout`` seconds."""
    reactor = _reactor()
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await deferLater(reactor, 0.01, lambda: None)
    assert check(), "condition not met in time"


class LocalNode(LocalHub, LocalNicknames):
    """The in-process hub and registry as one node, as ``RedisHub`` is both."""

    def __init__(self) -> None:
        LocalHub.__init__(self)
        LocalNicknames.__init__(self)


class Nodes:
    """Makes the hubs of one test: all the same ``LocalHub``, or one ``RedisHub`` each."""

    def __init__(self, kind: str, server: RedisServer | None) -> None:
        self.kind = kind
        self.server = server
        self.local = LocalNode()
        self.started: list[RedisHub] = []

    async def node(self) -> Any:
        if self.server is None:
            return self.local
        hub = RedisHub(self.server.url, ROOM, _reactor(), lease=3.0)
        hub.startService()
        self.started.append(hub)
        await hub.when_connected()
        return hub

    async def close(self) -> None:
        for hub in reversed(self.started):
            await hub.stopService()


@pytest_twisted.async_yield_fixture(params=["local", "redis"])  # type: ignore[untyped-decorator]
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    made = Nodes(request.param, server)
    try:
        yield made
    finally:
        await made.close()


class Inbox:
    """Everything one subscriber received, in order."""

    def __init__(self, hub: Any) -> None:
        self.events: list[Event] = []
        self.stop = hub.subscribe(self.events.append)

    def said(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Said)]


def joined(nick: str, member: str) -> Joined:
    return Joined(ROOM, 1.0, member, nick)


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_provides_the_interface(nodes: Nodes) -> None:
    hub = await nodes.node()
    assert verifyObject(IHub, hub)


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_claim_is_exclusive_until_released(nodes: Nodes) -> None:
    hub = await nodes.node()
    assert verifyObject(IHub, hub)
    assert await hub.claim(key("Alice"), "Alice", "m1") is True
    assert await hub.claim(key("ALICE"), "ALICE", "m2") is False
    assert hub.lookup(key("alice")) == ("Alice", "m1")
    assert await hub.claim(key("alice"), "alice", "m1") is True  # the holder may respell it
    assert hub.lookup(key("Alice")) == ("alice", "m1")
    hub.release(key("alice"), "m2")  # not the holder: nothing happens
    assert hub.members() == ["alice"]
    hub.release(key("alice"), "m1")
    assert hub.lookup(key("alice")) is None
    assert hub.members() == []
    assert await hub.claim(key("alice"), "Alice", "m2") is True


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_publish_reaches_each_subscriber_once_in_order(nodes: Nodes) -> None:
    hub = await nodes.node()
    assert verifyObject(IHub, hub)
    first, second = Inbox(hub), Inbox(hub)
    for i in range(50):
        hub.publish(Said(ROOM, 1.0, "m1", "alice", f"line {i}"))
    expected = [f"line {i}" for i in range(50)]
    assert first.said() == expected
    assert second.said() == expected
    second.stop()
    hub.publish(Said(ROOM, 1.0, "m1", "alice", "after"))
    assert first.said()[-1] == "after"
    assert second.said() == expected


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_events_reach_every_node_exactly_once_in_sender_order(nodes: Nodes) -> None:
    a, b = await nodes.node(), await nodes.node()
    assert verifyObject(IHub, a)
    on_a, on_b = Inbox(a), Inbox(b)
    for i in range(200):
        a.publish(Said(ROOM, 1.0, "ma", "alice", f"a{i}"))
        b.publish(Said(ROOM, 1.0, "mb", "bob", f"b{i}"))
    await eventually(lambda: len(on_a.said()) >= 400 and len(on_b.said()) >= 400)
    # A fence instead of a pause: each node's last word, said after every node has had
    # all 400 lines, reaches each node after any copy of them that was on its way.
    a.publish(Said(ROOM, 2.0, "ma", "alice", "end a"))
    b.publish(Said(ROOM, 2.0, "mb", "bob", "end b"))
    await eventually(lambda: all({"end a", "end b"} <= set(inbox.said())
                                 for inbox in (on_a, on_b)))
    for inbox in (on_a, on_b):
        said = [t for t in inbox.said() if not t.startswith("end")]
        assert len(said) == 400
        assert [t for t in said if t[0] == "a"] == [f"a{i}" for i in range(200)]
        assert [t for t in said if t[0] == "b"] == [f"b{i}" for i in range(200)]


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_every_node_sees_the_roster(nodes: Nodes) -> None:
    a, b = await nodes.node(), await nodes.node()
    assert verifyObject(IHub, b)
    assert await a.claim(key("Alice"), "Alice", "ma")
    a.publish(joined("Alice", "ma"))
    assert await b.claim(key("bob"), "bob", "mb")
    b.publish(joined("bob", "mb"))
    await eventually(lambda: sorted(a.members()) == sorted(b.members()) == ["Alice", "bob"])
    assert b.lookup(key("alice")) == ("Alice", "ma")
    assert await b.claim(key("ALICE"), "ALICE", "mb2") is False

    assert await a.claim(key("Alicia"), "Alicia", "ma")
    a.publish(Renamed(ROOM, 2.0, "ma", "Alice", "Alicia"))
    a.release(key("Alice"), "ma")
    await eventually(lambda: sorted(b.members()) == ["Alicia", "bob"])
    assert await b.claim(key("alice"), "alice", "mb2") is True
    b.release(key("alice"), "mb2")

    a.publish(Left(ROOM, 3.0, "ma", "Alicia"))
    a.release(key("Alicia"), "ma")
    await eventually(lambda: a.members() == b.members() == ["bob"])


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_whisper_carries_its_addressee_to_every_node(nodes: Nodes) -> None:
    a, b = await nodes.node(), await nodes.node()
    assert verifyObject(IHub, a)
    on_b = Inbox(b)
    a.publish(Whispered(ROOM, 1.0, "ma", "alice", "psst", "mb", "bob"))
    await eventually(lambda: any(isinstance(e, Whispered) for e in on_b.events))
    whispers = [e for e in on_b.events if isinstance(e, Whispered)]
    assert [(w.target, w.target_nick, w.text) for w in whispers] == [("mb", "bob", "psst")]


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_racing_claims_on_two_nodes_one_wins(nodes: Nodes) -> None:
    a, b = await nodes.node(), await nodes.node()
    assert verifyObject(IHub, a)
    for round_ in range(20):
        nick = f"racer{round_}"
        results = await DeferredList(
            [a.claim(key(nick), nick, f"a{round_}"), b.claim(key(nick), nick, f"b{round_}")]
        )
        wins = [won for ok, won in results if ok]
        assert sorted(wins) == [False, True], (nick, results)
