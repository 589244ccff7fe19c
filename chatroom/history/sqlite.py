"""History in an SQLite file: the server's default store.

Why it looks like this:

- The reactor never touches the file. ``record`` appends a row to an in-memory batch; a
  timer (``flush_ms``) or a full batch hands the batch to one writer thread of the store's
  own, which inserts it in one transaction. Indexing, trims and the final close run on that
  same thread, one after another, so they need no locks.
- Reads (``last``, ``search``) never run on the writer thread: they run on reader threads
  with connections of their own (``readers.py``), each within a time budget, so a costly
  search cannot hold a line back from the disk, nor the shutdown. A read first waits for a
  flush, so it sees every event recorded before it.
- The batch is bounded (``max_pending``): if the disk falls behind, new events are dropped,
  counted and logged, and the room keeps running in bounded memory.
- WAL mode with ``synchronous=NORMAL``: a commit is one append to the WAL, with no fsync. A
  killed process (even SIGKILL) loses only what was still in the batch, at most one flush
  window; a power cut may also lose the last commits, never the file.
- Full-text indexing is kept off the insert path (schema v3): a write only appends rows;
  the writer indexes them into FTS5 afterwards, in chunks, when it has nothing to write
  (or when too many rows wait, ``max_unindexed``), and records how far it got in the file.
  Indexing in bulk is about ten times cheaper than a trigger per row, and the room's peaks
  leave it for later. ``search`` stays exact: it reads the index for the rows it covers
  and looks through the few rows it does not reach yet (catching up first if they are many).
- The schema carries its version in ``PRAGMA user_version``; ``MIGRATIONS`` upgrade an
  older file when it is opened, each step in one transaction.
- Anything wrong with the file at open time is one ``HistoryError`` with a sentence. A
  write that fails later (disk full, I/O error) is logged at a bounded rate and retried
  with backoff, keeping its rows; the room does not notice.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from chatroom.domain.events import Event
from chatroom.history.readers import (
    READERS,
    SEARCH_MS,
    Busy,
    OutOfTime,
    Readers,
    ReadStopped,
    start_pool,
)
from chatroom.history.store import (
    KEEP_ALL,
    MAX_LAST,
    MAX_SEARCH,
    MAX_TERMS,
    SEARCHABLE,
    BadQuery,
    HistoryError,
    IHistory,
    Kind,
    Position,
    Record,
    Retention,
    Row,
    Term,
    fts5_query,
    matches,
    parse_search,
    row_for,
)
from chatroom.logs import RateLimitedLog
from chatroom.stats import Latency

T = TypeVar("T")

FLUSH_MS = 200
"""Default milliseconds between a first queued event and the write that stores it."""

BATCH_SIZE = 1000
"""Queued events that start a write at once, without waiting for the timer."""

MAX_PENDING = 100_000
"""Default cap on events waiting to be written; past it, new events are dropped."""

TRIM_INTERVAL = 600.0
"""Default seconds between background retention passes."""

TRIM_CHUNK = 2000
"""Rows deleted per transaction while trimming, so writes can slip in between."""

QUICK_CHECK_MAX_BYTES = 512 * 1024 * 1024
"""Files up to this size get ``PRAGMA quick_check`` when opened (about 0.3 s per 100 MB),
so damage inside the file stops the server at start instead of failing writes later."""

MAX_RETRY_DELAY = 30.0
"""Longest wait between two attempts to write after a failure."""

INDEX_CHUNK = 20_000
"""Rows added to the full-text index per transaction (about 50 ms of the writer's time),
so writes can slip in between."""

MAX_UNINDEXED = 200_000
"""Default number of stored rows the index may lag behind before the writer indexes
them even while it is busy writing (a few seconds of the busiest room)."""

LAST_BUDGET = 10.0
"""Seconds one ``last`` may take (a room's replay, read when someone first joins it): more
than a search may, as no user chooses what it costs, but bounded all the same (the room's
index, schema v4, makes it a few milliseconds)."""

SCAN_TAIL = 5_000
"""The most not-yet-indexed rows a search looks through one by one (in Python, so with
the GIL held: about 50 ms); past it, the search has the index catch up first."""

# The schema, one tuple of statements per version. Never edit a released version: add one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # v1: the events themselves.
    1: (
        """CREATE TABLE events (
               id INTEGER PRIMARY KEY,
               time REAL NOT NULL,
               room TEXT NOT NULL,
               kind TEXT NOT NULL,
               nick TEXT NOT NULL,
               text TEXT NOT NULL DEFAULT '',
               new_nick TEXT
           )""",
    ),
    # v2: full-text search. An external-content FTS5 index over events.text (no second
    # copy of the text), kept in step by triggers, and built for the rows v1 stored.
    2: (
        """CREATE VIRTUAL TABLE events_fts USING fts5(
               text, content='events', content_rowid='id', columnsize=0,
               tokenize='unicode61 remove_diacritics 2'
           )""",
        """CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
               INSERT INTO events_fts (rowid, text) VALUES (new.id, new.text);
           END""",
        """CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
               INSERT INTO events_fts (events_fts, rowid, text)
               VALUES ('delete', old.id, old.text);
           END""",
        """CREATE TRIGGER events_fts_update AFTER UPDATE OF text ON events BEGIN
               INSERT INTO events_fts (events_fts, rowid, text)
               VALUES ('delete', old.id, old.text);
               INSERT INTO events_fts (rowid, text) VALUES (new.id, new.text);
           END""",
        "INSERT INTO events_fts (events_fts) VALUES ('rebuild')",
    ),
    # v3: no index work on insert. Rows are indexed in chunks after they are written, and
    # index_progress keeps the highest id indexed: every row up to it is in the index,
    # none after it. Deleting or changing a row touches the index only if it is in it.
    3: (
        "DROP TRIGGER events_fts_insert",
        "DROP TRIGGER events_fts_delete",
        "DROP TRIGGER events_fts_update",
        """CREATE TABLE index_progress (
               id INTEGER PRIMARY KEY CHECK (id = 1),
               indexed INTEGER NOT NULL
           )""",
        "INSERT INTO index_progress (id, indexed) SELECT 1, coalesce(max(id), 0) FROM events",
        """CREATE TRIGGER events_fts_delete AFTER DELETE ON events
           WHEN old.id <= (SELECT indexed FROM index_progress) BEGIN
               INSERT INTO events_fts (events_fts, rowid, text)
               VALUES ('delete', old.id, old.text);
           END""",
        """CREATE TRIGGER events_fts_update AFTER UPDATE OF text ON events
           WHEN old.id <= (SELECT indexed FROM index_progress) BEGIN
               INSERT INTO events_fts (events_fts, rowid, text)
               VALUES ('delete', old.id, old.text);
               INSERT INTO events_fts (rowid, text) VALUES (new.id, new.text);
           END""",
    ),
    # v4: rooms. Before, the server had one room, named without a ``#`` (``lobby``); its
    # rows get the name the room has now (``#lobby``). And an index for what every room
    # reads: its own newest lines (a replay, /history), without scanning the others'.
    4: (
        "UPDATE events SET room = '#' || room WHERE room <> '' AND substr(room, 1, 1) <> '#'",
        "CREATE INDEX events_room_id ON events (room, id)",
    ),
    # v5: IRC's CHATHISTORY pages a room by (time, id): without this index, every page
    # sorted all the room's rows in a temporary B-tree (a second or more for a room of a
    # million lines), to return 50.
    5: ("CREATE INDEX events_room_time ON events (room, time, id)",),
}
SCHEMA_VERSION = max(MIGRATIONS)

_COLUMNS = "id, time, room, kind, nick, text, new_nick"
_INSERT = "INSERT INTO events (time, room, kind, nick, text, new_nick) VALUES (?, ?, ?, ?, ?, ?)"
_KINDS_SQL = ", ".join(f"'{kind.value}'" for kind in SEARCHABLE)


# The database side: plain functions, run on the writer thread (or, for the blocking open,
# on the caller's thread before the reactor runs). They never log: logging stays on the
# reactor thread.

def check_fts5() -> None:
    """Raise ``HistoryError`` unless this Python's SQLite has the FTS5 module."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE probe USING fts5(text)")
    except sqlite3.OperationalError:
        raise HistoryError(
            f"this Python's SQLite {sqlite3.sqlite_version} has no FTS5 full-text search, "
            "which history needs; use a Python whose SQLite has FTS5, or --history none"
        ) from None
    finally:
        probe.close()


def _explain(where: str, error: sqlite3.Error) -> str:
    said = str(error)
    if "not a database" in said or "malformed" in said:
        return (f"{where} is not a usable history database ({said}); it may be corrupt: "
                "move it away to start a new history, or choose another --history path")
    if "readonly" in said or "read-only" in said:
        return f"cannot write the history database {where} ({said}); check its permissions"
    if "locked" in said or "busy" in said:
        return f"the history database {where} is in use by another process ({said})"
    if "unable to open" in said:
        return (f"cannot open the history database {where} ({said}); "
                "check that the path exists and is writable")
    return f"cannot use the history database {where}: {said}"


def connect(path: str, check: bool = True) -> tuple[sqlite3.Connection, list[int], str]:
    """Open (creating if need be) and upgrade the database at ``path``.

    Returns the connection, the schema versions it was upgraded to (for the log) and its
    journal mode. Raises ``HistoryError`` with a sentence for anything that is wrong.
    ``check`` runs ``PRAGMA quick_check`` (on files up to ``QUICK_CHECK_MAX_BYTES``).
    """
    check_fts5()
    target = Path(path).expanduser()
    where = str(target)
    if target.is_dir():
        raise HistoryError(f"cannot use {where} for history: it is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise HistoryError(
            f"cannot keep history in {target.parent}: it is a file, not a directory"
        ) from None
    except OSError as e:
        raise HistoryError(
            f"cannot create the directory {target.parent} for history: {e.strerror or e}"
        ) from None
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise HistoryError(
            f"cannot write history in {target.parent}: permission denied "
            "(SQLite creates its journal files next to the database)"
        )
    if target.exists() and not os.access(target, os.R_OK | os.W_OK):
        raise HistoryError(f"cannot read and write the history database {where}: "
                           "permission denied")
    try:
        conn = sqlite3.connect(where, timeout=5.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise HistoryError(_explain(where, e)) from None
    try:
        applied, mode = _prepare(conn, where, check)
    except sqlite3.Error as e:
        conn.close()
        raise HistoryError(_explain(where, e)) from None
    except BaseException:
        conn.close()
        raise
    return conn, applied, mode


def _prepare(conn: sqlite3.Connection, where: str, check: bool = True) -> tuple[list[int], str]:
    # Read-only checks first: a file refused here is left exactly as it was.
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{where} was written by a newer chatroom (history schema v{version}; this one "
            f"knows up to v{SCHEMA_VERSION}); upgrade chatroom or choose another --history path"
        )
    if version == 0:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master LIMIT 5")]
        if names:
            raise HistoryError(
                f"{where} is an SQLite database of some other program (it has "
                f"{', '.join(names)}); choose another --history path"
            )
    if check and os.path.getsize(where) <= QUICK_CHECK_MAX_BYTES:
        verdict = str(conn.execute("PRAGMA quick_check(1)").fetchone()[0])
        if verdict != "ok":
            verdict = " ".join(verdict.replace("*** in database main ***", "").split())
            raise HistoryError(
                f"{where} is damaged ({verdict}); it may be corrupt: move it away to start "
                "a new history, or choose another --history path"
            )
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    conn.execute("PRAGMA synchronous = NORMAL")
    applied = []
    for step in range(version + 1, SCHEMA_VERSION + 1):
        _in_transaction(conn, _migration(step))
        applied.append(step)
    # Prove now that the file is writable (a current file needed no upgrade, so nothing
    # was written yet), and read both tables, so damage shows before the server starts.
    _in_transaction(conn, lambda c: c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}"))
    conn.execute("SELECT max(id) FROM events").fetchone()
    conn.execute("SELECT rowid FROM events_fts WHERE events_fts MATCH 'x' LIMIT 1").fetchall()
    _progress(conn)
    return applied, mode


def _migration(step: int) -> Callable[[sqlite3.Connection], None]:
    def migrate(conn: sqlite3.Connection) -> None:
        for statement in MIGRATIONS[step]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {step}")

    return migrate


def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], object]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
                conn.execute("ROLLBACK")
        raise


def _clean(row: Row) -> Row:
    """``row`` with every string made encodable (a lone surrogate becomes ``?``)."""
    return tuple(  # type: ignore[return-value]
        v.encode("utf-8", "replace").decode("utf-8") if isinstance(v, str) else v for v in row
    )


def _insert(conn: sqlite3.Connection, rows: list[Row]) -> None:
    try:
        _in_transaction(conn, lambda c: c.executemany(_INSERT, rows))
    except UnicodeEncodeError:
        # One bad string must not block the batch (and every retry) forever.
        cleaned = [_clean(row) for row in rows]
        _in_transaction(conn, lambda c: c.executemany(_INSERT, cleaned))


def _progress(conn: sqlite3.Connection) -> tuple[int, int]:
    """``(indexed, top)``: the highest id in the full-text index, and the highest id."""
    row = conn.execute("SELECT indexed FROM index_progress").fetchone()
    if row is None:
        raise sqlite3.DatabaseError("the index_progress row is missing: malformed database")
    top = conn.execute("SELECT max(id) FROM events").fetchone()[0]
    return int(row[0]), int(top or 0)


def _index_some(conn: sqlite3.Connection, chunk: int) -> int:
    """Add up to ``chunk`` not-yet-indexed rows to the full-text index, in one transaction;
    return how many rows (at most) are still not indexed."""
    left = 0

    def index(c: sqlite3.Connection) -> None:
        nonlocal left
        indexed, top = _progress(c)
        if top <= indexed:
            return
        first = int(c.execute("SELECT min(id) FROM events WHERE id > ?", (indexed,)).fetchone()[0])
        upto = min(top, first + chunk - 1)
        c.execute(
            "INSERT INTO events_fts (rowid, text) "
            "SELECT id, text FROM events WHERE id > ? AND id <= ? ORDER BY id",
            (indexed, upto),
        )
        c.execute("UPDATE index_progress SET indexed = ?", (upto,))
        left = top - upto

    _in_transaction(conn, index)
    return left


def _probe(conn: sqlite3.Connection) -> None:
    """Take the write lock and let it go: the file can be written to, as far as can be
    known without writing (a full disk shows only when a write fails)."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")


def _records(cursor: sqlite3.Cursor) -> list[Record]:
    return [
        Record(id, time, room, Kind(kind), nick, text, new_nick)
        for id, time, room, kind, nick, text, new_nick in cursor
    ]


def _select_last(conn: sqlite3.Connection, n: int, room: str | None) -> list[Record]:
    if room is None:
        cursor = conn.execute(f"SELECT {_COLUMNS} FROM events ORDER BY id DESC LIMIT ?", (n,))
    else:
        cursor = conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE room = ? ORDER BY id DESC LIMIT ?", (room, n)
        )
    found = _records(cursor)
    found.reverse()
    return found


def _read_last(
    conn: sqlite3.Connection, over: Callable[[], bool], n: int, room: str | None
) -> list[Record]:
    return _select_last(conn, n, room)


def _select_page(
    conn: sqlite3.Connection,
    over: Callable[[], bool],
    room: str,
    after: Position | None,
    before: Position | None,
    limit: int,
    newest: bool,
) -> list[Record]:
    where: list[str] = ["room = ?"]
    args: list[object] = [room]
    if after is not None:
        where.append("(time > ? OR (time = ? AND id > ?))")
        args += [after[0], after[0], after[1]]
    if before is not None:
        where.append("(time < ? OR (time = ? AND id < ?))")
        args += [before[0], before[0], before[1]]
    order = "DESC" if newest else "ASC"
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)} "
        f"ORDER BY time {order}, id {order} LIMIT ?",
        (*args, limit),
    )
    found = _records(cursor)
    if newest:
        found.reverse()
    return found


def _select_matches(
    conn: sqlite3.Connection,
    over: Callable[[], bool],
    terms: list[Term],
    query: str,
    limit: int,
    room: str | None,
    scan: int = SCAN_TAIL,
) -> list[Record] | None:
    """The newest ``limit`` records matching; ``None`` if more than ``scan`` rows are not
    indexed yet (the caller has the index catch up, then asks again). ``over()`` says when
    the read's budget is spent (SQLite's own work checks it through the progress
    handler)."""
    conn.execute("BEGIN")  # one snapshot for the progress, the tail and the index
    try:
        indexed, top = _progress(conn)
        if top - indexed > scan:
            conn.execute("COMMIT")
            return None
        found = _scan_tail(conn, over, terms, indexed, limit, room)
        if len(found) < limit:
            found += _select_indexed(conn, query, limit - len(found), room)
    except BaseException:
        if conn.in_transaction:  # the error that stopped the read is the one to report
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found


def _scan_tail(
    conn: sqlite3.Connection,
    over: Callable[[], bool],
    terms: list[Term],
    indexed: int,
    limit: int,
    room: str | None,
) -> list[Record]:
    """Matching rows the index does not cover yet, newest first, matched as FTS5 would.

    The matching is Python's, with the GIL held: ``over()`` is asked at every row, as
    SQLite's progress handler would not be called often enough to stop it in time."""
    sql = f"SELECT {_COLUMNS} FROM events WHERE id > ? AND kind IN ({_KINDS_SQL})"
    args: tuple[object, ...] = (indexed,)
    if room is not None:
        sql += " AND room = ?"
        args += (room,)
    found: list[Record] = []
    for id, time, room_, kind, nick, text, new_nick in conn.execute(
        sql + " ORDER BY id DESC", args
    ):
        if over():
            raise sqlite3.OperationalError("interrupted")  # as SQLite says it
        if matches(terms, text):
            found.append(Record(id, time, room_, Kind(kind), nick, text, new_nick))
            if len(found) == limit:
                break
    return found


