"""Workload 3 again and again: is p99 at low load a property of the server or of one run?

``run.py latency [SERVER...] [--runs 5]`` runs workload 3 (100 clients, 10 senders, 500
lines/s in total, ``SECONDS`` s) ``runs`` times on each server, each time on a fresh server,
the servers in turn (A B A B), and reports per run p50, p99, p99.9 and the largest latency,
the cores that the server, loadgen and everything else on the machine used, and how many
runs had p99 under ``TARGET_MS`` (issue 17's target 4: five out of five).

With ``--trace`` each chatroom server runs with ``variants.py``'s ``trace`` patch, which
times every line inside the server against the send time loadgen wrote into it (one clock,
CLOCK_MONOTONIC): when the server read it, when the fan-out pass carrying it started and
ended. The rest, up to loadgen's figure, is loadgen's side: waking up and reading 99
sockets. It also reports garbage-collection pauses and how late a 5 ms timer ran (the
reactor busy, or the process waiting for a core). The patch costs CPU itself: trace runs
say where the time goes, the plain runs are the figures.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from run import SETTLE, Bench, Step, _cores, _num, _other

CLIENTS, SENDERS, RATE = 100, 10, 500.0
SECONDS = 5.0
TARGET_MS = 2.0

TRACED = ("read", "pass_start", "pass_end")


def measure(bench: Bench, kinds: list[str], runs: int, trace: bool = False,
            seconds: float = SECONDS) -> dict[str, Any]:
    """``{"kinds": [...], "runs": {kind: [record...]}}``; a record is loadgen's step, plus
    ``trace`` (the server's own timings) where asked for."""
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for run in range(runs):
        for kind in kinds:
            bench.note(f"--- workload 3, run {run + 1} of {runs}: {kind}")
            found[kind].append(one(bench, kind, trace, seconds))
    return {"kinds": kinds, "runs": found, "seconds": seconds}


def one(bench: Bench, kind: str, trace: bool, seconds: float) -> dict[str, Any]:
    traced = trace and kind.startswith("chatroom") and "@" not in kind
    path = bench.out / "logs" / f"trace-{len(bench.log)}.json"
    server_kind = f"{kind}{',' if '+' in kind else '+'}trace={path}" if traced else kind
    server = bench.server(server_kind)
    with server:
        _, results = bench.loadgen(server, CLIENTS, SENDERS, [(RATE, seconds)], drain=3.0,
                                   settle=SETTLE, tag="w3-latency")
    record: dict[str, Any] = dict(results[0], server=kind)
    if traced:
        try:
            record["trace"] = json.loads(path.read_text())  # written as the server stopped
        except (OSError, ValueError):
            record["trace"] = None
    return record


def table(found: dict[str, Any]) -> str:
    kinds: list[str] = found["kinds"]
    runs: dict[str, list[Step]] = found["runs"]
    head = "| run | " + " | ".join(
        f"{k}: p50 / p99 ms (p99.9, max); server / loadgen / other cores" for k in kinds) + " |"
    lines = [head, "|---" * (len(kinds) + 1) + "|"]
    for i in range(max(len(v) for v in runs.values())):
        cells = [_cell(runs[k][i]) if i < len(runs[k]) else "-" for k in kinds]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    under = [sum(1 for r in runs[k] if r["pass"] and r["p99_ms"] < TARGET_MS) for k in kinds]
    lines.append(f"| p99 < {TARGET_MS:g} ms | " + " | ".join(
        f"**{n} of {len(runs[k])}**" for n, k in zip(under, kinds, strict=True)) + " |")
    lines.append("| median p50 / p99 ms | " + " | ".join(
        f"{_median(runs[k], 'p50_ms'):.2f} / {_median(runs[k], 'p99_ms'):.2f}"
        for k in kinds) + " |")
    traced = [k for k in kinds if any(r.get("trace") for r in runs[k])]
    if traced:
        lines += ["", trace_table({k: runs[k] for k in traced})]
    return "\n".join(lines)


def trace_table(runs: dict[str, list[Step]]) -> str:
    """Medians over the runs of the server's own timings, next to loadgen's."""
    rows = [
        ("loadgen: sent to received (what the benchmark reports)", None, None),
        ("server read the line", "read", None),
        ("its fan-out pass started", "pass_start", None),
        ("its fan-out pass ended (the last recipient's send)", "pass_end", None),
        ("one pass, ms", "pass_ms", None),
        ("a 5 ms timer ran late by, ms", "late_ms", None),
        ("young-generation GC pauses, ms (count)", "gc_ms", "n"),
        ("full GC pauses, ms (count)", "gc2_ms", "n"),
    ]
    kinds = list(runs)
    lines = ["| ms after loadgen sent the line (medians over runs) | " + " | ".join(
        f"{k}: p50 / p99 / p99.9" for k in kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for label, key, extra in rows:
        cells = []
        for kind in kinds:
            recs = [r for r in runs[kind] if r.get("trace")]
            if key is None:
                got = [{"p50": r["p50_ms"], "p99": r["p99_ms"], "p999": r["p999_ms"]}
                       for r in recs]
            else:
                got = [r["trace"][key] for r in recs if r["trace"][key].get("n")]
            if not got:
                cells.append("-")
                continue
            cell = " / ".join(
                f"{statistics.median(g[p] for g in got):.2f}" for p in ("p50", "p99", "p999"))
            if extra:
                cell += f" ({statistics.median(g[extra] for g in got):g})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(r: Step) -> str:
    cores = "/".join(_num(v) for v in (_cores(r, "server_cpu_s"), _cores(r, "loadgen_cpu_s"),
                                       _other(r)))
    verdict = "" if r["pass"] else " FAIL"
    return (f"{r['p50_ms']:.2f} / **{r['p99_ms']:.2f}** ({r['p999_ms']:.1f}, "
            f"{r['max_ms']:.1f}); {cores}{verdict}")


def _median(records: list[Step], key: str) -> float:
    return statistics.median(r[key] for r in records) if records else float("nan")
