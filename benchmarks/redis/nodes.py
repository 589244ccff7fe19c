"""Two nodes on Redis with N clients each, against one node with 2N clients.

Three set-ups, each a fresh set of server processes on loopback, same clients, same load:

- ``local``: one node, ``LocalHub`` (today's default: no Redis at all), 2N clients;
- ``redis-1``: one node on ``RedisHub``, 2N clients (the cost of the hub by itself);
- ``redis-2``: two nodes on ``RedisHub``, N clients each, senders on both nodes.

The load generator (this file, ``--loadgen``, asyncio in its own process) joins the
clients, then for each step has S senders send R lines a second in total for D seconds,
round robin. Each line carries the sender, a sequence number and ``time.monotonic_ns()``
(one clock for every process on the machine), so each receiver checks that nothing is
lost, doubled or reordered per sender, and measures latency. A step's deliveries/s is
lines received by all clients / (send window + drain); p50/p99 are over every delivery.

Run: ``.venv/bin/python benchmarks/redis/nodes.py --clients 50`` (N per node; about a
minute). Machine: see the notes; servers, Redis and the load generator share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
LAUNCHER = ROOT / "tests" / "integration" / "redis_server.py"
LISTENING = re.compile(r"chatroom listening on .*port=(\d+)")


# -- the load generator (runs in its own process) ------------------------------------------


class Client(asyncio.Protocol):
    def __init__(self, nick: str, stats: dict[str, Any]) -> None:
        self.nick = nick
        self.stats = stats
        self.buffer = b""
        self.welcomed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.last: dict[bytes, int] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        *lines, self.buffer = (self.buffer + data).split(b"\r\n")
        now = time.monotonic_ns()
        stats = self.stats
        for line in lines:
            at = line.find(b"#L ")
            if at < 0:
                if not self.welcomed.done() and b"welcome" in line:
                    self.welcomed.set_result(None)
                continue
            sender, seq_text, sent = line[at + 3:].split(b" ")
            seq = int(seq_text)
            last = self.last.get(sender, -1)
            if seq != last + 1:
                stats["disorder"] += 1
            self.last[sender] = seq
            stats["received"] += 1
            stats["latencies"].append(now - int(sent))

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(text.encode() + b"\r\n")


async def loadgen(ports: list[int], clients: int, senders: int, rates: list[int],
                  seconds: float, drain: float) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    stats: dict[str, Any] = {"received": 0, "disorder": 0, "latencies": []}
    members: list[Client] = []
    for i in range(clients):
        port = ports[i % len(ports)]
        _, client = await loop.create_connection(
            lambda i=i: Client(f"u{i}", stats), "127.0.0.1", port)  # type: ignore[misc]
        client.send(f"u{i}")
        members.append(client)
        if i % 50 == 49:
            await asyncio.gather(*(c.welcomed for c in members))
    await asyncio.wait_for(asyncio.gather(*(c.welcomed for c in members)), 30)
    await asyncio.sleep(1.0)  # every join announced everywhere before counting
    # Senders: spread over the ports (members alternate ports, so the first S do).
    talkers = members[:senders]
    results = []
    seq = {c.nick: 0 for c in talkers}
    for rate in rates:
        stats["received"] = 0
        stats["disorder"] = 0
        stats["latencies"] = []
        interval = 1.0 / rate
        total = int(rate * seconds)
        start = time.monotonic()
        for n in range(total):
            due = start + n * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            talker = talkers[n % len(talkers)]
            talker.send(f"#L {talker.nick} {seq[talker.nick]} {time.monotonic_ns()}")
            seq[talker.nick] += 1
        sent_for = time.monotonic() - start
        expected = total * (clients - 1)
        deadline = time.monotonic() + drain
        while stats["received"] < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        window = time.monotonic() - start
        lat = sorted(stats["latencies"])

        def pct(p: float, lat: list[int] = lat) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6 if lat else float("nan")

        results.append({
            "rate": rate, "sent": total, "send_seconds": round(sent_for, 2),
            "expected": expected, "received": stats["received"],
            "lost": expected - stats["received"], "disorder": stats["disorder"],
            "deliveries_per_s": round(stats["received"] / window),
            "p50_ms": round(pct(0.50), 2), "p99_ms": round(pct(0.99), 2),
        })
        if stats["received"] < expected:
            break
    for c in members:
        if c.transport is not None:
            c.transport.close()
    return results


# -- the driver ----------------------------------------------------------------------------


def start_node(
    workdir: Path, redis_url: str | None, name: str
) -> tuple[subprocess.Popen[bytes], int]:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    command = [sys.executable, str(LAUNCHER), "node", "--node", name]
    if redis_url:
        command += ["--redis", redis_url]
    proc = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=workdir)
    for _ in range(400):
        match = LISTENING.search(log.read_text("utf-8", "replace"))
        if match:
            time.sleep(0.5)  # the hub connects right after the listener
            return proc, int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"node {name} did not start: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="N: clients per node")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rates", default="100,200,400,800,1600",
                        help="lines per second in all, one step each, until one fails")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--drain", type=float, default=5.0)
    parser.add_argument("--setups", default="local,redis-1,redis-2",
                        help="which set-ups to run, in order")
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    if args.loadgen:
        ports = [int(p) for p in args.loadgen.split(",")]
        out = asyncio.run(loadgen(ports, 2 * args.clients, args.senders, rates,
                                  args.seconds, args.drain))
        print(json.dumps(out))
        return
    from tests.integration.redis_server import RedisServer

    summary: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for setup in args.setups.split(","):
            server = None
            url = None
            if setup != "local":
                server = RedisServer(Path(tmp) / f"redis-{setup}")
                server.directory.mkdir()
                server.start()
                server.wait_ready()
                url = server.url
            names = ["b", "c"] if setup == "redis-2" else ["a"]
            nodes = [start_node(Path(tmp) / setup, url, name) for name in names]
            try:
                port_list = ",".join(str(port) for _, port in nodes)
                done = subprocess.run(
                    [sys.executable, __file__, "--loadgen", port_list, "--clients",
                     str(args.clients), "--senders", str(args.senders), "--rates", args.rates,
                     "--seconds", str(args.seconds), "--drain", str(args.drain)],
                    capture_output=True, text=True, timeout=600, check=False)
                lines = [x for x in done.stdout.splitlines() if x.startswith("[")]
                if not lines:
                    raise RuntimeError(done.stderr[-3000:])
                summary[setup] = json.loads(lines[-1])
            finally:
                for proc, _ in nodes:
                    stop(proc)
                if server is not None:
                    server.stop()
    print(f"{2 * args.clients} clients in all, {args.senders} senders, "
          f"{args.seconds:g} s per step")
    print(f"{'setup':<9} {'lines/s':>8} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'lost':>6} {'disorder':>9}")
    for setup, steps in summary.items():
        for step in steps:
            print(f"{setup:<9} {step['rate']:>8} {step['deliveries_per_s']:>13,} "
                  f"{step['p50_ms']:>8} {step['p99_ms']:>8} {step['lost']:>6} "
                  f"{step['disorder']:>9}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
