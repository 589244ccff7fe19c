"""Moderation across Redis nodes: real ``twistd chatroom --redis`` processes sharing one
real ``redis-server``. A ban, a mute or a mode set on one node holds on the others at
once, and on a node that starts later."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest_twisted
from argon2 import PasswordHasher

from chatroom.domain.moderation import Moderation
from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
from tests.integration.serverproc import LineClient, ServerProcess
from tests.integration.test_redis_nodes import Cluster, cluster, eventually, pause  # noqa: F401


def in_step(*servers: ServerProcess, timeout: float = 20) -> None:
    """Until each server's hub is in step with the room through Redis (a member who joins
    before that is announced to the others only once it is)."""
    deadline = time.monotonic() + timeout
    while not all("in step with the room" in server.log() for server in servers):
        assert time.monotonic() < deadline, "a node never got in step with Redis"
        time.sleep(0.05)


def until_answer(client: LineClient, line: str, pattern: str, timeout: float = 10) -> str:
    """Send ``line`` until the answer matches ``pattern`` (a late node is learning the
    room from the others' views meanwhile): each answer is read before the next try."""
    deadline = time.monotonic() + timeout
    while True:
        client.send(line)
        answer = client.expect(r"^(\*\*\*|!) ", timeout=5)
        if re.search(pattern, answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.3)


def until_accepted(server: ServerProcess, source: str, timeout: float = 10) -> str:
    """Connect from ``source`` until the server says more than that it is banned (the
    lifting of a server ban is on its way from another node meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        client = server.connect(source=source)
        first = client.read_line() or ""
        client.close()
        if "banned" not in first or time.monotonic() > deadline:
            return first
        time.sleep(0.2)


def test_a_ban_a_mute_and_a_mode_set_on_one_node_hold_on_the_others(
    start_server: Callable[..., ServerProcess], redis_server: RedisServer,  # noqa: F811
) -> None:
    one = start_server("--redis", redis_server.url, "--history", "none")
    two = start_server("--redis", redis_server.url, "--history", "none")
    in_step(one, two)
    alice = one.join("alice")
    bob = two.join("bob")
    carol = two.join("carol")
    alice.send("/join #dev")
    alice.expect("you joined #dev")
    for client in (bob, carol):
        client.send("/join #dev")
        client.expect("you joined #dev")
    alice.expect(r"^\*\*\* carol joined")

    alice.send("/ban bob spam")
    alice.expect("you set a ban")
    assert bob.expect("banned by") == "#dev *** bob was banned by alice (spam)"
    assert alice.expect("banned by") == "*** bob was banned by alice (spam)"
    bob.send("/join #dev")
    assert bob.expect("^!") == "! you are banned from #dev"

    alice.send("/mute carol")
    alice.expect("you muted carol")
    carol.expect("alice muted carol")
    carol.send("can you hear me?")
    assert carol.expect("^!") == "! you are muted in #dev"

    alice.send("/mode +i")
    carol.expect("alice set mode")
    dora = two.join("dora")
    dora.send("/join #dev")
    assert dora.expect("^!") == "! #dev is invite-only: an operator of it can /invite you"
    assert not [line for line in alice.quiet() if "hear me" in line]  # carol's: nowhere

    # A node that starts now learns the rules from the others, as it learns who is where.
    bob.send("/quit")
    bob.wait_closed()
    three = start_server("--redis", redis_server.url, "--history", "none")
    in_step(three)
    bob = three.join("bob")
    assert until_answer(bob, "/who #dev", "@alice") == "*** 2 in #dev: @alice, carol"
    assert until_answer(bob, "/mode #dev", r"\+it") == "*** modes of #dev: +it"
    bob.send("/join #dev")
    assert bob.expect("^!") == "! you are banned from #dev"
    bob.send("/bans #dev")
    bob.expect("1 ban in #dev")
    assert bob.expect("by alice").startswith("*** bob (by alice, ")
    for server in (one, two, three):
        assert "Traceback" not in server.log()


def test_a_server_operator_on_one_node_kills_and_bans_from_the_server_on_another(
    tmp_path: Path, start_server: Callable[..., ServerProcess],
    redis_server: RedisServer,  # noqa: F811
) -> None:
    opers = tmp_path / "opers.txt"
    opers.write_text(f"root {PasswordHasher(1, 64, 1).hash('pw')}\n")
    one = start_server("--redis", redis_server.url, "--history", "none", "--opers", str(opers))
    two = start_server("--redis", redis_server.url, "--history", "none")
    in_step(one, two)
    alice = one.join("alice")
    bob = two.join("bob")
    eve = two.join("eve", source="127.0.0.2")
    alice.expect(r"^\*\*\* eve joined")
    alice.send("/oper root pw")
    alice.expect("you are now a server operator")

    alice.send("/kill bob bye")
    assert bob.expect("^!") == "! you were disconnected by alice: bye"
    assert bob.wait_closed()
    assert alice.expect("bob left") == "*** bob left"

    alice.send("/gban 127.0.0.0/24 10m")
    assert alice.expect("^!") == "! 127.0.0.0/24 names your own address: you would be banned too"
    alice.send("/gban 127.0.0.2 10m")
    assert eve.expect("^!") == "! you are banned from this server"
    assert alice.expect("eve left") == "*** eve left"
    refused = two.connect(source="127.0.0.2")
    assert refused.read_line() == "! you are banned from this server"
    alice.send("/ungban 127.0.0.2")
    alice.expect("no longer banned")
    assert until_accepted(two, "127.0.0.2") == "Choose a nickname:"


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_member_kicked_from_another_node_is_out_of_the_room_for_a_late_node(
    cluster: Cluster,  # noqa: F811
) -> None:
    a, b = await cluster.node("a"), await cluster.node("b")
    moderation = Moderation(a.room.chat, a.hub.clock)
    Moderation(b.room.chat, b.hub.clock)
    alice = await a.room.join("alice")
    a.room.chat.enter(alice, "#dev")
    await eventually(lambda: b.room.chat.directory.find("#dev") is not None)
    bob = await b.room.join("bob")
    b.room.chat.enter(bob, "#dev")
    await eventually(lambda: a.room.chat.members("#dev") == ["alice", "bob"])
    moderation.kick(alice, "#dev", "bob", "out")
    await eventually(lambda: b.room.chat.members("#dev") == ["alice"], what="kicked on b")
    assert b.hub._present[bob.id][1] == ("#lobby",)  # its own node knows he is out
    c = await cluster.node("c")
    await eventually(lambda: c.room.chat.members("#lobby") == ["alice", "bob"])
    await pause(0.3)
    assert c.room.chat.members("#dev") == ["alice"]  # nobody told it bob is in #dev
