"""A pass over a big room is cut into slices, and lines that arrive meanwhile join it.

These are the cases told one by one; ``test_sweep_model`` checks any mix against a model."""

from __future__ import annotations

from chatroom.domain.chat import Member
from chatroom.domain.events import Joined, Said
from chatroom.lines.factory import prefixed
from chatroom.lines.fanout import Fanout
from tests.unit.turns import Reactor

SEND_COST = 0.0005
"""Seconds of the test clock each send takes."""

SLICE = 0.001
"""A slice: the pass checks the clock every 16 sends, so a slice is 16 sends here."""


class Slow:
    """A recipient whose every write takes time on the test clock, and is remembered."""

    def __init__(self, clock: Reactor) -> None:
        self.clock = clock
        self.writes: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.clock.rightNow += SEND_COST
        self.writes.append(data)

    @property
    def stream(self) -> bytes:
        return b"".join(self.writes)


def said(member: str, text: str, room: str = "lobby") -> Said:
    return Said(room, 0.0, member, member, text)


def make(count: int, prefix: bool = False) -> tuple[Reactor, Fanout, list[Slow]]:
    clock = Reactor()
    fanout = Fanout(clock, slice=SLICE, prefix=prefixed if prefix else None)
    recipients = [Slow(clock) for _ in range(count)]
    for index, recipient in enumerate(recipients):
        fanout.add(Member(f"m{index}", f"m{index}", current="lobby"), recipient)
        fanout.deliver(Joined("lobby", 0.0, f"m{index}", f"m{index}"))
    fanout.flush()
    for recipient in recipients:
        recipient.writes.clear()
    return clock, fanout, recipients


def test_a_pass_over_a_big_room_stops_when_its_slice_is_up_and_goes_on_next_turn() -> None:
    clock, fanout, members = make(100)
    fanout.deliver(said("m0", "hi"))
    clock.turn()
    served = [m for m in members[1:] if m.writes]
    assert 16 <= len(served) < 99  # a slice, not the whole room
    for _ in range(20):
        clock.turn()
    assert all(m.writes == [b"m0: hi\r\n"] for m in members[1:])
    assert members[0].writes == []


def test_a_line_that_arrives_mid_pass_reaches_the_rest_of_the_room_in_the_same_write() -> None:
    clock, fanout, members = make(100)
    fanout.deliver(said("m0", "one"))
    clock.turn()  # the first slice
    waiting = [m for m in members[1:] if not m.writes]
    fanout.deliver(said("m1", "two"))
    clock.turn()
    for _ in range(20):
        clock.turn()
    for member in waiting:
        assert member.writes == [b"m0: one\r\nm1: two\r\n"]  # one write for both
    for member in members[2:]:
        assert member.stream == b"m0: one\r\nm1: two\r\n"
    assert members[1].stream == b"m0: one\r\n"  # not its own line
    assert members[0].stream == b"m1: two\r\n"


def test_an_answer_goes_after_what_the_room_owes_its_member() -> None:
    clock, fanout, members = make(100)
    fanout.deliver(said("m0", "one"))
    clock.turn()
    last = members[99]
    assert last.writes == []
    fanout.flush_for("m99")  # a command: what is owed goes out first
    fanout.reply("m99", last, b"*** the answer\r\n")
    for _ in range(20):
        clock.turn()
    assert last.stream == b"m0: one\r\n*** the answer\r\n"
    assert members[50].stream == b"m0: one\r\n"


def test_a_line_of_another_room_waits_for_the_pass_under_way() -> None:
    clock, fanout, members = make(100, prefix=True)
    fanout.deliver(Joined("dev", 0.0, "m0", "m0"))
    fanout.deliver(Joined("dev", 0.0, "m99", "m99"))
    fanout.flush()
    for member in members:
        member.writes.clear()
    fanout.deliver(said("m1", "in lobby"))
    clock.turn()
    assert members[99].writes == []
    fanout.deliver(said("m0", "in dev", room="dev"))
    clock.turn()
    assert members[99].stream == b"m1: in lobby\r\ndev m0: in dev\r\n"
