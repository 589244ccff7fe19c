"""Many rooms on one server: 200 rooms of 50 members against one room of 50, same run.

``run.py rooms`` measures, on fresh chatroom servers with history on:

1. a ramp of per-room rates, each step ``rooms`` x the rate in lines/s in total, on 10 000
   connections in 200 rooms with one sender per room; against one room of 50 members with
   one sender, on a server of its own, at the same rate per room (steps twice as long: a
   quiet room uses little CPU) and at the same rate in total (the same deliveries/s, all in
   one room). Per step: deliveries/s, p50/p99, server CPU per delivery. A step passes when
   every member gets every line of its own room in order, none twice, none from another
   room, nobody is cut, and p99 < 100 ms; the ramp ends at the second failing step in a row
   (a timing failure is tried once more).
2. memory per (member, room) pair: server RSS with the 10 000 members idle in one room
   each, then on a fresh server in two rooms each (the same 200 rooms, 100 members each),
   and the difference divided by 10 000. A run of 10 members in 10 rooms gives the
   per-member figure.

Setup: loadgen joins 32 clients at a time, each answers the prompt, joins its room and
leaves ``#lobby`` before the next is let in, so ``#lobby`` (where every arrival and
departure is announced to everyone in it) never holds more than 32; the handshake record
says how long the 10 000 took and how full the lobby got.
"""

from __future__ import annotations

from typing import Any

from run import Bench, Step, _ms, _num, _ratio

ROOMS, MEMBERS = 200, 50
RATES = [1.0, 2, 3, 4, 5, 7, 10, 14, 20, 28, 40, 56, 80, 112, 160]
"""Per-room lines/s of the ramp (x ROOMS in total for the many-rooms server)."""
QUICK_RATES = [1.0, 3, 10, 28, 80]
SETUP_S = 300.0
"""The most the 10 000 handshakes may take (a busy machine makes them slow)."""


def measure(bench: Bench, rooms: int = ROOMS, members: int = MEMBERS,
            rates: list[float] | None = None, with_memory: bool = True,
            kind: str = "chatroom") -> dict[str, Any]:
    """The many-rooms ramp, the one-room ramps up to where it ended, the memory figures;
    ``kind`` is the server, as run.py names it (chatroom, chatroom+PATCH, chatroom@TREE)."""
    rates = rates or (QUICK_RATES if bench.quick else RATES)
    found: dict[str, Any] = {"rooms": rooms, "members": members}
    secs = bench.step_s
    bench.note(f"--- rooms: {rooms} rooms of {members}, {rooms} senders, per room {rates}")
    with bench.server(kind) as server:
        hs, found["many"] = bench.loadgen(
            server, rooms * members, rooms, [(r * rooms, secs) for r in rates],
            ramp=2, rooms=rooms, hs_timeout=SETUP_S, tag="rooms-many")
    found["setup"] = hs
    reached = max((s["rate"] / rooms for s in found["many"]), default=rates[0])
    rates = [r for r in rates if r <= reached]
    bench.note(f"--- rooms: 1 room of {members}, 1 sender, per-room rates {rates}")
    with bench.server(kind) as server:
        _, found["one"] = bench.loadgen(server, members, 1, [(r, 2 * secs) for r in rates],
                                        ramp=2, rooms=1, tag="rooms-one")
    bench.note(f"--- rooms: 1 room of {members}, 1 sender, {rooms} x those rates")
    with bench.server(kind) as server:
        _, found["one_total"] = bench.loadgen(
            server, members, 1, [(r * rooms, secs) for r in rates], ramp=2, rooms=1,
            tag="rooms-one-total")
    if with_memory:
        found["memory"] = memory(bench, rooms, members, kind)
    return found


def memory(bench: Bench, rooms: int, members: int, kind: str = "chatroom") -> dict[str, Any]:
    """RSS with every member idle in 1 room, then (fresh server) in 2; and 10 members."""
    found: dict[str, Any] = {}
    for label, clients, n_rooms, each in (("few", 10, 10, 1), ("one_each", rooms * members,
                                                                rooms, 1),
                                          ("two_each", rooms * members, rooms, 2)):
        bench.note(f"--- rooms: memory, {clients} members in {each} room(s) each")
        with bench.server(kind) as server:
            hs, _ = bench.loadgen(server, clients, 1, [], settle=2.0, rooms=n_rooms,
                                  rooms_each=each, hs_timeout=SETUP_S, tag=f"rooms-mem-{label}")
        found[label] = hs
    n = rooms * members
    one, two, few = found["one_each"], found["two_each"], found["few"]
    found["kb_per_pair"] = (two["server_rss_kb"] - one["server_rss_kb"]) / n
    found["kb_per_member"] = (one["server_rss_kb"] - few["server_rss_kb"]) / (n - 10)
    return found


