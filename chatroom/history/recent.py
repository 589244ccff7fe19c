"""The last few public records, in memory, for the replay a member gets on joining.

Replay is taken from here rather than from the store because it must be exact: a member
who joins gets every line said before the join in the replay and every line after it
live, none twice and none missed. Reading this buffer and joining the fan-out happen in
the same reactor turn, so that holds without holding anyone's live lines back; a read from
the store would take a trip to its thread. At start the buffer is filled from the store.

It runs on the reactor thread for every event the room carries, so ``__call__`` only keeps
the event itself; ``Record`` objects are built in ``last``, for the few that are read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from chatroom.domain.events import Event, Joined
from chatroom.history.recorder import RECORDED
from chatroom.history.store import Record, record_from_row, row_for

_RECORDED = frozenset(RECORDED)


class RecentRecords:
    """A hub listener that keeps the newest ``size`` public records of one room."""

    __slots__ = ("_items", "room")

    def __init__(self, room: str, size: int) -> None:
        self.room = room
        # Events as the hub gave them (their member id lets a member's replay leave out
        # its own join), or records from the store, seeded at start.
        self._items: deque[Event | Record] = deque(maxlen=max(size, 1))

    def seed(self, records: Iterable[Record]) -> None:
        """Records from the store (oldest first), from before this process started."""
        self._items.extend(records)

    def __call__(self, event: Event) -> None:
        if type(event) in _RECORDED and event.room == self.room:
            self._items.append(event)

    def last(self, n: int, joining: str | None = None) -> list[Record]:
        """The newest ``n`` records, oldest first, without ``joining``'s own join."""
        if n <= 0:
            return []
        picked: list[Record] = []
        for item in reversed(self._items):
            if isinstance(item, Record):
                picked.append(item)
            elif joining is not None and type(item) is Joined and item.member == joining:
                continue
            else:
                row = row_for(item)
                if row is None:  # pragma: no cover  (only RECORDED types are kept)
                    continue
                picked.append(record_from_row(0, row))
            if len(picked) == n:
                break
        picked.reverse()
        return picked
