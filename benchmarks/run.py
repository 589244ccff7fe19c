"""Fan-out benchmarks: chatroom against the naive Twisted baseline, in the same run.

``python benchmarks/run.py`` (what ``make bench`` runs) builds the C load generator, then
for each server (chatroom, and ``baseline_naive.py``) measures, on loopback with server and
load generator sharing the machine's cores:

1. 1000 clients, 1 sender: the highest rate that passes (nothing lost, order kept, p99 <
   100 ms), and server CPU seconds per million deliveries at 3000 msgs/s;
2. 100 clients, 10 senders: the highest rate that passes;
3. low load, 100 clients, 10 senders, 500 msgs/s: p50/p99 latency;
4. overload, 1000 clients and 1 sender at twice the server's own workload-1 saturation
   for 10 s: peak RSS, whether a newcomer (a separate client) joins within 1 s, and whether
   every reading member got every line in order or was cut by the slow-consumer cap;
5. memory: (peak RSS with 2000 idle members - with 10) / 1990, per member.

Every run is bounded in time; the saturation search is a ramp (each step a higher rate on
the same connections, ending at the second failing step in a row; a timing failure is
tried once more) followed by a finer ramp on a fresh server. Results: a table on stdout
and in ``benchmarks/out/results.md``, every step as a JSON line in
``benchmarks/out/steps.jsonl``, the summary in ``results.json``.
``BENCH_QUICK=1`` (or ``--quick``) runs a ~2 minute version. A full run also profiles
chatroom under workloads 1 and 2 with py-spy if it is installed (``profile_hot.py``;
``--no-profile`` skips it). Workload 4b repeats the overload at a fixed rate past what this
rig moves, because "twice saturation" may not overload a server whose p99 is flat.

A full run ends with ``scaling.py``'s sweeps (cost per delivery as members and senders
grow), as a table and ``out/scaling.svg``.

A run also repeats workload 3 five times on fresh servers (``latency.py``): one run's
p99 at low load says little on a shared machine.

Other subcommands: ``one`` runs one server under one load (for cross-checks),
``latency`` runs only workload 3's repeats (``--trace``: where the milliseconds go),
``scaling`` runs only the sweeps,
``experiments`` compares patched variants (``variants.py``), ``burst`` checks that a burst
within the default flood allowance cuts no reader. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
LOADGEN_SRC = HERE / "loadgen.c"
LOADGEN = OUT / "loadgen"
FLOOR_SRC = HERE / "floor.c"
FLOOR = OUT / "floor"
BIN = Path(sys.executable).parent
SERVERS = ("chatroom", "baseline")
P99_MS = 100.0
SETTLE = 1.0
"""Seconds between the last join and the first measured line: the tail of the joins'
announcements (1000 joins are 500 000 lines on a server without batching) stays out."""

Step = dict[str, Any]


# -- building and running ------------------------------------------------------------------


def build_loadgen() -> Path:
    """Compile loadgen.c with gcc -O2 unless the binary is newer than the source."""
    return _build(LOADGEN_SRC, LOADGEN)


def _build(source: Path, binary: Path) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    cc = os.environ.get("CC", "gcc")
    subprocess.run(
        [cc, "-O2", "-Wall", "-pthread", "-o", str(binary), str(source), "-lm"],
        check=True, timeout=120,
    )
    return binary


@dataclass
class Server:
    """One server process on a free loopback port, stopped by its PID."""

    kind: str
    logdir: Path
    chat_rate: int | None = 100_000  # None: chatroom's default flood control
    extra: list[str] = field(default_factory=list)
    irc: bool = False  # chatroom: also serve IRC (--irc), and measure that port
    inflight: int = 32  # clients loadgen lets register at once (its listen backlog allowing)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    _tmp: str = ""
    _source: Path = Path()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        if self.kind in ("baseline", "baseline-nagle"):
            # baseline-nagle: the tutorial as written, without TCP_NODELAY (README.md)
            nodelay = ["--no-nodelay"] if self.kind == "baseline-nagle" else ["--nodelay"]
            return [sys.executable, str(HERE / "baseline_naive.py"), "--port", "0", *nodelay]
        if re.fullmatch(r"floor\d*", self.kind):
            # floor.c: the kernel's share of a fan-out, what no server on this machine beats;
            # floorN sends each pass from N threads
            threads = self.kind[len("floor"):] or "1"
            return [str(_build(FLOOR_SRC, FLOOR)), "--port", "0", f"--logfile={self._log()}",
                    "--threads", threads]
        if self.kind.startswith("chatroom"):
            # chatroom[-nohist][@TREE][+PATCH,PATCH]: -nohist runs with --history none;
            # @TREE runs the checkout at TREE with its own venv (TREE/.venv), for before/after
            # figures; +PATCH with variants.py's experimental patches
            flood = [] if self.chat_rate is None else [
                "--rate", str(self.chat_rate), "--burst", str(self.chat_rate)]
            name, _, patches = self.kind.partition("+")
            name, _, tree = name.partition("@")
            if name not in ("chatroom", "chatroom-nohist") or (tree and patches):
                raise ValueError(f"unknown server {self.kind!r}")
            history = ["--history", "none"] if name == "chatroom-nohist" else []
            irc = ["--irc", "0", "--irc-name", "bench.local"] if self.irc else []
            launcher = (
                [sys.executable, str(HERE / "variants.py"), patches] if patches
                else [str(Path(tree).resolve() / ".venv" / "bin" / "twistd")] if tree
                else [str(BIN / "twistd")]
            )
            return [
                *launcher, "-n", "--pidfile=", f"--logfile={self._log()}", "chatroom",
                "--port", "0", *flood, *history,
                "--max-per-ip", "100000", "--max-clients", "100000", *irc, *self.extra,
            ]  # fmt: skip
        raise ValueError(f"unknown server {self.kind!r}")

    def _name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.kind)

    def _log(self) -> Path:
        return self.logdir / f"{self._name()}-{os.getpid()}-{time.monotonic_ns()}.log"

    def start(self, timeout: float = 30.0) -> int:
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.mkdtemp(prefix="chatbench-")
        cmd = self.command()
        log = Path(next((a.split("=", 1)[1] for a in cmd if a.startswith("--logfile=")), ""))
        stdout = self._log().with_suffix(".stdout")
        self._source = log if log.name else stdout
        out = open(stdout, "wb")  # noqa: SIM115 (Popen keeps its own copy)
        self.proc = subprocess.Popen(cmd, cwd=self._tmp, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=child_setup("server"))
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with {self.proc.returncode}: see {self._source}")
            port = self.listening_port()
            if port:
                self.port = port
                return self.port
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen within {timeout} s")

    def listening_port(self) -> int | None:
        """The port the server says it listens on (in its log), once it says so."""
        pattern = (rb"listening on irc .*port=(\d+)\)" if self.irc
                   else rb"port=(\d+)\)" if self.kind.startswith(("chatroom", "floor"))
                   else rb"listening on .*:(\d+)")
        try:
            matches = re.findall(pattern, self._source.read_bytes())
        except FileNotFoundError:
            return None
        return int(matches[-1]) if matches else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Bench:
    """The knobs of one benchmark run (full or quick), and where its results go."""

    quick: bool
    out: Path
    servers: tuple[str, ...] = SERVERS
    retries: int = 1
    late_ok: bool = True  # False: the ramp as before 2026-12-05, for before/after figures
    irc: bool = False  # loadgen speaks IRC (--irc)
    waited: float = 0.0
    log: list[Step] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def step_s(self) -> float:
        return 2.0 if self.quick else 3.0

    def server(self, kind: str) -> Server:
        """A server for the next measurement, once the machine is quiet (bounded wait)."""
        budget = (0.0 if self.quick else 30.0) - self.waited
        if budget > 0:
            t0 = time.monotonic()
            quiet_machine(self, limit=min(budget, 3.0))
            self.waited += time.monotonic() - t0
        return self.make_server(kind)

    def make_server(self, kind: str) -> Server:
        return Server(kind, self.out / "logs")

    def note(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def loadgen(
        self,
        server: Server,
        clients: int,
        senders: int,
        steps: list[tuple[float, float]],
        *,
        ramp: int = 0,
        drain: float = 2.0,
        probes: list[float] | None = None,
        settle: float = 0.0,
        tag: str = "",
        on_handshake: Callable[[Step], None] | None = None,
        rooms: int = 0,
        rooms_each: int = 1,
        hs_timeout: float = 60.0,
    ) -> tuple[Step, list[Step]]:
        """Run loadgen against ``server``; return its handshake record and its steps.

        With ``rooms`` client i joins ``#r{i % rooms}`` (and the ``rooms_each - 1`` rooms
        after it) and leaves ``#lobby`` before the steps; sender s talks in ``#r{s % rooms}``."""
        cmd = [
            str(LOADGEN), "--port", str(server.port), "--clients", str(clients),
            "--senders", str(senders), "--server-pid", str(server.pid),
            "--drain", str(drain), "--settle", str(settle), "--inflight", str(server.inflight),
            "--p99-ms", str(P99_MS), "--hs-timeout", f"{hs_timeout:g}",
            # ~28000 ephemeral ports per source address: a big crowd uses several
            "--src-ips", str(1 + clients // 5000),
        ]  # fmt: skip
        if rooms:
            cmd += ["--rooms", str(rooms), "--rooms-each", str(rooms_each)]
        if self.irc:
            cmd.append("--irc")
        for rate, secs in steps:
            cmd += ["--step", f"{rate:g}:{secs:g}"]
        if ramp:
            # late-ok: a step that was only late (everything arrived within the drain) does
            # not end the ramp; one that fell behind does (see loadgen.c)
            cmd += ["--stop-after", str(ramp), *(["--late-ok"] if self.late_ok else []),
                    "--abort", "--retries", str(self.retries)]
        if probes:
            cmd += ["--probe-at", ",".join(f"{p:g}" for p in probes)]
        attempts = 1 + (self.retries if ramp else 0)  # a ramp's steps may be tried again
        bound = hs_timeout + settle + attempts * sum(s + drain + 4 for _, s in steps)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, preexec_fn=child_setup("loadgen"))
        handshake: Step = {}
        results: list[Step] = []
        deadline = time.monotonic() + bound
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                record = json.loads(raw)
                record.update(server=server.kind, tag=tag)
                self.log.append(record)
                with open(self.out / "steps.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                if record["phase"] == "handshake":
                    handshake = record
                    if on_handshake is not None:
                        on_handshake(record)
                else:
                    results.append(record)
                    self.note(_describe(record))
                if time.monotonic() > deadline:
                    break
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not handshake or handshake.get("joined") != clients:
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"{server.kind}: handshake failed: {handshake} {err}")
        return handshake, results

    # -- workloads -------------------------------------------------------------------------

    def ramp_p99(self, tag: str, kind: str) -> str:
        """p99 at each rate of a coarse ramp (last attempt), e.g. '500:57 1000:77'."""
        steps: dict[float, Step] = {}
        for r in self.log:
            if r.get("tag") == tag and r.get("server") == kind and r["phase"] == "step":
                steps[r["rate"]] = r
        return " ".join(f"{rate:g}:{'x' if r['aborted'] else round(r['p99_ms'])}"
                        for rate, r in sorted(steps.items()))

    def saturation(self, kind: str, clients: int, senders: int, coarse: list[float],
                   tag: str, first: tuple[float, float] | None = None,
                   fine: bool = True) -> dict[str, Any]:
        """The highest rate that passes: a coarse ramp, then a finer one on a fresh server.

        A ramp goes on past one failing rate and ends at the second in a row: where p99
        sits near the limit at every rate (chatroom with 1000 members: one reactor turn is
        one pass over all of them), one unlucky step must not decide the figure."""
        steps = [(r, self.step_s) for r in coarse]
        if first is not None:
            steps.insert(0, first)
        with self.server(kind) as server:
            _, results = self.loadgen(server, clients, senders, steps, ramp=2, tag=tag,
                                      settle=SETTLE)
        low = _last_attempt(results, 0) if first is not None else None
        ramp = [r for r in results if first is None or r["step"] > 0]
        best, fail_rate = _best(ramp)
        if fine and not self.quick and best is not None and fail_rate is not None:
            # A fresh server, warmed up at 70%, then from 85% of the coarse pass upwards in
            # steps of 10% up to the coarse failure: the saturation rate is the last step
            # that passes here, so a coarse pass that does not repeat is not reported.
            lo = best["rate"]
            rates = [lo * f for f in (0.7, 0.85, 1.0, 1.1, 1.2, 1.3, 1.4) if lo * f < fail_rate]
            with self.server(kind) as server:
                _, again = self.loadgen(
                    server, clients, senders,
                    [(rates[0], 1.5)] + [(r, self.step_s) for r in rates[1:]],
                    ramp=2, tag=tag + "-fine", settle=SETTLE,
                )
            fine_best, fine_fail = _best([r for r in again if r["step"] > 0])
            if fine_best is not None:
                best, fail_rate = fine_best, fine_fail or fail_rate
            else:  # not even 85% of the coarse pass repeated: keep it, and say so
                best = dict(best, unconfirmed=True)
        return {"best": best, "first_fail_rate": fail_rate, "low": low}

    def fixed(self, kind: str, clients: int, senders: int, rate: float, secs: float,
              tag: str, drain: float = 3.0) -> Step:
        """One rate on a fresh server; a timing failure is tried once more (noise)."""
        for attempt in range(1 + (0 if self.quick else self.retries)):
            with self.server(kind) as server:
                _, results = self.loadgen(server, clients, senders, [(rate, secs)],
                                          drain=drain, tag=tag, settle=SETTLE)
            step = dict(results[0], attempt=attempt)
            if step["pass"] or not _timing_only(step):
                break
        return step

    def overload(self, kind: str, rate: float) -> Step:
        """Twice saturation for 10 s, with a newcomer trying to join now and then.

        The newcomer is a separate client in a thread of this process, not one of
        loadgen's: loadgen is itself saturated here, and would time its own slowness."""
        secs = 5.0 if self.quick else 10.0
        times = [1.0, 3.0] if self.quick else [2.0, 5.0, 8.0]
        joins: list[float] = []
        threads: list[threading.Thread] = []

        def start_probes(_: Step) -> None:
            thread = threading.Thread(target=probe_joins, args=(server.port, times, joins),
                                      daemon=True)
            thread.start()
            threads.append(thread)

        with self.server(kind) as server:
            _, results = self.loadgen(server, 1000, 1, [(rate, secs)], drain=secs,
                                      tag="w4-overload", on_handshake=start_probes)
            for thread in threads:
                thread.join(timeout=10)
        return dict(results[0], probe_join_ms=joins)

    def memory(self, kind: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for n in (10, 2000):
            with self.server(kind) as server:
                handshake, _ = self.loadgen(server, n, 1, [], settle=1.0, tag=f"w5-idle-{n}")
            found[f"hwm_kb_{n}"] = handshake["server_hwm_kb"]
            found[f"rss_kb_{n}"] = handshake["server_rss_kb"]
            found[f"handshake_s_{n}"] = handshake["handshake_s"]
        found["kb_per_member_peak"] = (found["hwm_kb_2000"] - found["hwm_kb_10"]) / 1990
        found["kb_per_member_rss"] = (found["rss_kb_2000"] - found["rss_kb_10"]) / 1990
        return found


def probe_joins(port: int, times: list[float], found: list[float], limit: float = 5.0) -> None:
    """At each of ``times`` (seconds from now) join as a new client; append how many ms it
    took from connect to the welcome line, or -1 if it did not come within ``limit``."""
    t0 = time.monotonic()
    for i, at in enumerate(times):
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        nick = f"newcomer{i}".encode()
        start = time.monotonic()
        deadline = start + limit
        took = -1.0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
                buffer = b""
                sent = False
                while time.monotonic() < deadline:
                    sock.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    if not sent and b"nickname" in buffer.lower():
                        sock.sendall(nick + b"\r\n")
                        sent, buffer = True, b""
                    elif sent and re.search(rb"\b" + nick + rb"\b", buffer):
                        took = (time.monotonic() - start) * 1000
                        break
                    buffer = buffer[-4096:]
        except OSError:
            pass
        found.append(took)


def _best(steps: list[Step]) -> tuple[Step | None, float | None]:
    """The passing step with the highest rate, and the lowest failing rate above it."""
    passed = [r for r in steps if r["pass"]]
    best = max(passed, key=lambda r: r["rate"]) if passed else None
    floor = best["rate"] if best else 0.0
    failed = [r["rate"] for r in steps if not r["pass"] and r["rate"] > floor
              and not any(p["rate"] == r["rate"] for p in passed)]
    return best, (min(failed) if failed else None)


def _last_attempt(results: list[Step], index: int) -> Step | None:
    mine = [r for r in results if r["step"] == index]
    return mine[-1] if mine else None


def _timing_only(step: Step) -> bool:
    """Failed by lateness alone: no line lost for good, doubled, reordered, no member cut."""
    return not (step["gaps"] or step["out_of_order"] or step["dups"] or step["cut"])


def child_setup(role: str) -> Callable[[], None]:
    """The ``preexec_fn`` of a ``server`` or ``loadgen`` child: BENCH_NICE (below), and
    the cores BENCH_PIN gives its role. ``BENCH_PIN=split`` runs servers on core 0 and
    load generators on the others; ``server=0,loadgen=1+2`` names them. On one machine
    the scheduler otherwise wakes a load generator on the core of the server that woke it
    (a socket's wake-up is a synchronous one) and the server waits in mid-pass: the clients
    of a real server are on other machines (benchmarks/README.md, "Pinning")."""

    def setup() -> None:
        _niced()
        _pin(role)

    return setup


def pin_driver() -> None:
    """This process is on the clients' side (it runs the probes, and scale.py's WebSocket
    members): with BENCH_PIN, on the load generators' cores."""
    _pin("loadgen")


def _pin(role: str) -> None:
    cores = pinned_cores(os.environ.get("BENCH_PIN", ""), role)
    if cores:
        os.sched_setaffinity(0, cores)


def pinned_cores(spec: str, role: str) -> set[int]:
    """The cores ``spec`` (BENCH_PIN's value) gives ``role``; empty: wherever."""
    spec = spec.strip()
    if not spec:
        return set()
    if spec == "split":
        every = sorted(os.sched_getaffinity(0))
        return {every[0]} if role == "server" else set(every[1:]) or {every[0]}
    for part in spec.split(","):
        name, _, cores = part.partition("=")
        if name.strip() == role:
            return {int(c) for c in cores.split("+")}
    return set()


def _niced() -> None:
    """In the child, which is in a session of its own: with autogroup scheduling (Linux's
    default) that gives the server and loadgen each a group's fair share of the cores, not a
    share of ours. BENCH_NICE=-10 (say) also raises that group's priority, so other work on a
    shared machine disturbs the measurement less; it needs root, and is off unless asked."""
    nice = os.environ.get("BENCH_NICE", "").strip()
    if nice:
        os.setpriority(os.PRIO_PROCESS, 0, int(nice))
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(nice)
        except OSError:
            pass


def quiet_machine(bench: Bench, limit: float = 10.0, busy_max: float = 0.5) -> float:
    """Wait (at most ``limit`` s) until the machine is nearly idle; return its busy cores."""
    deadline = time.monotonic() + limit
    busy = _busy_cores(0.5)
    while busy > busy_max and time.monotonic() < deadline:
        busy = _busy_cores(0.5)
    if busy > busy_max:
        bench.note(f"machine still busy ({busy:.2f} cores used by others): measuring anyway")
    return busy


def _busy_cores(window: float) -> float:
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields[:8]) - idle, idle

    b0, _ = sample()
    time.sleep(window)
    b1, _ = sample()
    return (b1 - b0) / os.sysconf("SC_CLK_TCK") / window


