"""SqliteHistory beyond the contract: batching, the file, upgrades, what goes wrong, and
searches that cost too much.

Every test uses a real SQLite file in ``tmp_path`` (no mock of sqlite3); a ``task.Clock``
drives the store's timers, the real reactor carries results back from its writer thread.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

import chatroom.history.sqlite as sqlite_store
from chatroom.domain.events import Said
from chatroom.history import (
    BadQuery,
    HistoryError,
    MemoryHistory,
    SqliteHistory,
    open_history,
    open_history_blocking,
    parse_retention,
)
from chatroom.history.sqlite import (
    MAX_RETRY_DELAY,
    SCAN_TAIL,
    SCHEMA_VERSION,
    TRIM_CHUNK,
    _prepare,
    connect,
)
from chatroom.history.store import fts5_query, matches, parse_search

NOW = 1_795_500_000.0
ROOM = "lobby"

Opener = Callable[..., Awaitable[SqliteHistory]]


@pytest.fixture
def reactor() -> Any:
    from twisted.internet import reactor  # noqa: TID251  (the store's writer thread needs it)

    return reactor


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.advance(NOW)
    return clock


@pytest_twisted.async_yield_fixture  # type: ignore[untyped-decorator]
async def open_store(tmp_path: Path, clock: Clock, reactor: Any) -> AsyncIterator[Opener]:
    opened: list[SqliteHistory] = []

    async def open_(path: Path | None = None, **settings: Any) -> SqliteHistory:
        store = await open_history(str(path or tmp_path / "history.db"), clock, reactor,
                                   **settings)
        assert isinstance(store, SqliteHistory)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


def said(text: str, at: float = NOW, nick: str = "alice") -> Said:
    return Said(ROOM, at, "m1", nick, text)


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of the test's own to the file, in autocommit mode, closed after."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def stored(path: Path) -> list[str]:
    """The text of every row in the file, read by a connection of the test's own."""
    with raw(path) as conn:
        return [row[0] for row in conn.execute("SELECT text FROM events ORDER BY id")]


def log_texts(events: Any) -> list[str]:
    return [e["log_format"] for e in events]


# The file --------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_new_file_is_made_with_its_directories_in_wal_mode(open_store, tmp_path):
    path = tmp_path / "var" / "deep" / "chatroom.sqlite3"
    store = await open_store(path)
    store.record(said("hello"))
    await store.flush()
    with raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert stored(path) == ["hello"]


@pytest_twisted.ensureDeferred
async def test_a_new_database_logs_one_line_and_a_current_one_none(open_store, tmp_path):
    with capturedLogs() as events:
        await open_store(tmp_path / "new.db")
    assert [e["log_format"].format(**e) for e in events if "schema" in e["log_format"]] == [
        f"history {tmp_path / 'new.db'}: created at schema v{SCHEMA_VERSION}"]
    with capturedLogs() as events:
        await open_store(tmp_path / "new.db")
    assert [e for e in events if "schema" in e["log_format"]] == []


