"""History in a list: for tests, and for a server run with ``--history :memory:``."""

from __future__ import annotations

import time
from collections import deque

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from chatroom.domain.events import Event
from chatroom.history.store import (
    KEEP_ALL,
    MAX_LAST,
    MAX_SEARCH,
    MAX_TERMS,
    SEARCHABLE,
    BadQuery,
    IHistory,
    Position,
    Record,
    Retention,
    Row,
    matches,
    parse_search,
    record_from_row,
    row_for,
)

SCAN_BUDGET = 0.05
"""Seconds one search of the in-memory history may scan (it runs on the reactor thread)."""

@implementer(IHistory)
class MemoryHistory:
    """Keeps records in memory and answers at once; the reference for ``IHistory``."""

    def __init__(
        self,
        clock: IReactorTime,
        retention: Retention = KEEP_ALL,
        trim_interval: float = 300.0,
        search_words: int = MAX_TERMS,
    ) -> None:
        self._clock = clock
        self._search_words = search_words
        self._retention = retention
        self._records: deque[Record] = deque()
        self._next_id = 1
        self._closed = False
        self.dropped = 0
        self._trimmer: LoopingCall | None = None
        self._trim_interval = trim_interval
        if retention.max_count is not None or retention.max_age is not None:
            self._trimmer = LoopingCall(self._trim)
            self._trimmer.clock = clock
            self._trimmer.start(trim_interval, now=False)

    def set_retention(self, retention: Retention) -> None:
        """A new retention (a reload): applied now, and by the periodic passes after."""
        self._retention = retention
        if self._closed:
            return
        if self._trimmer is None:
            self._trimmer = LoopingCall(self._trim)
            self._trimmer.clock = self._clock
            self._trimmer.start(self._trim_interval, now=False)
        self._trim()

    def record(self, event: Event) -> None:
        row = row_for(event)
        if row is not None:
            self.record_row(row)

    def record_row(self, row: Row) -> None:
        """``record`` for a row already made by ``row_for`` (so public): the recorder's
        fast path."""
        if self._closed:
            return
        self._records.append(record_from_row(self._next_id, row))
        self._next_id += 1

    def last(self, n: int, room: str | None = None) -> Deferred[list[Record]]:
        n = min(n, MAX_LAST)
        found: list[Record] = []
        if n > 0:
            for record in reversed(self._records):
                if room is None or record.room == room:
                    found.append(record)
                    if len(found) == n:
                        break
        found.reverse()
        return succeed(found)

    def page(
        self,
        room: str,
        after: Position | None = None,
        before: Position | None = None,
        limit: int = 50,
        newest: bool = True,
    ) -> Deferred[list[Record]]:
        found = [
            record for record in self._records
            if record.room == room
            and (after is None or (record.time, record.id) > after)
            and (before is None or (record.time, record.id) < before)
        ]
        found.sort(key=lambda record: (record.time, record.id))
        limit = max(min(limit, MAX_LAST), 0)
        return succeed(found[max(len(found) - limit, 0):] if newest else found[:limit])

    def search(
        self, words: str, limit: int = 50, room: str | None = None
    ) -> Deferred[list[Record]]:
        try:
            terms = parse_search(words, self._search_words)
        except BadQuery as e:
            return fail(e)
        limit = min(limit, MAX_SEARCH)
        found: list[Record] = []
        if limit > 0:
            # On the reactor thread: everyone waits while this runs, so it may run only
            # SCAN_BUDGET seconds (a few hundred thousand lines), then it stops and says so.
            deadline = time.monotonic() + SCAN_BUDGET
            for scanned, record in enumerate(reversed(self._records)):
                if scanned & 2047 == 2047 and time.monotonic() > deadline:
                    return fail(BadQuery(
                        "that search took too long and was stopped (this server keeps its "
                        "history in memory); try fewer or rarer words"))
                if (
                    record.kind in SEARCHABLE
                    and (room is None or record.room == room)
                    and matches(terms, record.text)
                ):
                    found.append(record)
                    if len(found) == limit:
                        break
        return succeed(found)

    def flush(self) -> Deferred[None]:
        return succeed(None)

    def trim(self) -> Deferred[int]:
        return succeed(self._trim())

    def _trim(self) -> int:
        before = len(self._records)
        if self._retention.max_age is not None:
            oldest = self._clock.seconds() - self._retention.max_age
            self._records = deque(r for r in self._records if r.time >= oldest)
        if self._retention.max_count is not None:
            while len(self._records) > self._retention.max_count:
                self._records.popleft()
        return before - len(self._records)

    def close(self) -> Deferred[None]:
        self._closed = True
        if self._trimmer is not None and self._trimmer.running:
            self._trimmer.stop()
        return succeed(None)
