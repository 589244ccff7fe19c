"""What outlives a restart besides history: accounts, registered rooms and server bans, in
a small SQLite file of their own (``--state``; by default ``chatroom-state.sqlite3`` beside
the history file, ``var/chatroom-state.sqlite3``).

The schema is versioned (``PRAGMA user_version``) and migrated at start, one step at a
time, as the history store is. Everything is read once at start, before the reactor runs
(a bad file stops the start with a sentence); writes are rare (a registration, a ban) and
go through one connection on one thread of their own, so the reactor never waits on disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorCore

from chatroom.accounts.store import Account

T = TypeVar("T")

STATE_NAME = "chatroom-state.sqlite3"


def default_state(history: str) -> str:
    """The state file beside the history file; in memory when history is kept nowhere
    (``none``) or in memory (``:memory:``), as a test's or a throwaway server's."""
    if history.lower() == "none" or history == ":memory:":
        return ":memory:"
    return str(Path(history).parent / STATE_NAME)

MIGRATIONS: list[str] = [
    # 1: accounts, registered rooms (their topic, modes, bans and mutes, operator
    # accounts) and server bans
    """
    CREATE TABLE accounts (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL, time REAL NOT NULL);
    CREATE TABLE rooms (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, topic TEXT NOT NULL,
        topic_by TEXT NOT NULL, topic_time REAL NOT NULL, modes TEXT NOT NULL,
        room_key TEXT NOT NULL, room_limit INTEGER NOT NULL, time REAL NOT NULL);
    CREATE TABLE room_operators (
        room TEXT NOT NULL, account TEXT NOT NULL, PRIMARY KEY (room, account));
    CREATE TABLE room_masks (
        room TEXT NOT NULL, kind TEXT NOT NULL, mask TEXT NOT NULL, by TEXT NOT NULL,
        time REAL NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (room, kind, mask));
    CREATE TABLE server_bans (
        mask TEXT PRIMARY KEY, by TEXT NOT NULL, time REAL NOT NULL, until REAL NOT NULL,
        reason TEXT NOT NULL);
    """,
]
"""Each step takes the schema one version up; ``user_version`` is how many have run."""


class StateError(Exception):
    """The state file cannot be used; ``str(error)`` says why, for the operator."""


@dataclass(frozen=True, slots=True)
class MaskRecord:
    kind: str  # "b" a ban, "q" a mute
    mask: str
    by: str
    time: float
    reason: str


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A registered room as it is kept."""

    key: str
    name: str
    topic: str = ""
    topic_by: str = ""
    topic_time: float = 0.0
    modes: str = ""
    room_key: str = ""
    limit: int = 0
    time: float = 0.0
    operators: tuple[str, ...] = ()  # operator accounts
    masks: tuple[MaskRecord, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class ServerBanRecord:
    mask: str
    by: str
    time: float
    until: float
    reason: str


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema up to date, each step in a transaction of its own."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StateError(f"the state file is from a newer chatroom (schema {version}, this "
                         f"one knows {len(MIGRATIONS)})")
    for number in range(version, len(MIGRATIONS)):
        db.executescript(f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = "
                         f"{number + 1}; COMMIT;")


class StateStore:
    """The state file: read whole at start, written a change at a time."""

    def __init__(self, path: str, reactor: Any = None) -> None:
        """``path`` is a file, or ``:memory:`` (nothing kept: a test's, or a server's
        that keeps no state)."""
        self.path = path
        self._memory = path == ":memory:"
        self._pool: adbapi.ConnectionPool | None = None
        self.accounts: list[Account] = []
        self.rooms: list[RoomRecord] = []
        self.server_bans: list[ServerBanRecord] = []
        if self._memory:
            return
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                migrate(db)
                self._read(db)
            finally:
                db.close()
        except (sqlite3.Error, OSError) as e:
            raise StateError(f"cannot use {path}: {e}") from None
        kwargs: dict[str, Any] = {"check_same_thread": False, "cp_min": 1, "cp_max": 1,
                                  "cp_noisy": False}
        if IReactorCore.providedBy(reactor):  # else (a test's Clock) the global one
            kwargs["cp_reactor"] = reactor
        self._pool = adbapi.ConnectionPool("sqlite3", path, **kwargs)

    def _read(self, db: sqlite3.Connection) -> None:
        self.accounts = [Account(name, hashed, time) for name, hashed, time in db.execute(
            "SELECT name, hash, time FROM accounts ORDER BY time")]
        operators: dict[str, list[str]] = {}
        for room, account in db.execute("SELECT room, account FROM room_operators"):
            operators.setdefault(room, []).append(account)
        masks: dict[str, list[MaskRecord]] = {}
        for room, *values in db.execute(
                "SELECT room, kind, mask, by, time, reason FROM room_masks ORDER BY time"):
            masks.setdefault(room, []).append(MaskRecord(*values))
        self.rooms = [
            RoomRecord(key, name, topic, topic_by, topic_time, modes, room_key, limit, time,
                       tuple(operators.get(key, ())), tuple(masks.get(key, ())))
            for key, name, topic, topic_by, topic_time, modes, room_key, limit, time
            in db.execute("SELECT key, name, topic, topic_by, topic_time, modes, room_key,"
                          " room_limit, time FROM rooms ORDER BY time")
        ]
        self.server_bans = [ServerBanRecord(*row) for row in db.execute(
            "SELECT mask, by, time, until, reason FROM server_bans ORDER BY time")]

    # -- the AccountStore the book writes to ------------------------------------------

    def accounts_blocking(self) -> list[Account]:
        return list(self.accounts)

    def save_account(self, account: Account) -> Deferred[None]:
        return self._write(lambda db: db.execute(
            "INSERT OR REPLACE INTO accounts (key, name, hash, time) VALUES (?, ?, ?, ?)",
            (account.key, account.name, account.hash, account.time)))

    def delete_account(self, key: str) -> Deferred[None]:
        return self._write(lambda db: db.execute("DELETE FROM accounts WHERE key = ?", (key,)))

    # -- rooms and server bans -----------------------------------------------------------

    def save_room(self, room: RoomRecord) -> Deferred[None]:
        def write(db: Any) -> None:
            db.execute(
                "INSERT OR REPLACE INTO rooms (key, name, topic, topic_by, topic_time, modes,"
                " room_key, room_limit, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (room.key, room.name, room.topic, room.topic_by, room.topic_time, room.modes,
                 room.room_key, room.limit, room.time))
            db.execute("DELETE FROM room_operators WHERE room = ?", (room.key,))
            db.executemany("INSERT INTO room_operators (room, account) VALUES (?, ?)",
                           [(room.key, account) for account in room.operators])
            db.execute("DELETE FROM room_masks WHERE room = ?", (room.key,))
            db.executemany(
                "INSERT OR REPLACE INTO room_masks (room, kind, mask, by, time, reason)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(room.key, m.kind, m.mask, m.by, m.time, m.reason) for m in room.masks])

        return self._write(write)

    def save_server_ban(self, ban: ServerBanRecord) -> Deferred[None]:
        return self._write(lambda db: db.execute(
            "INSERT OR REPLACE INTO server_bans (mask, by, time, until, reason)"
            " VALUES (?, ?, ?, ?, ?)", (ban.mask, ban.by, ban.time, ban.until, ban.reason)))

    def delete_server_ban(self, mask: str) -> Deferred[None]:
        return self._write(lambda db: db.execute(
            "DELETE FROM server_bans WHERE mask = ?", (mask,)))

    def _write(self, work: Callable[[Any], object]) -> Deferred[None]:
        pool = self._pool
        if pool is None:
            return succeed(None)

        def run(cursor: Any) -> None:
            work(cursor)

        done: Deferred[None] = pool.runInteraction(run)
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
