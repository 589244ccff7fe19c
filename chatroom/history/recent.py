"""The last few public records of each room, in memory, for the replay on joining it.

Replay is taken from here rather than from the store because it must be exact: a member
who joins gets every line said before the join in the replay and every line after it
live, none twice and none missed. Reading this buffer and joining the fan-out happen in
the same reactor turn, so that holds without holding anyone's live lines back; a read from
the store would take a trip to its thread. At start the default room's buffer is filled
from the store; another room's is filled the first time someone joins it (``load``).

It runs on the reactor thread for every event the rooms carry, so ``__call__`` only keeps
the event itself; ``Record`` objects are built in ``last``, for the few that are read.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator

from twisted.internet.defer import Deferred, succeed

from chatroom.domain.events import Event, Joined, Renamed
from chatroom.domain.roomnames import key as room_key
from chatroom.history.fold import Joins, newest_lines
from chatroom.history.recorder import RECORDED
from chatroom.history.store import IHistory, Record, record_from_row, rows_for

_RECORDED = frozenset(RECORDED)

_Items = deque[Event | Record]


class RecentRecords:
    """A hub listener that keeps the newest ``size`` public records of each room, for at
    most ``rooms`` rooms (the least recently active are dropped first, and read again from
    the store when someone joins them). ``joins`` says how ``last`` shows joins and leaves
    (``fold.py``; the server's default is ``fold``)."""

    __slots__ = ("_history", "_loading", "_rooms", "_size", "joins", "room_count")

    def __init__(
        self,
        size: int,
        rooms: int = 1000,
        history: IHistory | None = None,
        joins: Joins = Joins.SHOW,
    ) -> None:
        self.joins = joins
        self._size = max(size, 1)
        self.room_count = max(rooms, 1)
        self._history = history
        # Events as the hub gave them (their member id lets a member's replay leave out
        # its own join), or records from the store.
        self._rooms: OrderedDict[str, _Items] = OrderedDict()
        self._loading: dict[str, Deferred[None]] = {}

    def seed(self, room: str, records: Iterable[Record]) -> None:
        """Records from the store (oldest first), from before this process started."""
        self._items(room_key(room)).extendleft(reversed(list(records)))

    def _items(self, key: str) -> _Items:
        items = self._rooms.get(key)
        if items is None:
            items = self._rooms[key] = deque(maxlen=self._size)
            while len(self._rooms) > self.room_count:
                self._rooms.popitem(last=False)
        return items

    def __call__(self, event: Event) -> None:
        kind = type(event)
        if kind not in _RECORDED:
            return
        if event.room:
            key = room_key(event.room)
            items = self._rooms.get(key)
            if items is None:
                items = self._items(key)
            else:
                self._rooms.move_to_end(key)
            items.append(event)
        elif kind is Renamed:
            assert isinstance(event, Renamed)
            for room in event.rooms:
                self._items(room_key(room)).append(event)

    def loaded(self, room: str) -> bool:
        return room_key(room) in self._rooms

    def load(self, room: str) -> Deferred[None]:
        """Fill ``room``'s buffer from the store, if it has none yet; fires when done. Lines
        the room carries meanwhile are kept after the stored ones."""
        key = room_key(room)
        if key in self._rooms or self._history is None:
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
        for item in reversed(items):
            if isinstance(item, Record):
                if item.room and room_key(item.room) != room_key(room):
                    continue
                yield item
            elif joining is not None and type(item) is Joined and item.member == joining:
                continue
            else:
                for row in rows_for(item):
                    if row[1] == "" or room_key(row[1]) == room_key(room):
                        yield record_from_row(0, row)
                        break
