"""The last few public records, in memory, for the replay a member gets on joining.

Replay is taken from here rather than from the store because it must be exact: a member
who joins gets every line said before the join in the replay and every line after it
live, none twice and none missed. Reading this buffer and joining the fan-out happen in
the same reactor turn, so that holds without holding anyone's live lines back; a read from
the store would take a trip to its thread. At start the buffer is filled from the store.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from chatroom.domain.events import Event
from chatroom.history.recorder import RECORDED
from chatroom.history.store import Record, record_from_row, row_for


class RecentRecords:
    """A hub listener that keeps the newest ``size`` public records of one room."""

    __slots__ = ("_records", "room")

    def __init__(self, room: str, size: int) -> None:
        self.room = room
        # (id of the member who caused it, record): so a member's replay can leave out
        # its own join.
        self._records: deque[tuple[str, Record]] = deque(maxlen=max(size, 1))

    def seed(self, records: Iterable[Record]) -> None:
        """Records from the store (oldest first), from before this process started."""
        for record in records:
            self._records.append(("", record))

    def __call__(self, event: Event) -> None:
        if type(event) not in RECORDED or event.room != self.room:
            return
        row = row_for(event)
        if row is not None:
            self._records.append((event.member, record_from_row(0, row)))

    def last(self, n: int, joining: str | None = None) -> list[Record]:
        """The newest ``n`` records, oldest first, without ``joining``'s own join."""
        if n <= 0:
            return []
        picked: list[Record] = []
        for member, record in reversed(self._records):
            if member == joining and record.kind == "joined":
                continue
            picked.append(record)
            if len(picked) == n:
                break
        picked.reverse()
        return picked

