"""What the fan-out's counting (``Fanout.tally``, for ``--metrics``) costs per delivery.

The fan-out adds up the deliveries and bytes of each pass once the pass is done; this times
``deliver`` + ``flush`` of this ``chatroom/lines/fanout.py`` against another version of it
(``--against FILE``, e.g. ``git show 753bd16:chatroom/lines/fanout.py > /tmp/fanout.py``,
the last without counters), in the same process, repeat by repeat in turn, so that load on a
shared machine hits both alike. Each figure is the best of ``--repeats``.

The members are recipients that send as the line front end does (through
``Fanout.reply``, so that an answer never overtakes the room's lines) into a sink that
keeps nothing: no socket, so the fan-out's own work is all there is to time, and the
counting's share looks as large as it can. Standalone::

    .venv/bin/python benchmarks/fanout_counters.py --against /tmp/fanout.py
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock

from chatroom.domain.chat import Member
from chatroom.domain.events import Joined, Said
from chatroom.lines import fanout as this_fanout
from chatroom.lines.factory import prefixed


class Sink:
    __slots__ = ()

    def send(self, data: bytes) -> None:
        pass


class ThroughReplies:
    """Sends as ``ChatLineProtocol.send`` does for a member: by the fan-out's ``reply``."""

    __slots__ = ("fanout", "member", "sink")

    def __init__(self, fanout: Any, member: str) -> None:
        self.fanout = fanout
        self.member = member
        self.sink = Sink()

    def send(self, data: bytes) -> None:
        self.fanout.reply(self.member, self.sink, data)


def room(module: Any, members: int, elsewhere: int = 0) -> Any:
    """A fan-out with ``members`` in #lobby, ``elsewhere`` of whom talk in #dev (so they
    get #lobby's lines in their prefixed form)."""
    fanout = module.Fanout(Clock(), prefix=prefixed)
    for i in range(members):
        member_id = f"m{i}"
        current = "#dev" if i < elsewhere else "#lobby"
        fanout.add(Member(member_id, f"nick{i}", current=current),
                   ThroughReplies(fanout, member_id))
        fanout.deliver(Joined("#lobby", 0.0, member_id, f"nick{i}"))
    fanout.flush()
    return fanout


Workload = tuple[str, int, int, int, int]  # name, members, elsewhere, senders, lines per pass

WORKLOADS: list[Workload] = [
    ("1 line to 1000 (one-line pass)", 1000, 0, 1, 1),
    ("10 lines to 1000 (batched pass)", 1000, 0, 1, 10),
    ("1 line to 1000, 100 in another room", 1000, 100, 1, 1),
    ("10 senders x 1 line to 100", 100, 0, 10, 10),
]


def timer(module: Any, workload: Workload, passes: int) -> Callable[[], float]:
    """A function that runs ``passes`` passes and returns ns per delivery."""
    _, members, elsewhere, senders, lines = workload
    fanout = room(module, members, elsewhere)
    events = [Said("#lobby", 0.0, f"m{n % senders}", f"nick{n % senders}", f"line {n} " * 6)
              for n in range(lines)]
    deliveries = passes * lines * (members - 1)  # every line to every member but its sender

    def run() -> float:
        deliver, flush = fanout.deliver, fanout.flush
        gc.collect()
        gc.disable()  # as timeit does: a collection lands on whichever version runs then
        try:
            started = time.perf_counter_ns()
            for _ in range(passes):
                for event in events:
                    deliver(event)
                flush()
            return (time.perf_counter_ns() - started) / deliveries
        finally:
            gc.enable()

    return run


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("fanout_against", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another fanout.py to time alongside")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--passes", type=int, default=200)
    args = parser.parse_args()
    modules = [this_fanout] if args.against is None else [load(args.against), this_fanout]
    print("ns per delivery, best of", args.repeats, "repeats")
    header = "this" if len(modules) == 1 else "against    this   ratio"
    print(f"{'':<40} {header}")
    for workload in WORKLOADS:
        runs = [timer(module, workload, args.passes) for module in modules]
        best = [float("inf")] * len(runs)
        for _ in range(args.repeats):
            for i, run in enumerate(runs):
                best[i] = min(best[i], run())
        cells = " ".join(f"{b:7.1f}" for b in best)
        ratio = f"  {best[1] / best[0]:6.3f}" if len(best) == 2 else ""
        print(f"{workload[0]:<40} {cells}{ratio}")


if __name__ == "__main__":
    main()
