"""The IHistory contract: one set of tests, run against every store.

``MemoryHistory`` answers at once; ``SqliteHistory`` writes a real file in ``tmp_path`` on
its own thread, with a ``task.Clock`` driving its timers, so nothing here sleeps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from zope.interface.verify import verifyObject

from chatroom.domain.chat import Member
from chatroom.domain.events import Acted, Joined, Left, Notice, Renamed, Said, Whispered
from chatroom.history import (
    BadQuery,
    HistoryRecorder,
    HistoryService,
    IHistory,
    Kind,
    MemoryHistory,
    Record,
    Retention,
    SqliteHistory,
    describe,
    format_record,
    format_replay,
    open_history,
    parse_retention,
)
from chatroom.history.store import MAX_TERMS, line_id, row_for
from chatroom.hubs.local import LocalHub
from tests.roomhandle import DefaultRoom as Room

NOW = 1_795_500_000.0  # 2026-11-24 06:00 UTC
ROOM = "#lobby"

Opener = Callable[..., Awaitable[Any]]


@pytest.fixture
def reactor() -> Any:
    from twisted.internet import reactor  # noqa: TID251  (the store's writer thread needs it)

    return reactor


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.advance(NOW)
    return clock


@pytest_twisted.async_yield_fixture(params=["memory", "sqlite"])  # type: ignore[untyped-decorator]
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock, reactor: Any
) -> AsyncIterator[Opener]:
    """Opens stores of the kind under test (with any settings); closes them all at the end."""
    opened: list[Any] = []

    async def open_(**settings: Any) -> Any:
        spec = ":memory:" if request.param == "memory" else str(tmp_path / f"h{len(opened)}.db")
        store = await open_history(spec, clock, reactor, **settings)
        assert isinstance(store, MemoryHistory if request.param == "memory" else SqliteHistory)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest_twisted.async_fixture  # type: ignore[untyped-decorator]
async def store(open_store: Opener) -> Any:
    return await open_store()


def said(text: str, nick: str = "alice", at: float = NOW, room: str = ROOM) -> Said:
    return Said(room, at, "m1", nick, text)


@pytest_twisted.ensureDeferred
async def test_provides_the_interface(store):
    assert verifyObject(IHistory, store)


@pytest_twisted.ensureDeferred
async def test_every_public_event_is_kept_with_its_time_oldest_first(store):
    store.record(Joined(ROOM, NOW, "m1", "alice"))
    store.record(Said(ROOM, NOW + 1, "m1", "alice", "hi"))
    store.record(Acted(ROOM, NOW + 2, "m1", "alice", "waves"))
    store.record(Renamed(ROOM, NOW + 3, "m1", "alice", "alicia"))
    store.record(Notice(ROOM, NOW + 4, "", "", "server restarting soon"))
    store.record(Left(ROOM, NOW + 5, "m1", "alicia", "timeout"))
    records = await store.last(10)
    got = [(r.kind, r.time, r.room, r.nick, r.text, r.new_nick) for r in records]
    assert got == [
        (Kind.JOINED, NOW, ROOM, "alice", "", None),
        (Kind.SAID, NOW + 1, ROOM, "alice", "hi", None),
        (Kind.ACTED, NOW + 2, ROOM, "alice", "waves", None),
        (Kind.RENAMED, NOW + 3, ROOM, "alice", "", "alicia"),
        (Kind.NOTICE, NOW + 4, ROOM, "", "server restarting soon", None),
        (Kind.LEFT, NOW + 5, ROOM, "alicia", "timeout", None),
    ]
    ids = [r.id for r in records]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


@pytest_twisted.ensureDeferred
async def test_a_record_read_back_knows_the_id_its_event_had_live(store):
    # What a web page de-duplicates a replay by: times as a real clock gives them.
    events = [
        Joined(ROOM, NOW + 0.123456789, "m1", "alice"),
        Said(ROOM, NOW + 1 / 3, "m1", "alice", "hi 日本"),
        Renamed(ROOM, NOW + 2 / 3, "m1", "alice", "alicia"),
        Left(ROOM, NOW + 1.000001, "m1", "alicia", "connection lost"),
    ]
    for event in events:
        store.record(event)
    live = []
    for event in events:
        row = row_for(event)
        assert row is not None
        live.append(line_id(row))
    assert [r.line_id for r in await store.last(10)] == live
    assert len(set(live)) == len(live)


@pytest_twisted.ensureDeferred
async def test_private_messages_are_never_kept(store):
    store.record(said("public"))
    store.record(Whispered(ROOM, NOW, "m1", "alice", "the secret plan", "m2", "bob"))
    assert [r.text for r in await store.last(10)] == ["public"]
    assert await store.search("secret") == []
    await store.flush()
    assert [r.text for r in await store.last(10)] == ["public"]


@pytest_twisted.ensureDeferred
async def test_reads_see_what_was_recorded_just_before_without_waiting(store):
    # No clock.advance, no flush: a member joining right after a line must still get it.
    store.record(said("just now"))
    assert [r.text for r in await store.last(1)] == ["just now"]
    assert [r.text for r in await store.search("just")] == ["just now"]


@pytest_twisted.ensureDeferred
async def test_last_n_is_the_newest_n_oldest_first(store):
    for i in range(10):
        store.record(said(f"line {i}", at=NOW + i))
    assert [r.text for r in await store.last(3)] == ["line 7", "line 8", "line 9"]
    assert len(await store.last(100)) == 10
    assert await store.last(0) == []
    assert await store.last(-5) == []


@pytest_twisted.ensureDeferred
async def test_last_can_be_limited_to_one_room(store):
    store.record(said("in lobby"))
    store.record(said("elsewhere", room="kitchen"))
    assert [r.text for r in await store.last(10, room="kitchen")] == ["elsewhere"]
    assert [r.text for r in await store.last(10, room=ROOM)] == ["in lobby"]
    assert len(await store.last(10)) == 2


@pytest_twisted.ensureDeferred
async def test_search_finds_whole_words_ignoring_case_newest_first(store):
    store.record(said("Hello, World!", at=NOW))
    store.record(said("hello again", at=NOW + 1))
    store.record(said("unrelated", at=NOW + 2))
    store.record(said("othello is a play", at=NOW + 3))
    assert [r.text for r in await store.search("HELLO")] == ["hello again", "Hello, World!"]
    assert [r.text for r in await store.search("hello world")] == ["Hello, World!"]
    assert [r.text for r in await store.search("hello", limit=1)] == ["hello again"]
    assert await store.search("hello", limit=0) == []


@pytest_twisted.ensureDeferred
async def test_search_with_a_trailing_star_matches_prefixes(store):
    store.record(said("hello there"))
    store.record(said("help me"))
    store.record(said("othello"))
    assert [r.text for r in await store.search("hel*")] == ["help me", "hello there"]


@pytest_twisted.ensureDeferred
async def test_search_looks_only_at_what_people_wrote(store):
    store.record(Said(ROOM, NOW, "m1", "alice", "a timeout happened"))
    store.record(Left(ROOM, NOW + 1, "m1", "alice", "timeout"))
    store.record(Joined(ROOM, NOW + 2, "m2", "timeout"))
    store.record(Acted(ROOM, NOW + 3, "m2", "timeout", "waits for a timeout"))
    store.record(Notice(ROOM, NOW + 4, "", "", "timeout settings changed"))
    found = [(r.kind, r.text) for r in await store.search("timeout")]
    assert found == [
        (Kind.NOTICE, "timeout settings changed"),
        (Kind.ACTED, "waits for a timeout"),
        (Kind.SAID, "a timeout happened"),
    ]


@pytest_twisted.ensureDeferred
async def test_search_can_be_limited_to_one_room(store):
    store.record(said("pasta tonight"))
    store.record(said("pasta again", room="kitchen"))
    assert [r.text for r in await store.search("pasta", room="kitchen")] == ["pasta again"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("don't", ["I don't know"]),
        ('"quoted"', ['she said "quoted" words']),
        ('said "quoted', ['she said "quoted" words']),
        ("NOT", ["this is NOT a drill"]),
        ("AND OR NOT", []),
        ("drill)", ["this is NOT a drill"]),
        ("(drill", ["this is NOT a drill"]),
        ("text:drill", []),
        ("^drill", ["this is NOT a drill"]),
        ("-drill", ["this is NOT a drill"]),
        ("NEAR(this drill)", []),
        ("drill\x00", ["this is NOT a drill"]),
        ("e-mail", ["send an e-mail"]),
        ("c++", ["c++ or rust?"]),
        ("rust?", ["c++ or rust?"]),
        ("café", ["Café au lait", "cafe sans accent"]),
        ("CAFE", ["Café au lait", "cafe sans accent"]),
        ("zoe", ["Zoë was here"]),
        ("Zoë", ["Zoë was here"]),
        ("日本", ["日本 は 美しい"]),
        ("über", ["ÜBER alles"]),
        ("привет", ["Привет, мир"]),
        ("мир", ["Привет, мир"]),
    ],
)
@pytest_twisted.ensureDeferred
async def test_search_takes_any_user_input_literally(store, query, expected):
    for text in [
        "I don't know", 'she said "quoted" words', "this is NOT a drill", "send an e-mail",
        "c++ or rust?", "Café au lait", "Zoë was here", "日本 は 美しい", "ÜBER alles",
        "Привет, мир", "cafe sans accent",
    ]:
        store.record(said(text))
    found = [r.text for r in await store.search(query)]
    assert sorted(found) == sorted(expected)


@pytest.mark.parametrize("query", ["", "   ", "!!!", "* * *", '""', "()", "🎉", "\x00\x01", "-"])
@pytest_twisted.ensureDeferred
async def test_a_search_without_words_is_an_error(store, query):
    store.record(said("anything"))
    with pytest.raises(BadQuery, match="at least one word"):
        await store.search(query)


@pytest_twisted.ensureDeferred
async def test_a_search_with_too_many_words_is_an_error(store):
    with pytest.raises(BadQuery, match=f"at most {MAX_TERMS}"):
        await store.search(" ".join(["word"] * (MAX_TERMS + 1)))


@pytest.mark.parametrize("query", ["-".join(["the"] * (MAX_TERMS + 1)),
                                   "the.the " + "-".join(["the"] * (MAX_TERMS - 1))])
@pytest_twisted.ensureDeferred
async def test_each_part_of_a_joined_word_counts_as_a_word(store, query):
    # One term of many parts is a phrase of them all: as costly as as many words.
    assert await store.search("-".join(["the"] * MAX_TERMS)) == []
    with pytest.raises(BadQuery, match=rf"at most {MAX_TERMS} words \(a-b-c counts as 3\)"):
        await store.search(query)


@pytest_twisted.ensureDeferred
async def test_retention_by_count_keeps_the_newest(open_store):
    store = await open_store(retention=parse_retention("3"))
    for i in range(7):
        store.record(said(f"line {i}", at=NOW + i))
    await store.flush()
    assert await store.trim() == 4
    assert [r.text for r in await store.last(10)] == ["line 4", "line 5", "line 6"]
    assert [r.text for r in await store.search("line")] == ["line 6", "line 5", "line 4"]
    assert await store.trim() == 0


@pytest_twisted.ensureDeferred
async def test_retention_by_age_drops_what_is_older(open_store, clock):
    store = await open_store(retention=parse_retention("1h"))
    store.record(said("two hours ago", at=NOW - 7200))
    store.record(said("half an hour ago", at=NOW - 1800))
    store.record(said("now", at=NOW))
    await store.flush()
    assert await store.trim() == 1
    assert [r.text for r in await store.last(10)] == ["half an hour ago", "now"]
    clock.advance(3600)  # "half an hour ago" is now ninety minutes old
    await store.trim()  # (the store may have trimmed already, by itself, as time went by)
    assert [r.text for r in await store.last(10)] == ["now"]


@pytest_twisted.ensureDeferred
async def test_count_and_age_together_keep_the_smaller_set(open_store):
    store = await open_store(retention=parse_retention("2,1d"))
    store.record(said("old", at=NOW - 2 * 86400))
    for i in range(3):
        store.record(said(f"new {i}", at=NOW - 10 + i))
    assert await store.trim() == 2
    assert [r.text for r in await store.last(10)] == ["new 1", "new 2"]


@pytest_twisted.ensureDeferred
async def test_without_retention_nothing_is_trimmed(store):
    store.record(said("ancient", at=0.0))
    assert await store.trim() == 0
    assert len(await store.last(10)) == 1


@pytest_twisted.ensureDeferred
async def test_close_keeps_what_was_recorded_and_ignores_later_events(open_store, tmp_path):
    store = await open_store()
    store.record(said("before close"))
    await store.close()
    store.record(said("after close"))  # must not raise: events may still arrive at shutdown
    await store.close()  # twice is fine
    assert store.dropped == 0


@pytest_twisted.ensureDeferred
async def test_flush_fires_when_everything_is_stored(store):
    await store.flush()  # nothing queued
    for i in range(5):
        store.record(said(f"line {i}"))
    await store.flush()
    assert len(await store.last(10)) == 5


# The recorder: the room's hub feeds the store --------------------------------------------

@pytest_twisted.ensureDeferred
async def test_the_recorder_keeps_what_the_room_says_but_not_whispers(store, clock):
    hub = LocalHub()
    stop = hub.subscribe(HistoryRecorder(store))
    room = Room(ROOM, hub, clock)
    alice = await room.join("alice")
    bob = await room.join("bob")
    room.say(alice, "hi bob")
    room.act(bob, "waves")
    room.whisper(alice, "bob", "psst, a secret")
    await room.rename(bob, "robert")
    room.notice("server restarting soon")
    room.leave(alice, "quit")
    stop()
    room.say(bob, "nobody records this")
    assert [describe(r) for r in await store.last(20)] == [
        "*** alice joined",
        "*** bob joined",
        "alice: hi bob",
        "* bob waves",
        "*** bob is now known as robert",
        "*** alice left",
    ]
    assert await store.search("secret") == []


@pytest_twisted.ensureDeferred
async def test_the_recorder_can_keep_server_notices(store, clock):
    hub = LocalHub()
    hub.subscribe(HistoryRecorder(store, notices=True))
    Room(ROOM, hub, clock).notice("server restarting soon")
    assert [describe(r) for r in await store.last(5)] == ["*** server restarting soon"]


@pytest_twisted.ensureDeferred
async def test_the_history_service_records_while_running_and_closes_on_stop(store, clock):
    hub = LocalHub()
    service = HistoryService(hub, store)
    room = Room(ROOM, hub, clock)
    await room.join("early")  # before the service starts: not recorded
    service.startService()
    service.startService()  # (twice does not subscribe twice)
    await room.join("alice")
    assert [describe(r) for r in await store.last(5)] == ["*** alice joined"]
    await service.stopService()
    await room.join("late")  # after: the store is closed and nothing is recorded
    assert store.dropped == 0


class _SaysGoodbye(Service):
    """A front end's shutdown, in miniature: its member leaves a moment after the stop (it
    quits during the goodbyes: a leave for the server's own reason is not recorded)."""

    def __init__(self, room: Room, member: Member, clock: Clock) -> None:
        self.room, self.member, self.clock = room, member, clock

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return deferLater(self.clock, 1.0, self.room.leave, self.member, "quit")


