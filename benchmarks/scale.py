"""People, not lines: the scale workloads of issue 17 (``make bench-scale``).

1. ``crowd``: 15 000 members join one room at once through the nickname path (default
   limits but the per-address cap): how long the join storm takes, the server's peak RSS
   over its idle size per member, how long one line takes to reach all 15 000 (the slowest
   delivery of a line a second), ``/who``'s answer (time, bytes), and p99 at 100 lines/s
   (100 senders, one line a second each: default flood control holds).
2. ``storm``: 10 000 members present and 100 chatting (one line a second each); 2 s into the
   step 5 000 of the 10 000 reset their connections at once and 5 000 newcomers connect at
   once: the chatters' p99 during the storm, and nothing lost (every chatter and every
   remaining member gets every line, in order).
3. ``rooms-at``: 15 000 connections in 300 rooms of 50, 300 senders, 15 000 lines/s in total
   held for 5 s whatever the latency, against one room of 50 at the same lines/s in total and
   at the same per room; ``rooms``: ``rooms.py``'s ramp on 300 x 50 (10, 25, 50 a room).
5. ``web``: 2000 WebSocket members in one room and 1 sender, against 2000 line members on the
   same load: deliveries/s and server CPU per delivery (``/proc/PID/task/*/sched``).

A process has 20 000 descriptors at most and loopback ~28 000 ports per source address, so
a crowd is spread over several loadgen processes (``--passive``: receivers that check the
lines of another process's senders), each on its own source addresses in 127.0.0.0/8
(``--src-base``), started together (``--wait-stdin``). Every process and step is bounded.
Results: ``out/scale.md`` and ``out/scale.json``. ``BENCH_QUICK=1`` (or ``--quick``)
runs smaller crowds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import profile_hot
import rooms as rooms_bench
from run import (
    LOADGEN,
    OUT,
    P99_MS,
    Bench,
    Server,
    Step,
    build_loadgen,
    child_setup,
    machine,
    pin_driver,
    revision,
)

PER_ADDRESS = 5000
"""Clients per source address (of ~28 000 ports each)."""


class ScaleServer(Server):
    """chatroom with its default limits but the per-address cap (and, for the web workload,
    the flood allowance); ``web`` also opens the web port."""

    defaults: bool = True
    web: bool = False
    web_port: int = 0

    def command(self) -> list[str]:
        cmd = super().command()
        if self.defaults:  # drop run.py's --max-clients 100000 and flood settings
            for flag in ("--max-clients", "--rate", "--burst"):
                if flag in cmd:
                    at = cmd.index(flag)
                    del cmd[at:at + 2]
        return cmd + (["--web", "0"] if self.web else [])

    def start(self, timeout: float = 30.0) -> int:
        super().start(timeout)
        log = Path(next(a.split("=", 1)[1] for a in self.command_run if a.startswith("--logfile=")))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            lines = re.findall(r"listening on (web )?tcp:.*port=(\d+)\)", text)
            line_ports = [int(p) for web, p in lines if not web]
            web_ports = [int(p) for web, p in lines if web]
            if line_ports and (web_ports or not self.web):
                self.port = line_ports[-1]
                self.web_port = web_ports[-1] if web_ports else 0
                return self.port
            time.sleep(0.05)
        raise RuntimeError("no ports in the server's log")

    @property
    def command_run(self) -> list[str]:
        assert self.proc is not None
        return [str(a) for a in self.proc.args]  # type: ignore[union-attr]


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


def cpu_s(pid: int) -> float:
    """On-CPU seconds of every thread of ``pid`` (se.sum_exec_runtime, ms)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "sched").read_text().splitlines():
                if line.startswith("se.sum_exec_runtime"):
                    total += float(line.split(":")[1])
                    break
        except OSError:
            continue
    return total / 1000.0


