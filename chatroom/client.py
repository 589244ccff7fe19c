"""``chatroom-client``: the bundled client, for people at a terminal and for scripts.

    chatroom-client [--host HOST] [--port PORT] [--nick NICK]

At a terminal (stdin and stdout both TTYs) it is a line editor: received lines appear
above the prompt, in colour (unless ``NO_COLOR`` is set), and never break into what is
being typed. Otherwise it is a filter: each stdin line is sent, each received line is
printed as received, one per line, flushed at once; sentences from the client go to stderr.

Exit status: 0 after /quit, end of input, Ctrl-C or the server closing the connection;
1 if it cannot connect, the connection breaks, or the server closes it before a nickname
was accepted; 2 for bad options; 3 if the ``--nick`` nickname is refused when nobody is at
a terminal to type another.

This module only parses options and wires the parts (``chatroom.clientlib``) to the
reactor: Twisted's asyncio reactor, so prompt_toolkit and Twisted share one event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IProtocol
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEventAsClassicLogText,
    globalLogBeginner,
)
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import provider

if TYPE_CHECKING:
    from chatroom.clientlib.terminal import TerminalUi

from chatroom.clientlib.session import (
    EXIT_CONNECTION,
    EXIT_OK,
    EXIT_USAGE,
    QUIT_GRACE,
    ChatClientFactory,
    ClientSession,
    describe_failure,
)

PROGRAM = "chatroom-client"
CONNECT_TIMEOUT = 10.0


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{port} is not a port number (1 to 65535)")
    return port


class Options(usage.Options):
    """Command-line options of ``chatroom-client``."""

    synopsis = f"Usage: {PROGRAM} [--host HOST] [--port PORT] [--nick NICK]"
    longdesc = (
        "Join a chatroom server. At a terminal: a line editor with colours. "
        "With pipes: sends each stdin line, prints each received line."
    )
    optParameters = [
        ["host", "H", "127.0.0.1", "Server to connect to: a host name, IPv4 or IPv6 address."],
        ["nick", "n", None, "Nickname to join with, answered to the server's first prompt."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["port"] = 8080

    def opt_port(self, value: str) -> None:
        """TCP port of the server, 1 to 65535 [default: 8080]."""
        try:
            self["port"] = _port(value)
        except ValueError as e:
            raise usage.UsageError(f"--port: {e}") from None

    opt_p = opt_port


def wants_colour(stream: Any, environ: Mapping[str, str]) -> bool:
    """Colour only for a terminal that can show it and a user who did not opt out."""
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (OSError, ValueError):
        return False


def describe_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def main(argv: list[str] | None = None) -> None:
    options = Options()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        sys.stderr.write(f"{options}\n{PROGRAM}: {e}\n")
        raise SystemExit(EXIT_USAGE) from None
    try:
        code = run(options["host"], options["port"], options["nick"])
    except KeyboardInterrupt:  # Ctrl-C before the reactor took over the signal
        code = EXIT_OK
    raise SystemExit(code)


def run(host: str, port: int, nick: str | None) -> int:
    """Connect, chat until the session ends, and return the exit status."""
    from twisted.internet import asyncioreactor

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    from twisted.internet import reactor as installed

    reactor = cast(asyncioreactor.AsyncioSelectorReactor, installed)
    from twisted.internet.endpoints import HostnameEndpoint

    from chatroom.clientlib.pipe import PipeUi

    _log_errors_to_stderr()
    interactive = _isatty(sys.stdin) and _isatty(sys.stdout)
    colour = wants_colour(sys.stdout, os.environ)
    ui: TerminalUi | PipeUi
    if interactive:
        from chatroom.clientlib.terminal import TerminalUi  # prompt_toolkit: 0.3 s to import

        ui = TerminalUi(colour)
    else:
        ui = PipeUi(reactor.callFromThread, 0, sys.stdout.buffer, sys.stderr, colour, PROGRAM)
    session = ClientSession(
        ui, reactor, auto_nick=nick, can_retry=interactive,
        quit_grace=QUIT_GRACE if interactive else None,
    )
    where = describe_address(host, port)
    exit_code = [EXIT_OK]
    connecting: list[Deferred[IProtocol]] = []

    def finish(code: int) -> None:
        exit_code[0] = code
        maybeDeferred(ui.close).addBoth(lambda _: reactor.stop())

    def connected(protocol: IProtocol) -> None:
        connecting.clear()
        ui.start(session)

    def failed(failure: Failure) -> None:
        connecting.clear()
        if failure.check(CancelledError):  # Ctrl-C while connecting
            finish(EXIT_OK)
            return
        ui.status(f"cannot connect to {where}: {describe_failure(failure)}")
        finish(EXIT_CONNECTION)

    def interrupted() -> None:
        if connecting:
            connecting[0].cancel()
        else:
            session.interrupted()

    def start() -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, interrupted)
        endpoint = HostnameEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)
        attempt = endpoint.connect(ChatClientFactory(session))
        connecting.append(attempt)
        attempt.addCallbacks(connected, failed)
        session.finished.addCallback(finish)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    _close_loop(loop)
    return exit_code[0]


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Let whatever prompt_toolkit left running end, so nothing complains at exit."""
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
    except Exception:
        pass


def _log_errors_to_stderr() -> None:
    """Only a bug should ever log an error; show it rather than swallow it."""

    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        text = formatEventAsClassicLogText(event)
        if text:
            sys.stderr.write(text)

    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.error)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(observe, [predicate])], redirectStandardIO=False
    )


if __name__ == "__main__":
    main()