def _select_indexed(
    conn: sqlite3.Connection, query: str, limit: int, room: str | None
) -> list[Record]:
    # CROSS JOIN keeps the full-text index as the outer loop, walked newest first, so LIMIT
    # stops it early however many rows match.
    sql = (
        f"SELECT {', '.join('e.' + c for c in _COLUMNS.split(', '))} "
        "FROM events_fts CROSS JOIN events AS e ON e.id = events_fts.rowid "
        f"WHERE events_fts MATCH ? AND e.kind IN ({_KINDS_SQL})"
    )
    args: tuple[object, ...] = (query,)
    if room is not None:
        sql += " AND e.room = ?"
        args += (room,)
    sql += " ORDER BY events_fts.rowid DESC LIMIT ?"
    return _records(conn.execute(sql, (*args, limit)))


def _keep_count_from(conn: sqlite3.Connection, count: int) -> int | None:
    """The id of the oldest row to keep when keeping ``count``; None if all are kept."""
    row = conn.execute(
        "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?", (count - 1,)
    ).fetchone()
    if row is None:
        return None
    first = conn.execute("SELECT min(id) FROM events").fetchone()[0]
    return None if first is None or first >= row[0] else int(row[0])


def _keep_age_from(conn: sqlite3.Connection, oldest: float) -> int | None:
    """The id of the oldest row to keep when keeping rows from time ``oldest`` on.

    Rows are in time order by id (each is stamped when it happens), so this walks from the
    oldest row and stops at the first young one: no index on time is needed.
    """
    row = conn.execute(
        "SELECT id FROM events WHERE time >= ? ORDER BY id LIMIT 1", (oldest,)
    ).fetchone()
    if row is not None:
        return int(row[0])
    last = conn.execute("SELECT max(id) FROM events").fetchone()[0]
    return None if last is None else int(last) + 1


