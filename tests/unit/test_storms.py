"""Join and leave storms: past the rate, one summary line a second; below it, v1 lines."""

from __future__ import annotations

from twisted.internet.task import Clock

from chatroom.domain.chat import Member
from chatroom.domain.events import Joined, Left, Said
from chatroom.lines import render
from chatroom.lines.fanout import Fanout
from chatroom.lines.storms import describe
from tests.unit.test_fanout import Recorder


def crowd(members: int, rate: int = 3, size: int = 5) -> tuple[Clock, Fanout, Recorder]:
    """A fan-out with ``members`` members in #r; the first one's recorder is returned."""
    clock = Clock()
    fanout = Fanout(clock, notice=render.notice, storms=lambda: (size, rate))
    first = Recorder()
    for i in range(members):
        fanout.add(Member(f"m{i}", f"m{i}", current="#r"), first if i == 0 else Recorder())
        fanout._moved(f"m{i}", "#r", True, queued=False)
    return clock, fanout, first


def lines(recorder: Recorder) -> list[str]:
    return b"".join(recorder.take()).decode().splitlines()


def test_below_the_rate_every_join_is_its_own_line() -> None:
    clock, fanout, first = crowd(10)
    for i in range(3):
        fanout.deliver(Joined("#r", 0.0, f"x{i}", f"x{i}"))
    clock.advance(0)
    assert lines(first) == ["*** x0 joined", "*** x1 joined", "*** x2 joined"]
    clock.advance(1.0)
    assert lines(first) == []


def test_past_the_rate_the_rest_of_the_second_is_one_summary() -> None:
    clock, fanout, first = crowd(10)
    for i in range(300):
        fanout.deliver(Joined("#r", 0.0, f"x{i}", f"x{i}"))
    fanout.deliver(Left("#r", 0.0, "m9", "m9"))
    fanout.deliver(Said("#r", 0.0, "m5", "m5", "hello"))
    clock.advance(0)
    assert lines(first) == ["*** x0 joined", "*** x1 joined", "*** x2 joined", "m5: hello"]
    clock.advance(0.999)
    assert lines(first) == []
    clock.advance(0.001)
    assert lines(first) == [
        "*** 297 people joined: x3, x4, x5 and 294 others; 1 person left: m9"]


def test_a_small_room_is_never_summarised() -> None:
    clock, fanout, first = crowd(3, size=5)
    for i in range(50):
        fanout.deliver(Joined("#r", 0.0, f"x{i}", f"x{i}"))
    clock.advance(0)
    assert len(lines(first)) == 50


def test_the_next_second_starts_afresh() -> None:
    clock, fanout, first = crowd(10)
    for i in range(10):
        fanout.deliver(Joined("#r", 0.0, f"x{i}", f"x{i}"))
    clock.advance(1.0)
    first.take()
    clock.advance(5.0)
    fanout.deliver(Joined("#r", 0.0, "late", "late"))
    clock.advance(0)
    assert lines(first) == ["*** late joined"]


def test_a_member_who_joins_in_a_storm_gets_the_rooms_lines_after_it() -> None:
    clock, fanout, _ = crowd(10)
    for i in range(5):
        fanout.deliver(Joined("#r", 0.0, f"x{i}", f"x{i}"))
    newcomer = Recorder()
    fanout.add(Member("n", "n", current="#r"), newcomer)
    fanout.deliver(Joined("#r", 0.0, "n", "n"))  # held: past the rate
    fanout.deliver(Said("#r", 0.0, "m1", "m1", "welcome in"))
    clock.advance(0)
    assert lines(newcomer) == ["m1: welcome in"]
    clock.advance(1.0)
    assert lines(newcomer) == ["*** 3 people joined: x3, x4, n"]


def test_summaries_name_three_and_count_the_rest() -> None:
    assert describe(["a"], []) == "1 person joined: a"
    assert describe(["a", "b", "c", "d"], ["e", "f"]) == (
        "4 people joined: a, b, c and 1 other; 2 people left: e, f")
