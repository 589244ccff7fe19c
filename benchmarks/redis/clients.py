"""Which Redis client for the hub: the same stream fan-out through three libraries.

One publisher appends ``--events`` entries (each ~120 bytes, like a chat line) to a stream
with pipelined XADDs; ``--readers`` readers follow it with ``XREAD BLOCK COUNT 512`` and
count entries until they have them all. The figure is entries delivered to readers per
second (events x readers / wall time), the hub's fan-out across nodes, and the library's
CPU cost per entry (this process's CPU seconds / entries delivered).

- ``ours``: chatroom.hubs.redis_resp on the default Twisted reactor (what the hub uses);
- ``txredisapi``: txredisapi on the default Twisted reactor;
- ``redis-py``: redis.asyncio on plain asyncio (under Twisted it would need the asyncio
  reactor; plain asyncio is its best case).

Run: ``.venv/bin/python benchmarks/redis/clients.py`` (starts its own redis-server on a
free loopback port in a temp dir; needs ``pip install txredisapi redis`` for the last two).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PAYLOAD = b'["Said","lobby",1700000000.123,"a1b2c3d4.17","alice","' + b"x" * 60 + b'"]'
STREAM = "bench:{lobby}:log"


def run_ours(port: int, events: int, readers: int) -> dict[str, Any]:
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.endpoints import TCP4ClientEndpoint
    from twisted.internet.protocol import Factory

    from chatroom.hubs.redis_resp import RedisProtocol, encode

    result: dict[str, Any] = {}

    async def main() -> None:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        factory = Factory.forProtocol(lambda: RedisProtocol(time.monotonic))
        publisher = await endpoint.connect(factory)
        conns = [await endpoint.connect(factory) for _ in range(readers)]
        done = [0] * readers
        finished: list[Any] = []
        from twisted.internet.defer import Deferred

        all_done: Deferred[None] = Deferred()

        def reader_loop(i: int, conn: RedisProtocol, last: bytes) -> None:
            def got(reply: Any) -> None:
                nonlocal last
                if reply:
                    entries = reply[0][1]
                    done[i] += len(entries)
                    last = entries[-1][0]
                if done[i] >= events:
                    finished.append(i)
                    if len(finished) == readers:
                        all_done.callback(None)
                    return
                conn.send(["XREAD", "COUNT", 512, "BLOCK", 1000, "STREAMS", STREAM, last], got)

            got(None)

        start = time.monotonic()
        cpu = time.process_time()
        for i, conn in enumerate(conns):
            reader_loop(i, conn, b"0-0")
        head = encode(["XADD", STREAM, "MAXLEN", "~", 100000, "*", "n", "node", "s"])
        head = head.replace(b"*9\r\n", b"*12\r\n", 1)
        acks = [0]

        def ack(_: Any) -> None:
            acks[0] += 1

        for seq in range(events):
            s = b"%d" % seq
            publisher.send_raw(b"".join((head, b"$%d\r\n%s\r\n$1\r\ne\r\n$%d\r\n" % (
                len(s), s, len(PAYLOAD)), PAYLOAD, b"\r\n")), ack)
            if seq % 2000 == 1999:  # let the reactor write and read between batches
                from twisted.internet.task import deferLater

                await deferLater(reactor, 0, lambda: None)
        await all_done
        result["seconds"] = time.monotonic() - start
        result["cpu"] = time.process_time() - cpu
        reactor.stop()

    def go() -> None:
        ensureDeferred(main()).addErrback(lambda f: (print(f), reactor.stop()))

    reactor.callWhenRunning(go)
    reactor.run()
    return result


def run_txredisapi(port: int, events: int, readers: int) -> dict[str, Any]:
    import txredisapi
    from twisted.internet import reactor
    from twisted.internet.defer import DeferredList, ensureDeferred

    result: dict[str, Any] = {}

    async def reader(conn: Any) -> None:
        last = "0-0"
        count = 0
        while count < events:
            reply = await conn.execute_command("XREAD", "COUNT", 512, "BLOCK", 1000,
                                               "STREAMS", STREAM, last)
            if reply:
                entries = reply[0][1]
                count += len(entries)
                last = entries[-1][0]

    async def main() -> None:
        publisher = await txredisapi.Connection("127.0.0.1", port, reconnect=False,
                                                convertNumbers=False)
        conns = [await txredisapi.Connection("127.0.0.1", port, reconnect=False,
                                             convertNumbers=False) for _ in range(readers)]
        start = time.monotonic()
        cpu = time.process_time()
        reading = DeferredList([ensureDeferred(reader(c)) for c in conns])
        pending = []
        for seq in range(events):
            pending.append(publisher.execute_command(
                "XADD", STREAM, "MAXLEN", "~", 100000, "*", "n", "node", "s", seq, "e",
                PAYLOAD.decode()))
            if seq % 2000 == 1999:
                await DeferredList(pending)
                pending = []
        await DeferredList(pending)
        await reading
        result["seconds"] = time.monotonic() - start
        result["cpu"] = time.process_time() - cpu
        reactor.stop()

    reactor.callWhenRunning(
        lambda: ensureDeferred(main()).addErrback(lambda f: (print(f), reactor.stop())))
    reactor.run()
    return result


def run_redispy(port: int, events: int, readers: int) -> dict[str, Any]:
    import asyncio

    import redis.asyncio as aioredis

    async def reader(conn: Any) -> None:
        last = "0-0"
        count = 0
        while count < events:
            reply = await conn.xread({STREAM: last}, count=512, block=1000)
            if reply:
                entries = reply[0][1]
                count += len(entries)
                last = entries[-1][0]

    async def main() -> dict[str, Any]:
        publisher = aioredis.Redis(host="127.0.0.1", port=port)
        conns = [aioredis.Redis(host="127.0.0.1", port=port) for _ in range(readers)]
        for c in [publisher, *conns]:
            await c.ping()
        start = time.monotonic()
        cpu = time.process_time()
        tasks = [asyncio.create_task(reader(c)) for c in conns]
        for base in range(0, events, 2000):
            pipe = publisher.pipeline(transaction=False)
            for seq in range(base, min(events, base + 2000)):
                pipe.xadd(STREAM, {"n": "node", "s": seq, "e": PAYLOAD}, maxlen=100000,
                          approximate=True)
            await pipe.execute()
        await asyncio.gather(*tasks)
        out = {"seconds": time.monotonic() - start, "cpu": time.process_time() - cpu}
        for c in [publisher, *conns]:
            await c.aclose()
        return out

    return asyncio.run(main())


RUNNERS = {"ours": run_ours, "txredisapi": run_txredisapi, "redis-py": run_redispy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(RUNNERS[args.one](args.port, args.events, args.readers)))
        return
    from tests.integration.redis_server import RedisServer

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in RUNNERS:
            best: dict[str, Any] | None = None
            for _ in range(args.rounds):
                server = RedisServer(Path(tmp) / f"{name}-{time.monotonic_ns()}")
                server.directory.mkdir()
                server.start()
                try:
                    server.wait_ready()
                    out = subprocess.run(
                        [sys.executable, __file__, "--one", name, "--port", str(server.port),
                         "--events", str(args.events), "--readers", str(args.readers)],
                        capture_output=True, text=True, timeout=300, check=False)
                finally:
                    server.stop()
                lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
                if not lines:
                    print(f"{name}: failed: {out.stdout[-500:]} {out.stderr[-1500:]}")
                    break
                result = json.loads(lines[-1])
                if best is None or result["seconds"] < best["seconds"]:
                    best = result
            if best is None:
                continue
            delivered = args.events * args.readers
            rows.append((name, delivered / best["seconds"], best["cpu"] / delivered * 1e6))
    print(f"{args.events} events, {args.readers} readers, best of {args.rounds}")
    print(f"{'client':<12} {'entries/s delivered':>20} {'client CPU us/entry':>20}")
    for name, rate, cpu_us in rows:
        print(f"{name:<12} {rate:>20,.0f} {cpu_us:>20.2f}")


if __name__ == "__main__":
    main()
