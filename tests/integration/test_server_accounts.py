"""Accounts on a real server over real sockets, as nc users meet them: /register, the
password prompt, /nick refused, /password, /unregister; and on two Redis nodes, a
nickname registered on one is reserved on the other."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from argon2 import PasswordHasher

from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
from tests.integration.serverproc import LineClient, ServerProcess
from tests.integration.test_redis_moderation import in_step

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
    in_step(one, two)
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


def test_accounts_registered_rooms_and_server_bans_survive_a_restart(tmp_path: Path) -> None:
    opers = tmp_path / "opers.txt"
    opers.write_text(f"root {PasswordHasher(1, 64, 1).hash('root-pass')}\n")
    args = (*CHEAP, "--opers", str(opers))
    server = ServerProcess(tmp_path, *args)
    try:
        alice = server.join("alice")
        alice.send("/register alice-pass")
        alice.expect("registered to you")
        alice.send("/join #dev")
        alice.expect("you joined")
        alice.send("/topic kept across restarts")
        alice.send("/mode +k sesame")
        alice.expect("you set mode")
        alice.send("/ban 127.0.0.2 not welcome")
        alice.expect("set a ban")
        alice.send("/register-room")
        assert alice.expect("is registered:") == (
            "*** #dev is registered: it keeps its topic, modes, bans and operators across "
            "restarts and when empty")
        alice.send("/oper root root-pass")
        alice.expect("server operator")
        alice.send("/gban 127.0.0.3")
        alice.expect("banned from the server")
        alice.send("/part #dev")
        alice.expect("you left")
        alice.send("/rooms")
        assert alice.expect("#dev") == "*** #dev (0) kept across restarts"  # kept, empty
    finally:
        server.terminate()
        assert server.wait() in (0, -signal.SIGTERM)

    again = ServerProcess(tmp_path, *args)
    try:
        assert "state in var/chatroom-state.sqlite3: 1 accounts, 1 registered rooms, 1 " \
               "server bans" in again.log()
        alice = again.connect()
        alice.expect("nickname")
        alice.send("alice")
        alice.expect("password")
        alice.send("alice-pass")
        alice.expect("welcome, alice!")
        alice.send("/join #dev")
        assert alice.expect("^!") == "! #dev needs its key: /join #dev KEY"
        alice.send("/join #dev sesame")
        assert alice.expect("topic of") == "*** topic of #dev: kept across restarts"
        alice.expect("you joined")
        alice.send("/who")
        assert alice.expect("in the room") == "*** 1 in the room: @alice"  # by account
        eve = again.join("eve", source="127.0.0.2")
        eve.send("/join #dev sesame")
        assert eve.expect("^!") == "! you are banned from #dev"
        refused = again.connect(source="127.0.0.3")
        assert refused.read_line() == "! you are banned from this server"
    finally:
        again.terminate()
        again.wait()
