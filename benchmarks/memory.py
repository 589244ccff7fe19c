"""Memory under abuse (issue 4): RSS per idle member, and RSS growth for an endless line
and for a member that never reads while ten others broadcast 24 MB.

    .venv/bin/python benchmarks/memory.py [--members 2000]

Starts ``twistd -n chatroom`` from this checkout's venv in a temporary directory, drives it
over loopback, prints one Markdown table and stops the server by PID. Bounded: every wait
has a deadline, and the whole run takes about a minute.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.crowd import Crowd  # noqa: E402
from tests.integration.serverproc import ServerProcess  # noqa: E402

MB = 1024 * 1024


def idle_members(count: int) -> tuple[float, int, int]:
    """KB of RSS per idle member: (RSS with count+10 members - with 10) / count."""
    with tempfile.TemporaryDirectory() as workdir:
        server = ServerProcess(Path(workdir), "--max-per-ip", str(count + 100), "--history", "none")
        try:
            few = Crowd(server.port, 10, "few")
            assert few.pump(lambda: few.all_have(b"welcome"), 30)
            time.sleep(0.5)
            base = server.rss_kb()
            many = Crowd(server.port, count, "m")
            assert many.pump(lambda: many.all_have(b"welcome"), 120)
            few.pump(lambda: False, 1.0)
            many.pump(lambda: False, 1.0)
            full = server.rss_kb()
            few.close()
            many.close()
            return (full - base) / count, base, full
        finally:
            server.kill()


def endless_line(megabytes: int = 128) -> tuple[int, int]:
    """RSS before and after a member sends ``megabytes`` MB without a newline."""
    with tempfile.TemporaryDirectory() as workdir:
        server = ServerProcess(Path(workdir), "--history", "none")
        try:
            flooder = server.join("flooder")
            before = server.rss_kb()
            chunk = b"A" * MB
            for _ in range(megabytes):
                flooder.send_raw(chunk)
            flooder.send_raw(b"\n")
            flooder.expect("line too long", timeout=30)
            return before, server.rss_kb()
        finally:
            server.kill()


def slow_reader(total: int = 24 * MB) -> tuple[int, int, int]:
    """RSS before and at the end while 10 members broadcast ``total`` bytes to a room with
    three more readers and one member that never reads; also the peak seen."""
    with tempfile.TemporaryDirectory() as workdir:
        server = ServerProcess(
            Path(workdir), "--rate", "100000", "--burst", "100000", "--history", "none"
        )
        try:
            sleeper = socket.create_connection(("127.0.0.1", server.port))
            sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sleeper.sendall(b"sleeper\n")
            server.join("probe").close()
            crowd = Crowd(server.port, 13, "m")
            assert crowd.pump(lambda: crowd.all_have(b"welcome"), 30)
            before = peak = server.rss_kb()
            line_size, per_round = 1000, 20
            rounds = total // (10 * per_round * line_size)
            for round_ in range(rounds):
                for index in range(10):
                    crowd.socks[index].setblocking(True)
                    crowd.socks[index].sendall(
                        b"".join(
                            b"%d %06d %s\n"
                            % (index, round_ * per_round + n, b"x" * (line_size - 12))
                            for n in range(per_round)
                        )
                    )
                    crowd.socks[index].setblocking(False)
                tag = b"m9: 9 %06d" % ((round_ + 1) * per_round - 1)
                crowd.pump(lambda tag=tag: all(tag in b[-300_000:] for b in crowd.buffers[:9]), 30)
                if round_ % 10 == 0:
                    peak = max(peak, server.rss_kb())
            after = server.rss_kb()
            sleeper.close()
            crowd.close()
            return before, after, max(peak, after)
        finally:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2000)
    args = parser.parse_args()
    per_member, base, full = idle_members(args.members)
    line_before, line_after = endless_line()
    slow_before, slow_after, slow_peak = slow_reader()
    print("| measure | result |")
    print("|---|---|")
    print(f"| RSS per idle member ({args.members} members) | {per_member:.2f} KB "
          f"({base / 1024:.1f} MB at 10, {full / 1024:.1f} MB at {args.members + 10}) |")
    growth = (line_after - line_before) / 1024
    print(f"| RSS growth, 128 MB sent without a newline | {growth:.1f} MB "
          f"({line_before / 1024:.1f} -> {line_after / 1024:.1f} MB) |")
    print(f"| RSS growth, 24 MB broadcast with a member that never reads | "
          f"{(slow_after - slow_before) / 1024:.1f} MB at the end, "
          f"{(slow_peak - slow_before) / 1024:.1f} MB at the peak seen |")


if __name__ == "__main__":
    main()