@pytest_twisted.ensureDeferred
async def test_the_history_service_closes_after_its_children_stop(store, clock):
    hub = LocalHub()
    room = Room(ROOM, hub, clock)
    service = HistoryService(hub, store)
    service.startService()
    alice = await room.join("alice")
    _SaysGoodbye(room, alice, clock).setServiceParent(service)
    stopping = service.stopService()
    clock.advance(1.0)
    await stopping  # the leave came after the stop began, and before the close
    if isinstance(store, SqliteHistory):  # closed: read the file itself
        with closing(sqlite3.connect(store.path)) as conn:
            kinds = [row[0] for row in conn.execute("SELECT kind FROM events ORDER BY id")]
        assert kinds == ["joined", "left"]
    else:
        assert [r.kind for r in await store.last(5)] == [Kind.JOINED, Kind.LEFT]


# Retention option ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "count", "age"),
    [
        ("100000", 100000, None),
        ("100_000", 100000, None),
        ("30d", None, 30 * 86400.0),
        ("12h", None, 12 * 3600.0),
        ("90m", None, 5400.0),
        ("45s", None, 45.0),
        ("2w", None, 14 * 86400.0),
        ("1.5h", None, 5400.0),
        ("100000,30d", 100000, 30 * 86400.0),
        (" 30D , 5 ", 5, 30 * 86400.0),
        ("forever", None, None),
        ("none", None, None),
    ],
)
def test_retention_values(value, count, age):
    assert parse_retention(value) == Retention(count, age)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "30x", "1,2", "30d,1h", "d", "0h", "1e3"])