class Loadgen:
    """One loadgen process whose JSON records are read by a thread; bounded by ``bound``."""

    def __init__(self, args: list[str], bound: float, bench: Bench, tag: str) -> None:
        self.records: list[Step] = []
        self.bench, self.tag = bench, tag
        self.proc = subprocess.Popen(
            [str(LOADGEN), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
            preexec_fn=child_setup("loadgen"))
        self.deadline = time.monotonic() + bound
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            record = json.loads(raw)
            record["tag"] = self.tag
            self.records.append(record)
            with open(self.bench.out / "steps.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if record["phase"] == "step":
                self.bench.note(f"{self.tag}: step {record['rate']:g}/s p99 "
                                f"{record['p99_ms']:.1f} ms max {record['max_ms']:.1f} ms "
                                f"owed {record['owed']} gaps {record['gaps']} "
                                f"pass {record['pass']}")

    def wait_for(self, phase: str, count: int = 1) -> list[Step]:
        while time.monotonic() < self.deadline:
            got = [r for r in self.records if r["phase"] == phase]
            if len(got) >= count:
                return got
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        raise RuntimeError(f"{self.tag}: no {phase} record ({self.records[-1:]}) {err}")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> list[Step]:
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        self.stop()
        self.reader.join(timeout=5)
        return [r for r in self.records if r["phase"] == "step"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def spread(server: Server, total: int, senders: int, bench: Bench, tag: str,
           steps: list[tuple[float, float]], processes: int, *, first_base: int = 0,
           storm: tuple[float, int] | None = None, inflight: int = 1000,
           extra_passive: int = 0, hs_timeout: float = 120.0) -> list[Loadgen]:
    """``total`` members over ``processes`` loadgens on their own source addresses; the
    first has the ``senders``, the others are passive receivers of them. ``storm`` goes to
    the last process. All wait for ``go`` before their steps."""
    share = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    if extra_passive:
        share.append(extra_passive)
    gens, base = [], first_base
    for i, clients in enumerate(share):
        ips = 1 + clients // PER_ADDRESS
        args = [
            "--port", str(server.port), "--clients", str(clients), "--senders", str(senders),
            "--server-pid", str(server.pid), "--drain", "5", "--inflight", str(inflight),
            "--p99-ms", str(P99_MS), "--hs-timeout", f"{hs_timeout:g}", "--wait-stdin",
            "--src-base", str(base), "--src-ips", str(ips), "--nick-prefix", "abcdefgh"[i],
        ]  # fmt: skip
        base += ips
        if i:
            args.append("--passive")
        if storm and i == len(share) - 1:
            args += ["--storm-at", f"{storm[0]:g}:{storm[1]}"]
        for rate, secs in steps:
            args += ["--step", f"{rate:g}:{secs:g}"]
        bound = hs_timeout + 60 + sum(s + 10 for _, s in steps)
        gens.append(Loadgen(args, bound, bench, f"{tag}-{i}"))
    return gens


def stop_all(gens: list[Loadgen]) -> None:
    for g in gens:
        g.stop()


# -- /who, by hand -------------------------------------------------------------------------


def who(port: int, nick: str = "whoprobe", limit: float = 30.0) -> dict[str, Any]:
    """Join as ``nick``, ask ``/who``: seconds from asking to the whole answer, its bytes."""
    deadline = time.monotonic() + limit
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        buf = b""

        def line_with(word: bytes) -> bytes:
            nonlocal buf
            while time.monotonic() < deadline:
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if word in line:
                        return line
                if word == b"nickname" and word in buf.lower():
                    return buf
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("closed")
                buf += chunk
            raise RuntimeError(f"no line with {word!r}")

        line_with(b"nickname")
        buf = b""
        s.sendall(nick.encode() + b"\r\n")
        line_with(nick.encode())
        t0 = time.monotonic()
        s.sendall(b"/who\r\n")
        answer = line_with(b" in the room: ")
        return {"seconds": time.monotonic() - t0, "bytes": len(answer) + 1,
                "count": int(answer.split(b"*** ", 1)[-1].split(b" ", 1)[0])}


# -- the workloads -------------------------------------------------------------------------


@contextmanager
def recording(pid: int, name: str, on: bool, seconds: float = 120.0) -> Iterator[None]:
    """With ``on``: py-spy samples of ``pid`` (collapsed stacks, ``out/profile-NAME.txt``)
    while the block runs; the summary (``profile_hot.summarize``) goes to stderr."""
    spy = profile_hot.py_spy() if on else None
    if spy is None:
        yield
        return
    path = OUT / f"profile-{name}.txt"
    proc = subprocess.Popen([spy, "record", "-p", str(pid), "--format", "raw", "--nonblocking",
                             "-r", "50", "-d", f"{seconds:g}", "-o", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if path.exists():
        print(profile_hot.summarize(path, top=25)["text"], file=sys.stderr)


def crowd(bench: Bench, members: int, processes: int, profile: bool = False,
          kind: str = "chatroom", join_only: bool = False) -> dict[str, Any]:
    """Workload 1: the join storm, memory, one line to all, /who, p99 at 100 lines/s;
    ``join_only``: the join storm and memory, then one second of 1 line/s (A/B rounds of
    a join-path change)."""
    found: dict[str, Any] = {"members": members}
    bench.note(f"--- crowd: {members} members in #lobby over {processes} loadgens")
    server = ScaleServer(kind, bench.out / "logs", chat_rate=None,
                         extra=["--max-clients", str(members + 500)])
    with server:
        time.sleep(1.0)
        found["idle_rss_kb"] = status_kb(server.pid, "VmRSS")
        cpu0 = cpu_s(server.pid)
        t0 = time.monotonic()
        gens = spread(server, members, 100, bench, "crowd",
                      [(1, 1)] if join_only else [(1, 4), (100, 8)], processes)
        try:
            with recording(server.pid, "crowd-join", profile):
                hss = [g.wait_for("handshake")[0] for g in gens]
            found["join_s"] = time.monotonic() - t0
            found["join_s_loadgen"] = max(h["handshake_s"] for h in hss)
            found["joined"] = sum(h["joined"] for h in hss)
            found["join_cpu_s"] = cpu_s(server.pid) - cpu0
            found["peak_rss_kb"] = status_kb(server.pid, "VmHWM")
            found["rss_kb"] = status_kb(server.pid, "VmRSS")
            found["who"] = who(server.port)
            with recording(server.pid, "crowd-steps", profile):
                for g in gens:
                    g.go()
                steps = [g.finish() for g in gens]
        finally:
            stop_all(gens)
        found["peak_rss_end_kb"] = status_kb(server.pid, "VmHWM")
    found["steps"] = steps
    found["kb_per_member"] = (found["peak_rss_kb"] - found["idle_rss_kb"]) / members
    by_rate: dict[float, list[Step]] = {}
    for per_gen in steps:
        for s in per_gen:
            by_rate.setdefault(s["rate"], []).append(s)
    found["one_line_s"] = max(s["max_ms"] for s in by_rate.get(1.0, [])) / 1000.0
    hundred = by_rate.get(100.0, [])
    found["p99_ms"] = max(s["p99_ms"] for s in hundred) if hundred else None
    found["pass_100"] = bool(hundred) and all(s["pass"] for s in hundred)
    found["deliveries_per_s_100"] = sum(s["deliveries_per_s"] for s in hundred)
    found["cpu_us_per_delivery_100"] = _cpu_us(hundred)
    return found


def storm(bench: Bench, present: int, chatters: int, churn: int,
          kind: str = "chatroom", profile: bool = False) -> dict[str, Any]:
    """Workload 2: ``churn`` of ``present`` members reset and as many join at once while
    ``chatters`` talk, one line a second each."""
    found: dict[str, Any] = {"present": present, "chatters": chatters, "churn": churn}
    bench.note(f"--- storm: {present} present, {chatters} chatting, {churn} leave and join")
    server = ScaleServer(kind, bench.out / "logs", chat_rate=None,
                         extra=["--max-clients", str(present + churn + 500)])
    with server:
        # the chatters' process, and the crowd on its own addresses (the storm is its own)
        gens = spread(server, chatters, chatters, bench, "storm", [(chatters, 10)], 1,
                      extra_passive=present - chatters, storm=(2.0, churn))
        try:
            [g.wait_for("handshake") for g in gens]
            found["join_s"] = max(g.records[0]["handshake_s"] for g in gens)
            with recording(server.pid, "storm", profile):
                for g in gens:
                    g.go()
                steps = [g.finish() for g in gens]
        finally:
            stop_all(gens)
    chat, rest = steps[0][0], steps[1][0]
    found.update(chat=chat, crowd=rest, p99_ms=chat["p99_ms"], max_ms=chat["max_ms"],
                 storm_join_s=rest["storm_join_s"], storm_joined=rest["storm_joined"],
                 storm_pending=rest["storm_pending"],
                 lost=sum(s[k] for s in (chat, rest) for k in ("owed", "gaps", "out_of_order",
                                                               "dups", "cut")),
                 passed=chat["pass"] and rest["pass"])
    return found


def _cpu_us(steps: list[Step]) -> float | None:
    """Server CPU µs per delivery over processes that watched the same server and window:
    the CPU once (the largest reading), the deliveries of all."""
    delivered = sum(s["delivered"] for s in steps)
    return max(s["server_cpu_s"] for s in steps) / delivered * 1e6 if delivered else None


# -- the web workload ----------------------------------------------------------------------


async def _ws_member(port: int, nick: str, counts: list[int], ready: asyncio.Event,
                     joined: list[int], total: int, stop: asyncio.Event,
                     sender: asyncio.Queue[str] | None = None) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Origin: http://127.0.0.1:{port}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await reader.readuntil(b"\r\n\r\n")

    def send(obj: dict[str, str]) -> None:
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        head = bytes([0x81]) + (bytes([0x80 | len(payload)]) if len(payload) < 126
                                else bytes([0x80 | 126]) + struct.pack("!H", len(payload)))
        writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    send({"type": "nick", "nick": nick})
    welcomed = False
    buf = b""
    while not stop.is_set():
        if sender is not None and welcomed and not sender.empty():
            while not sender.empty():
                send({"type": "say", "text": sender.get_nowait()})
        try:
            chunk = await asyncio.wait_for(reader.read(1 << 16), 0.05 if sender else 1.0)
        except TimeoutError:
            continue
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2:
            n, at = buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, at = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, at = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < at + n:
                break
            payload, buf = buf[at:at + n], buf[at + n:]
            if not welcomed and b'"welcome"' in payload:
                welcomed = True
                joined[0] += 1
                if joined[0] == total:
                    ready.set()
            elif b'"said"' in payload:
                counts[0] += 1
    writer.close()


async def _ws_run(port: int, members: int, rate: float, secs: float, pid: int,
                  limit: float) -> dict[str, Any]:
    counts, joined = [0], [0]
    ready, stop = asyncio.Event(), asyncio.Event()
    lines: asyncio.Queue[str] = asyncio.Queue()
    tasks = []
    for i in range(members):
        tasks.append(asyncio.create_task(_ws_member(
            port, f"w{i}", counts, ready, joined, members, stop, lines if i == 0 else None)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    t0 = time.monotonic()
    await asyncio.wait_for(ready.wait(), limit)
    join_s = time.monotonic() - t0
    await asyncio.sleep(1.0)
    c0, cpu0, ts = counts[0], cpu_s(pid), time.monotonic()
    sent = 0
    while time.monotonic() - ts < secs:
        due = int((time.monotonic() - ts) * rate)
        for _ in range(due - sent):
            lines.put_nowait(f"#L 0 {sent} {time.monotonic_ns()}")
            sent += 1
        await asyncio.sleep(0.005)
    t_end = time.monotonic()
    expected = sent * members  # the web echoes a line to its sender too
    while counts[0] - c0 < expected and time.monotonic() - t_end < 5.0:
        await asyncio.sleep(0.05)
    cpu = cpu_s(pid) - cpu0
    delivered = counts[0] - c0
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"members": members, "rate": rate, "seconds": secs, "sent": sent,
            "expected": expected, "delivered": delivered, "join_s": join_s,
            "deliveries_per_s": delivered / (t_end - ts), "server_cpu_s": cpu,
            "cpu_us_per_delivery": cpu / delivered * 1e6 if delivered else None}


def rooms_at(bench: Bench, rooms: int, members: int, per_room: float, secs: float,
             kind: str = "chatroom") -> dict[str, Any]:
    """Workload 3 at one rate, held whatever the latency (no ramp, no abort): ``rooms`` x
    ``members`` with one sender a room at ``per_room`` lines/s; then one room of ``members``
    at the same lines/s in total, and at the same per room, each on a fresh server."""
    found: dict[str, Any] = {"rooms": rooms, "members": members, "per_room": per_room}
    runs = (("many", rooms * members, rooms, per_room * rooms, rooms),
            ("one_total", members, 1, per_room * rooms, 1),
            ("one_room", members, 1, per_room, 1))
    for label, clients, senders, rate, n_rooms in runs:
        bench.note(f"--- rooms at one rate: {label}, {clients} members, {rate:g} lines/s")
        with bench.server(kind) as server:
            _, steps = bench.loadgen(server, clients, senders, [(rate, secs)], drain=5.0,
                                     rooms=n_rooms, hs_timeout=rooms_bench.SETUP_S,
                                     tag=f"rooms-at-{label}")
        step = steps[-1]
        found[label] = {k: step[k] for k in (
            "rate", "delivered", "deliveries_per_s", "p50_ms", "p99_ms", "owed", "cut",
            "server_cpu_s", "pass")}
        found[label]["cpu_us_per_delivery"] = (
            step["server_cpu_s"] / step["delivered"] * 1e6 if step["delivered"] else None)
    return found


def web(bench: Bench, members: int, rate: float, secs: float,
        kind: str = "chatroom") -> dict[str, Any]:
    """Workload 5: ``members`` WebSocket members, 1 sender at ``rate``; then as many line
    members under the same load, on a server of their own."""
    found: dict[str, Any] = {"members": members, "rate": rate}
    bench.note(f"--- web: {members} WebSocket members, 1 sender at {rate:g}/s")
    server = ScaleServer(kind, bench.out / "logs")
    server.defaults, server.web = False, True
    with server:
        found["web"] = asyncio.run(asyncio.wait_for(
            _ws_run(server.web_port, members, rate, secs, server.pid, 120.0), 200.0))
    bench.note(f"web: {found['web']}")
    bench.note(f"--- web: {members} line members, 1 sender at {rate:g}/s")
    with bench.server(kind) as line_server:
        _, steps = bench.loadgen(line_server, members, 1, [(rate, secs)], drain=5.0,
                                 tag="web-lines")
    step = steps[-1]
    found["lines"] = {"delivered": step["delivered"], "deliveries_per_s": step["deliveries_per_s"],
                      "server_cpu_s": step["server_cpu_s"], "p99_ms": step["p99_ms"],
                      "pass": step["pass"],
                      "cpu_us_per_delivery": step["server_cpu_s"] / step["delivered"] * 1e6
                      if step["delivered"] else None}
    return found


# -- the report ----------------------------------------------------------------------------


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def report(found: dict[str, Any]) -> str:
    out = [f"# Scale (issue 17): {found['server']}\n\n{machine()}; revision {revision()}. "
           "Server and loadgens share the machine's 2 cores with other work.\n"]
    c = found.get("crowd")
    if c:
        w = c["who"]
        out += [
            f"## 1. {c['members']} members in one room\n",
            "| figure | value | target | verdict |", "|---|---|---|---|",
            f"| join storm ({c['joined']} joined, nickname path) | {c['join_s']:.1f} s "
            f"(server CPU {c['join_cpu_s']:.1f} s, "
            f"{c['join_cpu_s'] / max(c['joined'], 1) * 1e6:.0f} µs a join) | < 10 s | "
            f"{'pass' if c['join_s'] < 10 and c['joined'] == c['members'] else 'FAIL'} |",
            f"| peak RSS over idle, per member | {c['kb_per_member']:.2f} KB (idle "
            f"{c['idle_rss_kb'] / 1024:.0f} MB, peak {c['peak_rss_kb'] / 1024:.0f} MB) | "
            f"≤ 3 KB | {'pass' if c['kb_per_member'] <= 3 else 'FAIL'} |",
            f"| one line to all (slowest delivery, 1 line/s) | {c['one_line_s'] * 1000:.0f} ms "
            f"| < 1 s | {'pass' if c['one_line_s'] < 1 else 'FAIL'} |",
            f"| `/who` | {w['seconds'] * 1000:.0f} ms, {w['bytes'] / 1024:.0f} KB, "
            f"{w['count']} names | answers | pass |",
            f"| p99 at 100 lines/s ({c['deliveries_per_s_100'] / 1e6:.2f}M deliveries/s, "
            f"{_f(c['cpu_us_per_delivery_100'])} µs CPU each) | {_f(c['p99_ms'], '{:.1f}')} ms "
            f"| < 100 ms, nothing lost | {'pass' if c['pass_100'] else 'FAIL'} |", "",
        ]
    s = found.get("storm")
    if s:
        out += [
            f"## 2. Storm: {s['churn']} reset and {s['churn']} join at once among "
            f"{s['present']}, {s['chatters']} chatting\n",
            f"Chat p99 {s['p99_ms']:.1f} ms (max {s['max_ms']:.0f} ms; target < 250 ms); "
            f"lines lost, doubled, reordered or cut: {s['lost']}; {s['storm_joined']} of the "
            f"{s['churn']} newcomers were welcomed by the end of the step, the last "
            f"{s['storm_join_s']:.1f} s after the storm began; "
            f"verdict **{'pass' if s['passed'] and s['p99_ms'] < 250 else 'FAIL'}**.\n",
        ]
    r = found.get("rooms")
    if r:
        out += [f"## 3. {r['rooms']} rooms of {r['members']}\n", rooms_bench.table(r), ""]
    ra = found.get("rooms_at")
    if ra:
        out += [
            f"## 3. {ra['rooms']} rooms of {ra['members']} at {ra['per_room']:g} lines/s a "
            "room, held\n",
            "| load | lines/s | deliveries/s | p50 / p99 ms | µs server CPU per delivery | "
            "verdict |", "|---|---|---|---|---|---|",
        ]
        for label, what in (("many", f"{ra['rooms']} rooms x {ra['members']}"),
                            ("one_total", f"1 room of {ra['members']}, same lines/s in total"),
                            ("one_room", f"1 room of {ra['members']}, same lines/s a room")):
            r = ra[label]
            out.append(f"| {what} | {r['rate']:g} | {r['deliveries_per_s']:.0f} | "
                       f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} | "
                       f"{_f(r['cpu_us_per_delivery'])} | "
                       f"{'pass' if r['pass'] else 'fail'} (owed {r['owed']}, cut {r['cut']}) |")
        out.append("")
    wb = found.get("web")
    if wb:
        a, b = wb["web"], wb["lines"]
        out += [
            f"## 5. {wb['members']} members, 1 sender at {wb['rate']:g} lines/s\n",
            "| front end | deliveries/s | µs server CPU per delivery | delivered / expected |",
            "|---|---|---|---|",
            f"| WebSocket | {a['deliveries_per_s']:.0f} | {_f(a['cpu_us_per_delivery'])} | "
            f"{a['delivered']} / {a['expected']} |",
            f"| line | {b['deliveries_per_s']:.0f} | {_f(b['cpu_us_per_delivery'])} | "
            f"{b['delivered']} (pass {b['pass']}) |",
            f"\nWeb / line CPU per delivery: "
            f"{_f((a['cpu_us_per_delivery'] or 0) / (b['cpu_us_per_delivery'] or 1))}.\n",
        ]
    return "\n".join(out)


@contextmanager
def _bench(quick: bool) -> Iterator[Bench]:
    OUT.mkdir(parents=True, exist_ok=True)
    yield Bench(quick=quick, out=OUT)


def main(argv: list[str] | None = None) -> int:
    pin_driver()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workloads", nargs="*", default=["crowd", "storm", "rooms-at", "web"],
                        help="crowd, storm, rooms-at (300x50 held at 50 lines/s a room), "
                             "rooms (rooms.py's ramp on 300x50), web")
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("BENCH_QUICK") == "1")
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="py-spy the crowd's server")
    parser.add_argument("--join-only", action="store_true",
                        help="crowd: the join storm and memory only (no 100 lines/s step)")
    parser.add_argument("--servers", default="chatroom",
                        help="comma-separated, as run.py names them (chatroom@TREE for "
                             "another checkout): each workload runs on each in turn")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    build_loadgen()
    kinds = args.servers.split(",")
    runs: list[dict[str, Any]] = []
    text = ""
    with _bench(args.quick) as bench:
        q = args.quick
        for w in args.workloads:
            for _ in range(args.rounds):
                for kind in kinds:
                    found: dict[str, Any] = {"server": kind}
                    if w == "crowd":
                        found["crowd"] = crowd(bench, args.members or (5000 if q else 15000),
                                               args.processes, args.profile, kind,
                                               args.join_only)
                    elif w == "storm":
                        found["storm"] = storm(bench, 4000 if q else 10000, 100,
                                               2000 if q else 5000, kind, args.profile)
                    elif w == "rooms":
                        found["rooms"] = rooms_bench.measure(
                            bench, 60 if q else 300, 50, [10.0, 50.0] if q else [10.0, 25, 50],
                            with_memory=False, kind=kind)
                    elif w == "rooms-at":
                        found["rooms_at"] = rooms_at(bench, 60 if q else 300, 50, 50.0,
                                                     5.0, kind)
                    elif w == "web":
                        found["web"] = web(bench, 500 if q else 2000, 20.0,
                                           5.0 if q else 10.0, kind)
                    else:
                        parser.error(f"unknown workload {w!r}")
                    runs.append(found)
                    text = "\n".join(report(r) for r in runs)
                    (OUT / "scale.md").write_text(text)
                    (OUT / "scale.json").write_text(json.dumps(runs, indent=1, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
