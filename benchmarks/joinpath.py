"""µs of CPU per join of two parts of the join path, without sockets (issue 17).

- ``replay``: ``RecentRecords.last`` for an arrival of a join storm into the default room,
  whose buffer (``--history-max``, 200) is all joins: the fold of the whole run.
- ``log``: the two lines a join writes (``connection from``, ``joined from``) through the
  server's text log observer (``LogOutput``), into memory.

``--tree DIR`` times another checkout's code (run it with that checkout's venv, so that its
Twisted is the one timed): ``DIR/.venv/bin/python benchmarks/joinpath.py --tree DIR``.
"""

from __future__ import annotations

import argparse
import io
import sys
import time


def replay(joins: int) -> float:
    from chatroom.domain.events import Joined
    from chatroom.history.fold import Joins
    from chatroom.history.recent import RecentRecords

    recent = RecentRecords(200, joins=Joins.FOLD)
    start = time.process_time()
    for i in range(joins):
        recent(Joined("#lobby", 1000.0 + i, f"m{i}", f"user{i}"))
        recent.last("#lobby", 20, joining=f"m{i}")
    return (time.process_time() - start) / joins * 1e6


def log(joins: int) -> float:
    from twisted.logger import Logger, LogPublisher

    from chatroom.logconfig import LogOutput

    out = io.StringIO()
    logger = Logger(namespace="chatroom.session.Session",
                    observer=LogPublisher(LogOutput(out).observer))
    start = time.process_time()
    for i in range(joins):
        peer = f"127.0.0.{i % 200}:{i}"
        logger.info("connection from {peer}", peer=peer)
        logger.info("{nick} joined from {peer}{kind}", nick=f"user{i}", peer=peer, kind="")
        if i % 1000 == 0:
            out.seek(0)
            out.truncate()
    return (time.process_time() - start) / joins * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=None, help="time this checkout's chatroom/")
    parser.add_argument("--joins", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.tree:
        sys.path.insert(0, args.tree)
    for name, part in (("replay", replay), ("log", log)):
        runs = sorted(part(args.joins) for _ in range(args.repeat))
        print(f"{name:7} {runs[len(runs) // 2]:7.1f} µs per join (median of {args.repeat}; "
              f"{', '.join(f'{r:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()
