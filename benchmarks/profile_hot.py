"""Where chatroom's time goes under fan-out load: py-spy samples, summed by function.

``profile_chatroom`` starts chatroom, joins the clients, and records the server with
``py-spy record --format raw --idle --threads`` (collapsed stacks) while loadgen sends at a
fixed rate, for workload 1 (1000 clients, 1 sender) and workload 2 (100 clients, 10
senders). For the reactor thread it reports, per function (line numbers folded), *self*
time (the sample's innermost frame: for a frame that calls into C, such as ``socket.send``,
that includes the system call) and *inclusive* time (the function is anywhere on the
stack), as shares of that thread's samples; idle samples (waiting in ``epoll``) are
counted, so the shares add up to wall time. Other threads (the history writer) are
reported as the share of their samples that were not waiting. It writes
``out/profile-<w>.txt`` (load it in speedscope or flamegraph.pl) and ``out/profile-<w>.svg``
(a flame graph drawn here, no extra tools).

Standalone: ``python benchmarks/profile_hot.py [w1|w2] [--rate R] [--seconds S] [--server
chatroom+queued]`` (a variant's files are named after it: ``profile-w1-chatroom_queued.*``).
py-spy needs ptrace rights over the server (root, or the same user with ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from run import BIN, OUT, Bench, Step, build_loadgen

_LINE = re.compile(r":\d+\)$")
IDLE_LEAVES = ("EPollReactor.doPoll", "doPoll (")

WORKLOADS = {"w1": (1000, 1, 2000.0), "w2": (100, 10, 10000.0),
             "rooms": (10000, 200, 400.0), "room1": (50, 1, 2.0)}
ROOMS = {"rooms": 200, "room1": 1}
"""Workloads in rooms (benchmarks/rooms.py): 200 rooms x 50 members, one sender per room,
and one room of 50 at the same rate per room."""


def py_spy() -> str | None:
    found = BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


WAITS = ("EPollReactor.doPoll", "Condition.wait", "Event.wait", "Thread.join")


def parse_collapsed(
    path: Path, thread: str = "MainThread"
) -> tuple[int, Counter[str], Counter[str], dict[str, tuple[int, int]]]:
    """For ``thread`` (recorded with ``--threads``): total samples, and per function self
    and inclusive samples; and for every thread, (samples, samples not waiting)."""
    total = 0
    self_: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: dict[str, tuple[int, int]] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        name = thread
        if frames[0].startswith("thread ("):
            name = frames.pop(0).partition(": ")[2] or frames[0]
        seen, busy = threads.get(name, (0, 0))
        waiting = frames[-1].startswith(WAITS)
        threads[name] = (seen + n, busy + (0 if waiting else n))
        if name != thread or not frames:
            continue
        total += n
        self_[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    return total, self_, incl, threads


def _short(frame: str) -> str:
    return frame.replace("twisted/internet/", "t/i/").replace("twisted/python/", "t/p/")


def summarize(path: Path, top: int = 18) -> dict[str, Any]:
    """The top costs of one profile, as numbers and as text."""
    total, self_, incl, threads = parse_collapsed(path)
    if not total:
        return {"samples": 0, "text": f"{path.name}: no samples"}
    others = {name: round(100 * busy / seen, 1) for name, (seen, busy) in threads.items()
              if name != "MainThread" and seen}
    idle = sum(n for f, n in self_.items() if f.startswith("EPollReactor.doPoll"))
    own = [(f, n) for f, n in incl.items() if "chatroom/" in f]
    own.sort(key=lambda item: -item[1])
    # socket.send/sendmsg are C calls: py-spy charges them to their Python caller, which is
    # Twisted's untilConcludes on the transport's path and SocketOutbox on the direct one.
    sends = {"untilConcludes (twisted/python/util.py)",
             "SocketOutbox.send (chatroom/lines/outbox.py)",
             "SocketOutbox.resumeProducing (chatroom/lines/outbox.py)"}
    groups = {
        "send()/sendmsg() system calls (in untilConcludes or SocketOutbox)": sum(
            self_[f] for f in sends
        ),
        "epoll_ctl: startWriting/stopWriting (_add/_remove)": self_[
            "EPollReactor._add (twisted/internet/epollreactor.py)"
        ] + self_["EPollReactor._remove (twisted/internet/epollreactor.py)"],
        "per-event dispatch (callWithLogger/callWithContext/_doReadOrWrite)": sum(
            n for f, n in self_.items()
            if f.split(" ")[0] in {
                "callWithLogger", "callWithContext", "ThreadedContextTracker.callWithContext",
                "ContextTracker.callWithContext", "ThreadedContextTracker.currentContext",
                "ThreadedContextTracker.getContext", "ContextTracker.getContext",
                "_PollLikeMixin._doReadOrWrite",
            }
        ),
        "chatroom code (self time in chatroom/*, system calls apart)": sum(
            n for f, n in self_.items() if "chatroom/" in f and f not in sends
        ),
        "idle (epoll_wait)": idle,
    }
    lines = [f"{path.name}: {total} samples of the reactor thread, idle included "
             f"({100 * idle / total:.1f}% idle); shares below are of the reactor thread's time"]
    if others:
        lines.append("  other threads, busy share of their samples: " + ", ".join(
            f"{name} {pct:.1f}%" for name, pct in others.items()))
    lines.append("  grouped self time:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in groups.items()]
    lines.append("  top self time (innermost frame; C calls such as send() count here):")
    lines += [f"    {100 * n / total:5.1f}%  {_short(f)}" for f, n in self_.most_common(top)]
    lines.append("  chatroom functions, inclusive:")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own[:top]]
    return {
        "samples": total,
        "idle_pct": round(100 * idle / total, 1),
        "other_threads_busy_pct": others,
        "groups_pct": {k: round(100 * v / total, 1) for k, v in groups.items()},
        "self_pct": {f: round(100 * n / total, 1) for f, n in self_.most_common(top)},
        "chatroom_inclusive_pct": {f: round(100 * n / total, 1) for f, n in own[:top]},
        "text": "\n".join(lines),
    }


def flame_svg(collapsed: Path, svg: Path, width: int = 1400) -> None:
    """A plain flame graph of collapsed stacks: width is samples, hover shows the share."""
    root: dict[str, Any] = {"n": 0, "kids": {}}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        node = root
        node["n"] += int(count)
        for frame in stack.split(";"):
            node = node["kids"].setdefault(_LINE.sub(")", frame), {"n": 0, "kids": {}})
            node["n"] += int(count)
    total = max(root["n"], 1)
    rects: list[str] = []
    depth_max = 0

    def walk(node: dict[str, Any], x: float, depth: int) -> None:
        nonlocal depth_max
        for name, kid in sorted(node["kids"].items()):
            w = kid["n"] / total * width
            if w >= 0.5:
                depth_max = max(depth_max, depth)
                pct = 100 * kid["n"] / total
                hue = 10 + zlib.crc32(name.split(" (")[-1].encode()) % 50
                label = html.escape(name if w > 8 * len(name) else name[: int(w / 8)])
                rects.append(
                    f'<g><title>{html.escape(name)}: {pct:.1f}%</title>'
                    f'<rect x="{x:.1f}" y="{{y{depth}}}" width="{w:.1f}" height="15" '
                    f'fill="hsl({hue},80%,60%)" stroke="white" stroke-width="0.3"/>'
                    f'<text x="{x + 2:.1f}" y="{{t{depth}}}" font-size="11">{label}</text></g>'
                )
                walk(kid, x, depth + 1)
            x += w

    walk(root, 0.0, 0)
    height = (depth_max + 2) * 16
    body = "\n".join(rects)
    for d in range(depth_max + 1):
        y = height - (d + 1) * 16
        body = body.replace(f"{{y{d}}}", str(y)).replace(f"{{t{d}}}", str(y + 12))
    svg.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace">\n{body}\n</svg>\n'
    )


def profile_one(bench: Bench, name: str, clients: int, senders: int, rate: float,
                seconds: float, kind: str = "chatroom") -> dict[str, Any]:
    """Profile ``kind`` (chatroom, or a variant) for ``seconds`` while loadgen sends ``rate``
    msgs/s."""
    spy = py_spy()
    if spy is None:
        return {"text": "py-spy not found: pip install py-spy into the venv"}
    suffix = "" if kind == "chatroom" else "-" + "".join(c if c.isalnum() else "_" for c in kind)
    suffix += "-irc" if bench.irc else ""
    raw = bench.out / f"profile-{name}{suffix}.txt"
    raw.unlink(missing_ok=True)
    recorder: list[subprocess.Popen[bytes]] = []

    def start_recording(_: Step) -> None:
        cmd = [spy, "record", "--pid", str(server.pid), "--rate", "200", "--idle", "--threads",
               "--duration", f"{seconds:g}", "--format", "raw", "--output", str(raw)]
        recorder.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

    with bench.make_server(kind) as server:
        _, steps = bench.loadgen(server, clients, senders, [(rate, seconds + 1.5)],
                                 tag=f"profile-{name}", on_handshake=start_recording,
                                 rooms=ROOMS.get(name, 0), hs_timeout=300.0)
        for proc in recorder:
            try:
                proc.wait(timeout=seconds + 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if not raw.exists():
        err = recorder[0].stderr.read().decode() if recorder and recorder[0].stderr else ""
        return {"text": f"py-spy wrote nothing: {err.strip()[:300]}"}
    flame_svg(raw, raw.with_suffix(".svg"))
    summary = summarize(raw)
    step = steps[0] if steps else None
    if step is not None:
        summary["load"] = {k: step[k] for k in ("rate", "deliveries_per_s", "p50_ms", "p99_ms",
                                                "server_cpu_s_per_M", "pass")}
        summary["text"] = (
            f"{name}: {kind}, {clients} clients, {senders} sender(s), {rate:g} msgs/s "
            f"(under py-spy: {step['deliveries_per_s'] / 1e6:.2f}M deliveries/s, "
            f"p50/p99 {step['p50_ms']:.1f}/{step['p99_ms']:.1f} ms, "
            f"{step['server_cpu_s_per_M']:.2f} CPU s/M)\n" + summary["text"]
        )
    return summary


def profile_chatroom(bench: Bench, results: dict[str, Any]) -> dict[str, Any]:
    """Profile workloads 1 and 2 at fixed rates (lowered to 80% of saturation if need be)."""
    found: dict[str, Any] = {}
    chat = results.get("servers", {}).get("chatroom", {})
    for name in ("w1", "w2"):
        clients, senders, rate = WORKLOADS[name]
        best = (chat.get(name) or {}).get("best")
        if best is not None:
            rate = min(rate, round(0.8 * best["rate"]))
        bench.note(f"--- profiling chatroom under {name} at {rate:g} msgs/s")
        found[name] = profile_one(bench, name, clients, senders, rate, 8.0)
    found["summary"] = "\n\n".join(v["text"] for v in found.values() if isinstance(v, dict))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="profile chatroom's hot path with py-spy")
    parser.add_argument("workload", nargs="*", help="w1, w2, rooms, room1 (default: w1 w2)")
    parser.add_argument("--rate", type=float,
                        help="msgs/s in total (default: 2000 for w1, 10000 for w2, 400 for "
                             "rooms, 2 for room1)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--server", default="chatroom",
                        help="chatroom, or a variant as run.py names it (chatroom+queued)")
    parser.add_argument("--irc", action="store_true",
                        help="the IRC front end, with loadgen in IRC mode (irc_peers.py)")
    args = parser.parse_args(argv)
    unknown = set(args.workload) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload {', '.join(sorted(unknown))}: choose from "
                     f"{', '.join(WORKLOADS)}")
    build_loadgen()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.irc:
        from irc_peers import IrcBench

        bench: Bench = IrcBench(quick=False, out=OUT, servers=("chatroom",), irc=True)
    else:
        bench = Bench(quick=False, out=OUT, servers=("chatroom",), started=time.monotonic())
    for name in args.workload or ["w1", "w2"]:
        clients, senders, rate = WORKLOADS[name]
        print(profile_one(bench, name, clients, senders, args.rate or rate, args.seconds,
                          args.server)["text"])
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
