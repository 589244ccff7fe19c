"""How a server's cost grows with members and with senders, as a table and a small plot.

Two sweeps, each point on a fresh server, at rates every server here sustains (so the
figure is cost, not saturation):

- members: 10 to 2000 clients, 1 sender, 200 lines/s;
- senders: 100 clients, 1 to 100 of them sending, 2000 lines/s in total.

For each point: server CPU microseconds per delivery (CPU seconds per million) and p99.
``plot`` draws both sweeps for every server into one SVG (no plotting library needed).
``python benchmarks/run.py scaling`` runs it alone; ``make bench`` runs it too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

MEMBERS = (10, 100, 300, 1000, 2000)
MEMBERS_RATE = 200.0
SENDERS = (1, 3, 10, 30, 100)
SENDERS_CLIENTS = 100
SENDERS_RATE = 2000.0
SECONDS = 4.0

Sweep = dict[str, list[dict[str, Any]]]


def measure(bench: Any, kinds: tuple[str, ...]) -> dict[str, Sweep]:
    """``{kind: {"members": [point...], "senders": [point...]}}``."""
    found: dict[str, Sweep] = {}
    for kind in kinds:
        sweep: Sweep = {"members": [], "senders": []}
        for n in MEMBERS:
            bench.note(f"--- {kind}: scaling, {n} members, 1 sender, {MEMBERS_RATE:g} lines/s")
            step = bench.fixed(kind, n, 1, MEMBERS_RATE, SECONDS, "scale-members")
            sweep["members"].append(_point(n, step))
        for s in SENDERS:
            bench.note(f"--- {kind}: scaling, {SENDERS_CLIENTS} members, {s} senders")
            step = bench.fixed(kind, SENDERS_CLIENTS, s, SENDERS_RATE, SECONDS, "scale-senders")
            sweep["senders"].append(_point(s, step))
        found[kind] = sweep
    return found


def _point(x: int, step: dict[str, Any]) -> dict[str, Any]:
    return {"x": x, "us_per_delivery": step["server_cpu_s_per_M"], "p99_ms": step["p99_ms"],
            "pass": step["pass"]}


def table(found: dict[str, Sweep]) -> str:
    kinds = list(found)
    lines = []
    for axis, label in (("members", "members (1 sender, 200 lines/s)"),
                        ("senders", "senders (100 members, 2000 lines/s)")):
        lines.append(f"| {label} | " + " | ".join(
            f"{k}: CPU us/delivery, p99 ms" for k in kinds) + " |")
        lines.append("|---" * (len(kinds) + 1) + "|")
        for i, point in enumerate(found[kinds[0]][axis]):
            cells = []
            for k in kinds:
                p = found[k][axis][i]
                cells.append(f"{p['us_per_delivery']:.2f}, {p['p99_ms']:.1f}"
                             + ("" if p["pass"] else " (fail)"))
            lines.append(f"| {point['x']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def plot(found: dict[str, Sweep], path: Path) -> None:
    """Two panels (members, senders), log-log: CPU microseconds per delivery."""
    width, height, pad = 360, 240, 48
    values = [p["us_per_delivery"] for sweep in found.values() for axis in sweep.values()
              for p in axis if p["us_per_delivery"] and p["us_per_delivery"] > 0]
    low = 10 ** math.floor(math.log10(min(values))) if values else 0.1
    high = 10 ** math.ceil(math.log10(max(values))) if values else 100.0
    parts = []
    for panel, (axis, title) in enumerate((("members", "members (1 sender, 200 lines/s)"),
                                           ("senders", "senders (100 members, 2000/s)"))):
        left = panel * (width + pad) + pad
        xs = [p["x"] for p in next(iter(found.values()))[axis]]
        x_low, x_high = math.log10(min(xs)), math.log10(max(xs))

        def sx(x: float, left: int = left, x_low: float = x_low, x_high: float = x_high) -> float:
            return left + (math.log10(x) - x_low) / (x_high - x_low) * width

        def sy(y: float) -> float:
            return pad + height - (math.log10(y) - math.log10(low)) / (
                math.log10(high) - math.log10(low)) * height

        parts.append(f'<rect x="{left}" y="{pad}" width="{width}" height="{height}" '
                     'fill="none" stroke="#999"/>')
        parts.append(f'<text x="{left + width / 2}" y="{pad + height + 36}" '
                     f'text-anchor="middle">{title}</text>')
        for x in xs:
            parts.append(f'<text x="{sx(x):.1f}" y="{pad + height + 16}" '
                         f'text-anchor="middle" font-size="11">{x}</text>')
        decade = low
        while decade <= high * 1.0001:
            y = sy(decade)
            parts.append(f'<line x1="{left}" x2="{left + width}" y1="{y:.1f}" y2="{y:.1f}" '
                         'stroke="#eee"/>')
            parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
                         f'font-size="11">{decade:g}</text>')
            decade *= 10
        for colour, sweep in zip(_COLOURS, found.values(), strict=False):
            points = [(sx(p["x"]), sy(p["us_per_delivery"])) for p in sweep[axis]
                      if p["us_per_delivery"] and p["us_per_delivery"] > 0]
            path_d = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path_d}" fill="none" stroke="{colour}" '
                         'stroke-width="2"/>')
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'
                         for x, y in points)
    for i, (colour, kind) in enumerate(zip(_COLOURS, found, strict=False)):
        parts.append(f'<text x="{pad + 8}" y="{pad + 16 + 14 * i}" fill="{colour}" '
                     f'font-size="12">{kind}</text>')
    parts.append(f'<text x="{pad}" y="{pad - 14}" font-size="13">server CPU microseconds '
                 'per delivery (log scale; lower is better)</text>')
    total_w = 2 * (width + pad) + pad
    total_h = height + 2 * pad + 24
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>\n'
        + "\n".join(parts) + "\n</svg>\n"
    )
