"""Reproductions of the holes review/attack measured rather than tested (issues 12 and 13).

    .venv/bin/python benchmarks/attack_repro.py sigkill [--searchers 30] [--runs 4]
    .venv/bin/python benchmarks/attack_repro.py buffers [--rooms 1000]
    .venv/bin/python benchmarks/attack_repro.py join [--searchers 30]

``sigkill``: a history of 1M lines (benchmarks/search_isolation.py builds and caches it),
members looping costly searches (``t* a* i* s* o* w*``, 16-word phrases: within the
defaults), a talker at 20 lines/s, a listener; the server is SIGKILLed after 6 s. Prints,
per run with and without searchers, how many lines the listener had that the file lacks
and the age of the oldest (the contract: at most ``--history-flush-ms``, 200 ms).

``buffers``: one member makes ``--rooms`` rooms one after the other, says 200 lines of
2000 bytes in each and leaves it (the room is forgotten); prints the server's RSS before
and after: the replay buffers of rooms that no longer exist stay.

``join``: how long ``/join`` of a new room takes while members loop costly searches (the
room's replay is read by the same readers, behind the searches).

Every server runs from this checkout, is stopped by PID, every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.search_isolation import Listener, history_file, on_disk  # noqa: E402
from tests.integration.serverproc import ServerProcess  # noqa: E402

QUERIES = [
    "t* a* i* s* o* w*",
    "-".join(["the"] * 16),
    "the of and to a in is it you that he was for on are as",
    "e*",
]


def _searchers(server: ServerProcess, count: int, stop: threading.Event) -> None:
    def loop(n: int) -> None:
        client = server.join(f"searcher{n}")
        while not stop.is_set():
            try:
                client.send("/search " + QUERIES[n % len(QUERIES)])
                while not stop.is_set():
                    line = client.read_line(1)
                    if line and (line == "*** end of search"
                                 or line.startswith(("*** no lines", "! "))):
                        break
            except OSError:
                return

    for n in range(count):
        threading.Thread(target=loop, args=(n,), daemon=True).start()


def _server(work: Path, *args: str) -> ServerProcess:
    return ServerProcess(work, "--rate", "1000", "--burst", "1000", "--max-per-ip", "500",
                         *args)


def _history_copy(work: Path) -> Path:
    db = work / "history.sqlite3"
    shutil.copyfile(history_file(1_000_000), db)
    return db


def sigkill(searchers: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(prefix="attack-") as tmp:
        work = Path(tmp)
        db = _history_copy(work)
        server = _server(work, "--history", str(db), "--history-replay", "0")
        stop = threading.Event()
        try:
            listener = Listener(server.join("listener"))
            talker = server.join("talker")
            _searchers(server, searchers, stop)
            time.sleep(2)
            said: list[tuple[float, str]] = []
            begin = time.monotonic()
            n = 0
            while time.monotonic() - begin < 6:
                said.append((time.monotonic(), f"mark {n}"))
                talker.send(f"mark {n}")
                n += 1
                time.sleep(0.05)
            os.kill(server.pid, signal.SIGKILL)
            server.proc.wait(5)
            killed = time.monotonic()
            got = {line.split(": ", 1)[1] for _, line in listener.lines
                   if line.startswith("talker: ")}
            stored = on_disk(db)
            lost = [killed - when for when, text in said if text in got and text not in stored]
            return len(lost), max(lost, default=0.0)
        finally:
            stop.set()
            server.kill()


def buffers(rooms: int) -> tuple[int, int]:
    with tempfile.TemporaryDirectory(prefix="attack-") as tmp:
        server = ServerProcess(Path(tmp), "--history", "var/h.sqlite3", "--rate", "100000",
                               "--burst", "100000")
        try:
            member = server.join("alice")
            member.sock.settimeout(60)
            before = server.rss_kb()
            text = "x" * 2000
            for n in range(rooms):
                member.send_raw(
                    (f"/join #big{n}\r\n" + f"{text}\r\n" * 200 + "/part\r\n").encode())
                if n % 20 == 19:
                    member.send("/rooms")
                    member.expect(r"^\*\*\* #lobby \(", 60)
            member.send("/rooms")
            member.expect(r"^\*\*\* #lobby \(", 60)
            time.sleep(1)
            return before, server.rss_kb()
        finally:
            server.kill()


def join(searchers: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="attack-") as tmp:
        work = Path(tmp)
        server = _server(work, "--history", str(_history_copy(work)))
        stop = threading.Event()
        try:
            user = server.join("user")
            _searchers(server, searchers, stop)
            time.sleep(3)
            took = []
            for n in range(8):
                begin = time.monotonic()
                user.send(f"/join #fresh{n}")
                user.expect("you joined|^!", 30)
                took.append(time.monotonic() - begin)
            return took
        finally:
            stop.set()
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["sigkill", "buffers", "join"])
    parser.add_argument("--searchers", type=int, default=30)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--rooms", type=int, default=1000)
    args = parser.parse_args()
    if args.what == "sigkill":
        for _ in range(args.runs):
            for count in (0, args.searchers):
                lost, oldest = sigkill(count)
                print(f"{count:3} searchers: SIGKILL lost {lost} lines the listener had, "
                      f"the oldest said {oldest * 1000:.0f} ms before", flush=True)
    elif args.what == "buffers":
        before, after = buffers(args.rooms)
        print(f"{args.rooms} rooms x 200 lines x 2000 B, each left (forgotten): "
              f"RSS {before / 1024:.0f} -> {after / 1024:.0f} MB")
    else:
        for count in (0, args.searchers):
            took = ", ".join(f"{t * 1000:.0f}" for t in join(count))
            print(f"{count:3} searchers: /join of a new room took {took} ms")


if __name__ == "__main__":
    main()