def _cpu_us(step: Step | None) -> float | None:
    if not step or step["delivered"] <= 0:
        return None
    return float(step["server_cpu_s"]) / float(step["delivered"]) * 1e6


def _cores(step: Step) -> float:
    elapsed = float(step["send_s"] + step["drain_s"])
    return float(step["server_cpu_s"]) / max(elapsed, 1e-9)


def _last(steps: list[Step]) -> dict[float, Step]:
    """The last attempt at each rate."""
    return {s["rate"]: s for s in steps}


def saturation(steps: list[Step]) -> Step | None:
    passed = [s for s in steps if s["pass"]]
    return max(passed, key=lambda s: s["rate"]) if passed else None


def table(found: dict[str, Any]) -> str:
    rooms, members = found["rooms"], found["members"]
    many, one = _last(found["many"]), _last(found["one"])
    total = _last(found["one_total"])
    lines = [
        f"| lines/s per room | {rooms}x{members}: msgs/s in, deliveries/s | p50 / p99 ms | "
        f"µs CPU per delivery | server cores | verdict | 1x{members} at the same lines/s per "
        f"room: µs CPU per delivery, p99 ms, verdict | 1x{members} at the same msgs/s in "
        f"total: deliveries/s, µs CPU per delivery, p99 ms, verdict | CPU per delivery, "
        f"many / one (same per room; same in total) |",
        "|---" * 9 + "|",
    ]
    for rate_many, m in sorted(many.items()):
        per_room = rate_many / rooms
        o, t = one.get(per_room), total.get(rate_many)
        cm, co, ct = _cpu_us(m), _cpu_us(o), _cpu_us(t)
        lines.append(
            f"| {per_room:g} | {rate_many:g}, {m['deliveries_per_s'] / 1e3:.0f}k | {_ms(m)} | "
            f"{_num(cm)} | {_cores(m):.2f} | {_verdict(m)} | "
            + (f"{_num(co)}, {o['p99_ms']:.1f}, {_verdict(o)} | " if o else "- | ")
            + (f"{t['deliveries_per_s'] / 1e3:.0f}k, {_num(ct)}, {t['p99_ms']:.1f}, "
               f"{_verdict(t)} | " if t else "- | ")
            + f"{_ratio(cm, co)}; {_ratio(cm, ct)} |"
        )
    best = saturation(found["many"])
    setup = found["setup"]
    lines += [
        "",
        f"Saturation ({rooms}x{members}, the highest passing step): "
        + (f"{best['deliveries_per_s'] / 1e6:.2f}M deliveries/s at {best['rate']:g} msgs/s "
           f"({best['rate'] / rooms:g} per room), p99 {best['p99_ms']:.1f} ms, "
           f"{_num(_cpu_us(best))} µs CPU per delivery" if best else "no step passed") + ".",
        f"Setup: {setup['clients']} members joined, each into its room and out of #lobby, in "
        f"{setup['handshake_s']:.1f} s (#lobby held at most {setup['lobby_max']}; server CPU "
        f"{setup['server_cpu_s']:.1f} s since start).",
    ]
    mem = found.get("memory")
    if not mem:
        return "\n".join(lines)
    lines += [
        f"Memory (RSS after 2 s idle): {mem['few']['server_rss_kb'] / 1024:.1f} MB with 10 "
        f"members; {mem['one_each']['server_rss_kb'] / 1024:.1f} MB with "
        f"{rooms * members} in 1 room each; {mem['two_each']['server_rss_kb'] / 1024:.1f} MB "
        f"in 2 rooms each: **{mem['kb_per_pair']:.2f} KB per (member, room) pair**, "
        f"{mem['kb_per_member']:.2f} KB per member in one room. Setup took "
        f"{mem['one_each']['handshake_s']:.0f} s and {mem['two_each']['handshake_s']:.0f} s.",
    ]
    return "\n".join(lines)


def _verdict(step: Step) -> str:
    if step["pass"]:
        return "pass"
    if step["aborted"]:
        return "ABORT"
    why = []
    if step["owed"]:
        why.append(f"owed {step['owed']}")
    for key in ("gaps", "out_of_order", "dups", "strays", "cut"):
        if step[key]:
            why.append(f"{key} {step[key]}")
    if step["p99_ms"] >= 100:
        why.append("late")
    return "fail" + (f" ({', '.join(why)})" if why else "")
