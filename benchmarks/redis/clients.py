"""Which Redis client for the hub: the same stream fan-out through each library.

One publisher appends ``--events`` entries (each ~120 bytes, like a chat line) to a stream
with pipelined XADDs; ``--readers`` readers follow it with ``XREAD BLOCK COUNT 512`` and
count entries until they have them all. The figures are entries delivered to readers per
second (events x readers / wall time), the hub's fan-out across nodes, and the client's
CPU cost per entry delivered (this process's CPU seconds / (events x readers); the
publisher's share is spread over the readers).

- ``txredisapi``: what the hub uses, ``chatroom.hubs.redis.RedisConnection`` (txredisapi's
  protocol, bytes replies, hiredis parser when installed) on the default Twisted reactor;
- ``txredisapi-py``: the same with hiredis hidden (txredisapi's own parser);
- ``txredisapi-stock``: txredisapi's protocol with the hub's settings (bytes, hiredis)
  but without ``RedisConnection``'s two shortcuts (command building, reply "conversion");
- ``redis-py``: redis.asyncio on plain asyncio (under Twisted it would need the asyncio
  reactor; plain asyncio is its best case);
- ``hub``: the whole hub path, ``RedisHub`` to ``RedisHub``: one hub publishes ``Said``
  events (JSON, XADD, the in-flight queue), one hub per reader decodes and delivers
  them to a listener (XREAD, JSON, duplicate check): what a node pays per line. The hub
  sends the entries of one reactor turn in one command, so ``--burst`` (lines published
  per reactor turn, default 2000) matters: 1 is a quiet room (one line per turn, and a
  ``deferLater`` per line in this process), hundreds a busy one.

Run: ``.venv/bin/python benchmarks/redis/clients.py`` (starts its own redis-server on a
free loopback port in a temp dir; ``redis-py`` needs ``pip install redis``, and is
skipped without it).
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


def run_txredisapi(port: int, events: int, readers: int,
                   stock: bool = False) -> dict[str, Any]:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
    from twisted.internet.endpoints import TCP4ClientEndpoint
    from twisted.internet.protocol import Factory
    from twisted.internet.task import deferLater

    from chatroom.hubs.redis import RedisConnection
    from chatroom.hubs.redis_resp import RedisAddress

    result: dict[str, Any] = {}
    address = RedisAddress(port=port)

    def protocol() -> Any:
        if stock:
            import txredisapi

            return txredisapi.RedisProtocol(charset=None, convertNumbers=False)
        return RedisConnection(address, reactor)

    async def connect() -> Any:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        conn: Any = await endpoint.connect(Factory.forProtocol(protocol))
        await conn.whenConnected()
        return conn

    async def main() -> None:
        publisher = await connect()
        conns = [await connect() for _ in range(readers)]
        all_done: Deferred[None] = Deferred()
        finished: list[int] = []

        def reader_loop(conn: Any) -> None:
            state: dict[str, Any] = {"count": 0, "last": b"0-0"}

            def got(reply: Any) -> None:
                if reply:
                    entries = reply[0][1]
                    state["count"] += len(entries)
                    state["last"] = entries[-1][0]
                if state["count"] >= events:
                    finished.append(1)
                    if len(finished) == readers:
                        all_done.callback(None)
                    return
                conn.execute_command(b"XREAD", b"COUNT", b"512", b"BLOCK", b"1000",
                                     b"STREAMS", STREAM.encode(), state["last"]).addCallback(got)

            got(None)

        start = time.monotonic()
        cpu = time.process_time()
        for conn in conns:
            reader_loop(conn)
        head = (b"XADD", STREAM.encode(), b"MAXLEN", b"~", b"100000", b"*", b"n", b"node", b"s")
        pending = []
        for seq in range(events):
            pending.append(publisher.execute_command(*head, b"%d" % seq, b"e", PAYLOAD))
            if seq % 2000 == 1999:  # let the reactor write and read between batches
                await DeferredList(pending)
                pending = []
                await deferLater(reactor, 0, lambda: None)
        await DeferredList(pending)
        await all_done
        result["seconds"] = time.monotonic() - start
        result["cpu"] = time.process_time() - cpu
        reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(main()).addErrback(_fail, reactor))
    reactor.run()
    return result


def run_txredisapi_py(port: int, events: int, readers: int) -> dict[str, Any]:
    sys.modules["hiredis"] = None  # type: ignore[assignment]  # txredisapi's own parser
    return run_txredisapi(port, events, readers)


def run_txredisapi_stock(port: int, events: int, readers: int) -> dict[str, Any]:
    return run_txredisapi(port, events, readers, stock=True)


def run_hub(port: int, events: int, readers: int, burst: int = 2000) -> dict[str, Any]:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, ensureDeferred
    from twisted.internet.task import deferLater

    from chatroom.domain.events import Event, Said
    from chatroom.hubs.redis import RedisHub

    result: dict[str, Any] = {}
    url = f"redis://127.0.0.1:{port}"

    async def main() -> None:
        sender = RedisHub(url, "bench", reactor, node="sender", backlog=max(10_000, events))
        hubs = [RedisHub(url, "bench", reactor, node=f"r{i}", backlog=max(10_000, events))
                for i in range(readers)]
        for hub in [sender, *hubs]:
            hub.startService()
            await hub.when_connected()
        all_done: Deferred[None] = Deferred()
        counts = [0] * readers

        def listener(i: int) -> Any:
            def heard(event: Event) -> None:
                if type(event) is Said:
                    counts[i] += 1
                    if counts[i] == events and sum(counts) == events * readers:
                        all_done.callback(None)
            return heard

        for i, hub in enumerate(hubs):
            hub.subscribe(listener(i))
        start = time.monotonic()
        cpu = time.process_time()
        text = "x" * 60
        for seq in range(events):
            sender.publish(Said("bench", 1700000000.123, "a1b2c3d4.17", "alice", text))
            if seq % burst == burst - 1:
                await deferLater(reactor, 0, lambda: None)
        await all_done
        result["seconds"] = time.monotonic() - start
        result["cpu"] = time.process_time() - cpu
        for hub in [*hubs, sender]:
            await hub.stopService()
        reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(main()).addErrback(_fail, reactor))
    reactor.run()
    return result


def _fail(failure: Any, reactor: Any) -> None:
    print(failure)
    reactor.stop()


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


RUNNERS = {"txredisapi": run_txredisapi, "txredisapi-py": run_txredisapi_py,
           "txredisapi-stock": run_txredisapi_stock, "redis-py": run_redispy, "hub": run_hub}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(RUNNERS),
                        help="comma-separated runners (default: all)")
    parser.add_argument("--burst", type=int, default=2000,
                        help="hub: lines published per reactor turn")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        extra = {"burst": args.burst} if args.one == "hub" else {}
        print(json.dumps(RUNNERS[args.one](args.port, args.events, args.readers, **extra)))
        return
    from tests.integration.redis_server import RedisServer

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            best: dict[str, Any] | None = None
            for _ in range(args.rounds):
                server = RedisServer(Path(tmp) / f"{name}-{time.monotonic_ns()}")
                server.directory.mkdir()
                server.start()
                try:
                    server.wait_ready()
                    out = subprocess.run(
                        [sys.executable, __file__, "--one", name, "--port", str(server.port),
                         "--events", str(args.events), "--readers", str(args.readers),
                         "--burst", str(args.burst)],
                        capture_output=True, text=True, timeout=600, check=False)
                finally:
                    server.stop()
                lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
                if not lines:
                    print(f"{name}: failed: {out.stdout[-500:]} {out.stderr[-1500:]}")
                    break
                result = json.loads(lines[-1])
                if best is None or result["cpu"] < best["cpu"]:
                    best = result
            if best is None:
                continue
            delivered = args.events * args.readers
            rows.append((name, delivered / best["seconds"], best["cpu"] / delivered * 1e6))
    print(f"{args.events} events, {args.readers} readers, best (least CPU) of {args.rounds}, "
          f"hub: {args.burst} lines per reactor turn")
    print(f"{'client':<17} {'entries/s delivered':>20} {'client CPU us/entry':>20}")
    for name, rate, cpu_us in rows:
        print(f"{name:<17} {rate:>20,.0f} {cpu_us:>20.2f}")


if __name__ == "__main__":
    main()
