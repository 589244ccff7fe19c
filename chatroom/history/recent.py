"""The last few public records of each room, in memory, for the replay on joining it.

Replay is taken from here rather than from the store because it must be exact: a member
who joins gets every line said before the join in the replay and every line after it
live, none twice and none missed. Reading this buffer and joining the fan-out happen in
the same reactor turn, so that holds without holding anyone's live lines back; a read from
the store would take a trip to its thread. At start the default room's buffer is filled
from the store; another room's is filled the first time someone joins it (``load``).

It runs on the reactor thread for every event the rooms carry, so ``__call__`` only keeps
the event itself; ``Record`` objects are built in ``last``, for the few that are read, and
kept per room while their event is in the buffer: in a join storm every arrival reads the
whole buffer back (a run of joins is folded whole), and building the same records again
for each of 15 000 arrivals was most of the storm's cost (issue 17).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from twisted.internet.defer import Deferred, succeed

from chatroom.domain.events import Event, Joined, Left, Renamed
from chatroom.domain.roomnames import key as room_key
from chatroom.history.fold import Joins, newest_lines
from chatroom.history.recorder import RECORDED
from chatroom.history.store import IHistory, Record, record_from_row, rows_for

_RECORDED = frozenset(RECORDED)

_Items = deque[Event | Record]
_Memo = dict[int, tuple["Event | Record", "Record | None", "str | None"]]
"""Per room: ``id(item)`` -> the item (which keeps the id its own), its record there and
the member whose join it is."""


class RecentRecords:
    """A hub listener that keeps the newest ``size`` public records of each room that
    exists (``exists(name)`` says; without it, every room it hears of). A room's buffer goes
    when the room is forgotten, so memory follows the rooms there are (``--max-rooms``),
    and a room's buffer counts as whole only once it was read from the store (``load``) or
    seeded: lines heard before that are kept and merged in. ``joins`` says how ``last``
    shows joins and leaves (``fold.py``; the server's default is ``fold``)."""

    __slots__ = ("_history", "_loading", "_memo", "_rooms", "_size", "_whole", "exists",
                 "joins")

    def __init__(
        self,
        size: int,
        history: IHistory | None = None,
        joins: Joins = Joins.SHOW,
        exists: Callable[[str], object] | None = None,
    ) -> None:
        self.joins = joins
        self._size = max(size, 1)
        self._history = history
        self.exists = exists
        # Events as the hub gave them (their member id lets a member's replay leave out
        # its own join), or records from the store.
        self._rooms: dict[str, _Items] = {}
        self._memo: dict[str, _Memo] = {}
        self._whole: set[str] = set()
        self._loading: dict[str, Deferred[None]] = {}

    def seed(self, room: str, records: Iterable[Record]) -> None:
        """Records from the store (oldest first), from before this process started."""
        key = room_key(room)
        self._items(key).extendleft(reversed(list(records)))
        self._whole.add(key)

    def _items(self, key: str) -> _Items:
        items = self._rooms.get(key)
        if items is None:
            items = self._rooms[key] = deque(maxlen=self._size)
        return items

    def forget(self, room: str) -> None:
        """Drop ``room``'s buffer if the room no longer exists (read again when it does)."""
        if self.exists is not None and self.exists(room) is None:
            key = room_key(room)
            self._rooms.pop(key, None)
            self._memo.pop(key, None)
            self._whole.discard(key)

    def __call__(self, event: Event) -> None:
        kind = type(event)
        if kind not in _RECORDED:
            return
        if event.room:
            key = room_key(event.room)
            items = self._rooms.get(key)
            if items is None:
                items = self._items(key)
            items.append(event)
            if kind is Left:
                self.forget(event.room)  # the last one out: the room is gone
        elif kind is Renamed:
            assert isinstance(event, Renamed)
            for room in event.rooms:
                self._items(room_key(room)).append(event)

    def loaded(self, room: str) -> bool:
        return room_key(room) in self._whole

    def load(self, room: str) -> Deferred[None]:
        """Fill ``room``'s buffer from the store, if it has none yet; fires when done. Lines
        the room carries meanwhile are kept after the stored ones."""
        key = room_key(room)
        if key in self._whole or self._history is None:
            return succeed(None)
        waiting = self._loading.get(key)
        if waiting is None:
            waiting = self._loading[key] = self._history.last(self._size, room).addCallback(
                self._loaded, key
            )
            waiting.addBoth(lambda result: (self._loading.pop(key, None), result)[1])
        done: Deferred[None] = Deferred()
        waiting.addBoth(lambda _: done.callback(None) if not done.called else None)
        return done

    def _loaded(self, records: list[Record], key: str) -> None:
        self._whole.add(key)
        items = self._items(key)
        live = list(items)
        seen = {(r.time, r.kind, r.nick, r.text) for r in records}
        items.clear()
        items.extend(records)
        for item in live:  # said while the store was read: keep what it did not have yet
            if isinstance(item, Record):
                if (item.time, item.kind, item.nick, item.text) in seen:
                    continue
            elif any((row[0], row[2], row[3], row[4]) in seen for row in rows_for(item)):
                continue
            items.append(item)

    def last(self, room: str, n: int, joining: str | None = None) -> list[Record]:
        """The newest ``n`` lines of ``room``, oldest first, without ``joining``'s own
        join; joins and leaves as ``joins`` says (folded, one line stands for a run)."""
        items = self._rooms.get(room_key(room))
        if n <= 0 or not items:
            return []
        return newest_lines(self._newest(items, room, joining), n, self.joins)

    def _newest(self, items: _Items, room: str, joining: str | None) -> Iterator[Record]:
        """``items`` of ``room`` as records, newest first, without ``joining``'s join."""
        key = room_key(room)
        memo = self._memo.get(key)
        if memo is None:
            memo = self._memo[key] = {}
        elif len(memo) > 2 * self._size:  # events gone from the buffer: their records too
            memo = self._memo[key] = {id(item): memo[id(item)] for item in items
                                      if id(item) in memo and memo[id(item)][0] is item}
        # Every arrival of a join storm reads the whole buffer: one dict lookup per item
        # here, the rest (its record, whose join it is) worked out once per item.
        known_of = memo.get
        for item in reversed(items):
            known = known_of(id(item))
            if known is None or known[0] is not item:
                known = memo[id(item)] = _known(item, key)
            if joining is not None and known[2] == joining:
                continue
            if known[1] is not None:
                yield known[1]


def _known(item: Event | Record, key: str) -> tuple[Event | Record, Record | None, str | None]:
    """What ``_newest`` needs of ``item`` in the room whose key is ``key``: ``item``
    itself, its record there (``None``: not one of the room's) and the member whose join
    it is (``None``: not a join)."""
    if isinstance(item, Record):
        return item, (None if item.room and room_key(item.room) != key else item), None
    return item, _record_in(item, key), item.member if type(item) is Joined else None


def _record_in(event: Event, key: str) -> Record | None:
    """``event`` as a record of the room whose key is ``key``, if it is one of its."""
    for row in rows_for(event):
        if row[1] == "" or room_key(row[1]) == key:
            return record_from_row(0, row)
    return None