def _delete_before(conn: sqlite3.Connection, keep_from: int, chunk: int) -> int:
    deleted = 0

    def delete(c: sqlite3.Connection) -> None:
        nonlocal deleted
        deleted = c.execute(
            "DELETE FROM events WHERE id IN "
            "(SELECT id FROM events WHERE id < ? ORDER BY id LIMIT ?)",
            (keep_from, chunk),
        ).rowcount

        # Emptied (an age limit can do that): ids start again from 1, so the index's
        # progress must too. Every row it had indexed was taken out of it by the trigger.
        if c.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None:
            c.execute("UPDATE index_progress SET indexed = 0")

    _in_transaction(conn, delete)
    return deleted


class _Database:
    """The store's one connection, opened on the writer thread when it is first needed.

    Opening there, not where the store is made, keeps the store fork-safe: twistd builds
    its services and only then forks into the background, and neither threads nor SQLite's
    file locks survive a fork.
    """

    def __init__(self, path: str, connection: sqlite3.Connection | None = None) -> None:
        self.path = path
        self.connection = connection

    def run(self, f: Callable[..., T], *args: object) -> T:
        """``f(connection, *args)``, on the writer thread."""
        if self.connection is None:
            self.connection, _, _ = connect(self.path, check=False)
        return f(self.connection, *args)

    def close(self) -> None:
        if self.connection is not None:
            # The last connection to close checkpoints the WAL into the file.
            self.connection.close()
            self.connection = None


