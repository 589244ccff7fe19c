"""A replay worth reading (issue 12, point 10): joins and leaves folded, shown or hidden,
and a server's stop not recorded as everyone leaving; and ``/history N`` out of range."""

from __future__ import annotations

import random

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from chatroom.domain.events import Joined, Left, Renamed, Said
from chatroom.history import HistoryRecorder, Kind, MemoryHistory, Record, describe
from chatroom.history.fold import Joins, fold, names, newest_lines, parse_joins, summary
from chatroom.history.recent import RecentRecords
from chatroom.lines.factory import ChatFactory
from chatroom.session import Services
from chatroom.web.messages import record_message
from tests.unit.helpers import RELAXED, BoundedClock, connect, flush

NOW = 1_795_500_000.0
ROOM = "#lobby"


def rec(kind: Kind, nick: str, text: str = "", at: float = NOW) -> Record:
    return Record(0, at, ROOM, kind, nick, text)


def joined(nick: str, at: float = NOW) -> Record:
    return rec(Kind.JOINED, nick, at=at)


def left(nick: str, at: float = NOW) -> Record:
    return rec(Kind.LEFT, nick, "quit", at=at)


def said(nick: str, text: str, at: float = NOW) -> Record:
    return rec(Kind.SAID, nick, text, at=at)


def lines(records: list[Record]) -> list[str]:
    return [describe(r) for r in records]


# What a run comes to -------------------------------------------------------------------------

@pytest.mark.parametrize(("run", "text"), [
    ([joined("alice"), joined("bob")], "alice and bob joined"),
    ([joined(n) for n in ("alice", "bob", "carol")], "alice, bob and carol joined"),
    ([joined(n) for n in ("alice", "bob", "c", "d", "e")], "alice, bob and 3 others joined"),
    ([joined("alice"), joined("bob"), left("carol")], "alice and bob joined; carol left"),
    ([joined("alice"), left("alice")], "alice came and went"),
    ([left("alice"), joined("Alice")], "Alice left and came back"),
    ([left("bob"), joined("alice"), left("alice"), joined("alice"), joined("bob")],
     "alice joined; bob left and came back"),
])
def test_a_run_says_what_it_came_to_for_each_person(run, text):
    assert summary(run) == text


def test_runs_of_joins_and_leaves_become_one_notice_between_what_was_said():
    records = [
        joined("alice", NOW), joined("bob", NOW + 1), said("alice", "hi", NOW + 2),
        left("bob", NOW + 3), said("alice", "anyone?", NOW + 4),
        left("carol", NOW + 5), joined("dave", NOW + 6), left("erin", NOW + 7),
    ]
    folded = fold(records)
    assert lines(folded) == [
        "*** alice and bob joined", "alice: hi", "*** bob left", "alice: anyone?",
        "*** dave joined; carol and erin left",
    ]
    assert folded[0].time == NOW + 1 and folded[-1].time == NOW + 7  # the run's last event
    assert folded[2] is records[3]  # a run of one stays the line it was


def test_a_notice_for_a_run_has_the_id_of_its_newest_event():
    # So a page that showed that event live knows the notice when a replay repeats it.
    run = [joined("alice"), joined("bob", NOW + 1)]
    (notice,) = fold(run)
    assert notice.kind is Kind.NOTICE and notice.line_id == run[-1].line_id
    assert record_message(notice) == {
        "type": "notice", "time": NOW + 1, "text": "alice and bob joined",
        "id": run[-1].line_id}


def test_renames_and_topics_end_a_run():
    records = [joined("alice"), rec(Kind.RENAMED, "alice"), joined("bob"), joined("carol"),
               rec(Kind.TOPIC, "bob", "plans"), left("carol"), left("dave")]
    assert [r.kind for r in fold(records)] == [
        Kind.JOINED, Kind.RENAMED, Kind.NOTICE, Kind.TOPIC, Kind.NOTICE]


# The newest N lines ------------------------------------------------------------------------

def newest_first(records: list[Record]) -> list[Record]:
    return list(reversed(records))


HISTORY = [said("alice", "one"), joined("bob"), joined("carol"), left("dave"),
           said("bob", "two"), joined("erin"), left("frank"), said("carol", "three")]


def test_fold_counts_a_run_as_one_line_and_takes_it_whole():
    assert lines(newest_lines(newest_first(HISTORY), 3, Joins.FOLD)) == [
        "bob: two", "*** erin joined; frank left", "carol: three"]
    assert lines(newest_lines(newest_first(HISTORY), 4, Joins.FOLD)) == [
        "*** bob and carol joined; dave left", "bob: two", "*** erin joined; frank left",
        "carol: three"]