@pytest_twisted.ensureDeferred
async def test_an_existing_v1_database_from_an_older_version_opens_fine(open_store, tmp_path):
    # A file exactly as chatroom's first history release wrote it: no full-text index.
    path = tmp_path / "old.db"
    with raw(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("""CREATE TABLE events (
            id INTEGER PRIMARY KEY, time REAL NOT NULL, room TEXT NOT NULL,
            kind TEXT NOT NULL, nick TEXT NOT NULL, text TEXT NOT NULL DEFAULT '',
            new_nick TEXT)""")
        conn.executemany(
            "INSERT INTO events (time, room, kind, nick, text, new_nick) VALUES (?,?,?,?,?,?)",
            [(NOW - 60, ROOM, "joined", "bob", "", None),
             (NOW - 50, ROOM, "said", "bob", "an old pineapple story", None),
             (NOW - 40, ROOM, "renamed", "bob", "", "robert")],
        )
        conn.execute("PRAGMA user_version = 1")
    with capturedLogs() as events:
        store = await open_store(path)
    assert [e["version"] for e in events if "schema upgraded" in e["log_format"]] == [2, 3, 4, 5]
    store.record(said("a new pineapple"))
    assert [r.text for r in await store.search("pineapple")] == [
        "a new pineapple", "an old pineapple story"]
    last = await store.last(10)
    assert [(r.nick, r.new_nick) for r in last] == [
        ("bob", None), ("bob", None), ("bob", "robert"), ("alice", None)]
    assert last[1].time == NOW - 50
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.execute("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')")


V2_SCHEMA = [
    # Exactly what chatroom's second history release created: the index kept by triggers.
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY, time REAL NOT NULL, room TEXT NOT NULL,
        kind TEXT NOT NULL, nick TEXT NOT NULL, text TEXT NOT NULL DEFAULT '',
        new_nick TEXT)""",
    """CREATE VIRTUAL TABLE events_fts USING fts5(
        text, content='events', content_rowid='id', columnsize=0,
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
        INSERT INTO events_fts (rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
        INSERT INTO events_fts (events_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
    """CREATE TRIGGER events_fts_update AFTER UPDATE OF text ON events BEGIN
        INSERT INTO events_fts (events_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO events_fts (rowid, text) VALUES (new.id, new.text);
    END""",
]


def check_index(path: Path) -> None:
    """The full-text index is sound, and holds exactly the rows up to its progress mark."""
    with raw(path) as conn:
        conn.execute("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')")
        indexed = conn.execute("SELECT indexed FROM index_progress").fetchone()[0]
        top = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        if indexed == top:  # then it must match the table row for row
            conn.execute("INSERT INTO events_fts (events_fts, rank) VALUES ('integrity-check', 1)")


def progress(path: Path) -> tuple[int, int]:
    with raw(path) as conn:
        return (conn.execute("SELECT indexed FROM index_progress").fetchone()[0],
                conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


@pytest_twisted.ensureDeferred
async def test_an_existing_v2_database_is_upgraded_and_keeps_its_index(open_store, tmp_path):
    path = tmp_path / "v2.db"
    with raw(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in V2_SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO events (time, room, kind, nick, text, new_nick) VALUES (?,?,?,?,?,?)",
            [(NOW - 60 + i, ROOM, "said", "bob", f"old pineapple {i}", None) for i in range(50)],
        )
        conn.execute("PRAGMA user_version = 2")
    with capturedLogs() as events:
        store = await open_store(path, retention=parse_retention("30"))
    assert [e["version"] for e in events if "schema upgraded" in e["log_format"]] == [3, 4, 5]
    assert progress(path) == (50, 50)  # what v2 indexed counts as indexed
    with raw(path) as conn:
        triggers = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert triggers == {"events_fts_delete", "events_fts_update"}  # none on insert
    for i in range(5):
        store.record(said(f"new pineapple {i}"))
    found = await store.search("pineapple", limit=500)
    assert [r.text for r in found] == (
        [f"new pineapple {i}" for i in reversed(range(5))]
        + [f"old pineapple {i}" for i in reversed(range(50))])
    assert await store.trim() == 25  # old indexed rows leave the index with their rows
    assert len(await store.search("old", limit=500)) == 25
    await store.close()
    assert progress(path) == (55, 55)
    check_index(path)


@pytest_twisted.ensureDeferred
async def test_a_v1_database_goes_through_v2_to_v3(tmp_path):
    path = tmp_path / "v1.db"
    with raw(path) as conn:
        conn.execute(V2_SCHEMA[0])
        conn.execute("INSERT INTO events (time, room, kind, nick, text) "
                     "VALUES (1, 'r', 'said', 'a', 'kiwi')")
        conn.execute("PRAGMA user_version = 1")
    conn, applied, _ = connect(str(path))
    conn.close()
    assert applied == [2, 3, 4, 5]
    assert progress(path) == (1, 1)
    check_index(path)


@pytest_twisted.ensureDeferred
async def test_a_v3_database_of_the_one_room_server_becomes_the_default_rooms(
    open_store, tmp_path
):
    """Before rooms the server had one, named ``lobby``: its history is ``#lobby``'s now,
    found by a room's own index."""
    path = tmp_path / "v3.db"
    conn, _, _ = connect(str(path))
    conn.execute("PRAGMA user_version = 3")
    conn.execute("DROP INDEX events_room_id")  # a v3 file had neither room index
    conn.execute("DROP INDEX events_room_time")
    conn.executemany(
        "INSERT INTO events (time, room, kind, nick, text) VALUES (?, ?, 'said', 'bob', ?)",
        [(NOW - 9, "lobby", "from the one room"), (NOW - 8, "#dev", "already a room")],
    )
    conn.commit()
    conn.close()
    store = await open_store(path)
    assert [r.text for r in await store.last(10, room="#lobby")] == ["from the one room"]
    assert [r.text for r in await store.last(10, room="#dev")] == ["already a room"]
    with raw(path) as conn:
        plan = " ".join(str(row) for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE room = '#dev' ORDER BY id DESC"))
    assert "events_room_id" in plan


@pytest_twisted.ensureDeferred
async def test_a_database_from_a_newer_version_is_refused(tmp_path, clock, reactor):
    path = tmp_path / "new.db"
    with raw(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="newer chatroom"):
        await open_history(str(path), clock, reactor)


@pytest_twisted.ensureDeferred
async def test_another_programs_database_is_refused_and_left_alone(tmp_path, clock, reactor):
    path = tmp_path / "other.db"
    with raw(path) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    with pytest.raises(HistoryError, match="some other program"):
        await open_history(str(path), clock, reactor)
    with raw(path) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert names == ["accounts"]


def _garbage() -> bytes:
    return os.urandom(16384)


def _text() -> bytes:
    return b"this is a text file, not a database\n" * 200


def _damaged_database(path: Path) -> bytes:
    """A real SQLite file whose every page after the header is overwritten with noise."""
    scratch = path.with_name("scratch.db")
    with raw(scratch) as conn:
        conn.execute("BEGIN")
        conn.execute("CREATE TABLE x (y)")
        conn.executemany("INSERT INTO x VALUES (?)", [("y" * 100,)] * 500)
        conn.execute("COMMIT")
    data = bytearray(scratch.read_bytes())
    data[100:] = os.urandom(len(data) - 100)
    return bytes(data)


def _damaged_in_the_middle(path: Path) -> bytes:
    """A history file that opens, but with a stretch of noise half way through."""
    scratch = path.with_name("scratch.db")
    conn, _, _ = connect(str(scratch))
    conn.executemany(
        "INSERT INTO events (time, room, kind, nick, text) VALUES (0, 'r', 'said', 'a', ?)",
        [(f"line {i} " + "y" * 100,) for i in range(2000)],
    )
    conn.close()
    data = bytearray(scratch.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8192] = os.urandom(8192)
    return bytes(data)


@pytest.mark.parametrize(
    "make", [_garbage, _text, _damaged_database, _damaged_in_the_middle],
    ids=lambda f: f.__name__,
)
@pytest_twisted.ensureDeferred
async def test_a_corrupt_file_is_one_clear_error_and_is_not_touched(tmp_path, clock, reactor,
                                                                   make):
    path = tmp_path / "chatroom.sqlite3"
    content = make(path) if make in (_damaged_database, _damaged_in_the_middle) else make()
    path.write_bytes(content)
    with pytest.raises(HistoryError) as raised:
        await open_history(str(path), clock, reactor)
    message = str(raised.value)
    assert str(path) in message and "corrupt" in message and "\n" not in message
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("chatroom")) == [
        "chatroom.sqlite3"]


def test_a_corrupt_file_stops_a_blocking_open_too(tmp_path, clock):
    path = tmp_path / "chatroom.sqlite3"
    path.write_bytes(_garbage())
    with pytest.raises(HistoryError, match="corrupt"):
        open_history_blocking(str(path), clock, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("where", "why"),
    [
        (lambda tmp: tmp / "a-file" / "history.db", "it is a file, not a directory"),
        (lambda tmp: tmp / "a-file" / "sub" / "history.db", "cannot create the directory"),
        (lambda tmp: tmp, "it is a directory"),
        (lambda tmp: Path("/proc/chatroom-test/history.db"), "cannot create the directory"),
        (lambda tmp: Path("/proc/history.db"), "cannot open"),
    ],
    ids=["parent-is-a-file", "grandparent-is-a-file", "path-is-a-directory", "proc-subdir",
         "proc"],
)
@pytest_twisted.ensureDeferred
async def test_an_unusable_path_is_one_clear_error(tmp_path, clock, reactor, where, why):
    if "proc" in str(where(tmp_path)) and not sys.platform.startswith("linux"):
        pytest.skip("needs Linux's /proc")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(HistoryError, match=why) as raised:
        await open_history(str(where(tmp_path)), clock, reactor)
    assert "\n" not in str(raised.value)


def skip_unless_modes_are_enforced(tmp_path: Path) -> None:
    """Skip when file modes do not bind this process (root with CAP_DAC_OVERRIDE)."""
    probe = tmp_path / "probe"
    probe.mkdir(mode=0o555)
    try:
        (probe / "file").touch()
    except PermissionError:
        return
    finally:
        probe.chmod(0o755)
    pytest.skip("file modes do not bind this user (root?)")


@pytest_twisted.ensureDeferred
async def test_a_read_only_directory_is_one_clear_error(tmp_path, clock, reactor):
    skip_unless_modes_are_enforced(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        with pytest.raises(HistoryError, match="permission denied"):
            await open_history(str(locked / "history.db"), clock, reactor)
    finally:
        locked.chmod(0o755)


@pytest_twisted.ensureDeferred
async def test_a_read_only_database_is_one_clear_error(open_store, tmp_path, clock, reactor):
    skip_unless_modes_are_enforced(tmp_path)
    path = tmp_path / "history.db"
    store = await open_store(path)
    await store.close()
    path.chmod(0o444)
    with pytest.raises(HistoryError, match="permission denied"):
        await open_history(str(path), clock, reactor)


def test_opening_proves_the_file_is_writable(tmp_path):
    # Root ignores file modes, so give the open a read-only connection instead: a current
    # file needs no upgrade, and still the open must fail now, not at the first write.
    path = tmp_path / "history.db"
    conn, _, _ = connect(str(path))
    conn.close()
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            _prepare(ro, str(path))
    finally:
        ro.close()


@pytest_twisted.ensureDeferred
async def test_open_history_reads_the_option(tmp_path, clock, reactor):
    assert await open_history("none", clock, reactor) is None
    assert await open_history("", clock, reactor) is None
    memory = await open_history(":memory:", clock, reactor, flush_ms=50)
    assert isinstance(memory, MemoryHistory)
    await memory.close()
    assert open_history_blocking("none", clock, reactor) is None
    store = open_history_blocking(str(tmp_path / "x" / "h.db"), clock, reactor)
    assert isinstance(store, SqliteHistory)
    store.record(said("opened before the reactor ran"))
    await store.close()
    assert stored(tmp_path / "x" / "h.db") == ["opened before the reactor ran"]


@pytest_twisted.ensureDeferred
async def test_a_blocking_open_starts_no_thread_until_the_store_is_used(tmp_path, clock,
                                                                       reactor):
    # twistd builds services, then forks into the background: a thread (or an open SQLite
    # connection, whose locks a fork loses) made before the fork would be dead after it.
    before = {t.ident for t in threading.enumerate()}
    store = open_history_blocking(str(tmp_path / "h.db"), clock, reactor,
                                  retention=parse_retention("10"))
    assert isinstance(store, SqliteHistory)
    store.record(said("queued before the reactor runs"))
    assert {t.ident for t in threading.enumerate()} == before
    clock.advance(0)  # the reactor runs: the first retention pass starts the writer
    assert any(t.ident not in before for t in threading.enumerate())
    assert [r.text for r in await store.last(5)] == ["queued before the reactor runs"]
    await store.close()
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= before


# Batching --------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_events_are_written_when_the_flush_window_ends(open_store, tmp_path, clock):
    store = await open_store(flush_ms=200)
    for i in range(3):
        store.record(said(f"line {i}"))
    assert store.pending == 3
    clock.advance(0.199)
    assert store.batches == 0
    assert stored(tmp_path / "history.db") == []
    clock.advance(0.002)  # (not 0.001: NOW + 0.199 + 0.001 rounds below NOW + 0.2)
    assert store.batches == 1  # one transaction for the whole window
    await store.flush()  # waits for that write; nothing is left to write
    assert store.batches == 1
    assert store.pending == 0
    assert stored(tmp_path / "history.db") == ["line 0", "line 1", "line 2"]


@pytest_twisted.ensureDeferred
async def test_a_line_that_waited_behind_a_slow_write_is_written_when_it_ends(
    open_store, clock
):
    """The flush window counts from when a line came, not from the end of the write it
    waited behind: a SIGKILL loses at most the window and one write (review/attack)."""
    store = await open_store(flush_ms=200)
    store.record(said("first"))
    clock.advance(0.201)  # the window ends: the first write starts
    assert store.batches == 1
    writing = store._writing
    assert writing is not None
    store.record(said("during the write"))
    clock.advance(0.3)  # a slow write, as the clock tells it
    await writing
    assert store.batches == 2  # at once: that line has waited its window already
    await store.flush()


@pytest_twisted.ensureDeferred
async def test_the_flush_window_is_an_option(open_store, clock):
    store = await open_store(flush_ms=1000)
    store.record(said("x"))
    clock.advance(0.5)
    assert store.batches == 0
    clock.advance(0.5)
    assert store.batches == 1
    await store.flush()


@pytest_twisted.ensureDeferred
async def test_a_full_batch_is_written_without_waiting_for_the_window(open_store, clock):
    store = await open_store(flush_ms=200, batch_size=10)
    for i in range(9):
        store.record(said(f"line {i}"))
    assert store.batches == 0
    store.record(said("line 9"))
    assert store.batches == 1
    await store.flush()
    assert store.written == 10


@pytest_twisted.ensureDeferred
async def test_events_past_the_cap_are_dropped_counted_and_logged(open_store, clock):
    store = await open_store(flush_ms=200, max_pending=5)
    with capturedLogs() as events:
        for i in range(8):
            store.record(said(f"line {i}"))
    assert store.dropped == 3
    assert store.pending == 5
    warnings = [e for e in events if "behind" in e["log_format"]]
    assert warnings and warnings[-1]["dropped"] == 3
    assert [r.text for r in await store.last(10)] == [f"line {i}" for i in range(5)]
    store.record(said("room for more"))  # written, so there is room again
    assert store.dropped == 3


@pytest_twisted.ensureDeferred
async def test_the_cap_counts_the_write_under_way_too(open_store, clock):
    store = await open_store(flush_ms=200, max_pending=5)
    for i in range(5):
        store.record(said(f"line {i}"))
    clock.advance(0.2)  # those five are being written: still in memory
    store.record(said("one too many"))
    assert store.dropped == 1
    await store.flush()


@pytest_twisted.ensureDeferred
async def test_a_flush_that_records_and_flushes_again_when_it_fires(open_store, clock):
    store = await open_store()
    store.record(said("first"))

    def again(_: object) -> Any:
        store.record(said("second"))
        return store.flush()

    await store.flush().addCallback(again)
    assert store.pending == 0
    assert [r.text for r in await store.last(5)] == ["first", "second"]


@pytest_twisted.ensureDeferred
async def test_close_writes_everything_queued(open_store, tmp_path, clock):
    store = await open_store(flush_ms=10_000)
    for i in range(3):
        store.record(said(f"line {i}"))
    await store.close()
    assert stored(tmp_path / "history.db") == ["line 0", "line 1", "line 2"]
    assert not (tmp_path / "history.db-wal").exists()  # checkpointed into the file
    with pytest.raises(HistoryError, match="closed"):
        await store.last(1)


@pytest_twisted.ensureDeferred
async def test_text_that_cannot_be_encoded_does_not_block_the_batch(open_store, tmp_path):
    store = await open_store()
    store.record(said("before"))
    store.record(said("lone surrogate \ud800 here"))
    store.record(said("after"))
    await store.flush()
    assert stored(tmp_path / "history.db") == ["before", "lone surrogate ? here", "after"]


# When the disk fails ---------------------------------------------------------------------

def _limit_pages(pages: int | None) -> Callable[[sqlite3.Connection], None]:
    """Make the file unable to grow, as a full disk would (SQLite's own SQLITE_FULL)."""
    def limit(conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA max_page_count = {pages or 1073741823}").fetchall()

    return limit


@pytest_twisted.ensureDeferred
async def test_a_full_disk_is_logged_the_room_goes_on_and_writes_retry(open_store, tmp_path,
                                                                       clock):
    store = await open_store(flush_ms=200)
    store.record(said("stored before the disk filled up"))
    await store.flush()
    await store._call(_limit_pages(1))  # the file may not grow past its size now
    with capturedLogs() as events:
        for i in range(300):
            store.record(said(f"line {i} " + "x" * 200))
        with pytest.raises(HistoryError, match="full"):
            await store.flush()
        failures = [e for e in events if e["log_format"].startswith("cannot write")]
        assert len(failures) == 1 and failures[0]["count"] == 300
        # The room goes on: events are still taken, reads still answer from the file.
        store.record(said("said while the disk was full"))
        assert [r.text for r in await store.last(1)] == ["stored before the disk filled up"]
        assert store.pending == 301
        # The disk has room again: the retry timer writes everything, in order.
        await store._call(_limit_pages(None))
        before = store.batches
        clock.advance(MAX_RETRY_DELAY)
        assert store.batches == before + 1
        await store.flush()
    assert store.pending == 0 and store.dropped == 0
    texts = stored(tmp_path / "history.db")
    assert len(texts) == 302
    assert texts[1].startswith("line 0 ") and texts[-1] == "said while the disk was full"
    assert "history writes to {path} work again after {failures} failures" in log_texts(events)


@pytest_twisted.ensureDeferred
async def test_readiness_sees_failing_writes_until_one_works(open_store, clock):
    """What /readyz is told: nothing while writes work, why while they fail."""
    store = await open_store(flush_ms=200)
    assert store.problem() is None
    await store.probe()  # the writer thread takes the write lock, and answers
    await store._call(_limit_pages(1))
    store.record(said("x" * 5000))
    with capturedLogs(), pytest.raises(HistoryError):
        await store.flush()
    assert store.problem() == "history writes failing (1 in a row): database or disk is full"
    await store._call(_limit_pages(None))
    clock.advance(MAX_RETRY_DELAY)
    await store.flush()
    assert store.problem() is None and store.last_error is None


@pytest_twisted.ensureDeferred
async def test_readiness_sees_a_store_dropping_events_and_a_closed_one(open_store, clock):
    store = await open_store(flush_ms=200, max_pending=2)
    with capturedLogs():
        for i in range(3):
            store.record(said(f"line {i}"))
    assert store.problem() == "history 2 events behind, dropping new ones"
    await store.close()
    assert store.problem() == "history store closed"
    with pytest.raises(HistoryError):
        await store.probe()


@pytest_twisted.ensureDeferred
async def test_each_batch_written_is_timed_on_the_stores_clock(open_store, clock):
    store = await open_store(flush_ms=200)
    store.record(said("one"))
    flushing = store.flush()  # handed to the writer thread now
    clock.advance(0.3)  # (the write's answer cannot come before this coroutine waits)
    await flushing
    latency = store.write_latency
    assert latency.count == store.batches == 1
    assert latency.last == pytest.approx(0.3)
    assert dict(latency.cumulative())["0.25"] == 0
    assert dict(latency.cumulative())["0.5"] == 1


@pytest_twisted.ensureDeferred
async def test_write_failures_are_logged_at_a_bounded_rate(open_store, clock):
    store = await open_store(flush_ms=200)
    store.record(said("x" * 4000))  # fills the empty first page: from now on, rows need more
    await store.flush()
    await store._call(_limit_pages(1))
    with capturedLogs() as events:
        for attempt in range(20):
            store.record(said(f"line {attempt} " + "x" * 4000))
            with pytest.raises(HistoryError):
                await store.flush()
    failures = [e for e in events if e["log_format"].startswith("cannot write")]
    assert 1 <= len(failures) <= 6
    await store._call(_limit_pages(None))
    await store.flush()
    assert store.written == 21


# Retention in the background -------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_retention_runs_by_itself_every_trim_interval(open_store, clock):
    store = await open_store(retention=parse_retention("5"), trim_interval=60)
    clock.advance(0)  # the first pass starts as soon as the reactor runs
    assert store.trimming
    await store.trim()
    for i in range(10):
        store.record(said(f"line {i}"))
    await store.flush()
    clock.advance(59)
    assert not store.trimming
    clock.advance(1)
    assert store.trimming
    await store.trim()
    assert [r.text for r in await store.last(100)] == [f"line {i}" for i in range(5, 10)]


@pytest_twisted.ensureDeferred
async def test_trimming_many_rows_works_in_chunks_and_keeps_search_right(open_store,
                                                                        tmp_path):
    store = await open_store(retention=parse_retention("100"), batch_size=10_000)
    total = TRIM_CHUNK * 2 + 500
    for i in range(total):
        store.record(said(f"word{i % 7} line {i}", at=NOW + i))
    assert await store.trim() == total - 100
    assert len(await store.last(10_000)) == 100
    found = await store.search("word3", limit=500)
    assert len(found) == len([i for i in range(total - 100, total) if i % 7 == 3])
    with raw(tmp_path / "history.db") as conn:
        conn.execute("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')")


@pytest.mark.parametrize("chunks_first", [0, 1])
@pytest_twisted.ensureDeferred
async def test_close_during_a_trim_waits_for_it(open_store, tmp_path, reactor, monkeypatch,
                                               chunks_first):
    path = tmp_path / "history.db"
    store = await open_store(path, retention=parse_retention("10"), batch_size=10_000)
    total = TRIM_CHUNK * 3
    for i in range(total):
        store.record(said(f"line {i}"))
    chunked: Deferred[None] = Deferred()
    real = sqlite_store._delete_before

    def one_chunk_done() -> None:
        if not chunked.called:
            chunked.callback(None)

    def delete_before(*args: Any) -> int:
        count = real(*args)
        reactor.callFromThread(one_chunk_done)
        return count

    monkeypatch.setattr(sqlite_store, "_delete_before", delete_before)
    trimming = store.trim()
    if chunks_first:
        await chunked  # the close comes while the pass is under way
    await store.close()
    assert not store.trimming  # the pass ended before the store closed
    deleted = await trimming
    # It stopped early, at a chunk's end, as the store was closing; it deleted exactly what
    # it says, the oldest first, and everything recorded was written.
    assert deleted in (0, TRIM_CHUNK, 2 * TRIM_CHUNK, total - 10)
    assert (deleted > 0) == bool(chunks_first)
    assert stored(path) == [f"line {i}" for i in range(deleted, total)]
    store = await open_store(path, retention=parse_retention("10"))
    assert await store.trim() == total - 10 - deleted  # the next run does the rest
    assert stored(path) == [f"line {i}" for i in range(total - 10, total)]


# The full-text index, off the insert path -------------------------------------------------

def unindexed_rows(path: Path, texts: list[str]) -> None:
    """Rows in the file that the index has not reached, as a run killed mid-burst leaves
    them (the store is written through, so a connection of the test's own does it)."""
    with raw(path) as conn:
        conn.executemany(
            "INSERT INTO events (time, room, kind, nick, text) VALUES (?, ?, 'said', 'bob', ?)",
            [(NOW, ROOM, t) for t in texts],
        )


@pytest_twisted.ensureDeferred
async def test_rows_are_indexed_after_they_are_written(open_store, tmp_path):
    path = tmp_path / "history.db"
    store = await open_store(path)
    for i in range(10):
        store.record(said(f"mango {i}"))
    await store.flush()
    await store._call(_nothing)  # the writer indexed them once it had nothing to write
    assert progress(path) == (10, 10) and store.unindexed == 0
    assert len(await store.search("mango")) == 10
    check_index(path)


@pytest_twisted.ensureDeferred
async def test_search_finds_rows_the_index_has_not_reached(open_store, tmp_path):
    path = tmp_path / "history.db"
    store = await open_store(path)
    await store.close()
    unindexed_rows(path, ["a ripe Mango", "no fruit", "mangos", "Mangó again"])
    store = await open_store(path)
    assert progress(path) == (0, 4)
    assert [r.text for r in await store.search("mango")] == ["Mangó again", "a ripe Mango"]
    assert [r.text for r in await store.search("mango*", limit=2)] == [
        "Mangó again", "mangos"]
    assert [r.text for r in await store.search("fruit", room="attic")] == []
    assert progress(path) == (0, 4)  # a short tail is read as it is, not indexed first


@pytest_twisted.ensureDeferred
async def test_a_long_unindexed_tail_is_indexed_before_search_in_chunks(open_store, tmp_path):
    path = tmp_path / "history.db"
    store = await open_store(path)
    await store.close()
    total = SCAN_TAIL + 1500
    unindexed_rows(path, [f"kiwi{i % 10} row {i}" for i in range(total)])
    store = await open_store(path, index_chunk=1000)
    found = await store.search("kiwi3", limit=500)
    assert len(found) == 500  # MAX_SEARCH, of the 650 there are
    assert found[0].text == f"kiwi3 row {total - 7}" and found[-1].text == "kiwi3 row 1503"
    indexed, top = progress(path)
    assert top == total and top - indexed <= SCAN_TAIL  # caught up just enough
    store.record(said("kiwi3 fresh"))
    assert (await store.search("kiwi3", limit=1))[0].text == "kiwi3 fresh"
    check_index(path)


def _nothing(conn: sqlite3.Connection) -> None:
    """Work for the writer thread that does nothing: when it is done, so is all before."""


@pytest_twisted.ensureDeferred
async def test_a_busy_writer_leaves_indexing_for_later_until_the_index_lags_too_far(
    open_store, tmp_path, clock
):
    path = tmp_path / "history.db"
    store = await open_store(path, flush_ms=200, batch_size=10**6, max_unindexed=250,
                             index_chunk=200)
    for i in range(100):
        store.record(said(f"line {i}"))
    clock.advance(0.2)  # a write of 100
    store.record(said("waits for the next write"))
    await store._call(_nothing)
    assert progress(path) == (0, 100)  # more to write: no indexing now
    for i in range(199):
        store.record(said(f"more {i}"))
    clock.advance(0.2)  # a write of 200: 300 rows not indexed, more than 250
    store.record(said("waits again"))
    await store._call(_nothing)
    await store._call(_nothing)
    assert progress(path) == (200, 300)  # one chunk, though there is more to write
    assert store.unindexed == 100
    await store.close()
    assert progress(path) == (301, 301)
    check_index(path)


@pytest_twisted.ensureDeferred
async def test_trimming_rows_the_index_has_not_reached_keeps_it_sound(open_store, tmp_path):
    path = tmp_path / "history.db"
    store = await open_store(path)
    for i in range(5):
        store.record(said(f"indexed {i}"))
    await store.close()
    unindexed_rows(path, [f"unindexed {i}" for i in range(10)])
    store = await open_store(path, retention=parse_retention("3"))
    assert progress(path) == (5, 15)
    assert await store.trim() == 12
    assert [r.text for r in await store.search("unindexed")] == [
        f"unindexed {i}" for i in (9, 8, 7)]
    check_index(path)
    await store.close()
    assert progress(path) == (15, 15)
    check_index(path)


@pytest_twisted.ensureDeferred
async def test_an_emptied_store_starts_its_index_again(open_store, tmp_path, clock):
    path = tmp_path / "history.db"
    store = await open_store(path, retention=parse_retention("60s"))
    for i in range(5):
        store.record(said(f"old {i}", at=NOW - 3600))
    await store.flush()
    await store._call(_nothing)  # the writer indexed them once it had nothing to write
    assert progress(path) == (5, 5)
    assert await store.trim() == 5  # all of it: ids start from 1 again
    assert progress(path) == (0, 0)
    store.record(said("new papaya"))
    assert [r.text for r in await store.search("papaya")] == ["new papaya"]
    await store.close()
    assert progress(path) == (1, 1)
    check_index(path)


@pytest_twisted.ensureDeferred
async def test_close_indexes_a_short_tail(open_store, tmp_path):
    path = tmp_path / "history.db"
    store = await open_store(path, flush_ms=200)
    store.record(said("just before the end"))
    await store.close()
    assert progress(path) == (1, 1)
    check_index(path)


# Search input, against the real FTS5 -------------------------------------------------------

_nasty = st.text(
    alphabet=st.sampled_from(list('abcXYZ019 "\'*-+:^()[]{}.,;!?\\/\x00\t\nNEARORANDNOTéü日🎉')),
    max_size=30,
)


@pytest.fixture(scope="module")
def fts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    conn, _, _ = connect(str(tmp_path_factory.mktemp("fts") / "history.db"))
    conn.executemany(
        "INSERT INTO events (time, room, kind, nick, text) VALUES (0, 'r', 'said', 'a', ?)",
        [(t,) for t in ["abc XYZ", "don't stop", "a-b c", "NEAR or AND", "café 日本", "019"]],
    )
    yield conn
    conn.close()


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=_nasty)
def test_no_user_input_can_break_the_fts5_query(fts, query):
    try:
        terms = parse_search(query)
    except BadQuery:
        return
    fts.execute("SELECT rowid FROM events_fts WHERE events_fts MATCH ?",
                (fts5_query(terms),)).fetchall()


_doc = st.text(alphabet=st.sampled_from(list("abAB '-.,é")), max_size=12)


@settings(max_examples=300, deadline=None)
@given(docs=st.lists(_doc, min_size=1, max_size=6), query=st.text(
    alphabet=st.sampled_from(list("abAB '*-é")), max_size=8))
def test_memory_search_finds_what_fts5_finds(docs, query):
    try:
        terms = parse_search(query)
    except BadQuery:
        return
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE t USING fts5(text, tokenize='unicode61 remove_diacritics 2')")
    conn.executemany("INSERT INTO t (rowid, text) VALUES (?, ?)", list(enumerate(docs)))
    by_fts = {r[0] for r in conn.execute("SELECT rowid FROM t WHERE t MATCH ?",
                                         (fts5_query(terms),))}
    conn.close()
    by_memory = {i for i, doc in enumerate(docs) if matches(terms, doc)}
    assert by_memory == by_fts


# A search never holds history up (issue 12, point 1) ----------------------------------------
#
# Some tests put an endless query (a recursive CTE that counts to a billion: pure SQLite
# work, which only SQLite's progress handler or an interrupt can stop) in place of the
# search's query, and learn from the reader thread when it runs, so nothing depends on how
# fast the machine is; the others run costly phrases on a small history.

WAIT = 10.0
"""Seconds before a test that waits for something gives up (it happens in milliseconds)."""

ENDLESS = """WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000)
             SELECT count(*) FROM n"""

class Endless:
    """Puts an endless query in place of the search for ``forever``, and a wait for
    ``release`` (in Python: no budget stops it) in place of the search for ``held``; other
    searches run as usual. ``running`` fires, on the reactor, when a reader has started
    one of them."""

    def __init__(self, reactor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reactor = reactor
        self.running: Deferred[None] = Deferred()
        self.release = threading.Event()
        self._real = sqlite_store._select_matches
        monkeypatch.setattr(sqlite_store, "_select_matches", self._select)

    def _select(self, conn: sqlite3.Connection, *args: Any) -> Any:
        def asked(word: str) -> bool:
            return any(isinstance(arg, str) and f'"{word}"' in arg for arg in args)

        if asked("forever"):
            self.reactor.callFromThread(self._started)
            conn.execute(ENDLESS).fetchone()
            return []
        if asked("held"):
            self.reactor.callFromThread(self._started)
            self.release.wait(WAIT)
            return []
        return self._real(conn, *args)

    def _started(self) -> None:
        if not self.running.called:
            self.running.callback(None)


def failure_of(d: Deferred[Any]) -> list[BaseException]:
    """A list that receives what ``d`` fails with (and swallows it)."""
    errors: list[BaseException] = []

    def keep(failure: Failure) -> None:
        assert failure.value is not None
        errors.append(failure.value)

    d.addErrback(keep)
    return errors


# Writes, other searches and closing go on ---------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_lines_reach_the_disk_while_a_search_runs(open_store, reactor, monkeypatch,
                                                        tmp_path):
    endless = Endless(reactor, monkeypatch)
    store = await open_store(search_ms=60_000)
    store.record(said("before the search"))
    searching = store.search("forever")
    errors = failure_of(searching)
    await endless.running.addTimeout(WAIT, reactor)
    store.record(said("said while it runs"))
    await store.flush().addTimeout(WAIT, reactor)
    assert stored(tmp_path / "history.db") == ["before the search", "said while it runs"]
    assert not searching.called  # still running: the write did not wait for it
    await store.close().addTimeout(WAIT, reactor)
    assert [str(e) for e in errors] == ["the history store is closed"]


@pytest_twisted.ensureDeferred
async def test_another_search_is_answered_while_a_costly_one_runs(open_store, reactor,
                                                                  monkeypatch):
    endless = Endless(reactor, monkeypatch)
    store = await open_store(search_ms=60_000)
    store.record(said("a ripe mango"))
    searching = store.search("forever")
    failure_of(searching)
    await endless.running.addTimeout(WAIT, reactor)
    found = await store.search("mango").addTimeout(WAIT, reactor)
    assert [r.text for r in found] == ["a ripe mango"]
    assert not searching.called


@pytest_twisted.ensureDeferred
async def test_close_stops_a_running_search_instead_of_waiting_for_it(open_store, reactor,
                                                                      monkeypatch, tmp_path):
    endless = Endless(reactor, monkeypatch)
    store = await open_store(search_ms=60_000, flush_ms=60_000)
    searching = store.search("forever")
    errors = failure_of(searching)
    await endless.running.addTimeout(WAIT, reactor)
    store.record(said("the last line"))
    await store.close().addTimeout(WAIT, reactor)
    assert [str(e) for e in errors] == ["the history store is closed"]
    assert stored(tmp_path / "history.db") == ["the last line"]


# Budgets --------------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_search_past_its_budget_is_stopped_with_a_clear_error(open_store, reactor,
                                                                      monkeypatch):
    endless = Endless(reactor, monkeypatch)
    store = await open_store(search_ms=50)
    searching = store.search("forever")
    errors = failure_of(searching)
    await endless.running.addTimeout(WAIT, reactor)
    await searching.addTimeout(WAIT, reactor)
    assert len(errors) == 1 and isinstance(errors[0], BadQuery)
    assert str(errors[0]) == (
        "that search took more than 50 ms and was stopped; try fewer or rarer words")
    store.record(said("still works"))  # the reader's connection is fine afterwards
    found = await store.search("works").addTimeout(WAIT, reactor)
    assert [r.text for r in found] == ["still works"]


@pytest_twisted.ensureDeferred
async def test_a_search_that_waited_past_its_budget_never_starts(open_store, reactor,
                                                                monkeypatch):
    endless = Endless(reactor, monkeypatch)
    store = await open_store(search_ms=50, readers=1)
    first = store.search("held")
    await endless.running.addTimeout(WAIT, reactor)
    second = store.search("mango")  # waits for the one reader...
    second_errors = failure_of(second)
    await deferLater(reactor, 0.1, lambda: None)  # ... past its 50 ms
    endless.release.set()
    assert await first.addTimeout(WAIT, reactor) == []
    await second.addTimeout(WAIT, reactor)
    assert len(second_errors) == 1 and isinstance(second_errors[0], HistoryError)
    assert str(second_errors[0]) == "too many searches under way; try again in a moment"


@pytest_twisted.ensureDeferred
async def test_a_replay_is_read_while_searches_hold_every_reader_and_more_wait(
    open_store, reactor, monkeypatch
):
    """A join's replay (and a page of history) has a reader of its own (issue 15 leftovers,
    point 6): with every reader held by searches and more queued, it still comes back."""
    endless = Endless(reactor, monkeypatch)
    store = await open_store(search_ms=60_000, readers=2)
    store.record(said("before the join"))
    await store.flush()
    searches = [store.search("held") for _ in range(6)]  # 2 running, 4 queued behind them
    try:
        await endless.running.addTimeout(WAIT, reactor)
        replay = await store.last(20, "lobby").addTimeout(WAIT / 2, reactor)
        assert [r.text for r in replay] == ["before the join"]
        page = await store.page("lobby").addTimeout(WAIT / 2, reactor)
        assert [r.text for r in page] == ["before the join"]
        assert not any(search.called for search in searches)  # still held: no luck here
    finally:
        endless.release.set()
    for search in searches:
        assert await search.addTimeout(WAIT, reactor) == []


def costly_rows(count: int = 2000, words: int = 600) -> list[Said]:
    """Long lines of one common word between others: a phrase of many of it has to be
    checked against every position of every line, and matches none."""
    return [said(" ".join(["a", "c"] * (words // 2))) for _ in range(count)]


COSTLY = "-".join(["a"] * 64)
"""64 words, as one search term: an FTS5 phrase that takes about 0.5 s on ``costly_rows()``
(as long, in Python, for rows not indexed yet), five times the budget the tests give it."""


async def _writer_idle(store: SqliteHistory) -> None:
    await store._call(lambda conn: None)  # after everything given to the writer before


@pytest_twisted.ensureDeferred
async def test_a_costly_phrase_in_the_index_is_stopped_at_the_budget(open_store, reactor):
    store = await open_store(search_ms=100, search_words=64, readers=1, batch_size=10_000)
    for event in costly_rows():
        store.record(event)
    await store.flush()
    await _writer_idle(store)  # the writer indexed them once it had nothing to write
    assert store.unindexed == 0
    assert await store.search("a") != []  # the reader is started and warm
    with pytest.raises(BadQuery, match="took more than 100 ms"):
        await store.search(COSTLY).addTimeout(WAIT, reactor)


@pytest_twisted.ensureDeferred
async def test_a_costly_phrase_in_the_unindexed_tail_is_stopped_at_the_budget(
    open_store, reactor, tmp_path
):
    store = await open_store()
    await store.close()
    conn = sqlite3.connect(tmp_path / "history.db", isolation_level=None)
    try:  # rows a killed run left unindexed: search matches them in Python
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (time, room, kind, nick, text) VALUES (?, ?, 'said', 'b', ?)",
            [(NOW, ROOM, event.text) for event in costly_rows()])
        conn.execute("COMMIT")
    finally:
        conn.close()
    store = await open_store(search_ms=100, search_words=64, readers=1)
    assert await store.last(1) != []  # the reader is started and warm
    with pytest.raises(BadQuery, match="took more than 100 ms"):
        await store.search(COSTLY).addTimeout(WAIT, reactor)


@pytest_twisted.ensureDeferred
async def test_more_words_than_allowed_are_refused_naming_the_limit(open_store):
    store = await open_store(search_words=8)
    assert await store.search("-".join(["a"] * 8)) == []
    with pytest.raises(BadQuery, match=r"at most 8 words \(a-b-c counts as 3\)"):
        await store.search("-".join(["a"] * 9))
    with pytest.raises(BadQuery, match="at most 8 words"):
        await store.search("a b-c d e f g h i")


@pytest_twisted.ensureDeferred
async def test_closing_an_unused_store_with_readers_is_quick(open_store, reactor):
    store = await open_store()
    assert await store.search("nothing") == []
    await store.close().addTimeout(WAIT, reactor)
    with pytest.raises(HistoryError, match="closed"):
        await store.search("nothing")


@pytest_twisted.ensureDeferred
async def test_reading_a_rooms_replay_has_a_budget_of_its_own(open_store, reactor,
                                                               monkeypatch):
    # A room's replay is read from the store when someone first joins it (no user chose
    # what it costs): a search's budget must not cut it short.
    real = sqlite_store._select_last

    def slow_last(conn: sqlite3.Connection, *args: Any) -> Any:
        conn.execute(ENDLESS.replace("1000000000", "300000")).fetchone()  # some ms of work
        return real(conn, *args)

    monkeypatch.setattr(sqlite_store, "_select_last", slow_last)
    store = await open_store(search_ms=1)
    store.record(said("kept"))
    assert [r.text for r in await store.last(5, ROOM)] == ["kept"]


# Pages (IRC's CHATHISTORY) ---------------------------------------------------------------


@pytest.mark.parametrize("after, before, newest", [
    (None, None, True), ((NOW, 5), None, False), (None, (NOW, 5), True),
    ((NOW - 60, 1), (NOW, 5), False),
])
def test_a_page_of_a_room_reads_its_index_in_order_and_sorts_nothing(
    tmp_path: Path, after: Any, before: Any, newest: bool
) -> None:
    path = tmp_path / "pages.db"
    conn, _, _ = connect(str(path))
    try:
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        sqlite_store._select_page(conn, lambda: False, "#lobby", after, before, 50, newest)
        conn.set_trace_callback(None)
        [select] = [s for s in statements if s.startswith("SELECT")]
        plan = " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + select))
    finally:
        conn.close()
    assert "TEMP B-TREE" not in plan and "events_room_time" in plan, plan
