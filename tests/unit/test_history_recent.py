"""The reactor side of history: the replay buffer (``RecentRecords``) and the recorder.

Both run for every event the room carries, so they keep work off that path: the buffer
keeps events and builds ``Record`` objects only when read, and the recorder turns each
event into a row once and hands the row to a store that takes rows.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface import implementer

from chatroom.domain.chat import Member
from chatroom.domain.events import Acted, Event, Joined, Left, Notice, Renamed, Said, Whispered
from chatroom.domain.roomnames import key as room_key
from chatroom.history import HistoryRecorder, IHistory, Kind, MemoryHistory, Record, describe
from chatroom.history.fold import Joins
from chatroom.history.recent import RecentRecords
from chatroom.history.store import Row
from chatroom.hubs.local import LocalHub
from tests.roomhandle import DefaultRoom as Room

NOW = 1_795_500_000.0
ROOM = "#lobby"


def said(text: str, member: str = "m1", nick: str = "alice", room: str = ROOM) -> Said:
    return Said(room, NOW, member, nick, text)


# RecentRecords -----------------------------------------------------------------------------

def test_records_are_built_from_events_with_every_field() -> None:
    recent = RecentRecords(10)
    recent(Joined(ROOM, NOW, "m1", "alice"))
    recent(Said(ROOM, NOW + 1, "m1", "alice", "hi"))
    recent(Acted(ROOM, NOW + 2, "m1", "alice", "waves"))
    recent(Renamed(ROOM, NOW + 3, "m1", "alice", "alicia"))
    recent(Left(ROOM, NOW + 4, "m1", "alicia", "timeout"))
    assert recent.last(ROOM, 10) == [
        Record(0, NOW, ROOM, Kind.JOINED, "alice"),
        Record(0, NOW + 1, ROOM, Kind.SAID, "alice", "hi"),
        Record(0, NOW + 2, ROOM, Kind.ACTED, "alice", "waves"),
        Record(0, NOW + 3, ROOM, Kind.RENAMED, "alice", "", "alicia"),
        Record(0, NOW + 4, ROOM, Kind.LEFT, "alicia", "timeout"),
    ]


def test_only_this_rooms_public_conversation_is_kept() -> None:
    recent = RecentRecords(10)
    recent(said("kept"))
    recent(said("another room", room="attic"))
    recent(Whispered(ROOM, NOW, "m1", "alice", "a secret", "m2", "bob"))
    recent(Notice(ROOM, NOW, "", "", "server restarting"))
    assert [r.text for r in recent.last(ROOM, 10)] == ["kept"]


def test_the_newest_n_are_kept_and_read_oldest_first() -> None:
    recent = RecentRecords(3)
    for i in range(5):
        recent(said(f"line {i}"))
    assert [r.text for r in recent.last(ROOM, 10)] == ["line 2", "line 3", "line 4"]
    assert [r.text for r in recent.last(ROOM, 2)] == ["line 3", "line 4"]
    assert recent.last(ROOM, 0) == [] and recent.last(ROOM, -1) == []


def test_a_joining_member_does_not_see_its_own_join_but_sees_others() -> None:
    recent = RecentRecords(10)
    recent(Joined(ROOM, NOW, "m1", "alice"))
    recent(said("hello", member="m1"))
    recent(Joined(ROOM, NOW, "m2", "bob"))
    assert [describe(r) for r in recent.last(ROOM, 10, joining="m2")] == [
        "*** alice joined", "alice: hello"]
    # Skipped joins do not count towards n.
    assert [describe(r) for r in recent.last(ROOM, 1, joining="m2")] == ["alice: hello"]
    assert [describe(r) for r in recent.last(ROOM, 10)] == [
        "*** alice joined", "alice: hello", "*** bob joined"]


def test_seeded_records_come_first_and_are_returned_as_they_are() -> None:
    recent = RecentRecords(3)
    old = [Record(7, NOW - 9, ROOM, Kind.JOINED, "carol"),
           Record(8, NOW - 8, ROOM, Kind.SAID, "carol", "from the store")]
    recent.seed(ROOM, old)
    recent(said("live"))
    live = Record(0, NOW, ROOM, Kind.SAID, "alice", "live")
    assert recent.last(ROOM, 10, joining="") == [*old, live]
    recent(said("pushes the oldest out"))
    texts = [r.text for r in recent.last(ROOM, 10)]
    assert texts == ["from the store", "live", "pushes the oldest out"]


def test_each_event_becomes_a_record_once_while_it_is_in_the_buffer(monkeypatch: Any) -> None:
    # A join storm reads the whole buffer back for every arrival (issue 17): the records
    # are built once per event and room, not once per read.
    from chatroom.history.store import record_from_row

    built: list[Row] = []

    def counting(id: int, row: Row) -> Record:
        built.append(row)
        return record_from_row(id, row)

    monkeypatch.setattr("chatroom.history.recent.record_from_row", counting)
    recent = RecentRecords(10, joins=Joins.FOLD)
    for i in range(5):
        recent(Joined(ROOM, NOW + i, f"m{i}", f"nick{i}"))
    first = recent.last(ROOM, 10, joining="m4")
    second = recent.last(ROOM, 10)
    assert len(built) == 5
    assert first == recent.last(ROOM, 10, joining="m4")
    assert [describe(r) for r in second] == ["*** nick0, nick1 and 3 others joined"]


def test_records_kept_for_reading_follow_the_buffer_as_it_rolls() -> None:
    recent, fresh_reads = RecentRecords(3, joins=Joins.FOLD), []
    for i in range(40):
        recent(said(f"line {i}") if i % 3 else Joined(ROOM, NOW + i, f"m{i}", f"n{i}"))
        recent(Renamed("", NOW + i, "m0", f"a{i}", f"b{i}", rooms=(ROOM, "#attic")))
        got = recent.last(ROOM, 10)
        again = RecentRecords(3, joins=Joins.FOLD)
        for item in recent._rooms[room_key(ROOM)]:
            again(item)  # type: ignore[arg-type]
        fresh_reads.append(got == again.last(ROOM, 10))
        assert [r.room for r in recent.last("#attic", 10)] == ["#attic"] * len(
            recent.last("#attic", 10))
    assert all(fresh_reads)
    assert len(recent._memo[room_key(ROOM)]) <= 2 * 3 + 1


def test_a_size_below_one_still_keeps_the_last_record() -> None:
    recent = RecentRecords(0)
    recent(said("a"))
    recent(said("b"))
    assert [r.text for r in recent.last(ROOM, 5)] == ["b"]


# The recorder ------------------------------------------------------------------------------

@implementer(IHistory)
class EventsOnly:
    """A store that takes events only (no ``record_row``): any other ``IHistory``."""

    dropped = 0

    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)

    def last(self, n: int, room: str | None = None) -> Deferred[list[Record]]:
        return succeed([])

    def search(self, words: str, limit: int = 50, room: str | None = None) -> Any:
        return succeed([])

    def page(self, room: str, after: Any = None, before: Any = None, limit: int = 50,
             newest: bool = True) -> Any:
        return succeed([])

    def flush(self) -> Deferred[None]:
        return succeed(None)

    def trim(self) -> Deferred[int]:
        return succeed(0)

    def close(self) -> Deferred[None]:
        return succeed(None)


class RowsCounted(MemoryHistory):
    """A memory store that counts how it is fed."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.rows: list[Row] = []
        self.events = 0

    def record(self, event: Event) -> None:
        self.events += 1
        super().record(event)

    def record_row(self, row: Row) -> None:
        self.rows.append(row)
        super().record_row(row)