def test_retention_nonsense_is_refused_with_a_sentence(value):
    with pytest.raises(ValueError, match=r"\w+ \w+"):
        parse_retention(value)


# Replay lines ----------------------------------------------------------------------------

def _record(kind: Kind, nick: str = "alice", text: str = "", new_nick: str | None = None,
            at: float = NOW) -> Record:
    return Record(1, at, ROOM, kind, nick, text, new_nick)


@pytest.mark.parametrize(
    ("record", "line"),
    [
        (_record(Kind.SAID, text="hi"), "[2026-11-24 06:00] alice: hi"),
        (_record(Kind.ACTED, text="waves"), "[2026-11-24 06:00] * alice waves"),
        (_record(Kind.JOINED, "bob"), "[2026-11-24 06:00] *** bob joined"),
        (_record(Kind.LEFT, "bob", "timeout"), "[2026-11-24 06:00] *** bob left"),
        (_record(Kind.RENAMED, "bob", new_nick="rob"),
         "[2026-11-24 06:00] *** bob is now known as rob"),
        (_record(Kind.NOTICE, "", "server restarting"), "[2026-11-24 06:00] *** server restarting"),
    ],
)
def test_each_kind_of_record_has_the_line_shape_members_saw_live(record, line):
    assert format_record(record) == line
    assert format_record(record, date=False) == "[06:00]" + line[len("[2026-11-24 06:00]"):]


