"""Newcomers take turns: a turn's budget of sign-ins at most, the rest first come first served."""

from __future__ import annotations

from typing import Any

from chatroom.entry import EntryPacer
from tests.unit.turns import Reactor

COST = 0.001
"""Seconds of the test clock one newcomer's input takes to handle."""


class Newcomer:
    """An input gate and the input loop behind it: handling an input costs ``COST``."""

    def __init__(self, name: str, pacer: EntryPacer, clock: Reactor, log: list[str]) -> None:
        self.name = name
        self.pacer = pacer
        self.clock = clock
        self.log = log
        self.closed = False
        self.holds: set[str] = set()

    def send_input(self) -> None:
        """Its input arrives (or is read again after a hold): handled if it may be."""
        if self.pacer.admit(self):
            self.clock.rightNow += COST
            self.log.append(self.name)

    def hold(self, reason: str) -> None:
        self.holds.add(reason)

    def release(self, reason: str) -> None:
        self.holds.discard(reason)
        self.send_input()


def crowd(
    count: int, budget: float = 0.0035, busy: bool = True
) -> tuple[Reactor, EntryPacer, list[Newcomer], list[str]]:
    """``busy``: whether other work (a fan-out's lines) waits for the reactor."""
    clock = Reactor()
    pacer = EntryPacer(clock, budget)
    pacer.watch(lambda: busy)
    log: list[str] = []
    return clock, pacer, [Newcomer(f"n{i}", pacer, clock, log) for i in range(count)], log


def test_a_turn_lets_its_budget_through_and_the_rest_wait_in_order() -> None:
    clock, pacer, people, log = crowd(10)
    for person in people:
        person.send_input()
    assert log == ["n0", "n1", "n2", "n3"]  # 0, 1, 2, 3 ms into the turn: 3.5 ms budget
    assert all(p.holds == {"entry"} for p in people[4:])
    assert pacer.waiting == 6
    clock.turn()
    assert log == [f"n{i}" for i in range(8)]
    clock.turn()
    assert log == [f"n{i}" for i in range(10)]
    assert pacer.waiting == 0
    assert not any(p.holds for p in people)


def test_a_newcomer_of_a_later_turn_waits_behind_those_already_waiting() -> None:
    clock, _, people, log = crowd(7)
    for person in people[:6]:
        person.send_input()
    late = people[6]
    late.send_input()
    assert late.holds == {"entry"}
    clock.turn()
    clock.turn()
    assert log == [f"n{i}" for i in range(7)]


def test_one_who_left_while_waiting_is_skipped() -> None:
    clock, _, people, log = crowd(6)
    for person in people:
        person.send_input()
    people[4].closed = True
    clock.turn()
    assert log == ["n0", "n1", "n2", "n3", "n5"]


def test_a_quiet_server_lets_every_newcomer_in_at_once() -> None:
    clock, _, people, log = crowd(3)
    for person in people:
        person.send_input()
        clock.turn()
        clock.rightNow += 1
    assert log == ["n0", "n1", "n2"]
    assert not any(p.holds for p in people)


def test_with_nothing_else_to_run_newcomers_take_longer_turns_but_bounded_ones() -> None:
    """Pausing newcomers only helps the lines of those already in: with none on their
    way, a join storm goes on for IDLE_BUDGET a turn. Not longer: between two passes the
    fan-out is idle too, and the room's next lines are read only once the turn ends."""
    clock, pacer, people, log = crowd(30, busy=False)
    for person in people:
        person.send_input()
    assert log == [f"n{i}" for i in range(20)]  # 0 to 19 ms into the turn: 20 ms budget
    assert pacer.waiting == 10
    clock.turn()
    assert log == [f"n{i}" for i in range(30)]
    assert pacer.waiting == 0


def test_a_leaver_within_the_turns_budget_leaves_at_once() -> None:
    _, pacer, _, log = crowd(0)
    pacer.depart(lambda: log.append("gone"))
    assert log == ["gone"]


def test_leavers_past_the_budget_wait_in_line_behind_the_newcomers_already_waiting() -> None:
    clock, pacer, people, log = crowd(6)
    for person in people:
        person.send_input()  # n0-n3 in, n4 and n5 wait
    pacer.depart(lambda: log.append("gone"))
    assert log == ["n0", "n1", "n2", "n3"]
    clock.turn()
    assert log == ["n0", "n1", "n2", "n3", "n4", "n5", "gone"]
    assert pacer.waiting == 0


def test_once_the_server_stops_leavers_go_at_once_the_waiting_ones_first() -> None:
    """The goodbyes, then the history and the hub closing, follow the stop: a leaving still
    waiting would run unrecorded, or not at all."""
    _, pacer, people, log = crowd(6)
    for person in people:
        person.send_input()  # n0-n3 in, n4 and n5 wait
    pacer.depart(lambda: log.append("gone 1"))
    pacer.depart(lambda: log.append("gone 2"))
    pacer.stop()
    assert log == ["n0", "n1", "n2", "n3", "gone 1", "gone 2"]
    pacer.depart(lambda: log.append("gone 3"))  # the turn's budget long spent
    assert log[-1] == "gone 3"
    assert pacer.waiting == 2  # the newcomers stay held: the server is closing them
    assert people[4].holds == {"entry"}


def test_a_leaving_that_fails_is_logged_and_those_behind_it_still_get_their_turn(
    logged_failures: list[dict[str, Any]],
) -> None:
    clock, pacer, people, log = crowd(5)
    for person in people[:4]:
        person.send_input()  # the turn's budget is used

    def broken() -> None:
        raise RuntimeError("a bug")

    pacer.depart(broken)
    people[4].send_input()  # waits behind the leaving
    clock.turn()
    assert log == ["n0", "n1", "n2", "n3", "n4"]
    assert [e["log_failure"].value.args for e in logged_failures] == [("a bug",)]
    logged_failures.clear()
