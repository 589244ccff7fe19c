"""A costly search over real sockets (issue 12, point 1): lines reach the disk, others'
searches are answered and SIGTERM exits in time while it runs; past its budget it is
stopped with a clear line.

The history is small (6000 lines of 2000 bytes, built in about two seconds) but made
costly to search: every line alternates one common word with another, so a phrase of 64 of
that word is checked at every position of every line and matches none (several seconds of
SQLite's work uninterrupted; ``benchmarks/search_isolation.py`` measures the same on a
1M-line history).
"""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path

from chatroom.history.sqlite import _index_some, _insert, connect
from tests.integration.serverproc import ServerProcess

NOW = 1_795_500_000.0
COSTLY = "/search " + "-".join(["a"] * 64)
ANSWER = re.compile(r"matching|^\*\*\* no lines match|^! ")


def costly_history(path: Path, rows: int = 6000, words: int = 1000) -> None:
    conn, _, _ = connect(str(path))
    try:
        text = " ".join(["a", "c"] * (words // 2))
        _insert(conn, [(NOW, "lobby", "said", "bot", text, None)] * rows)
        while _index_some(conn, 100_000):
            pass
    finally:
        conn.close()


def on_disk(path: Path, text: str) -> bool:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT 1 FROM events WHERE text = ?", (text,)).fetchone() is not None
    finally:
        conn.close()


def test_a_costly_search_holds_up_neither_writes_nor_searches_nor_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    costly_history(db)
    server = ServerProcess(
        tmp_path, "--history", str(db), "--history-flush-ms", "100", "--history-replay", "0",
        "--history-search-words", "64", "--history-search-ms", "60000")
    try:
        alice = server.join("alice")
        bob = server.join("bob")
        carol = server.join("carol")
        alice.send(COSTLY)
        bob.send("said during the search")
        carol.expect("^bob: said during the search$")
        deadline = time.monotonic() + 5
        while not on_disk(db, "said during the search"):
            assert time.monotonic() < deadline, "the line did not reach the disk within 5 s"
            time.sleep(0.05)  # polling another process's file: there is no event to await
        carol.send("/search during")
        carol.expect(r"^\*\*\* 1 line matching during")
        assert "bob: said during the search" in (carol.read_line() or "")
        # All of that while alice's search was still running:
        assert [line for line in alice.quiet(0.1) if ANSWER.search(line)] == []
        begin = time.monotonic()
        server.terminate()
        assert server.wait(timeout=10) in (0, -signal.SIGTERM)
        assert time.monotonic() - begin < 5
    finally:
        server.kill()
    assert "Traceback" not in server.log()


def test_a_search_past_its_budget_or_with_too_many_words_gets_a_clear_line(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.sqlite3"
    costly_history(db, rows=2000)
    server = ServerProcess(
        tmp_path, "--history", str(db), "--history-replay", "0",
        "--history-search-words", "64", "--history-search-ms", "100")
    try:
        alice = server.join("alice")
        bob = server.join("bob")
        # All at once: one search at a time per member, so what follows waits, in order.
        alice.send(COSTLY)
        alice.send(COSTLY + "-a")
        alice.send("still here")
        assert alice.expect("^! ", timeout=10) == (
            "! that search took more than 100 ms and was stopped; try fewer or rarer words")
        assert alice.expect("^! ") == "! a search may have at most 64 words (a-b-c counts as 3)"
        bob.expect("^alice: still here$")
    finally:
        server.kill()
    assert "history search took more than 100 ms" in server.log()
