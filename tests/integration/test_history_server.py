"""History as users meet it: a real server, restarts, SIGKILL, replay, /history, /search."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.integration.serverproc import BIN, LineClient, ServerProcess

REPLAYED = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d\] |^\[\d\d:\d\d\] ")


def read_replay(client: LineClient) -> list[str]:
    """The replayed lines between the two notices, in order."""
    client.expect(r"^\*\*\* last \d+ lines?")
    lines: list[str] = []
    while True:
        line = client.read_line()
        assert line is not None, "the replay did not end"
        if line == "*** end of history":
            return lines
        assert REPLAYED.match(line), f"not a replay line: {line!r}"
        lines.append(line)


def test_replay_survives_sigterm_and_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        alice = server.join("alice")
        bob = server.join("bob")
        alice.send("hello from before")
        alice.send("/me waves")
        alice.send("/msg bob a secret")
        bob.expect("a secret")
        server.terminate()
        assert server.wait() in (0, -signal.SIGTERM)
    finally:
        server.kill()
    assert (tmp_path / "var" / "chatroom.sqlite3").exists()

    server = ServerProcess(tmp_path)
    try:
        carol = server.connect()
        carol.expect("nickname")
        carol.send("carol")
        replay = read_replay(carol)
        texts = [REPLAYED.sub("", line) for line in replay]
        # The stop is not recorded as everyone leaving; the joins are folded (the default).
        assert texts == ["*** alice and bob joined", "alice: hello from before",
                         "* alice waves"]
        assert not any("secret" in line for line in replay)  # private lines never stored
        carol.expect("welcome, carol")
        dave = server.join("dave")
        erin = server.join("erin")
        dave.expect("erin joined")

        carol.send("/history 2")
        carol.expect(r"^\*\*\* last 2 lines")
        assert [REPLAYED.sub("", carol.read_line() or "") for _ in range(2)] == [
            "* alice waves", "*** carol, dave and erin joined"]
        erin.close()
        carol.send("/search hello")
        carol.expect("matching hello")
        assert "alice: hello from before" in (carol.read_line() or "")
        assert carol.read_line() == "*** end of search"
        carol.send('/search ") OR NEAR(')
        assert carol.expect("^!|no lines").startswith(("!", "***"))
    finally:
        server.kill()


def test_history_joins_hide_replays_only_what_was_said(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server("--history-joins", "hide")
    alice = server.join("alice")
    server.join("bob")
    alice.send("hello")
    alice.send("/quit")
    carol = server.connect()
    carol.expect("nickname")
    carol.send("carol")
    assert [REPLAYED.sub("", line) for line in read_replay(carol)] == ["alice: hello"]


def test_live_lines_after_the_replay_are_not_repeated(server: ServerProcess) -> None:
    alice = server.join("alice")
    for i in range(5):
        alice.send(f"old {i}")
    alice.send("/who")
    alice.expect("in the room")  # the server has handled alice's lines by now
    bob = server.connect()
    bob.expect("nickname")
    bob.send("bob")
    replay = read_replay(bob)
    texts = [REPLAYED.sub("", line) for line in replay]
    assert texts[-5:] == [f"alice: old {i}" for i in range(5)]
    bob.expect("welcome, bob")
    alice.send("new")
    assert bob.expect("alice") == "alice: new"
    assert bob.quiet() == []


def test_sigkill_loses_at_most_the_flush_window(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--history-flush-ms", "100")
    try:
        alice = server.join("alice")
        bob = server.join("bob")
        for i in range(30):
            alice.send(f"kept {i}")
        bob.expect("kept 29")
        time.sleep(0.5)  # several flush windows: everything above is on disk now
        alice.send("maybe lost")
        bob.expect("maybe lost")
        server.proc.send_signal(signal.SIGKILL)
        server.wait()
    finally:
        server.kill()
    with sqlite3.connect(tmp_path / "var" / "chatroom.sqlite3") as db:
        texts = [row[0] for row in db.execute("SELECT text FROM events WHERE kind = 'said'")]
    assert texts[:30] == [f"kept {i}" for i in range(30)]


def test_history_none_keeps_nothing(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server("--history", "none")
    alice = server.join("alice")
    alice.send("/history")
    assert alice.expect("^!") == "! history is off on this server"
    assert not (server.workdir / "var").exists()


def test_corrupt_database_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "chatroom.sqlite3").write_bytes(b"this is not a database" * 100)
    result = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "chatroom", "--port", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "cannot start" in output
    assert "Traceback" not in output
    assert "listening" not in output
