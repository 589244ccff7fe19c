"""``/rehash`` and IRC ``REHASH`` on a real server started with ``--config`` and
``--opers``: a server operator reloads the file as SIGHUP would and is told the outcome;
the log names who asked; anyone else is refused."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.integration.serverproc import BIN, LineClient, ServerProcess, free_port
from tests.integration.test_server_operators import make_hash


def irc_member(port: int, nick: str) -> LineClient:
    """A registered IRC client speaking the protocol by hand."""
    client = LineClient(socket.create_connection(("127.0.0.1", port), timeout=5))
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    client.expect(f" 001 {nick} ")
    return client


def test_rehash_reloads_for_an_operator_and_refuses_the_others(tmp_path: Path) -> None:
    opers = tmp_path / "opers.txt"
    opers.write_text(f"root {make_hash('s3cret', str(BIN / 'chatroom-passwd'))}\n")
    irc_port = free_port()
    base = (f'history = "none"\nopers = "{opers}"\n'
            f'irc = "tcp:{irc_port}:interface=127.0.0.1"\n')
    config = tmp_path / "chatroom.toml"
    config.write_text(base + "max-line = 4096\n")
    server = ServerProcess(tmp_path, "--config", str(config))
    try:
        alice = server.join("alice")
        bob = server.join("bob")
        dave = irc_member(irc_port, "dave")

        config.write_text(base + "max-line = 1024\n")
        bob.send("/rehash")
        assert bob.expect("^!") == "! only a server operator may do that (/oper NAME PASSWORD)"
        dave.send("REHASH")
        assert dave.expect(" 481 ").endswith(" 481 dave :Permission Denied- You're not an "
                                             "IRC operator")
        alice.send("a" * 3000)  # nothing reloaded yet
        bob.expect("alice: a{3000}$")

        alice.send("/oper root s3cret")
        alice.expect("you are now a server operator")
        alice.send("/rehash")
        assert alice.expect("reload") == "*** reload applied: max-line 4096 -> 1024"
        alice.send("b" * 3000)
        alice.expect(r"^! line too long \(1024 bytes max\)")
        assert "reload (/rehash by alice as root) applied: max-line 4096 -> 1024" in server.log()

        bob.send("/oper admin pass word")
        assert bob.expect("^!") == "! wrong operator name or password"
        with opers.open("a") as more:  # a second operator, for the sign-ins to come
            more.write(f"admin {make_hash('pass word', str(BIN / 'chatroom-passwd'))}\n")
        alice.send("/rehash")
        assert alice.expect("reload") == (
            "*** reload applied: server operators changed (2 in the file)")
        bob.send("/oper admin pass word")
        assert bob.expect("server operator", timeout=10) == (
            "*** you are now a server operator (admin): an operator of every room")

        config.write_text(base.replace('"none"', '"elsewhere.sqlite3"') + "max-line = 2048\n")
        alice.send("/rehash")
        assert alice.expect("reload") == (
            "! reload refused, the running configuration is unchanged: history: none -> "
            "elsewhere.sqlite3 needs a restart (the history store stays open where it is)")
        assert "reload (/rehash by alice as root) refused" in server.log()
        alice.send("c" * 2000)  # 1024 still holds
        alice.expect("line too long")
        dave.send("PING :still")
        dave.expect("PONG")
    finally:
        server.terminate()
        server.wait()
    assert "Traceback" not in server.log()