def test_show_and_hide():
    assert lines(newest_lines(newest_first(HISTORY), 3, Joins.SHOW)) == [
        "*** erin joined", "*** frank left", "carol: three"]
    assert lines(newest_lines(newest_first(HISTORY), 3, Joins.HIDE)) == [
        "alice: one", "bob: two", "carol: three"]
    assert newest_lines(newest_first(HISTORY), 0, Joins.FOLD) == []


def test_the_option_values():
    assert parse_joins(" Fold ") is Joins.FOLD and parse_joins("hide") is Joins.HIDE
    with pytest.raises(ValueError, match="use fold, show or hide"):
        parse_joins("some")


def test_the_replay_buffer_folds_as_it_is_told_and_leaves_out_the_joiners_own_join():
    recent = RecentRecords(50, joins=Joins.FOLD)
    recent(Said(ROOM, NOW, "m1", "alice", "before"))
    for i, nick in enumerate(["bob", "carol", "dave", "erin", "frank"]):
        recent(Joined(ROOM, NOW + 1 + i, f"j{i}", nick))
    recent(Left(ROOM, NOW + 9, "m1", "alice", "quit"))
    recent(Joined(ROOM, NOW + 10, "me", "grace"))
    assert lines(recent.last(ROOM, 20, joining="me")) == [
        "alice: before", "*** bob, carol and 3 others joined; alice left"]
    recent(Renamed("", NOW + 11, "j0", "bob", "robert", rooms=(ROOM,)))
    assert lines(recent.last(ROOM, 2)) == [
        "*** bob, carol and 4 others joined; alice left", "*** bob is now known as robert"]


# A stop is not people leaving ---------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_the_leaves_of_a_server_stopping_are_not_recorded():
    store = MemoryHistory(Clock())
    recorder = HistoryRecorder(store)
    recorder(Joined(ROOM, NOW, "m1", "alice"))
    recorder(Left(ROOM, NOW + 1, "m2", "bob", "quit"))
    recorder(Left(ROOM, NOW + 2, "m1", "alice", "server shutdown"))
    recorder(Left(ROOM, NOW + 3, "m3", "carol", "slow reader"))
    assert lines(await store.last(10)) == ["*** alice joined", "*** bob left", "*** carol left"]


# /history N --------------------------------------------------------------------------------

def test_history_with_a_count_out_of_range_says_the_range():
    clock = BoundedClock()
    services = Services.create(clock, RELAXED, recent=RecentRecords(50, joins=Joins.FOLD))
    alice = connect(ChatFactory(services))
    alice.send("alice")
    alice.send("hello")
    flush(alice.protocol.factory)
    alice.clear()
    for count in ("0", "-5", "201", "x", "1.5"):
        alice.send(f"/history {count}")
        assert alice.lines() == ["! usage: /history [N], N from 1 to 200"], count
        alice.clear()
    alice.send("/history 1")
    assert [line.split("] ", 1)[-1] for line in alice.lines()] == [
        "*** last 1 line (times in UTC)", "alice: hello", "*** end of history"]


def _summary_as_specified(run: list[Record]) -> str:
    """``summary`` as issue 12 first wrote it (three dicts, a pass each): the faster one
    for join storms (issue 17) must say the same of every run."""
    first: dict[str, Kind] = {}
    last: dict[str, Kind] = {}
    shown: dict[str, str] = {}
    for record in run:
        key = record.nick.casefold()
        first.setdefault(key, record.kind)
        last[key] = record.kind
        shown[key] = record.nick
    groups: dict[str, list[str]] = {
        "joined": [], "left": [], "came and went": [], "left and came back": []}
    for key, began in first.items():
        ended = last[key]
        if began is ended:
            what = "joined" if began is Kind.JOINED else "left"
        else:
            what = "came and went" if began is Kind.JOINED else "left and came back"
        groups[what].append(shown[key])
    return "; ".join(f"{names(nicks)} {what}" for what, nicks in groups.items() if nicks)


def test_folding_says_of_any_mix_of_joins_leaves_and_lines_what_it_always_said():
    rng = random.Random(17)
    nicks = ["alice", "ALICE", "Bob", "bob", "carol", "dave", "erin", "frank"]
    for _ in range(3000):
        kinds = rng.choice([[joined], [left], [joined, left]])  # storms are all one kind
        records = [
            rng.choice(kinds)(rng.choice(nicks)) if rng.random() < 0.9
            else said(rng.choice(nicks), "hi")
            for _ in range(rng.randrange(0, 12))
        ]
        folded = fold(records)
        expected: list[str] = []
        run: list[Record] = []
        for record in [*records, None]:
            if record is not None and record.kind in (Kind.JOINED, Kind.LEFT):
                run.append(record)
                continue
            if len(run) == 1:
                expected.append(describe(run[0]))
            elif run:
                expected.append(f"*** {_summary_as_specified(run)}")
                assert summary(run) == _summary_as_specified(run)
            run = []
            if record is not None:
                expected.append(describe(record))
        assert lines(folded) == expected, records
