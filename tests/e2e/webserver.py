"""A chat server with both front ends, for the browser tests: ``python -m tests.e2e.webserver``.

It prints ``listening lines=PORT web=PORT`` once both listen, logs to standard output, and
on SIGTERM says goodbye on both front ends before it exits, as ``twistd chatroom`` does.
Options: ``--web-port`` (0 for any free one), ``--nick-timeout`` seconds, ``--demo-history``,
``--cheap-passwords``, ``--opers FILE`` (server operators, as ``twistd chatroom`` reads them),
``--history PATH`` (an SQLite store, kept across restarts as ``twistd chatroom`` keeps it).
Until ``twistd chatroom --web`` exists, this is how the tests get a real server process.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import serverFromString
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure

from chatroom.history import HistoryRecorder, SqliteHistory, open_history_blocking
from chatroom.history.recent import RecentRecords
from chatroom.history.store import Kind, Record
from chatroom.hubs.local import LocalHub
from chatroom.limits import Limits
from chatroom.lines.factory import ChatFactory
from chatroom.session import Services
from chatroom.web.site import build_web_site


def demo_history(now: float) -> RecentRecords:
    """Earlier lines, as if the server had run before: what the page does with them is tested."""
    recent = RecentRecords(50)
    recent.seed("#lobby", [
        Record(1, now - 3600, "#lobby", Kind.JOINED, "dana"),
        Record(2, now - 3590, "#lobby", Kind.SAID, "dana", "an earlier message <i>as text</i>"),
        Record(3, now - 3580, "#lobby", Kind.ACTED, "dana", "waves from the past"),
        Record(4, now - 3570, "#lobby", Kind.LEFT, "dana", "quit"),
    ])
    return recent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="webserver")
    parser.add_argument("--web-port", type=int, default=0)
    parser.add_argument("--nick-timeout", type=float, default=60.0)
    parser.add_argument("--demo-history", action="store_true",
                        help="answer every join with a few made-up earlier events")
    parser.add_argument("--history", metavar="PATH",
                        help="record into this SQLite file and replay from it, as twistd does")
    parser.add_argument("--motd", action="append", default=None, metavar="LINE",
                        help="a line of the message of the day (repeatable)")
    parser.add_argument("--cheap-passwords", action="store_true",
                        help="Argon2id at its cheapest (a test registers in milliseconds)")
    parser.add_argument("--opers", metavar="FILE", help="the server operators file")
    args = parser.parse_args(argv)

    from twisted.internet import reactor  # noqa: TID251 - an entry point picks the reactor

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    limits = Limits(nick_timeout=args.nick_timeout, shutdown_grace=1.0)
    hub = LocalHub()
    recent = demo_history(reactor.seconds()) if args.demo_history else None
    history = None
    if args.history:
        threads: Any = reactor  # the global reactor's type does not say IReactorFromThreads
        history = open_history_blocking(args.history, reactor, threads)
        assert isinstance(history, SqliteHistory)
        recent = RecentRecords(max(limits.history_replay, limits.history_max), history=history)
        recent.seed("#lobby", history.last_blocking(limits.history_max, "#lobby"))
        hub.subscribe(HistoryRecorder(history))
    services = Services.create(reactor, limits, hub=hub, history=history, recent=recent)
    services.motd = args.motd
    if args.opers:
        from chatroom.accounts.opers import load_operators

        assert services.accounts is not None
        services.accounts.operators = load_operators(args.opers)
    if args.cheap_passwords:
        from chatroom.accounts.passwords import Cost, Passwords, in_threads

        assert services.accounts is not None
        services.accounts.passwords = Passwords(in_threads(reactor), Cost(1, 64, 1))
    lines = ChatFactory(services)
    site = build_web_site(services, None)
    ports: dict[str, int] = {}

    def listening(_: object) -> None:
        print(f"listening lines={ports['lines']} web={ports['web']}", flush=True)

    def listen(name: str, description: str, factory: Any) -> Deferred[None]:
        def got(port: Any) -> None:
            ports[name] = port.getHost().port

        listening: Deferred[Any] = serverFromString(reactor, description).listen(factory)
        return listening.addCallback(got)

    def failed(failure: Failure) -> None:
        print(failure, flush=True)
        reactor.stop()

    DeferredList(
        [
            listen("lines", "tcp:0:interface=127.0.0.1", lines),
            listen("web", f"tcp:{args.web_port}:interface=127.0.0.1", site),
        ],
        fireOnOneErrback=True,
    ).addCallbacks(listening, failed)
    def shutdown() -> Deferred[Any]:
        goodbyes = DeferredList([site.shutdown(), lines.shutdown()])
        if history is not None:  # after the goodbyes, so their leaves are stored too
            goodbyes.addBoth(lambda _: history.close())
        return goodbyes

    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    reactor.run()


if __name__ == "__main__":
    main()
