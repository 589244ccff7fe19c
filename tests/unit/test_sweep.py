"""A pass over a big room is cut into slices, and lines that arrive meanwhile join it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.domain.chat import Member
from chatroom.domain.events import Joined, Left, Said, Whispered
from chatroom.lines.factory import prefixed
from chatroom.lines.fanout import Fanout
from chatroom.lines.render import render
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


# -- a model: whatever happens, each member gets exactly its lines, in order -----------

ACTIVE = [f"m{i}" for i in range(6)]
LISTENERS = 34

actions = st.lists(
    st.one_of(
        st.tuples(st.just("say"), st.sampled_from(ACTIVE)),
        st.tuples(st.just("whisper"), st.sampled_from(ACTIVE), st.sampled_from(ACTIVE)),
        st.tuples(st.just("part"), st.sampled_from(ACTIVE)),
        st.tuples(st.just("join"), st.sampled_from(ACTIVE)),
        st.tuples(st.just("lost"), st.sampled_from(ACTIVE)),
        st.tuples(st.just("command"), st.sampled_from(ACTIVE)),
        st.tuples(st.just("turn")),
        st.tuples(st.just("turn")),
        st.tuples(st.just("flush")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_sliced_passes_match_a_simple_model(script: list[tuple[str, ...]]) -> None:
    """Lines, whispers, answers, joins, parts and lost connections in any order, with the
    passes cut into slices: each member's bytes are exactly what it should have got, in
    hub order, once each (a lost member gets a beginning of it and nothing after)."""
    clock, fanout, recipients = make(len(ACTIVE) + LISTENERS)
    names = [f"m{i}" for i in range(len(recipients))]
    by_name = dict(zip(names, recipients, strict=True))
    inside = dict.fromkeys(names, True)
    gone: dict[str, int] = {}  # a lost member -> how many bytes it may have got
    expected: dict[str, list[bytes]] = {name: [] for name in names}
    serial = 0

    def to_room(sender: str, data: bytes) -> None:
        for name in names:
            if inside[name] and name != sender and name not in gone:
                expected[name].append(data)

    for action in script:
        kind = action[0]
        if kind in ("say", "whisper", "part", "join", "lost", "command") and action[1] in gone:
            continue
        if kind == "say" and inside[action[1]]:
            serial += 1
            event = said(action[1], f"s{serial}")
            fanout.deliver(event)
            to_room(action[1], render(event))
        elif kind == "whisper" and action[2] not in gone:
            serial += 1
            whisper = Whispered("lobby", 0.0, action[1], action[1], f"w{serial}", action[2],
                                action[2])
            fanout.deliver(whisper)
            expected[action[2]].append(render(whisper))
        elif kind == "part" and inside[action[1]]:
            left = Left("lobby", 0.0, action[1], action[1])
            fanout.deliver(left)
            inside[action[1]] = False
            to_room(action[1], render(left))
        elif kind == "join" and not inside[action[1]]:
            joined = Joined("lobby", 0.0, action[1], action[1])
            fanout.deliver(joined)
            to_room(action[1], render(joined))
            inside[action[1]] = True
        elif kind == "lost":
            name = action[1]
            gone[name] = len(b"".join(expected[name]))
            fanout.lost(name)
            if inside[name]:
                left = Left("lobby", 0.0, name, name)
                fanout.deliver(left)
                inside[name] = False
                to_room(name, render(left))
            fanout.remove(name)
        elif kind == "command":
            name = action[1]
            fanout.flush_for(name)
            serial += 1
            answer = f"*** answer {serial}\r\n".encode()
            fanout.reply(name, by_name[name], answer)
            expected[name].append(answer)
        elif kind == "turn":
            clock.turn()
        elif kind == "flush":
            fanout.flush()
    for _ in range(200):
        clock.turn()
    fanout.flush()
    for name in names:
        want = b"".join(expected[name])
        got = by_name[name].stream
        if name in gone:
            assert want.startswith(got) and len(got) <= gone[name], name
        else:
            assert got == want, name
