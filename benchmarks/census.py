"""What one member costs the server, by object type and by source line (issue 17).

    .venv/bin/python benchmarks/census.py [--members 2000] [--trace] [--tree DIR]

Starts ``twistd -n chatroom`` (default limits but the per-address cap, like ``scale.py
crowd``) with a hook that answers SIGUSR2: the first signal marks the idle server, the
second writes what changed since to a file. In between, ``--members`` clients join
``#lobby`` through the nickname path (at most ``--inflight`` at once, as loadgen does:
prompt, nickname, welcome) and stay. Printed, per member: RSS and its peak (VmHWM) over
idle; the Python objects the gc tracks, by type (count and bytes, with each instance's
``__dict__``); and with ``--trace``, tracemalloc's current and peak bytes over idle and
the source lines that hold them (tracemalloc costs memory and time itself, so its RSS is
not the figure). ``--tree DIR`` runs another checkout (its ``.venv``): a baseline.
Bounded: every wait has a deadline; the server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


def _by_type() -> tuple[Counter[str], Counter[str]]:
    """Count and bytes (``sys.getsizeof``) of every gc-tracked object, by type; a dict is
    named after the first object seen to refer to it (``dict<Session>``: most often an
    instance's ``__dict__``, which Python 3.11 makes only when the instance's attributes
    stop fitting its class's shared keys). Never touches ``__dict__``, which would make
    one."""
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    objects = gc.get_objects()
    owner: dict[int, str] = {}
    for obj in objects:
        if type(obj) is not dict:
            for ref in gc.get_referents(obj):
                if type(ref) is dict and id(ref) not in owner:
                    owner[id(ref)] = type(obj).__qualname__
    for obj in objects:
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        if kind is dict:
            name = f"dict<{owner.get(id(obj), '?')}>"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    return counts, sizes


def _made_at(sites: list[str]) -> list[tuple[str, str, int]]:
    """The gc-tracked objects allocated at ``sites`` (``name.py:line``, the allocating
    frame): their type and the types of what refers to them, counted."""
    import tracemalloc

    found: Counter[tuple[str, str]] = Counter()
    tracked = gc.get_objects()
    for holder in tracked:  # untracked objects (of atoms only) too, through what holds them
        for obj in [holder, *(r for r in gc.get_referents(holder) if not gc.is_tracked(r))]:
            tb = tracemalloc.get_object_traceback(obj)
            if tb is None:
                continue
            frame = tb[-1]
            site = f"{Path(frame.filename).name}:{frame.lineno}"
            if site in sites:
                what = f"{site} {type(obj).__qualname__} {repr(obj)[:60]}"
                found[(what, type(holder).__qualname__)] += 1
        if sum(found.values()) > 3000:
            break
    return [(what, holders, n) for (what, holders), n in found.most_common(30)]


def serve(report: str, argv: list[str]) -> None:
    """Inside the server process: the SIGUSR2 hook, then twistd as usual."""
    import tracemalloc

    trace = os.environ.get("CENSUS_TRACE") == "1"
    if trace:
        tracemalloc.start(int(os.environ.get("CENSUS_FRAMES", "6")))
    state: dict[str, Any] = {}

    def on_signal(signum: int, frame: object) -> None:
        if "idle" not in state:
            gc.collect()
            state["idle"] = (_status_kb("VmRSS"), _status_kb("VmHWM"), *_by_type())
            if trace:
                tracemalloc.reset_peak()
                state["snapshot"] = tracemalloc.take_snapshot()
            return
        rss0, hwm0, counts0, sizes0 = state["idle"]
        found: dict[str, Any] = {"rss_kb": _status_kb("VmRSS") - rss0,
                                 "hwm_kb": _status_kb("VmHWM") - rss0,
                                 "hwm_idle_kb": hwm0 - rss0}
        if trace:
            current, peak = tracemalloc.get_traced_memory()
            before = state.pop("snapshot")
            found["traced_now"] = current - sum(s.size for s in before.statistics("filename"))
            found["traced_peak"] = peak - sum(s.size for s in before.statistics("filename"))
            snap = tracemalloc.take_snapshot()
            # A traceback runs from the oldest frame to the allocating one (the last).
            found["lines"] = [
                (str(d.traceback[-1]), d.size_diff, d.count_diff,
                 [str(f) for f in list(d.traceback)[-2::-1]])
                for d in snap.compare_to(before, "traceback")[:60]
            ]
            found["files"] = [(str(d.traceback[0].filename), d.size_diff, d.count_diff)
                              for d in snap.compare_to(before, "filename")[:25]]
        who = os.environ.get("CENSUS_WHO")  # "file.py:123,...": what those lines made
        if trace and who:
            found["who"] = _made_at(who.split(","))
            sizes: Counter[tuple[str, int]] = Counter()
            for trace_ in snap.traces:
                frame = trace_.traceback[-1]
                site = f"{Path(frame.filename).name}:{frame.lineno}"
                if site in who.split(","):
                    sizes[(site, trace_.size)] += 1
            found["who"] += [(f"{site} block of {size} B", "", n)
                             for (site, size), n in sizes.most_common(12)]
        counts, sizes = _by_type()
        found["types"] = sorted(
            ((name, counts[name] - counts0.get(name, 0), sizes[name] - sizes0.get(name, 0))
             for name in set(counts) | set(counts0)),
            key=lambda t: -t[2])[:40]
        Path(report).write_text(json.dumps(found))

    signal.signal(signal.SIGUSR2, on_signal)
    from twisted.scripts.twistd import run

    sys.argv = ["twistd", *argv]
    run()


class Clients:
    """``count`` line clients that join through the nickname path and stay."""

    def __init__(self, port: int, count: int, inflight: int, prefix: str = "m") -> None:
        self.port, self.count, self.inflight, self.prefix = port, count, inflight, prefix
        self.sel = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.joined = 0
        self.started = 0

    def _start(self) -> None:
        i = self.started
        self.started += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.setblocking(False)
        # Source addresses past 127.0.0.1: ~28 000 ports each.
        sock.bind((f"127.0.{1 + i // 20000}.{1 + (i // 5000) % 4}", 0))
        sock.connect_ex(("127.0.0.1", self.port))
        nick = f"{self.prefix}{i}".encode()
        self.sel.register(sock, selectors.EVENT_READ, [nick, b"", 0])
        self.socks.append(sock)

    def run(self, deadline: float) -> None:
        while self.joined < self.count and time.monotonic() < deadline:
            while self.started < self.count and self.started - self.joined < self.inflight:
                self._start()
            for key, _ in self.sel.select(0.05):
                self._read(key)
        if self.joined < self.count:
            raise RuntimeError(f"only {self.joined} of {self.count} joined")

    def _read(self, key: selectors.SelectorKey) -> None:
        sock = key.fileobj
        assert isinstance(sock, socket.socket)
        nick, buf, stage = key.data
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            raise RuntimeError(f"{nick!r} closed")
        if stage == 2:
            return  # joined: read and forget
        buf += data
        if stage == 0 and b"nickname" in buf:
            sock.send(nick + b"\r\n")
            stage, buf = 1, b""
        elif stage == 1 and b"welcome, " + nick + b"!" in buf:
            stage, buf = 2, b""
            self.joined += 1
        key.data[1], key.data[2] = buf, stage

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in self.sel.select(0.05):
                self._read(key)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.sel.close()


def drive(args: argparse.Namespace) -> dict[str, Any]:
    tree = Path(args.tree).resolve() if args.tree else ROOT
    python = tree / ".venv" / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="census-") as tmp:
        log, report = Path(tmp) / "server.log", Path(tmp) / "report.json"
        env = dict(os.environ, CENSUS_TRACE="1" if args.trace else "0",
                   PYTHONPATH=str(tree))
        cmd = [str(python), str(Path(__file__).resolve()), "--serve", str(report), "--",
               "-n", "--pidfile=", f"--logfile={log}", "chatroom", "--port", "0",
               "--max-per-ip", "100000", "--max-clients", str(args.members + 500)]
        server = subprocess.Popen(cmd, cwd=tmp, env=env)
        clients: Clients | None = None
        try:
            port = _port(log, time.monotonic() + 30)
            time.sleep(1.0)
            server.send_signal(signal.SIGUSR2)
            time.sleep(2.0 + (args.members / 2000 if args.trace else 0))
            clients = Clients(port, args.members, args.inflight)
            t0 = time.monotonic()
            clients.run(t0 + 300)
            took = time.monotonic() - t0
            clients.pump(1.5)
            server.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 120 + args.members / 100
            while not report.exists() and time.monotonic() < deadline:
                clients.pump(0.2)
            found: dict[str, Any] = json.loads(report.read_text())
            found["join_s"] = took
            return found
        finally:
            if clients is not None:
                clients.close()
            server.kill()
            server.wait()


def _port(log: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        if log.exists():
            found = re.findall(r"listening on tcp:.*port=(\d+)\)", log.read_text(errors="replace"))
            if found:
                return int(found[-1])
        time.sleep(0.05)
    raise RuntimeError("no port in the server's log")


def show(found: dict[str, Any], members: int) -> str:
    out = [f"{members} members joined in {found['join_s']:.1f} s",
           f"RSS over idle: {found['rss_kb'] * 1024 / members:.0f} B a member now, "
           f"peak (VmHWM) {found['hwm_kb'] * 1024 / members:.0f} B"]
    if "traced_now" in found:
        out.append(f"traced over idle: {found['traced_now'] / members:.0f} B a member now, "
                   f"peak {found['traced_peak'] / members:.0f} B")
    out += ["", "| type (gc-tracked) | per member | bytes a member |", "|---|---|---|"]
    for name, count, size in found["types"]:
        if abs(size) >= members * 4:
            out.append(f"| {name} | {count / members:.2f} | {size / members:.0f} |")
    if "files" in found:
        out += ["", "| file (tracemalloc) | bytes a member | blocks a member |", "|---|---|---|"]
        for name, size, count in found["files"]:
            if abs(size) >= members * 4:
                out.append(f"| {name.split('site-packages/')[-1]} | {size / members:.0f} | "
                           f"{count / members:.2f} |")
        out += ["", "| line (tracemalloc) | bytes a member | blocks a member | callers |",
                "|---|---|---|---|"]
        for where, size, count, callers in found["lines"]:
            if abs(size) >= members * 4:
                short = [c.split("site-packages/")[-1].split("/chatroom/")[-1] for c in callers]
                out.append(f"| {where.split('site-packages/')[-1]} | {size / members:.0f} | "
                           f"{count / members:.2f} | {' < '.join(short)} |")
    for what, holders, n in found.get("who", []):
        out.append(f"made at {what}: {n} held by {holders}")
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[4:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--trace", action="store_true", help="tracemalloc by source line")
    parser.add_argument("--tree", default="", help="another checkout with its own .venv")
    parser.add_argument("--json", default="", help="also write the raw figures here")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it too
    found = drive(args)
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=1))
    print(show(found, args.members))
    return 0


if __name__ == "__main__":
    sys.exit(main())
