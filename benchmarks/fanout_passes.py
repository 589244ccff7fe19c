"""The line fan-out's own cost per pass, without sockets, as a pass spans more rooms.

    .venv/bin/python benchmarks/fanout_passes.py [--rooms 200] [--members 50]

``Fanout`` (chatroom/lines/fanout.py) with ``rooms`` x ``members`` members whose recipients
only count bytes; each pass carries one line from each of P rooms, said by one member of
each (as 200 rooms with a sender each do once lines lag). Prints the CPU per delivery of
``Fanout.flush`` for growing P. A cost that stays flat is linear in the pass; one that grows
with P is a walk over the whole pass per sender (``Fanout._share``). Pure Python, no
reactor: a stub clock, bounded by the number of passes.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import cast

from twisted.internet.interfaces import IReactorTime

from chatroom.domain.chat import Member
from chatroom.domain.events import Joined, Said
from chatroom.lines.fanout import Fanout


class _Clock:
    """Enough of IReactorTime for Fanout: flush is called by hand, never scheduled."""

    def seconds(self) -> float:
        return time.monotonic()

    def callLater(self, delay: float, f: object) -> _Call:
        return _Call()


class _Call:
    def active(self) -> bool:
        return False

    def cancel(self) -> None:
        pass


class _Counter:
    """A recipient that only counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0

    def send(self, data: bytes) -> None:
        self.bytes += len(data)


def build(rooms: int, members: int) -> Fanout:
    clock = cast(IReactorTime, _Clock())
    fanout = Fanout(clock, prefix=lambda room, data: room.encode() + b" " + data)
    for r in range(rooms):
        room = f"#r{r}"
        for m in range(members):
            member = Member(f"m{r}-{m}", f"n{r}x{m}", current=room)
            fanout.add(member, _Counter())
            fanout.deliver(Joined(room, 0.0, member.id, member.nick))
        fanout.flush()  # a room at a time: one pass of all 10 000 joins would take minutes
    return fanout


def per_delivery_us(fanout: Fanout, rooms_per_pass: int, members: int, passes: int) -> float:
    lines = [
        Said(f"#r{r}", 0.0, f"m{r}-0", f"n{r}x0", "#L 0 0 0 hello there") for r in
        range(rooms_per_pass)
    ]
    t0 = time.process_time()
    for _ in range(passes):
        for line in lines:
            fanout.deliver(line)
        fanout.flush()
    took = time.process_time() - t0
    return took / (passes * rooms_per_pass * (members - 1)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--deliveries", type=int, default=2_000_000,
                        help="deliveries per measurement (sets the number of passes)")
    args = parser.parse_args()
    fanout = build(args.rooms, args.members)
    print("| rooms (and senders) in a pass | µs of CPU per delivery in Fanout.flush |")
    print("|---|---|")
    for p in (1, 2, 10, 50, 100, 200):
        if p > args.rooms:
            break
        passes = max(3, args.deliveries // (p * (args.members - 1)))
        cost = per_delivery_us(fanout, p, args.members, passes)
        print(f"| {p} | {cost:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
