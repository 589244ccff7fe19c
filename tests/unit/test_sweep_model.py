"""The sliced fan-out against a wider model than ``test_sweep``'s: two rooms (a member's
other room prefixed), the web's echo, kicks, renames, notices to everyone, newcomers signing
in mid-sweep, and members switching their current room. Whatever happens, each member gets
exactly its events, in hub order, once each."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.domain.chat import Member
from chatroom.domain.events import Event, Joined, Left, Notice, Renamed, Said, Whispered
from chatroom.lines.factory import prefixed
from chatroom.lines.fanout import Fanout
from tests.unit.test_sweep import SLICE, Slow
from tests.unit.turns import Reactor


def render(event: Event) -> bytes:
    """Every event its own line (its time is a serial number)."""
    return f"{type(event).__name__}:{int(event.time)}\r\n".encode()


ROOMS = ["lobby", "dev"]
ACTIVE = [f"m{i}" for i in range(6)]
NEW = [f"n{i}" for i in range(3)]
LISTENERS = 34

act = st.sampled_from(ACTIVE)
anyone = st.sampled_from(ACTIVE + NEW)
room = st.sampled_from(ROOMS)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("say"), act, room),
        st.tuples(st.just("say"), act, room),
        st.tuples(st.just("whisper"), act, anyone),
        st.tuples(st.just("part"), anyone, room),
        st.tuples(st.just("join"), anyone, room),
        st.tuples(st.just("kick"), anyone, room),
        st.tuples(st.just("rename"), anyone),
        st.tuples(st.just("notice"),),
        st.tuples(st.just("arrive"), st.sampled_from(NEW)),
        st.tuples(st.just("lost"), anyone),
        st.tuples(st.just("command"), anyone),
        st.tuples(st.just("switch"), anyone, room),
        st.tuples(st.just("turn")),
        st.tuples(st.just("turn")),
        st.tuples(st.just("turn")),
        st.tuples(st.just("flush")),
    ),
    max_size=150,
)


def run(script: list[tuple[str, ...]], echo: bool, prefix: bool) -> None:
    clock = Reactor()
    pre = prefixed if prefix else None
    fanout = Fanout(clock, render=render, slice=SLICE, echo=echo, prefix=pre)
    names = [f"m{i}" for i in range(len(ACTIVE) + LISTENERS)]
    people: dict[str, Member] = {}
    by_name: dict[str, Slow] = {}
    rooms: dict[str, set[str]] = {r: set() for r in ROOMS}
    gone: dict[str, int] = {}
    expected: dict[str, list[bytes]] = {}
    serial = [0]

    def nxt() -> int:
        serial[0] += 1
        return serial[0]

    def shape(name: str, r: str, data: bytes) -> bytes:
        if pre is None or people[name].current == r:
            return data
        return pre(r, data)

    def to_room(r: str, sender: str | None, data: bytes) -> None:
        for name in rooms[r]:
            if name in gone or (name == sender and not echo):
                continue
            expected[name].append(shape(name, r, data))

    def arrive(name: str) -> None:
        people[name] = Member(name, name, current="lobby")
        by_name[name] = Slow(clock)
        expected[name] = []
        fanout.add(people[name], by_name[name])
        event = Joined("lobby", nxt(), name, name)
        fanout.deliver(event)
        to_room("lobby", name, render(event))
        rooms["lobby"].add(name)

    for name in names:
        arrive(name)
    fanout.flush()
    for name in names:
        by_name[name].writes.clear()
        expected[name] = []

    def live(name: str) -> bool:
        return name in people and name not in gone

    for action in script:
        kind = action[0]
        if kind == "say" and live(action[1]) and action[1] in rooms[action[2]]:
            event = Said(action[2], nxt(), action[1], action[1], "x")
            fanout.deliver(event)
            data = render(event)
            for name in rooms[action[2]]:
                if name in gone or (name == action[1] and not echo):
                    continue
                expected[name].append(shape(name, action[2], data))
        elif kind == "whisper" and live(action[1]) and live(action[2]):
            w = Whispered("lobby", nxt(), action[1], action[1], "w", action[2], action[2])
            fanout.deliver(w)
            expected[action[2]].append(render(w))
            if echo and action[1] != action[2]:
                expected[action[1]].append(render(w))
        elif kind == "part" and live(action[1]) and action[1] in rooms[action[2]]:
            name, r = action[1], action[2]
            fanout.flush_for(name)  # the /part command
            left = Left(r, nxt(), name, name)
            rooms[r].discard(name)
            fanout.deliver(left)
            to_room(r, name, render(left))
        elif kind == "kick" and live(action[1]) and action[1] in rooms[action[2]]:
            name, r = action[1], action[2]
            left = Left(r, nxt(), name, name, reason="kicked", by="op")
            data = render(left)
            expected[name].append(pre(r, data) if pre else data)
            rooms[r].discard(name)
            fanout.deliver(left)
            to_room(r, name, data)
        elif kind == "join" and live(action[1]) and action[1] not in rooms[action[2]]:
            name, r = action[1], action[2]
            fanout.flush_for(name)  # the /join command
            joined = Joined(r, nxt(), name, name)
            fanout.deliver(joined)
            to_room(r, name, render(joined))
            rooms[r].add(name)
        elif kind == "rename" and live(action[1]):
            name = action[1]
            fanout.flush_for(name)
            inr = tuple(r for r in ROOMS if name in rooms[r])
            ev = Renamed("", nxt(), name, name, name, inr)
            fanout.deliver(ev)
            sharing = set().union(*(rooms[r] for r in inr)) if inr else set()
            if echo:
                sharing.add(name)
            for other in sharing:
                if other in gone or (other == name and not echo):
                    continue
                expected[other].append(render(ev))
        elif kind == "notice":
            notice = Notice("", nxt(), "", "", "n")
            fanout.deliver(notice)
            for name in people:
                if name not in gone:
                    expected[name].append(render(notice))
        elif kind == "arrive" and action[1] not in people:
            arrive(action[1])
        elif kind == "lost" and live(action[1]):
            name = action[1]
            gone[name] = len(b"".join(expected[name]))
            fanout.lost(name)
            for r in ROOMS:
                if name in rooms[r]:
                    rooms[r].discard(name)
                    left = Left(r, nxt(), name, name)
                    fanout.deliver(left)
                    to_room(r, name, render(left))
            fanout.remove(name)
        elif kind == "command" and live(action[1]):
            name = action[1]
            fanout.flush_for(name)
            answer = f"answer:{nxt()}\r\n".encode()
            fanout.reply(name, by_name[name], answer)
            expected[name].append(answer)
        elif kind == "switch" and live(action[1]) and action[1] in rooms[action[2]]:
            fanout.flush_for(action[1])
            people[action[1]].move_to(action[2])
        elif kind == "turn":
            clock.turn()
        elif kind == "flush":
            fanout.flush()
    for _ in range(300):
        clock.turn()
    fanout.flush()
    for name in people:
        want = b"".join(expected[name])
        got = by_name[name].stream
        if name in gone:
            assert want.startswith(got) and len(got) <= gone[name], (name, got, want)
        else:
            assert got == want, (name, got, want)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_line_members_get_exactly_their_events_in_order(script: list[tuple[str, ...]]) -> None:
    run(script, echo=False, prefix=True)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_web_members_get_exactly_their_events_in_order(script: list[tuple[str, ...]]) -> None:
    run(script, echo=True, prefix=False)