def test_a_replay_dates_its_first_line_and_each_new_day():
    records = [
        _record(Kind.SAID, text="late", at=NOW + 17 * 3600 + 1200),   # 2026-11-24 23:20
        _record(Kind.SAID, text="later", at=NOW + 17 * 3600 + 1260),
        _record(Kind.SAID, text="next day", at=NOW + 18 * 3600 + 1200),  # 2026-11-25 00:20
        _record(Kind.ACTED, text="yawns", at=NOW + 18 * 3600 + 1260),
    ]
    assert format_replay(records) == [
        "[2026-11-24 23:20] alice: late",
        "[23:21] alice: later",
        "[2026-11-25 00:20] alice: next day",
        "[00:21] * alice yawns",
    ]
    assert format_replay([]) == []


def test_replay_times_can_be_in_another_zone():
    plus_two = timezone(timedelta(hours=2))
    assert format_record(_record(Kind.SAID, text="hi"), tz=plus_two) == (
        "[2026-11-24 08:00] alice: hi")


def test_a_time_out_of_range_does_not_break_the_replay():
    assert format_record(_record(Kind.SAID, text="hi", at=1e20)) == "[????-??-?? ??:??] alice: hi"


@pytest_twisted.ensureDeferred
async def test_a_page_of_a_room_between_positions(store):
    """What IRC's CHATHISTORY reads: a room's records between two (time, id) positions,
    the newest or the oldest of them, oldest first."""
    from chatroom.history.store import MAX_ID

    for i in range(6):
        store.record(said(f"m{i}", at=NOW + i))
    store.record(said("same time", at=NOW + 2))  # two records at one time: ids order them
    store.record(said("elsewhere", at=NOW + 3, room="#dev"))
    everything = await store.page(ROOM, limit=100)
    assert [r.text for r in everything] == ["m0", "m1", "m2", "same time", "m3", "m4", "m5"]
    texts = lambda records: [r.text for r in records]  # noqa: E731
    assert texts(await store.page(ROOM, limit=2)) == ["m4", "m5"]
    assert texts(await store.page(ROOM, limit=10)) == texts(everything)  # fewer than asked
    assert texts(await store.page(ROOM, limit=2, newest=False)) == ["m0", "m1"]
    assert texts(await store.page(ROOM, before=(NOW + 2, -1), limit=5)) == ["m0", "m1"]
    assert texts(await store.page(ROOM, after=(NOW + 2, MAX_ID), limit=5, newest=False)) == [
        "m3", "m4", "m5"]
    m2 = everything[2]
    assert texts(await store.page(ROOM, after=(m2.time, m2.id), limit=2, newest=False)) == [
        "same time", "m3"]
    assert texts(await store.page(ROOM, after=(NOW, MAX_ID), before=(m2.time, m2.id))) == ["m1"]
    assert texts(await store.page("#dev")) == ["elsewhere"]
    assert await store.page("#none") == []
