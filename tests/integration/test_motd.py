"""``--motd`` on a real server: shown after the welcome on the line and IRC front ends,
read again on SIGHUP (logged as "MOTD changed"), a file that cannot be read refused at
reload with the old message kept, and at start stopping the start in one line."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.integration.serverproc import BIN, LineClient, ServerProcess, free_port
from tests.integration.test_rehash import irc_member


def sighup(server: ServerProcess) -> str:
    """SIGHUP, and the log line that says what came of it."""
    count = server.log().count("reload (SIGHUP) ")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while server.log().count("reload (SIGHUP) ") == count:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    return [line for line in server.log().splitlines() if "reload (SIGHUP) " in line][-1]


def motd_after_welcome(server: ServerProcess, nick: str) -> tuple[LineClient, list[str]]:
    client = server.join(nick)
    return client, [line for line in client.quiet(0.5) if line.startswith("*** ")]


def test_the_motd_is_shown_and_reloaded(tmp_path: Path) -> None:
    text = tmp_path / "motd.txt"
    text.write_text("Welcome to the test server.\nBe nice.\n")
    irc_port = free_port()
    config = tmp_path / "chatroom.toml"
    config.write_text(f'history = "none"\nmotd = "{text}"\n'
                      f'irc = "tcp:{irc_port}:interface=127.0.0.1"\n')
    server = ServerProcess(tmp_path, "--config", str(config))
    try:
        alice, shown = motd_after_welcome(server, "alice")
        assert shown == ["*** Welcome to the test server.", "*** Be nice."]
        dave = irc_member(irc_port, "dave")
        assert dave.expect(" 372 ").endswith(" 372 dave :- Welcome to the test server.")

        text.write_text("New rules.\n")
        assert sighup(server).endswith("applied: MOTD changed")
        _, shown = motd_after_welcome(server, "bob")
        assert shown == ["*** New rules."]
        dave.expect(" 376 ")  # the end of the first
        dave.send("MOTD")
        dave.expect(" 375 ")
        assert dave.expect(" 372 ").endswith(" 372 dave :- New rules.")

        text.unlink()
        assert sighup(server).endswith(
            f"refused, the running configuration is unchanged: --motd {text}: cannot read "
            "it: No such file or directory")
        _, shown = motd_after_welcome(server, "carol")
        assert shown == ["*** New rules."]
        alice.send("still here")
        dave.expect("PRIVMSG #lobby :still here")
    finally:
        server.terminate()
        server.wait()
    assert "Traceback" not in server.log()


def test_without_a_motd_the_welcome_is_the_last_line(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--history", "none")
    try:
        client = server.connect()
        client.expect("nickname")
        client.send("alice")
        assert client.read_line() == (
            "*** welcome, alice! nobody else is here; /who lists them, /help lists commands")
        assert client.quiet(0.5) == []
    finally:
        server.terminate()
        server.wait()


def test_a_motd_that_cannot_be_read_stops_the_start_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "chatroom", "--history", "none",
         "--port", "0", "--motd", "missing.txt"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stderr == (f"chatroom: --motd {tmp_path / 'missing.txt'}: cannot read it: "
                             "No such file or directory\n")
