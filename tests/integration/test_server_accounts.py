"""Accounts on a real server over real sockets, as nc users meet them: /register, the
password prompt, /nick refused, /password, /unregister; and on two Redis nodes, a
nickname registered on one is reserved on the other."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
from tests.integration.serverproc import LineClient, ServerProcess

CHEAP = ("--password-time-cost", "1", "--password-memory-kib", "64")
PROMPT = "alice is a registered nickname: type its password"


def choose(server: ServerProcess, nick: str) -> LineClient:
    client = server.connect()
    client.expect("nickname")
    client.send(nick)
    return client


def test_register_prompt_nick_password_unregister(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(*CHEAP)
    alice = server.join("alice")
    alice.send("/register first-word")
    assert alice.expect("registered") == (
        "*** alice is registered to you: from now on, whoever chooses it must give this "
        "password")
    bob = server.join("bob")
    bob.send("/nick alice")
    assert bob.expect("^!") == "! nickname alice is already taken"  # its owner is here
    alice.send("/quit")
    alice.wait_closed()
    bob.send("/nick ALICE")
    assert bob.expect("^!").startswith("! nickname ALICE is registered: only its owner")

    again = choose(server, "alice")
    assert again.expect("password") == PROMPT
    again.send("not-it")
    assert again.expect("^!") == "! wrong password for alice"
    again.expect("nickname")
    again.send("alice")
    again.expect("password")
    again.send("first-word")
    again.expect("welcome, alice!")
    bob.expect(r"^\*\*\* alice joined")

    again.send("/password first-word second-word")
    assert again.expect("password") == "*** your password is changed"
    again.send("/unregister second-word")
    assert again.expect("no longer") == (
        "*** alice is no longer registered: anyone may choose it")
    again.send("/quit")
    again.wait_closed()
    free = choose(server, "alice")
    free.expect("welcome, alice!")
    assert "first-word" not in server.log() and "second-word" not in server.log()


def test_a_nickname_registered_on_one_node_is_reserved_on_the_other(
    start_server: Callable[..., ServerProcess], redis_server: RedisServer,  # noqa: F811
) -> None:
    one = start_server("--redis", redis_server.url, "--history", "none", *CHEAP)
    two = start_server("--redis", redis_server.url, "--history", "none", *CHEAP)
    watcher = two.join("watcher")
    alice = one.join("alice")
    watcher.expect(r"^\*\*\* alice joined")
    alice.send("/register across-nodes")
    alice.expect("is registered to you")
    alice.send("/quit")
    watcher.expect(r"^\*\*\* alice left")
    there = choose(two, "alice")
    assert there.expect("password|welcome") == PROMPT
    there.send("across-nodes")
    there.expect("welcome, alice!")
