"""Message history: what the room said, kept for replay and search (issue 6).

``open_history`` turns the ``--history`` option into a store:

- ``none`` (or an empty value): no history; returns ``None``.
- ``:memory:``: ``MemoryHistory``, lost on exit (for trying things out).
- anything else: the path of an SQLite file, created with its parent directories. The
  default, ``DEFAULT_PATH``, is ``var/chatroom.sqlite3`` relative to the server's working
  directory (``$XDG_STATE_HOME`` is deliberately not used: a twistd service keeps its
  state where it runs, next to its pid and log files).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime

from chatroom.history.memory import MemoryHistory
from chatroom.history.recorder import HistoryRecorder, HistoryService
from chatroom.history.sqlite import SqliteHistory, open_sqlite, open_sqlite_blocking
from chatroom.history.store import (
    DEFAULT_PATH,
    BadQuery,
    HistoryError,
    IHistory,
    Kind,
    Record,
    Retention,
    describe,
    format_record,
    format_replay,
    parse_retention,
)

DEFAULT_KEEP = "1000000"
"""Default retention (``--history-keep``): the newest million events, about 110 MB of
SQLite file for ordinary chat (measured: 109 bytes per event, full-text index included)."""

__all__ = [
    "DEFAULT_KEEP",
    "DEFAULT_PATH",
    "BadQuery",
    "HistoryError",
    "HistoryRecorder",
    "HistoryService",
    "IHistory",
    "Kind",
    "MemoryHistory",
    "Record",
    "Retention",
    "SqliteHistory",
    "describe",
    "format_record",
    "format_replay",
    "open_history",
    "open_history_blocking",
    "parse_retention",
]


def _memory(clock: IReactorTime, settings: dict[str, Any]) -> MemoryHistory:
    known = ("retention", "trim_interval", "search_words")
    keep = {k: v for k, v in settings.items() if k in known}
    return MemoryHistory(clock, **keep)


def _disabled(spec: str) -> bool:
    return spec.strip().lower() in ("", "none", "off")


def open_history(
    spec: str, clock: IReactorTime, reactor: IReactorFromThreads, **settings: Any
) -> Deferred[IHistory | None]:
    """The store ``spec`` names, opened off the reactor thread; fails with ``HistoryError``.

    ``settings`` go to the store (``retention``, ``flush_ms``, ``max_pending``, ...).
    """
    if _disabled(spec):
        return succeed(None)
    if spec == ":memory:":
        return succeed(_memory(clock, settings))
    opening: Deferred[Any] = open_sqlite(spec, clock, reactor, **settings)
    return opening


def open_history_blocking(
    spec: str, clock: IReactorTime, reactor: IReactorFromThreads, **settings: Any
) -> IHistory | None:
    """Like ``open_history``, but on this thread: for ``makeService``, before the reactor
    runs, so a bad ``--history`` stops the server before it listens. Raises
    ``HistoryError``."""
    if _disabled(spec):
        return None
    if spec == ":memory:":
        return _memory(clock, settings)
    return open_sqlite_blocking(spec, clock, reactor, **settings)
