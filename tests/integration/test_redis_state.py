"""A node that was down learns what changed meanwhile (issue 15 leftovers, point 1).

Accounts, registered rooms and server bans are kept in each node's state file, and every
node learns a change from the room's events. A node that was stopped missed them: started
again, it held its file's old state (no account registered meanwhile, a server ban lifted
meanwhile still enforced). Now the nodes trade what they keep when one comes (back): it is
told every account and server ban (and those given up or lifted) with the time of the
change, and keeps the later; registered rooms come with the rooms' state as before.
Real ``twistd chatroom --redis`` processes and a real ``redis-server``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from argon2 import PasswordHasher
from twisted.internet.defer import Deferred, succeed

from chatroom.accounts.store import Account, AccountBook
from chatroom.domain.events import AccountSet
from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
from tests.integration.serverproc import LineClient, ServerProcess
from tests.integration.test_redis_moderation import in_step, until_accepted
from tests.integration.test_redis_nodes import (  # noqa: F401
    Cluster,
    Node,
    cluster,
    eventually,
    pause,
)

CHEAP = ("--password-time-cost", "1", "--password-memory-kib", "64")
PROMPT = "alice is a registered nickname: type its password"


def first_line(server: ServerProcess, source: str | None = None) -> str:
    client = server.connect(source=source)
    try:
        return client.read_line() or ""
    finally:
        client.close()


def until_banned(server: ServerProcess, source: str, timeout: float = 10) -> str:
    """Connect from ``source`` until the server says it is banned (the ban is on its way
    from another node meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        first = first_line(server, source)
        if "banned" in first or time.monotonic() > deadline:
            return first
        time.sleep(0.2)


def until_prompted(server: ServerProcess, nick: str, timeout: float = 10) -> LineClient:
    """Choose ``nick`` until the server asks for its password (the account is on its way
    from another node meanwhile); the client that was asked."""
    deadline = time.monotonic() + timeout
    while True:
        client = server.connect()
        client.expect("nickname")
        client.send(nick)
        answer = client.expect("password|welcome")
        if answer == PROMPT or time.monotonic() > deadline:
            return client
        client.send("/quit")
        client.wait_closed()
        time.sleep(0.2)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def test_a_node_that_was_down_learns_accounts_rooms_and_server_bans(
    tmp_path: Path, nodes: list[ServerProcess], redis_server: RedisServer,  # noqa: F811
) -> None:
    opers = tmp_path / "opers.txt"
    opers.write_text(f"root {PasswordHasher(1, 64, 1).hash('root-pass')}\n")

    def start(name: str, run: int) -> ServerProcess:
        workdir = tmp_path / f"{name}{run}"
        workdir.mkdir()
        server = ServerProcess(
            workdir, "--redis", redis_server.url, "--history", "none", *CHEAP,
            "--opers", str(opers), "--state", str(tmp_path / f"{name}-state.sqlite3"))
        nodes.append(server)
        return server

    one, two = start("one", 0), start("two", 0)
    in_step(one, two)
    root = one.join("root")
    root.send("/oper root root-pass")
    root.expect("server operator")
    root.send("/gban 127.0.0.3")
    root.expect("banned from the server")
    assert until_banned(two, "127.0.0.3") == "! you are banned from this server"

    two.terminate()  # node two is down (its file holds the ban on 127.0.0.3) while ...
    two.wait()
    alice = one.join("alice")
    alice.send("/register alice-pass")  # ... an account is registered,
    alice.expect("registered to you")
    alice.send("/join #dev")
    alice.expect("you joined")
    alice.send("/register-room")  # a room registered (alice's account its operator),
    alice.expect("is registered:")
    alice.send("/quit")
    alice.wait_closed()
    root.send("/ungban 127.0.0.3")  # a server ban lifted and another set
    root.expect("no longer banned")
    root.send("/gban 127.0.0.2")
    root.expect("banned from the server")

    two = start("two", 1)
    in_step(two)
    there = until_prompted(two, "alice")  # asked for the password, not let in
    there.send("alice-pass")
    there.expect("welcome, alice!")
    there.send("/join #dev")
    there.expect("you joined #dev")
    there.send("/who #dev")
    assert there.expect(r"in #dev") == "*** 1 in #dev: @alice"  # its operator account
    assert until_banned(two, "127.0.0.2") == "! you are banned from this server"
    assert until_accepted(two, "127.0.0.3") == "Choose a nickname:"
    for server in (one, two):
        assert "Traceback" not in server.log()


class Kept:
    """A store of accounts for a book: what a node's state file held at start."""

    def __init__(self, *accounts: Account) -> None:
        self.accounts = list(accounts)

    def accounts_blocking(self) -> list[Account]:
        return list(self.accounts)

    def save_account(self, account: Account) -> Deferred[None]:
        return succeed(None)

    def delete_account(self, key: str) -> Deferred[None]:
        return succeed(None)


def booked(node: Node, *accounts: Account) -> AccountBook:
    book = AccountBook(Kept(*accounts))
    node.hub.subscribe(book)
    node.hub.kept.append(book.kept)
    return book


@pytest_twisted.ensureDeferred  # type: ignore[untyped-decorator]
async def test_a_node_that_was_alone_tells_the_others_and_the_later_change_wins(
    cluster: Cluster,  # noqa: F811
) -> None:
    a = await cluster.node("a")
    at_a = booked(a, Account("alice", "hash-new", 200.0), Account("carol", "hash-c", 100.0))
    a.hub.publish(AccountSet("", 300.0, "", "", "erin", ""))  # erin given up on a
    b = Node(cluster.server, "b", 3.0, 0.2)  # its file: older alice, dora, erin
    cluster.nodes.append(b)
    at_b = booked(b, Account("alice", "hash-old", 100.0), Account("dora", "hash-d", 150.0),
                  Account("erin", "hash-e", 120.0))
    await b.start()
    await eventually(lambda: at_a.find("dora") is not None, what="a learns b's dora")
    await eventually(lambda: at_b.find("carol") is not None, what="b learns a's carol")
    await eventually(lambda: at_b.find("erin") is None, what="b learns erin is given up")
    await pause(0.3)
    for book in (at_a, at_b):
        alice = book.find("alice")
        assert alice is not None and alice.hash == "hash-new"  # the later change
        assert book.find("erin") is None
        assert len(book) == 3
