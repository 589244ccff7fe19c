"""What one loopback ``send()`` costs as the number of connections written to grows.

    .venv/bin/python benchmarks/sendcost.py [--conns 50,1000,10000] [--sends 200000]

The many-rooms workload (``run.py rooms``) spends most of the server's time in ``send()``,
and more per call than one room does for the same deliveries. This takes chatroom out of
the picture: a child process connects N sockets to this one and reads everything (epoll);
this process writes 60-byte lines round robin over its N accepted sockets, as a fan-out over
N members with one line per write does, and reports this thread's CPU per ``send()``
(on loopback that includes the receiver's TCP work and its wake-up, done in the sender's
system call). Bounded: a fixed number of sends, each child stopped by its PID.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import sys
import time


def reader(port: int, conns: int, ready: int) -> None:
    """The child: connect ``conns`` sockets, say so on ``ready``, read until all close."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    ep = select.epoll()
    for s in socks:
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
    by_fd = {s.fileno(): s for s in socks}
    os.write(ready, b"x")
    open_ = len(socks)
    while open_:
        for fd, _ in ep.poll(1.0):
            try:
                data = by_fd[fd].recv(65536)
            except BlockingIOError:
                continue
            if not data:
                ep.unregister(fd)
                open_ -= 1
    os._exit(0)


def measure(conns: int, sends: int) -> float:
    """µs of this thread's CPU per send() over ``conns`` connections."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    port = listener.getsockname()[1]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        listener.close()
        os.close(r)
        reader(port, conns, w)
    os.close(w)
    try:
        accepted = [listener.accept()[0] for _ in range(conns)]
        os.read(r, 1)
        for s in accepted:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
        line = b"x" * 58 + b"\r\n"
        rounds = max(1, sends // conns)
        blocked = 0  # the reader fell behind and a socket buffer filled: not a send's cost
        t0 = time.thread_time()
        for _ in range(rounds):
            for s in accepted:
                try:
                    s.send(line)
                except BlockingIOError:
                    blocked += 1
        took = time.thread_time() - t0
        if blocked:
            print(f"  ({blocked} sends found a full buffer)", file=sys.stderr)
        for s in accepted:
            s.close()
        return took / (rounds * conns) * 1e6
    finally:
        _reap(pid, 30.0)
        listener.close()
        os.close(r)


def _reap(pid: int, limit: float) -> None:
    """Wait for the child (it exits once every socket closed); past ``limit``, kill it."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", default="50,1000,10000")
    parser.add_argument("--sends", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| connections written to | µs of CPU per send() (each repeat) |")
    print("|---|---|")
    for conns in (int(c) for c in args.conns.split(",")):
        costs = [measure(conns, args.sends) for _ in range(args.repeat)]
        print(f"| {conns} | {', '.join(f'{c:.1f}' for c in costs)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