def _describe(r: Step) -> str:
    verdict = "pass" if r["pass"] else ("ABORT" if r["aborted"] else "fail")
    return (
        f"{r['server']:8} {r['tag']:14} N={r['clients']} S={r['senders']} R={r['rate']:g}: "
        f"{r['deliveries_per_s'] / 1e3:8.1f}k/s p50 {r['p50_ms']:.1f} p99 {r['p99_ms']:.1f} ms "
        f"owed {r['owed']} cut {r['cut']} srv {r['server_cpu_s']:.2f}s "
        f"lg {r['loadgen_cpu_s']:.2f}s other {_other(r) or 0:.2f} cores {verdict}"
        + (f" (attempt {r['attempt'] + 1})" if r.get("attempt") else "")
    )


# -- the whole run -------------------------------------------------------------------------


def one_room_workloads(bench: Bench, servers: dict[str, dict[str, Any]]) -> None:
    """Workloads 1-3 on each server in turn (a workload at a time, so all the servers of
    one workload meet the same neighbours' noise); results go into ``servers[kind]``."""
    q = bench.quick
    w1_coarse = [500.0, 1000, 2000, 4000, 6000, 9000, 13500, 20000, 30000]
    w2_coarse = [3000.0, 6000, 10000, 15000, 22000, 33000, 50000, 75000, 110000, 165000]
    if q:
        w1_coarse = [300.0, 750, 1500, 3000, 6000, 12000, 24000]
        w2_coarse = [5000.0, 10000, 20000, 40000, 80000, 160000]
    low = (500.0, 3.0 if q else 5.0)
    for kind, res in servers.items():
        bench.note(f"--- {kind}: workload 1 (1000 clients, 1 sender) saturation")
        res["w1"] = bench.saturation(kind, 1000, 1, w1_coarse, "w1-sat")
        res["w1"]["p99_by_rate"] = bench.ramp_p99("w1-sat", kind)
    for kind, res in servers.items():
        bench.note(f"--- {kind}: workload 1 at 3000 msgs/s")
        res["w1_3000"] = bench.fixed(kind, 1000, 1, 3000, 2.0 if q else 4.0, "w1-3000")
    low_then_w2(bench, servers, w2_coarse, "w2-sat", low)