def conversation(recorder: HistoryRecorder) -> None:
    hub = LocalHub()
    hub.subscribe(recorder)
    room = Room(ROOM, hub, Clock())
    joined: list[Member] = []
    room.join("alice").addCallback(joined.append)
    alice = joined[0]
    room.say(alice, "hi")
    room.whisper(alice, "alice", "to myself")
    room.notice("restarting")
    room.leave(alice, "quit")


def test_the_recorder_gives_rows_to_a_store_that_takes_rows() -> None:
    store = RowsCounted(Clock())
    conversation(HistoryRecorder(store))
    assert store.events == 0
    assert [(kind, text) for _, _, kind, _, text, _ in store.rows] == [
        ("joined", ""), ("said", "hi"), ("left", "quit")]
    records: list[list[Record]] = []
    store.last(10).addCallback(records.append)
    assert [describe(r) for r in records[0]] == [
        "*** alice joined", "alice: hi", "*** alice left"]


def test_the_recorder_gives_events_to_any_other_store() -> None:
    store = EventsOnly()
    conversation(HistoryRecorder(store, notices=True))
    assert [type(e) for e in store.events] == [Joined, Said, Notice, Left]


def test_a_row_recorded_after_close_is_ignored() -> None:
    store = MemoryHistory(Clock())
    store.close()
    store.record_row((NOW, ROOM, "said", "alice", "too late", None))
    records: list[list[Record]] = []
    store.last(5).addCallback(records.append)
    assert records == [[]]