def _start_pool() -> ThreadPool:
    """The writer's thread (a daemon: ``close`` is the clean way out, and an interrupted
    transaction is rolled back by SQLite at the next open)."""
    return start_pool("chatroom-history")


@implementer(IHistory)
class SqliteHistory:
    """Keeps history in an SQLite file, written in batches by a thread of its own and read
    by others (``readers`` threads, each read within ``search_ms``).

    Make one with ``open_sqlite`` (from a running reactor) or ``open_sqlite_blocking``
    (before the reactor runs, e.g. in ``makeService``). Its thread starts at its first
    write, read or trim, which timers put after ``reactor.run`` (and after twistd forks).
    """

    _log = Logger()

    def __init__(
        self,
        path: str,
        clock: IReactorTime,
        reactor: IReactorFromThreads,
        *,
        connection: sqlite3.Connection | None = None,
        pool: ThreadPool | None = None,
        retention: Retention = KEEP_ALL,
        flush_ms: float = FLUSH_MS,
        batch_size: int = BATCH_SIZE,
        max_pending: int = MAX_PENDING,
        trim_interval: float = TRIM_INTERVAL,
        max_unindexed: int = MAX_UNINDEXED,
        index_chunk: int = INDEX_CHUNK,
        readers: int = READERS,
        search_ms: float = SEARCH_MS,
        search_words: int = MAX_TERMS,
    ) -> None:
        self.path = path
        self._db = _Database(path, connection)
        self._readers = Readers(path, reactor, readers, search_ms / 1000.0)
        self._search_ms = search_ms
        self._search_words = search_words
        self._clock = clock
        self._reactor = reactor
        self._pool = pool
        self._retention = retention
        self._interval = flush_ms / 1000.0
        self._pending_since = 0.0  # when the oldest row in _pending came
        self._batch_size = max(1, batch_size)
        self._max_pending = max(1, max_pending)
        self._warnings = RateLimitedLog(self._log, clock, rate=1 / 30, burst=5)
        self._refusals = RateLimitedLog(self._log, clock, rate=1 / 10, burst=5)
        self.dropped = 0
        self.written = 0
        """Events stored since the store was opened."""
        self.batches = 0
        """Batches handed to the writer thread since the store was opened."""
        self.write_latency = Latency()
        """How long each batch took from being handed to the writer thread to being
        stored (waiting behind an index chunk or a trim included)."""
        self.last_error: str | None = None
        """Why the last write failed, while writes fail; ``None`` once one works."""
        self.unindexed = 0
        """Stored rows not in the full-text index yet, as far as the store knows (rows
        left unindexed by an earlier run count once the indexer has looked)."""
        self._max_unindexed = max(0, max_unindexed)
        self._index_chunk = max(1, index_chunk)
        self._indexing = False
        self._tail_unknown = True  # what an earlier run left unindexed: the indexer learns it
        self._pending: list[Row] = []
        self._queued = 0  # pending plus in the write under way: what max_pending bounds
        self._writing: Deferred[None] | None = None
        self._write_started = 0.0
        self._timer: IDelayedCall | None = None
        self._failures = 0
        self._waiters: list[Deferred[None]] = []
        self._trim_waiters: list[Deferred[int]] | None = None  # of the pass under way
        self._trim_again: list[Deferred[int]] = []  # of the pass to run after it
        self._closed = False
        self._close_waiters: list[Deferred[None]] | None = None
        self._shut = False
        self._trimmer: LoopingCall | None = None
        self._first_trim: IDelayedCall | None = None
        self._trim_interval = trim_interval
        if retention.max_count is not None or retention.max_age is not None:
            self._trimmer = self._make_trimmer()
            # The first pass as soon as the reactor runs, not here (see _Database).
            self._first_trim = clock.callLater(0, self._start_trimming, trim_interval)

    def _make_trimmer(self) -> LoopingCall:
        trimmer = LoopingCall(lambda: ensureDeferred(self._periodic_trim()))
        trimmer.clock = self._clock
        return trimmer

    def _start_trimming(self, interval: float) -> None:
        if self._trimmer is not None and not self._closed:
            self._trimmer.start(interval, now=True)

    def set_retention(self, retention: Retention) -> None:
        """A new ``--history-keep`` (a reload): a pass applies it now, periodic ones after."""
        self._retention = retention
        if self._closed:
            return
        if self._trimmer is None:
            self._trimmer = self._make_trimmer()
            self._trimmer.start(self._trim_interval, now=True)
        else:
            ensureDeferred(self._periodic_trim())

    # Writing ----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events recorded and not yet stored (queued, or in the write under way)."""
        return self._queued

    def record(self, event: Event) -> None:
        row = row_for(event)
        if row is not None:
            self.record_row(row)

    def record_row(self, row: Row) -> None:
        """``record`` for a row already made by ``row_for`` (so public): the recorder's
        fast path, so the reactor turns each event into a row once."""
        if self._closed:
            return
        if self._queued >= self._max_pending:
            self.dropped += 1
            self._warnings.warn(
                "history is {queued} events behind (disk too slow or failing); "
                "dropped {dropped} events so far",
                queued=self._queued, dropped=self.dropped, path=self.path,
            )
            return
        if not self._pending:
            self._pending_since = self._clock.seconds()
        self._pending.append(row)
        self._queued += 1
        if self._writing is not None:
            return  # when it ends, _next decides what comes after
        if len(self._pending) >= self._batch_size and not self._failures:
            self._write()
        elif self._timer is None:
            self._timer = self._clock.callLater(self._interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._writing is None:
            self._write()

    def _write(self) -> None:
        """Hand every queued row to the writer thread, with every flush waiting for them."""
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        rows, self._pending = self._pending, []
        waiters, self._waiters = self._waiters, []
        if not rows:
            for waiter in waiters:
                waiter.callback(None)
            return
        self.batches += 1
        self._write_started = self._clock.seconds()
        writing = self._submit(_insert, rows)
        self._writing = writing
        writing.addCallbacks(
            self._written, self._write_failed,
            callbackArgs=(rows, waiters), errbackArgs=(rows, waiters),
        )

    def _written(self, _: object, rows: list[Row], waiters: list[Deferred[None]]) -> None:
        self._writing = None
        self.write_latency.observe(max(0.0, self._clock.seconds() - self._write_started))
        self._queued -= len(rows)
        self.written += len(rows)
        self.unindexed += len(rows)
        if self._failures:
            self._log.info("history writes to {path} work again after {failures} failures",
                           path=self.path, failures=self._failures)
            self._failures = 0
            self.last_error = None
        self._index_later()  # before the waiters: a read they start comes after it
        for waiter in waiters:
            waiter.callback(None)
        self._next()

    def _write_failed(
        self, failure: Failure, rows: list[Row], waiters: list[Deferred[None]]
    ) -> None:
        self._writing = None
        self._failures += 1
        self._pending[:0] = rows  # first in line for the retry, in their order
        delay = min(MAX_RETRY_DELAY, max(self._interval, 0.1) * 2 ** min(self._failures, 10))
        why = self.last_error = failure.getErrorMessage()
        self._warnings.warn(
            "cannot write {count} history events to {path}: {error}; "
            "{queued} events waiting, retrying in {delay:.1f}s",
            count=len(rows), path=self.path, error=why, queued=self._queued, delay=delay,
            failures=self._failures,
        )
        if not self._closed:
            self._timer = self._clock.callLater(delay, self._tick)
        error = HistoryError(f"could not write {len(rows)} history events: {why}")
        failed, self._waiters = waiters + self._waiters, []
        for waiter in failed:  # (a waiter may flush again at once: that is a new write)
            waiter.errback(error)

    def _next(self) -> None:
        if self._writing is not None:
            return  # a waiter's callback already started the next write
        if self._waiters or len(self._pending) >= self._batch_size:
            self._write()
        elif self._pending and self._timer is None:
            # The flush window counts from the oldest waiting row, not from the end of the
            # write it waited behind: a SIGKILL loses at most the window and one write.
            waited = self._clock.seconds() - self._pending_since
            if waited >= self._interval:
                self._write()
            else:
                self._timer = self._clock.callLater(self._interval - waited, self._tick)

    # Indexing ---------------------------------------------------------------------------

    def _index_later(self) -> None:
        """Index a chunk of stored rows if the writer has nothing to write, or if the index
        lags too far behind; one chunk at a time, so writes go in between."""
        if self._indexing or self._closed or not self._behind():
            return
        idle = self._writing is None and not self._pending
        if not idle and self.unindexed <= self._max_unindexed:
            return
        self._indexing = True
        self._submit(_index_some, self._index_chunk).addCallbacks(
            self._indexed, self._index_failed)

    def _behind(self) -> bool:
        return self.unindexed > 0 or self._tail_unknown

    def _indexed(self, left: int) -> None:
        self._indexing = False
        self._learned(left)
        self._index_later()

    def _learned(self, left: int) -> None:
        # Exact: writes and chunks run in order on one thread, and report back in order.
        self.unindexed = left
        self._tail_unknown = False

    def _index_failed(self, failure: Failure) -> None:
        self._indexing = False  # the next write tries again
        self._warnings.warn("cannot update the history search index in {path}: {error}",
                            path=self.path, error=failure.getErrorMessage())

    async def _index_step(self) -> None:
        self._learned(await self._call(_index_some, self._index_chunk))

    def problem(self) -> str | None:
        """Why the store cannot keep what the room says now, or ``None``: for readiness
        checks, from what the store knows without asking its thread (see ``probe``)."""
        if self._closed:
            return "history store closed"
        if self._failures:
            return f"history writes failing ({self._failures} in a row): {self.last_error}"
        if self._queued >= self._max_pending:
            return f"history {self._queued} events behind, dropping new ones"
        return None

    def probe(self) -> Deferred[None]:
        """Fires once the writer thread, after the work already given to it, has taken the
        database's write lock and let it go; fails if it could not. For readiness checks."""
        return self._call(_probe)

    def flush(self) -> Deferred[None]:
        if self._shut or (not self._pending and self._writing is None):
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        if self._writing is None:
            self._write()
        return waiter

    # Reading ----------------------------------------------------------------------------

    def _submit(self, f: Callable[..., T], *args: object) -> Deferred[T]:
        """Run ``f(connection, *args)`` on the writer thread, after all work already given;
        start the thread if this is the first work."""
        if self._pool is None:
            self._pool = _start_pool()
        return deferToThreadPool(self._reactor, self._pool, self._db.run, f, *args)

    def _call(self, f: Callable[..., T], *args: object) -> Deferred[T]:
        if self._shut:
            return fail(HistoryError("the history store is closed"))
        return self._submit(f, *args)

    async def _read(
        self, f: Callable[..., T], *args: object, budget: float | None = None,
        quick: bool = False,
    ) -> T:
        """``f(connection, over, *args)`` on a reader (see ``Readers.read``), once
        everything recorded before is stored; a read cut short fails with one sentence for
        the user."""
        if self._closed:
            raise HistoryError("the history store is closed")
        with contextlib.suppress(HistoryError):  # logged already; read what is stored
            await self.flush()  # reads see every event recorded before them
        try:
            return await self._readers.read(f, *args, budget=budget, quick=quick)
        except ReadStopped as e:
            raise self._refusal(e) from None

    def _refusal(self, error: ReadStopped) -> Exception:
        if isinstance(error, OutOfTime):
            self._refusals.warn("a history search took more than {ms:g} ms and was stopped "
                                "(--history-search-ms)", ms=self._search_ms, path=self.path)
            return BadQuery(f"that search took more than {self._search_ms:g} ms and was "
                            "stopped; try fewer or rarer words")
        if isinstance(error, Busy):
            self._refusals.warn("a history search waited more than {ms:g} ms for a reader "
                                "(--history-readers, --history-search-ms)",
                                ms=self._search_ms, path=self.path)
            return HistoryError("too many searches under way; try again in a moment")
        return HistoryError("the history store is closed")

    async def _search(
        self, terms: list[Term], query: str, limit: int, room: str | None
    ) -> list[Record]:
        try:
            while True:
                found = await self._read(_select_matches, terms, query, limit, room)
                if found is not None:
                    return found
                # Too many rows not indexed yet: the writer catches up, chunk by chunk
                # (writes go in between), then the reader asks again.
                await self._index_step()
        except sqlite3.Error as e:  # one sentence for the user, as for the other failures
            raise HistoryError(f"the history search failed: {e}") from None

    def last(self, n: int, room: str | None = None) -> Deferred[list[Record]]:
        n = min(n, MAX_LAST)
        if n <= 0:
            return succeed([])
        return ensureDeferred(self._read(_read_last, n, room, budget=LAST_BUDGET, quick=True))

    def page(
        self,
        room: str,
        after: Position | None = None,
        before: Position | None = None,
        limit: int = 50,
        newest: bool = True,
    ) -> Deferred[list[Record]]:
        limit = min(limit, MAX_LAST)
        if limit <= 0:
            return succeed([])
        return ensureDeferred(
            self._read(_select_page, room, after, before, limit, newest, budget=LAST_BUDGET,
                       quick=True)
        )

    def last_blocking(self, n: int, room: str | None = None) -> list[Record]:
        """``last`` on this thread: for start-up only, before the reactor runs and before
        the writer thread exists (the replay buffer is filled from it)."""
        conn, _, _ = connect(self.path)
        try:
            return _select_last(conn, min(n, MAX_LAST), room)
        finally:
            conn.close()

    def search(
        self, words: str, limit: int = 50, room: str | None = None
    ) -> Deferred[list[Record]]:
        try:
            terms = parse_search(words, self._search_words)
        except BadQuery as e:
            return fail(e)
        limit = min(limit, MAX_SEARCH)
        if limit <= 0:
            return succeed([])
        return ensureDeferred(self._search(terms, fts5_query(terms), limit, room))

    # Retention --------------------------------------------------------------------------

    @property
    def trimming(self) -> bool:
        """Whether a retention pass is under way."""
        return self._trim_waiters is not None

    def trim(self) -> Deferred[int]:
        waiter: Deferred[int] = Deferred()
        if self._trim_waiters is None:
            self._start_trim([waiter])
        else:
            # The pass under way may have begun before events this caller counts on:
            # run one more after it, shared by everyone who asks in the meantime.
            self._trim_again.append(waiter)
        return waiter

    def _start_trim(self, waiters: list[Deferred[int]]) -> None:
        self._trim_waiters = waiters
        ensureDeferred(self._trim()).addBoth(self._trimmed)

    def _trimmed(self, result: int | Failure) -> None:
        waiters, self._trim_waiters = self._trim_waiters or [], None
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
        again, self._trim_again = self._trim_again, []
        if again and self._closed:
            for waiter in again:
                waiter.callback(0)
        elif again:
            self._start_trim(again)

    def _trim_under_way(self) -> Deferred[int] | None:
        """A Deferred that fires when the pass under way ends, or None if there is none."""
        if self._trim_waiters is None:
            return None
        waiter: Deferred[int] = Deferred()
        self._trim_waiters.append(waiter)
        return waiter

    async def _trim(self) -> int:
        deleted = 0
        with contextlib.suppress(HistoryError):  # logged already; trim what is stored
            await self.flush()  # so the retention applies to everything recorded before
        if self._retention.max_count is not None:
            keep_from = await self._call(_keep_count_from, self._retention.max_count)
            if keep_from is not None:
                deleted += await self._delete_before(keep_from)
        if self._retention.max_age is not None and not self._closed:
            oldest = self._clock.seconds() - self._retention.max_age
            keep_from = await self._call(_keep_age_from, oldest)
            if keep_from is not None:
                deleted += await self._delete_before(keep_from)
        return deleted

    async def _delete_before(self, keep_from: int) -> int:
        deleted = 0
        while not self._closed:
            count = await self._call(_delete_before, keep_from, TRIM_CHUNK)
            deleted += count
            if count < TRIM_CHUNK:
                break
        return deleted

    async def _periodic_trim(self) -> None:
        if self.trimming:
            return  # the pass under way will do
        try:
            deleted = await self.trim()
        except Exception as e:
            self._warnings.warn("cannot trim the history in {path}: {error}",
                                path=self.path, error=e)
        else:
            if deleted:
                self._log.info("history trimmed: {deleted} events older than {retention}",
                               deleted=deleted, retention=str(self._retention))

    # Closing ----------------------------------------------------------------------------

    def close(self) -> Deferred[None]:
        if self._shut:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        if self._close_waiters is not None:
            self._close_waiters.append(waiter)
            return waiter
        self._close_waiters = [waiter]
        ensureDeferred(self._close())
        return waiter

    async def _close(self) -> None:
        self._closed = True
        # First: a search under way is stopped now, not waited for.
        readers_stopped = self._readers.stop()
        if self._first_trim is not None and self._first_trim.active():
            self._first_trim.cancel()
        if self._trimmer is not None and self._trimmer.running:
            self._trimmer.stop()
        under_way = self._trim_under_way()
        if under_way is not None:
            with contextlib.suppress(Exception):  # reported by the pass itself
                await under_way  # it stops after its current chunk, as the store is closing
        try:
            await self.flush()
        except HistoryError as e:
            self._log.error("history closed without {count} events: {error}",
                            count=self._queued, error=str(e), path=self.path)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._pool is not None and self._behind():
            # One last chunk (the usual tail; at most about 50 ms): a longer tail is left
            # to the next run, and search finds those rows meanwhile.
            try:
                await self._index_step()
            except Exception as e:
                self._log.warn("cannot update the history search index in {path}: {error}",
                               path=self.path, error=str(e))
        await readers_stopped  # before the writer's close: the last one checkpoints
        if self._pool is not None:
            try:
                await self._submit(lambda _: self._db.close())
            except Exception as e:
                self._log.error("closing the history in {path} failed: {error}",
                                path=self.path, error=str(e))
            self._pool.stop()  # its one thread is idle now: this joins it at once
        self._shut = True
        self._log.info("history closed: {written} events stored, {dropped} dropped",
                       written=self.written, dropped=self.dropped, path=self.path)
        waiters, self._close_waiters = self._close_waiters or [], None
        for waiter in waiters:
            waiter.callback(None)


def _log_opened(log: Logger, path: str, applied: list[int], mode: str) -> None:
    if applied[:1] == [1]:  # from nothing: a new database, made in one go
        log.info("history {path}: created at schema v{version}", path=path,
                 version=applied[-1])
    else:
        for version in applied:
            log.info("history {path}: schema upgraded to v{version}", path=path,
                     version=version)
    if mode != "wal":
        log.warn("history {path}: journal mode is {mode}, not WAL (a filesystem without "
                 "shared memory?); writes will be slower", path=path, mode=mode)


def open_sqlite(
    path: str, clock: IReactorTime, reactor: IReactorFromThreads, **settings: Any
) -> Deferred[SqliteHistory]:
    """Open the history at ``path`` on its writer thread; fails with ``HistoryError``.

    ``settings`` are ``SqliteHistory``'s keyword arguments (``retention``, ``flush_ms``, ...).
    """
    pool = _start_pool()

    def opened(result: tuple[sqlite3.Connection, list[int], str]) -> SqliteHistory:
        conn, applied, mode = result
        _log_opened(SqliteHistory._log, path, applied, mode)
        return SqliteHistory(path, clock, reactor, connection=conn, pool=pool, **settings)

    def failed(failure: Failure) -> Failure:
        pool.stop()
        return failure

    return deferToThreadPool(reactor, pool, connect, path).addCallbacks(opened, failed)


def open_sqlite_blocking(
    path: str, clock: IReactorTime, reactor: IReactorFromThreads, **settings: Any
) -> SqliteHistory:
    """Check, create or upgrade the history at ``path`` on this thread, and return a store
    that starts its writer thread when first used. For start-up, before the reactor runs
    (a Deferred could not fire then) and before twistd forks. Raises ``HistoryError``."""
    conn, applied, mode = connect(path)
    conn.close()
    _log_opened(SqliteHistory._log, path, applied, mode)
    return SqliteHistory(path, clock, reactor, **settings)