def low_then_w2(bench: Bench, servers: dict[str, dict[str, Any]], coarse: list[float],
                tag: str, low: tuple[float, float]) -> None:
    """Workloads 3 (100 clients, 10 senders at the ``low`` rate, as the ramp's first step)
    and 2 (their saturation) on each server in turn."""
    for kind, res in servers.items():
        bench.note(f"--- {kind}: workloads 3 ({low[0]:g} msgs/s) and 2 (100 clients, 10 senders)")
        sat = bench.saturation(kind, 100, 10, coarse, tag, first=low)
        res["w3"] = sat.pop("low")
        res["w2"] = sat
        res["w2"]["p99_by_rate"] = bench.ramp_p99(tag, kind)


def run_all(bench: Bench, profile: bool) -> dict[str, Any]:
    """Every workload, each server in turn, so both meet the same neighbours' noise."""
    q = bench.quick
    servers: dict[str, dict[str, Any]] = {kind: {} for kind in bench.servers}
    results: dict[str, Any] = {"quick": q, "servers": servers}
    one_room_workloads(bench, servers)
    import latency  # benchmarks/latency.py

    # p99 at low load is one unlucky scheduling away from doubling: five runs, each shown
    bench.note("--- workload 3, five runs on fresh servers (p50/p99 run by run)")
    results["latency"] = latency.measure(
        bench, ["chatroom"] if q else list(servers), 5, seconds=3.0 if q else 5.0)
    for kind, res in servers.items():
        bench.note(f"--- {kind}: workload 5 (memory per idle member)")
        res["w5"] = bench.memory(kind)
    for kind, res in servers.items():
        best = res["w1"]["best"]
        # twice the server's own saturation; if nothing passed, twice the first failing rate
        base = best["rate"] if best else (res["w1"]["first_fail_rate"] or 1500.0) / 2
        bench.note(f"--- {kind}: workload 4 (overload at {2 * base:g} msgs/s)")
        res["w4"] = bench.overload(kind, 2 * base)
    # Where p99 is near the limit at every rate, "twice saturation" may not overload at all;
    # this rate is past what the whole rig moves (loadgen included), for every server.
    hard = 12000.0 if q else 20000.0
    for kind, res in servers.items():
        bench.note(f"--- {kind}: workload 4b (overload at {hard:g} msgs/s)")
        res["w4b"] = bench.overload(kind, hard)
    if not q:
        import scaling  # benchmarks/scaling.py

        bench.note("--- how cost grows with members and with senders")
        results["scaling"] = scaling.measure(bench, tuple(servers))
    if profile:
        from profile_hot import profile_chatroom  # benchmarks/profile_hot.py

        results["profile"] = profile_chatroom(bench, results)
    return results


