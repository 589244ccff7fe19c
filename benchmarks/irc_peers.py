"""chatroom's IRC front end against ngIRCd and InspIRCd, on the same loads in the same run.

``python benchmarks/irc_peers.py`` (``make bench-irc``, part of ``make bench``) installs the
Debian packages ``ngircd`` and ``inspircd`` if they are missing (``--install``), writes a
configuration for each into a temporary directory, and measures the three servers with
loadgen's IRC mode (NICK/USER, JOIN #lobby, PRIVMSG #lobby), each workload on every server
in turn so that they all meet the same neighbours' noise:

1. 1000 clients in one channel, 1 sender: the highest passing rate (run.py's ramp);
2. the server CPU per delivery at one rate every server passed in 1 (the lowest of their
   saturation rates), on a fresh server each;
3. 100 clients, 10 senders, 500 msgs/s: p50/p99 (low load);
4. 100 clients, 10 senders: the highest passing rate.

The peers are configured for the load generator, as fairly as we know how: flood control
off (ngIRCd ``MaxPenaltyTime = 0``; InspIRCd ``fakelag="no"`` with a command rate and
penalty threshold no client reaches), no limit on clients or clients per address, no DNS or
ident lookups, no connection throttle, ping timeouts longer than a run, send queues of
16 MB (InspIRCd; ngIRCd's is fixed at build time). chatroom runs as ``run.py`` runs it
(``--rate 100000 --burst 100000``, history on) with ``--irc``. Each runs as the invoking
user on a free 127.0.0.1 port (ngIRCd, started as root, switches to ``nobody`` by itself;
InspIRCd gets ``--runasroot``). ngIRCd listens with a backlog of 10, so loadgen lets 8
clients register at a time there; InspIRCd took about a second to register each client
here, so 250 at a time there (the setup is not measured).

Output: a table on stdout and in ``benchmarks/out/irc.md``, the figures in ``irc.json``,
every step in ``steps.jsonl``. ``BENCH_QUICK=1`` (or ``--quick``): coarse ramps only, shorter
steps (~3 minutes; a full run ~7). Servers are stopped by their PIDs; every loadgen run
has a deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from run import (
    OUT,
    Bench,
    Server,
    Step,
    _cores,
    _dps,
    _ms,
    _num,
    _other,
    _rate,
    _ratio,
    build_loadgen,
    low_then_w2,
    machine,
    pin_driver,
    revision,
)

SERVERS = ("chatroom", "ngircd", "inspircd")
PACKAGES = {"ngircd": "ngircd", "inspircd": "inspircd"}

NGIRCD_CONF = """\
# ngIRCd for the load generator: penalties (flood control) off, limits lifted, no lookups.
[Global]
\tName = bench.local
\tInfo = chatroom IRC benchmark
\tListen = 127.0.0.1
\tPorts = {port}
\tMotdPhrase = bench
\tPidFile = {dir}/ngircd.pid
[Limits]
\tMaxConnections = 0
\tMaxConnectionsIP = 0
\tMaxJoins = 0
\tMaxNickLength = 32
\tMaxPenaltyTime = 0
\tPingTimeout = 600
\tPongTimeout = 600
\tIdleTimeout = 0
[Options]
\tDNS = no
\tIdent = no
\tPAM = no
\tRequireAuthPing = no
\tConnectIPv6 = no
"""

INSPIRCD_CONF = """\
# InspIRCd for the load generator: no fakelag or excess-flood kills, limits lifted,
# no lookups, no connection throttle (connflood/connectban are not loaded).
<server name="bench.local" description="chatroom IRC benchmark" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
<power diepass="" restartpass="">
<connect name="bench" allow="127.0.0.0/8" timeout="60" pingfreq="600"
         threshold="1000000" commandrate="100000000" fakelag="no"
         hardsendq="16777216" softsendq="16777216" recvq="1048576"
         localmax="100000" globalmax="100000" limit="100000" maxconnwarn="no"
         resolvehostnames="no" useident="no" maxchans="100">
<files motd="{dir}/motd.txt">
<pid file="{dir}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/ircd.log">
<performance softlimit="100000" somaxconn="1024" netbuffersize="10240"
             clonesonconnect="no" quietbursts="yes" timeskipwarn="0">
<limits maxnick="32" maxchan="64">
<options prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes"
         pingwarning="0" splitwhois="no" exemptchanops="">
<security hideserver="" userstats="Pu" customversion="" flatlinks="no" hidesplits="no"
          hideulines="no" hidebans="no" maxtargets="20">
