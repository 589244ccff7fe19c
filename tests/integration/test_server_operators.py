"""Server operators on a real server: ``chatroom-passwd`` makes the hash, ``--opers`` reads
the file, ``/oper`` signs in (a wrong guess slowing the next), then ``/kill`` and
``/gban``/``/ungban``/``/gbans`` over real sockets."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from argon2 import PasswordHasher

from tests.integration.serverproc import BIN, ServerProcess

CHEAP = ["--time-cost", "1", "--memory-kib", "64", "--parallelism", "1"]


def make_hash(password: str, *command: str) -> str:
    done = subprocess.run([*command, *CHEAP], input=password + "\n", capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.strip()


def test_the_helper_and_python_m_print_hashes_of_what_they_read() -> None:
    for command in ([str(BIN / "chatroom-passwd")], [sys.executable, "-m", "chatroom.passwd"]):
        hashed = make_hash("pass word", *command)
        assert hashed.startswith("$argon2id$v=19$m=64,t=1,p=1$"), command
        assert PasswordHasher().verify(hashed, "pass word")


def test_oper_kill_and_server_bans(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    opers = tmp_path / "opers.txt"
    hashed = make_hash("hunter2 x", str(BIN / "chatroom-passwd"))
    opers.write_text(f"# the server's operators\nroot {hashed}\n")
    server = start_server("--opers", str(opers))
    assert "1 server operators from" in server.log()
    alice = server.join("alice")
    bob = server.join("bob")
    eve = server.join("eve", source="127.0.0.2")

    alice.send("/kill bob")
    assert alice.expect("^!") == "! only a server operator may do that (/oper NAME PASSWORD)"
    alice.send("/oper root wrong")
    assert alice.expect("^!") == "! wrong operator name or password"
    started = time.monotonic()
    alice.send("/oper root hunter2 x")
    assert alice.expect("server operator") == (
        "*** you are now a server operator (root): an operator of every room")
    assert time.monotonic() - started >= 0.9  # the wrong guess made this one wait a second

    alice.send("/kill bob enough")
    assert alice.expect("disconnected") == "*** you disconnected bob"
    assert bob.expect("^!") == "! you were disconnected by alice: enough"
    assert bob.wait_closed()
    assert alice.expect("bob left") == "*** bob left"

    alice.send("/gban 127.0.0.1")
    assert alice.expect("^!") == "! 127.0.0.1 names your own address: you would be banned too"
    alice.send("/gban 127.0.0.2 1h abuse")
    assert alice.expect("banned from the server") == (
        "*** 127.0.0.2 is banned from the server for 1h")
    assert eve.expect("^!") == "! you are banned from this server"
    assert eve.wait_closed()
    refused = server.connect(source="127.0.0.2")
    assert refused.read_line() == "! you are banned from this server"
    assert refused.wait_closed()
    alice.send("/gbans")
    alice.expect("1 server ban:")
    assert alice.expect(r"^\*\*\* 127").endswith(": abuse")
    alice.send("/ungban 127.0.0.2")
    alice.expect("no longer banned")
    again = server.connect(source="127.0.0.2")
    again.expect("nickname")
    log = server.log()
    assert "hunter2" not in log
    assert "audit: alice became server operator root" in log
    assert "audit: alice banned from the server 127.0.0.2: abuse" in log


def test_a_bad_operators_file_stops_the_start_naming_the_line(tmp_path: Path) -> None:
    opers = tmp_path / "opers.txt"
    opers.write_text("root not-a-hash\n")
    done = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "chatroom", "--port", "0",
         "--opers", str(opers)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert (f"chatroom: cannot start: --opers: {opers}, line 1: not an Argon2 hash"
            in done.stderr + done.stdout)