def run_versus(bench: Bench, kinds: list[str], rounds: int) -> dict[str, Any]:
    """Workloads 1-3 on two (or more) servers, A B A B: each round runs every workload on
    every server in turn, so drift and neighbours' noise hit them alike."""
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for round_ in range(rounds):
        bench.note(f"=== versus, round {round_ + 1} of {rounds}: {' / '.join(kinds)}")
        servers: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
        one_room_workloads(bench, servers)
        for kind, res in servers.items():
            found[kind].append(res)
    return {"kinds": kinds, "rounds": found, "quick": bench.quick}


def versus_table(result: dict[str, Any]) -> str:
    """One row per figure: each server's value in every round, and the ratio of the
    medians of the last server to the first (after / before)."""
    kinds: list[str] = result["kinds"]
    rounds: dict[str, list[dict[str, Any]]] = result["rounds"]

    def sat(w: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda r: _dps(r[w]["best"])

    def p99_at_sat(w: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda r: r[w]["best"]["p99_ms"] if r[w]["best"] else None

    def cpm(w: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda r: r[w]["server_cpu_s_per_M"] if r[w] else None

    rows: list[tuple[str, Callable[[dict[str, Any]], float | None], str]] = [
        ("W1 1000x1 saturation, M deliveries/s", lambda r: (sat("w1")(r) or 0) / 1e6, "{:.2f}"),
        ("W1 p99 ms at saturation", p99_at_sat("w1"), "{:.1f}"),
        ("W1 at 3000 msgs/s: server CPU s per M deliveries", cpm("w1_3000"), "{:.3f}"),
        ("W1 at 3000 msgs/s: p99 ms", lambda r: r["w1_3000"]["p99_ms"], "{:.1f}"),
        ("W2 100x10 saturation, M deliveries/s", lambda r: (sat("w2")(r) or 0) / 1e6, "{:.2f}"),
        ("W2 p99 ms at saturation", p99_at_sat("w2"), "{:.1f}"),
        ("W3 100x10 at 500 msgs/s: p50 ms", lambda r: r["w3"]["p50_ms"] if r["w3"] else None,
         "{:.2f}"),
        ("W3 p99 ms", lambda r: r["w3"]["p99_ms"] if r["w3"] else None, "{:.2f}"),
        ("W3 server CPU s per M deliveries", cpm("w3"), "{:.2f}"),
    ]
    head = "| measure | " + " | ".join(kinds) + f" | {kinds[-1]} / {kinds[0]} (medians) |"
    lines = [head, "|---" * (len(kinds) + 2) + "|"]
    for label, get, fmt in rows:
        cells, medians = [], []
        for kind in kinds:
            values = [get(r) for r in rounds[kind]]
            cells.append(", ".join(_num(v, fmt) for v in values))
            known = [v for v in values if v is not None]
            medians.append(statistics.median(known) if known else None)
        ratio = _ratio(medians[-1], medians[0])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def run_burst(bench: Bench, kinds: list[str], pads: list[int]) -> str:
    """Everyone sends a burst within chatroom's default flood allowance (40 lines) at once.

    Every client reads at full speed, so nobody should be cut as a slow reader; a cap on
    queued bytes that one reactor turn's output can exceed cuts them all."""
    lines = ["| server | line bytes | lines sent | members cut | owed | p99 ms |", "|---" * 6 + "|"]
    for kind in kinds:
        for pad in pads:
            server = Server(kind, OUT / "logs", chat_rate=None)
            with server:
                cmd = [str(LOADGEN), "--port", str(server.port), "--clients", "100",
                       "--senders", "100", "--step", "97500:0.04", "--pad", str(pad),
                       "--drain", "3", "--server-pid", str(server.pid)]
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                                     start_new_session=True, preexec_fn=child_setup("loadgen"))
            step = json.loads(out.stdout.strip().splitlines()[-1])
            bench.note(f"burst {kind} pad {pad}: cut {step['cut']} of 100")
            lines.append(f"| {kind} | {pad + 30} | {step['sent']} | {step['cut']} | "
                         f"{step['owed']} | {step['p99_ms']:.0f} |")
    return "\n".join(lines)


def run_experiments(bench: Bench, variants: list[str], rounds: int,
                    with_ramps: bool = True) -> str:
    """Each variant under the same loads, interleaved so drift and noise hit them alike."""
    fixed = [
        ("W3 100/10 at 500 msgs/s", 100, 10, 500.0, 5.0),
        ("W1 1000/1 at 2000 msgs/s", 1000, 1, 2000.0, 4.0),
        ("W2 100/10 at 10000 msgs/s", 100, 10, 10000.0, 4.0),
    ]
    ramps: list[tuple[str, int, int, list[float]]] = [
        ("W1 saturation", 1000, 1, [2000.0, 4000, 6000, 9000, 13500, 20000]),
        ("W2 saturation", 100, 10, [10000.0, 22000, 33000, 50000, 75000, 110000, 165000]),
    ]
    cells: dict[tuple[str, str], list[str]] = {}
    for label, clients, senders, rate, secs in fixed:
        for _ in range(rounds):
            for kind in variants:
                step = bench.fixed(kind, clients, senders, rate, secs, tag="exp")
                cells.setdefault((f"{label}: p50 / p99 ms", kind), []).append(_ms(step))
                cells.setdefault((f"{label}: CPU s per M", kind), []).append(
                    _num(step["server_cpu_s_per_M"], "{:.3f}"))
    for label, clients, senders, coarse in ramps if with_ramps else []:
        for _ in range(rounds):
            for kind in variants:
                found = bench.saturation(kind, clients, senders, coarse, "exp-sat", fine=False)
                best = found["best"]
                cells.setdefault((f"{label} (coarse ramp): deliveries/s", kind), []).append(
                    f"{best['deliveries_per_s'] / 1e6:.2f}M" if best else "none")
                cells.setdefault((f"{label}: p50 / p99 ms there", kind), []).append(_ms(best))
    labels = list(dict.fromkeys(label for label, _ in cells))
    lines = ["| measure | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(
            "; ".join(cells.get((label, kind), [])) for kind in variants) + " |")
    return "\n".join(lines)


# -- the table -----------------------------------------------------------------------------


def _dps(step: Step | None) -> float | None:
    """Deliveries/s: over the send window for a step that passed; for one that did not,
    over the send window and the drain, so lines that came late do not count as on time."""
    if not step:
        return None
    if step["pass"]:
        return float(step["deliveries_per_s"])
    elapsed: float = step["send_s"] + step["drain_s"]
    return float(step["delivered"]) / max(elapsed, 1e-9)


def _ms(step: Step | None) -> str:
    if not step:
        return "-"
    return f"{step['p50_ms']:.1f} / {step['p99_ms']:.1f}"


def _rate(step: Step | None) -> str:
    if not step:
        return "-"
    flag = " (unconfirmed)" if step.get("unconfirmed") else ""
    return f"{step['deliveries_per_s'] / 1e6:.3f}M (R={step['rate']:g}){flag}"


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None or value < 0 else fmt.format(value)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or a < 0 or b <= 0:
        return "-"
    return f"{a / b:.2f}"


def _cores(step: Step | None, key: str) -> float | None:
    if not step:
        return None
    elapsed: float = step["send_s"] + step["drain_s"]
    return float(step[key]) / max(elapsed, 1e-9)


def _other(step: Step | None) -> float | None:
    """Cores used by everything but server and loadgen: other helpers' tests, the noise."""
    if not step or step["machine_busy_s"] < 0:
        return None
    rest = float(step["machine_busy_s"] - step["server_cpu_s"] - step["loadgen_cpu_s"])
    elapsed: float = step["send_s"] + step["drain_s"]
    return max(rest, 0.0) / max(elapsed, 1e-9)


def _w4_members(step: Step) -> str:
    """Every reading member got every line in order, or was cut with an in-order prefix."""
    bad = step["gaps"] + step["out_of_order"] + step["dups"]
    ok = bad == 0 and step["owed"] == 0 and step["cut"] == step["cut_in_order"]
    return (
        f"{'OK' if ok else 'BAD'}: {step['open']} open (owed {step['owed']} lines after "
        f"{step['drain_s']:.1f} s of drain), {step['cut']} cut ({step['cut_in_order']} with "
        f"an in-order prefix), gaps {step['gaps']}, out of order {step['out_of_order']}, "
        f"dups {step['dups']}"
    )


def _getter(key: str) -> Callable[[dict[str, Any]], Step]:
    return lambda s: s[key]


def table(results: dict[str, Any]) -> str:
    """The chatroom/baseline comparison as a markdown table."""
    servers = results["servers"]
    c, b = servers.get("chatroom", {}), servers.get("baseline", {})
    rows: list[tuple[str, str, str, str]] = []

    def add(label: str, get: Callable[[dict[str, Any]], Any], fmt: Callable[[Any], str],
            ratio: Callable[[Any], float | None] | None = None) -> None:
        cv = get(c) if c else None
        bv = get(b) if b else None
        r = _ratio(ratio(cv), ratio(bv)) if ratio is not None and cv and bv else "-"
        rows.append((label, fmt(cv), fmt(bv), r))

    def best(w: str) -> Callable[[dict[str, Any]], Step | None]:
        return lambda s: s[w]["best"]

    def first_fail(w: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda s: s[w]["first_fail_rate"]

    def by_rate(w: str) -> Callable[[dict[str, Any]], str]:
        return lambda s: str(s[w].get("p99_by_rate", ""))

    dps = _dps
    cpm: Callable[[Step | None], float | None] = lambda s: s["server_cpu_s_per_M"] if s else None  # noqa: E731
    p99: Callable[[Step | None], float | None] = lambda s: s["p99_ms"] if s else None  # noqa: E731
    for w, label in (("w1", "W1 1000 clients, 1 sender"), ("w2", "W2 100 clients, 10 senders")):
        add(f"{label}: saturation deliveries/s", best(w), _rate, dps)
        add(f"{label}: p50 / p99 ms at saturation", best(w), _ms, p99)
        add(f"{label}: server CPU s per M deliveries at saturation", best(w),
            lambda s: _num(cpm(s)), cpm)
        add(f"{label}: server / loadgen / other cores at saturation", best(w),
            lambda s: "/".join(_num(v) for v in (_cores(s, "server_cpu_s"),
                                                 _cores(s, "loadgen_cpu_s"), _other(s))))
        add(f"{label}: first failing rate (msgs/s)", first_fail(w), lambda v: _num(v, "{:g}"))
        add(f"{label}: p99 ms at each coarse rate (msgs/s:ms, x = aborted)",
            by_rate(w), str)
        if w == "w1":
            w13: Callable[[dict[str, Any]], Step] = lambda s: s["w1_3000"]  # noqa: E731
            add("W1 at 3000 msgs/s: server CPU s per M deliveries", w13,
                lambda s: _num(cpm(s)), cpm)
            add("W1 at 3000 msgs/s: deliveries/s, p50 / p99 ms, pass", w13,
                lambda s: f"{(_dps(s) or 0) / 1e6:.2f}M, {_ms(s)}, "
                          f"{'pass' if s['pass'] else 'FAIL'}", dps)
            add("W1 at 3000 msgs/s: server / loadgen / other cores", w13,
                lambda s: "/".join(_num(v) for v in (_cores(s, "server_cpu_s"),
                                                     _cores(s, "loadgen_cpu_s"), _other(s))))
    w3: Callable[[dict[str, Any]], Step] = lambda s: s["w3"]  # noqa: E731
    add("W3 low load (100/10, 500 msgs/s): p50 / p99 ms", w3, _ms, p99)
    add("W3 low load: server CPU s per M deliveries", w3, lambda s: _num(cpm(s)), cpm)
    for key, title in (("w4", "W4 overload, 2x own W1 saturation"),
                       ("w4b", "W4b overload, past the rig")):
        if not any(key in s for s in (c, b)):
            continue
        w4 = _getter(key)
        add(f"{title} (1000 clients, 1 sender): msgs/s offered", w4,
            lambda s: f"{s['rate']:g} for {s['seconds']:g} s")
        add(f"{key.upper()}: deliveries/s", w4,
            lambda s: f"{(_dps(s) or 0) / 1e6:.2f}M (sent {s['sent']} of {s['planned']})",
            dps)
        add(f"{key.upper()}: server / loadgen / other cores", w4,
            lambda s: "/".join(_num(v) for v in (_cores(s, "server_cpu_s"),
                                                 _cores(s, "loadgen_cpu_s"), _other(s))))
        add(f"{key.upper()}: server peak RSS MB (during / process peak)", w4,
            lambda s: f"{s['server_rss_max_kb'] / 1024:.0f} / {s['server_hwm_kb'] / 1024:.0f}",
            lambda s: s["server_rss_max_kb"])
        add(f"{key.upper()}: newcomer join ms (separate client; each try)", w4,
            lambda s: ", ".join(f"{p:.0f}" if p >= 0 else "never" for p in s["probe_join_ms"])
            + (" OK" if all(0 <= p < 1000 for p in s["probe_join_ms"]) else " FAIL"))
        add(f"{key.upper()}: p50 / p99 ms", w4, _ms, p99)
        add(f"{key.upper()}: members", w4, _w4_members)
    w5: Callable[[dict[str, Any]], dict[str, Any]] = lambda s: s["w5"]  # noqa: E731
    add("W5 KB per idle member (peak RSS 2000 - 10) / 1990", w5,
        lambda s: f"{s['kb_per_member_peak']:.1f} (RSS now: {s['kb_per_member_rss']:.1f})",
        lambda s: s["kb_per_member_peak"])
    add("W5 peak RSS MB at 10 / 2000 members", w5,
        lambda s: f"{s['hwm_kb_10'] / 1024:.1f} / {s['hwm_kb_2000'] / 1024:.1f}")
    lines = ["| measure | chatroom | baseline (naive) | chatroom/baseline |", "|---|---|---|---|"]
    lines += [f"| {a} | {b_} | {c_} | {d} |" for a, b_, c_, d in rows]
    return "\n".join(lines)


def revision() -> str:
    """The commit measured, and whether chatroom/ differs from it (read-only git calls)."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "chatroom"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' (chatroom/ modified)' if dirty else ''}"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"


@contextmanager
def _timer(bench: Bench) -> Iterator[None]:
    yield
    bench.note(f"done in {time.monotonic() - bench.started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    pin_driver()
    parser = argparse.ArgumentParser(description="chatroom fan-out benchmarks")
    sub = parser.add_subparsers(dest="command")
    quick = os.environ.get("BENCH_QUICK", "").strip() not in ("", "0")
    parser.add_argument("--quick", action="store_true", default=quick,
                        help="a ~2 minute run (also BENCH_QUICK=1)")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                        help="profile chatroom with py-spy (default: in a full run, if installed)")
    parser.add_argument("--only", choices=SERVERS, help="measure one server only")
    one = sub.add_parser("one", help="one server, one load: prints every step as JSON")
    one.add_argument("server", help="baseline, or chatroom[-nohist][+PATCH[,PATCH]]")
    one.add_argument("clients", type=int)
    one.add_argument("senders", type=int)
    one.add_argument("steps", nargs="+", help="RATE:SECONDS, e.g. 1000:5")
    one.add_argument("--ramp", action="store_true",
                     help="stop at the second failing step in a row; retry timing failures")
    one.add_argument("--probes", default="", help="seconds into each step to try a join")
    exp = sub.add_parser("experiments", help="chatroom with variants.py's patches, side by side")
    exp.add_argument("variants", nargs="*",
                     default=["chatroom", "chatroom-nohist", "chatroom+queued",
                              "chatroom-nohist+queued"])
    exp.add_argument("--rounds", type=int, default=1, help="repeat every measurement")
    exp.add_argument("--ramps", action=argparse.BooleanOptionalAction, default=True,
                     help="the saturation ramps too (--no-ramps: the fixed loads only)")
    scale = sub.add_parser("scaling", help="cost per delivery as members and senders grow")
    scale.add_argument("variants", nargs="*", default=list(SERVERS))
    lat = sub.add_parser("latency", help="workload 3 five times per server: p50/p99 each run")
    lat.add_argument("variants", nargs="*", default=["chatroom"],
                     help="servers, in turn (A B A B), e.g. chatroom@/work/wt/before chatroom")
    lat.add_argument("--runs", type=int, default=5)
    lat.add_argument("--seconds", type=float, default=5.0)
    lat.add_argument("--trace", action="store_true",
                     help="time each line inside chatroom too (variants.py's trace patch)")
    versus = sub.add_parser("versus", help="workloads 1-3 on two servers, interleaved, ratios")
    versus.add_argument("variants", nargs="+",
                        help="e.g. chatroom@/work/wt/before chatroom (a tree with its .venv)")
    versus.add_argument("--rounds", type=int, default=2, help="A B A B ... rounds")
    idle = sub.add_parser("idle", help="workload 5 (KB per idle member) on servers in turn")
    idle.add_argument("variants", nargs="+", help="e.g. chatroom@/work/wt/before chatroom")
    idle.add_argument("--rounds", type=int, default=2, help="A B A B ... rounds")
    rooms = sub.add_parser("rooms", help="200 rooms x 50 members against one room of 50")
    rooms.add_argument("--rooms", type=int, default=200)
    rooms.add_argument("--members", type=int, default=50, help="per room")
    rooms.add_argument("--rates", default="", help="per-room lines/s, e.g. 1,5,20")
    rooms.add_argument("--server", default="chatroom",
                       help="chatroom, chatroom+PATCH (variants.py) or chatroom@TREE")
    rooms.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                       help="also RSS per (member, room) pair (three more servers)")
    burst = sub.add_parser("burst", help="100 members burst 39 lines at once, default limits")
    burst.add_argument("variants", nargs="*", default=["chatroom", "chatroom+queued"])
    burst.add_argument("--pads", default="100,200,400", help="bytes of padding per line")
    args = parser.parse_args(argv)

    # SIGTERM (from a timeout, or a person) unwinds like Ctrl-C: every server gets stopped
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    build_loadgen()
    OUT.mkdir(parents=True, exist_ok=True)
    servers = (args.only,) if args.only else SERVERS
    bench = Bench(quick=args.quick, out=OUT, servers=servers)
    if args.command == "one":
        steps = [(float(s.split(":")[0]), float(s.split(":")[1])) for s in args.steps]
        probes = [float(p) for p in args.probes.split(",") if p]
        with Server(args.server, OUT / "logs") as server:
            _, records = bench.loadgen(server, args.clients, args.senders, steps,
                                       ramp=2 if args.ramp else 0, probes=probes, tag="one")
        for record in records:
            print(json.dumps(record))
        return 0

    if args.command == "scaling":
        import scaling

        found = scaling.measure(bench, tuple(args.variants))
        scaling.plot(found, OUT / "scaling.svg")
        text = scaling.table(found)
        (OUT / "scaling.md").write_text(text + "\n")
        print(text)
        return 0
    if args.command == "burst":
        pads = [int(p) for p in args.pads.split(",") if p]
        text = run_burst(bench, args.variants, pads)
        (OUT / "burst.md").write_text(text + "\n")
        print(text)
        return 0
    if args.command == "latency":
        import latency  # benchmarks/latency.py

        found = latency.measure(bench, args.variants, args.runs, args.trace, args.seconds)
        (OUT / "latency.json").write_text(json.dumps(found, indent=1))
        text = latency.table(found)
        (OUT / "latency.md").write_text(text + "\n")
        print(text)
        return 0
    if args.command == "versus":
        found = run_versus(bench, args.variants, args.rounds)
        (OUT / "versus.json").write_text(json.dumps(found, indent=1))
        text = versus_table(found)
        (OUT / "versus.md").write_text(text + "\n")
        print(text)
        return 0
    if args.command == "idle":
        lines = ["| server | KB per idle member, (peak RSS at 2000 - at 10) / 1990, each round |",
                 "|---|---|"]
        kb: dict[str, list[str]] = {kind: [] for kind in args.variants}
        for _ in range(args.rounds):
            for kind in args.variants:
                kb[kind].append(f"{bench.memory(kind)['kb_per_member_peak']:.2f}")
        lines += [f"| {kind} | {', '.join(values)} |" for kind, values in kb.items()]
        print("\n".join(lines))
        return 0
    if args.command == "rooms":
        import rooms as rooms_bench  # benchmarks/rooms.py

        rates = [float(r) for r in args.rates.split(",") if r]
        found = rooms_bench.measure(bench, args.rooms, args.members, rates or None,
                                    with_memory=args.memory, kind=args.server)
        (OUT / "rooms.json").write_text(json.dumps(found, indent=1))
        text = rooms_bench.table(found)
        (OUT / "rooms.md").write_text(text + "\n")
        print(text)
        return 0
    if args.command == "experiments":
        text = run_experiments(bench, args.variants, args.rounds, args.ramps)
        (OUT / "experiments.md").write_text(text + "\n")
        print(text)
        return 0

    (OUT / "steps.jsonl").unlink(missing_ok=True)
    shutil.rmtree(OUT / "logs", ignore_errors=True)  # server logs of the last run only
    bench.note(f"{'quick' if bench.quick else 'full'} run on {machine()}")
    profile = args.profile
    if profile is None:
        from profile_hot import py_spy

        profile = not bench.quick and "chatroom" in servers and py_spy() is not None
    with _timer(bench):
        results = run_all(bench, profile)
    results["machine"] = machine()
    results["revision"] = revision()
    results["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    head = (
        f"chatroom fan-out benchmarks ({'quick' if bench.quick else 'full'}), {results['date']}, "
        f"commit {results['revision']}, {results['machine']}"
        f"{', BENCH_NICE=' + os.environ['BENCH_NICE'] if os.environ.get('BENCH_NICE') else ''}; "
        f"server and loadgen share the cores. A rate passes when no line "
        f"is lost, none is out of order, no member is cut and p99 < {P99_MS:g} ms."
    )
    if "latency" in results:
        import latency

        text += "\n\nWorkload 3, five runs (each on a fresh server, in turn):\n\n" + \
            latency.table(results["latency"])
    if "scaling" in results:
        import scaling

        scaling.plot(results["scaling"], OUT / "scaling.svg")
        text += "\n\nHow cost grows (plot: out/scaling.svg):\n\n" + scaling.table(
            results["scaling"])
    (OUT / "results.md").write_text(head + "\n\n" + text + "\n")
    print(head)
    print()
    print(text)
    if "profile" in results:
        print()
        print(results["profile"].get("summary", ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