<whowas groupsize="10" maxgroups="100000" maxkeep="3d">
"""


def free_port() -> int:
    """A port nobody listens on now (the peers take a port number, not 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_installed(kinds: tuple[str, ...]) -> list[str]:
    """Install the Debian packages of the peers that are missing (apt-get update once);
    return the kinds still missing afterwards."""
    missing = [k for k in kinds if k in PACKAGES and shutil.which(k) is None
               and not Path(f"/usr/sbin/{k}").exists()]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            subprocess.run(["apt-get", "update", "-q"], check=True, timeout=600, env=env)
            subprocess.run(["apt-get", "install", "-y", "-q", *(PACKAGES[k] for k in missing)],
                           check=True, timeout=900, env=env)
        except (OSError, subprocess.SubprocessError) as e:
            print(f"irc_peers: could not install {missing}: {e}", file=sys.stderr)
    return [k for k in kinds if k in PACKAGES and _binary(k) is None]


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    sbin = Path("/usr/sbin") / name
    return str(sbin) if sbin.exists() else None


@dataclass
class Peer(Server):
    """ngIRCd or InspIRCd on a free loopback port, with its configuration in a temporary
    directory (the server's working directory, removed when it stops)."""

    def command(self) -> list[str]:
        self.port = free_port()
        conf = Path(self._tmp) / f"{self.kind}.conf"
        binary = _binary(self.kind)
        if binary is None:
            raise RuntimeError(f"{self.kind} is not installed")
        if self.kind == "ngircd":
            conf.write_text(NGIRCD_CONF.format(port=self.port, dir=self._tmp))
            return [binary, "--nodaemon", "--config", str(conf)]
        if self.kind == "inspircd":
            conf.write_text(INSPIRCD_CONF.format(port=self.port, dir=self._tmp))
            (Path(self._tmp) / "motd.txt").write_text("bench\n")
            root = ["--runasroot"] if os.geteuid() == 0 else []
            return [binary, "--nofork", "--config", str(conf), *root]
        raise ValueError(f"unknown server {self.kind!r}")

    def listening_port(self) -> int | None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self.port
        except OSError:
            return None


class IrcBench(Bench):
    """run.py's machinery with loadgen in IRC mode and these three servers."""

    def make_server(self, kind: str) -> Server:
        if kind in PACKAGES:
            # ngIRCd listens with a backlog of 10; InspIRCd takes ~1 s to register a client
            return Peer(kind, self.out / "logs", inflight=8 if kind == "ngircd" else 250)
        return Server(kind, self.out / "logs", irc=True)


def workloads(bench: Bench, servers: dict[str, dict[str, Any]]) -> None:
    """Each workload on every server in turn (see the module's docstring)."""
    q = bench.quick
    w1_coarse = [300.0, 750, 1500, 3000, 6000, 12000] if q else \
        [300.0, 500, 1000, 2000, 3000, 4500, 6000, 9000, 13500]
    w2_coarse = [5000.0, 10000, 20000, 40000, 80000] if q else \
        [3000.0, 6000, 10000, 15000, 22000, 33000, 50000, 75000, 110000]
    for kind, res in servers.items():
        bench.note(f"--- {kind}: 1000 clients, 1 sender: saturation")
        res["w1"] = bench.saturation(kind, 1000, 1, w1_coarse, "irc-w1")
        res["w1"]["p99_by_rate"] = bench.ramp_p99("irc-w1", kind)
    passed = [res["w1"]["best"]["rate"] for res in servers.values() if res["w1"]["best"]]
    common = min(passed) if len(passed) == len(servers) else 300.0
    for kind, res in servers.items():
        bench.note(f"--- {kind}: 1000 clients, 1 sender at {common:g} msgs/s: CPU per delivery")
        res["cpu"] = bench.fixed(kind, 1000, 1, common, 3.0 if q else 5.0, "irc-cpu")
    low_then_w2(bench, servers, w2_coarse, "irc-w2", (500.0, 3.0 if q else 5.0))


def table(servers: dict[str, dict[str, Any]]) -> str:
    """One row per figure: every server, then chatroom / each peer."""
    kinds = list(servers)
    mine, peers = kinds[0], kinds[1:]
    rows: list[str] = []

    def add(label: str, get: Callable[[dict[str, Any]], Any], fmt: Callable[[Any], str],
            value: Callable[[Any], float | None] | None = None) -> None:
        got = {k: get(servers[k]) for k in kinds}
        ratios = [
            _ratio(value(got[mine]), value(got[p])) if value and got[mine] and got[p] else "-"
            for p in peers
        ]
        rows.append(f"| {label} | " + " | ".join(fmt(got[k]) for k in kinds) + " | "
                    + " | ".join(ratios) + " |")

    def cpm(s: Step | None) -> float | None:
        return s["server_cpu_s_per_M"] if s else None

    def p99(s: Step | None) -> float | None:
        return s["p99_ms"] if s else None

    def cores(s: Step | None) -> str:
        return "/".join(_num(v) for v in (_cores(s, "server_cpu_s"), _cores(s, "loadgen_cpu_s"),
                                          _other(s)))

    for w, label in (("w1", "1000 clients, 1 sender"), ("w2", "100 clients, 10 senders")):
        best: Callable[[dict[str, Any]], Step | None] = lambda s, w=w: s[w]["best"]  # noqa: E731
        add(f"{label}: highest passing rate, deliveries/s", best, _rate, _dps)
        add(f"{label}: p50 / p99 ms there", best, _ms)
        add(f"{label}: server / loadgen / other cores there", best, cores)
        add(f"{label}: first failing rate (msgs/s)", lambda s, w=w: s[w]["first_fail_rate"],
            lambda v: _num(v, "{:g}"))
        add(f"{label}: p99 ms at each coarse rate (msgs/s:ms, x = aborted)",
            lambda s, w=w: s[w]["p99_by_rate"], str)
        if w == "w1":
            cpu: Callable[[dict[str, Any]], Step] = lambda s: s["cpu"]  # noqa: E731
            rate = next(s["cpu"]["rate"] for s in servers.values())
            add(f"1000 clients, 1 sender at {rate:g} msgs/s (all passed W1 there): server CPU "
                "s per M deliveries", cpu, lambda s: _num(cpm(s), "{:.3f}"), cpm)
            add(f"  at {rate:g} msgs/s: deliveries/s, p50 / p99 ms, verdict", cpu,
                lambda s: f"{(_dps(s) or 0) / 1e6:.2f}M, {_ms(s)}, "
                          f"{'pass' if s['pass'] else 'FAIL'}")
            add(f"  at {rate:g} msgs/s: server / loadgen / other cores", cpu, cores)
    w3: Callable[[dict[str, Any]], Step | None] = lambda s: s["w3"]  # noqa: E731
    add("low load, 100 clients, 10 senders, 500 msgs/s: p50 / p99 ms", w3, _ms, p99)
    add("low load: server CPU s per M deliveries", w3, lambda s: _num(cpm(s), "{:.3f}"), cpm)
    head = ("| measure | " + " | ".join(kinds) + " | "
            + " | ".join(f"{mine} / {p}" for p in peers) + " |")
    return "\n".join([head, "|---" * (1 + len(kinds) + len(peers)) + "|", *rows])


def goals(servers: dict[str, dict[str, Any]]) -> str:
    """The issue's goals, each against each peer: met or not, with the figures."""
    first = next(iter(servers))
    mine = servers[first]
    lines = []
    for peer, res in servers.items():
        if peer == first:
            continue
        for w, label in (("w1", "1000x1"), ("w2", "100x10")):
            a, b = _dps(mine[w]["best"]), _dps(res[w]["best"])
            ok = a is not None and b is not None and a >= 2 * b
            lines.append(f"- highest passing rate {label} >= 2x {peer}: "
                         f"{'met' if ok else 'NOT met'} ({_ratio(a, b)}x)")
        a_cpu, b_cpu = mine["cpu"]["server_cpu_s_per_M"], res["cpu"]["server_cpu_s_per_M"]
        ok = all(s["cpu"]["pass"] for s in (mine, res)) and 0 < a_cpu <= b_cpu / 3
        lines.append(f"- CPU per delivery <= 1/3 of {peer}'s at a rate both pass: "
                     f"{'met' if ok else 'NOT met'} ({_ratio(a_cpu, b_cpu)}x)")
    p99 = mine["w3"]["p99_ms"] if mine["w3"] else None
    lines.append(f"- p99 at low load < 2 ms: {'met' if p99 is not None and p99 < 2 else 'NOT met'}"
                 f" ({_num(p99)} ms)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    pin_driver()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick = os.environ.get("BENCH_QUICK", "").strip() not in ("", "0")
    parser.add_argument("--quick", action="store_true", default=quick,
                        help="coarse ramps only, shorter steps (also BENCH_QUICK=1)")
    parser.add_argument("servers", nargs="*", default=list(SERVERS),
                        help="chatroom[-nohist][@TREE][+PATCH], ngircd, inspircd; the first "
                             "is compared with the others")
    parser.add_argument("--install", action=argparse.BooleanOptionalAction, default=True,
                        help="apt-get install the peers that are missing")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    kinds = tuple(args.servers)
    missing = ensure_installed(kinds) if args.install else []
    if missing:
        print(f"irc_peers: not installed, left out: {', '.join(missing)}", file=sys.stderr)
        kinds = tuple(k for k in kinds if k not in missing)
    build_loadgen()
    OUT.mkdir(parents=True, exist_ok=True)
    bench = IrcBench(quick=args.quick, out=OUT, servers=kinds, irc=True)
    bench.note(f"IRC: {' / '.join(kinds)}, {'quick' if bench.quick else 'full'} run on "
               f"{machine()}")
    servers: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
    started = time.monotonic()
    workloads(bench, servers)
    date = time.strftime("%Y-%m-%d %H:%M:%S")
    (OUT / "irc.json").write_text(json.dumps(
        {"servers": servers, "quick": bench.quick, "machine": machine(),
         "revision": revision(), "date": date}, indent=1))
    head = (
        f"IRC servers ({'quick' if bench.quick else 'full'}), {date}, commit {revision()}, "
        f"{machine()}, {time.monotonic() - started:.0f} s; server and loadgen share the cores, "
        "and 'other' is the rest of the machine (neighbours). A rate passes when no line is "
        "lost, none is out of order, no member is cut and p99 < 100 ms."
    )
    text = head + "\n\n" + table(servers) + "\n\n" + goals(servers)
    (OUT / "irc.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
