"""The client's state between the user interface and the connection.

``ChatClientProtocol`` is a thin ``LineReceiver``: it frames and sanitises, and hands each
line to ``ClientSession``. The session knows the conversation: choosing a nickname (by
itself with ``--nick``), the nickname in use, quitting politely, and how the connection
ended, which decides the exit status. A ``UserInterface`` shows lines and reads input;
nothing here touches a terminal, so all of it runs under ``StringTransport`` and ``Clock``.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from typing import Protocol as TypingProtocol
from typing import cast

from twisted.internet import error as net_error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import ClientFactory, connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from chatroom.clientlib.lines import Kind, Line, Parser, nick_key, sanitize

EXIT_OK = 0
EXIT_CONNECTION = 1  # could not connect, or the connection broke
EXIT_USAGE = 2
EXIT_NICKNAME = 3  # --nick refused and nobody at a terminal to choose another

QUIT_GRACE = 5.0
"""Seconds a person waits for the server to close after ``/quit`` before the client closes.

Scripts get no such limit (``quit_grace=None``): a server that applies flood control may
still be reading what a script sent long before its ``/quit``, and closing early would
lose the replies. Ctrl-C (twice) or SIGTERM always ends the wait.
"""
ABORT_GRACE = 5.0
"""Seconds more before dropping a connection whose close does not complete."""

_RENAMED = re.compile(r"you are now known as (\S+)", re.IGNORECASE)
_QUIT = re.compile(rb"\s*/quit(?:\s.*)?", re.IGNORECASE | re.DOTALL)


class UserInterface(TypingProtocol):
    """What the session needs of a user interface (terminal or pipes)."""

    def show(self, line: Line) -> None:
        """A line from the server."""

    def status(self, sentence: str) -> None:
        """A sentence from the client itself, e.g. why it is exiting."""

    def set_nick(self, nick: str | None) -> None:
        """The nickname in use changed (``None``: not in the room yet)."""

    def stop_input(self) -> None:
        """Read no more input: the session is leaving."""


class Phase(enum.Enum):
    CHOOSING = "choosing"  # connected, no nickname accepted yet
    JOINED = "joined"
    QUITTING = "quitting"  # /quit sent (or about to be): waiting for the server to close
    CLOSED = "closed"


class ClientSession:
    """One visit to the room, from connect to exit status.

    ``auto_nick`` is answered to the first prompt. Input typed while that answer is
    pending is held, so it cannot be taken as a nickname; if the server refuses it, a
    person (``can_retry``) types another, and a script gets ``EXIT_NICKNAME``.
    """

    def __init__(
        self,
        ui: UserInterface,
        clock: IReactorTime,
        auto_nick: str | None = None,
        can_retry: bool = False,
        quit_grace: float | None = QUIT_GRACE,
    ) -> None:
        self.ui = ui
        self.clock = clock
        self.auto_nick = auto_nick
        self.can_retry = can_retry
        self.quit_grace = quit_grace
        self.phase = Phase.CHOOSING
        self.nick: str | None = None
        self.finished: Deferred[int] = Deferred()
        self._parser = Parser()
        self._protocol: ChatClientProtocol | None = None
        self._auto_sent = False
        self._candidates: deque[str] = deque()  # nicknames sent, not yet answered
        self._held: list[bytes] = []
        self._holding = auto_nick is not None
        self._quit_wanted = False
        self._exit: int | None = None  # decided before the close, e.g. nickname refused
        self._exit_sentence: str | None = None
        self._timers: list[IDelayedCall] = []
        self._closing = False

    # -- from the protocol ------------------------------------------------------------

    def connected(self, protocol: ChatClientProtocol) -> None:
        self._protocol = protocol

    def register_producer(self, producer: IPushProducer) -> None:
        """Let the connection pause ``producer`` (the input) while the server lags."""
        if self._protocol is not None:
            self._protocol.register_producer(producer)

    def line_received(self, text: str) -> None:
        line = self._parser.feed(text)
        if self.phase is Phase.CHOOSING:
            self._while_choosing(line)
        elif line.kind is Kind.NOTICE and (renamed := _RENAMED.fullmatch(line.body)):
            self._set_nick(renamed.group(1))
        if self.phase is not Phase.CLOSED:
            self.ui.show(line)

    def _while_choosing(self, line: Line) -> None:
        if self._candidates and line.kind is Kind.ERROR:
            refused = self._candidates.popleft()
            if self._holding and not self.can_retry:
                self._give_up(f"nickname {refused} refused: {line.body}", EXIT_NICKNAME)
            elif self._holding:
                self._stop_holding(send=False)  # a person chooses now; held text is no name
        elif self._candidates and line.kind is Kind.NOTICE:
            # The welcome line contains the nickname as the server spells it.
            wanted = self._candidates.popleft()
            self._candidates.clear()  # anything typed after it was chat, not a nickname
            self.phase = Phase.JOINED
            self._set_nick(_find_nick(wanted, line.body))
            self._stop_holding(send=True)
        elif line.kind is Kind.PROMPT and self.auto_nick and not self._auto_sent:
            self._auto_sent = True
            self._candidates.append(self.auto_nick)
            self._write(self.auto_nick.encode("utf-8"))

    def connection_lost(self, reason: Failure) -> None:
        quitting, choosing = self._quit_wanted, self.phase is Phase.CHOOSING
        self.phase = Phase.CLOSED
        self._protocol = None
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self.ui.stop_input()
        if self._exit is not None:
            code, sentence = self._exit, self._exit_sentence
        elif quitting:
            code, sentence = EXIT_OK, None
        elif reason.check(net_error.ConnectionDone) and choosing:
            code, sentence = EXIT_CONNECTION, "connection closed by server before joining"
        elif reason.check(net_error.ConnectionDone):
            code, sentence = EXIT_OK, "connection closed by server"
        else:
            code, sentence = EXIT_CONNECTION, f"connection lost: {describe_failure(reason)}"
        if sentence:
            self.ui.status(sentence)
        self.finished.callback(code)

    def protocol_error(self, sentence: str) -> None:
        """The server broke the protocol: say so, and drop it."""
        self._give_up(sentence, EXIT_CONNECTION, abort=True)

    # -- from the user interface ------------------------------------------------------

    def user_typed(self, data: bytes | str) -> None:
        """One line of input: a nickname, chat or a command, sent as typed."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if self.phase in (Phase.QUITTING, Phase.CLOSED) or self._quit_wanted:
            return
        if _QUIT.fullmatch(raw):
            self.quit()
            return
        if self._holding:
            self._held.append(raw)
            return
        self._send(raw)

    def input_ended(self) -> None:
        """End of input (Ctrl-D, or stdin closed): leave like /quit."""
        self.quit()

    def interrupted(self) -> None:
        """Ctrl-C or a signal: leave politely; a second time, leave now."""
        if self.phase is Phase.CLOSED:
            return
        if self._quit_wanted:
            self._give_up(None, EXIT_OK, abort=True)
            return
        self.quit()
        if self.quit_grace is None:  # a person or a supervisor wants out: bound the wait
            self._timers.append(self.clock.callLater(QUIT_GRACE, self._close_anyway))

    def quit(self) -> None:
        """Send /quit after anything held, then wait for the server to close."""
        if self.phase in (Phase.QUITTING, Phase.CLOSED) or self._quit_wanted:
            return
        self.ui.stop_input()
        self._quit_wanted = True
        if self.quit_grace is not None:
            self._timers.append(self.clock.callLater(self.quit_grace, self._close_anyway))
        if not self._holding:
            self._send_quit()
        # else: sent after the held lines, once the nickname is settled

    def _send_quit(self) -> None:
        self.phase = Phase.QUITTING
        self._write(b"/quit")

    def _close_anyway(self) -> None:
        if self._protocol is not None and not self._closing:
            self._closing = True
            self._protocol.close()
            self._timers.append(self.clock.callLater(ABORT_GRACE, self._abort))

    def _abort(self) -> None:
        if self._protocol is not None:
            self._protocol.abort()

    # -- sending ----------------------------------------------------------------------

    def _send(self, raw: bytes) -> None:
        if self.phase is Phase.CHOOSING and raw.strip() and not raw.lstrip().startswith(b"/"):
            self._candidates.append(raw.strip().decode("utf-8", "replace"))
        self._write(raw)

    def _stop_holding(self, send: bool) -> None:
        """The automatic nickname is settled: send (or drop) what was typed meanwhile."""
        self._holding = False
        held, self._held = self._held, []
        if send:
            for raw in held:
                self._send(raw)
        elif held:
            self.ui.status(f"{len(held)} line(s) typed before joining were not sent")
        if self._quit_wanted and self.phase is not Phase.CLOSED:
            self._send_quit()

    def _write(self, raw: bytes) -> None:
        if self._protocol is not None:
            self._protocol.send(raw)

    def _set_nick(self, nick: str | None) -> None:
        self.nick = nick
        self.ui.set_nick(nick)

    def _give_up(self, sentence: str | None, code: int, abort: bool = False) -> None:
        """End the session with ``code``, whatever the server says next."""
        if self._exit is None:
            self._exit, self._exit_sentence = code, sentence
        self.ui.stop_input()
        self._holding = False
        self._held.clear()
        if self._protocol is not None:
            if abort:
                self._protocol.abort()
            else:
                self._protocol.close()


def _find_nick(wanted: str, welcome: str) -> str:
    """``wanted`` as the welcome line spells it (the server may normalise it)."""
    key = nick_key(wanted)
    for word in re.findall(r"[\w\-]+", welcome):
        if nick_key(word) == key:
            return str(word)
    return wanted


def describe_failure(reason: Failure) -> str:
    """A short, lower-case phrase for why a connection failed or broke."""
    if reason.check(net_error.ConnectionRefusedError):
        return "connection refused"
    if reason.check(net_error.DNSLookupError):
        return "host not found"
    if reason.check(net_error.TimeoutError, net_error.TCPTimedOutError):
        return "timed out"
    if reason.check(net_error.ConnectionDone):
        return "closed"
    if reason.check(net_error.ConnectionLost):
        return "the connection was reset or broken"
    message = reason.getErrorMessage().strip().rstrip(".")
    return message or reason.type.__name__  # type: ignore[union-attr]


class ChatClientProtocol(LineReceiver):
    """Frames lines (CRLF or LF, split across packets or not) for the session.

    Every line is sanitised here, before anything else can see it.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20  # far above the server's 64 KiB line limit plus a nickname

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    def connectionMade(self) -> None:
        self.session.connected(self)

    def lineReceived(self, line: bytes) -> None:
        self.session.line_received(sanitize(line))

    def lineLengthExceeded(self, line: bytes) -> None:
        self.session.protocol_error(f"the server sent a line over {self.MAX_LENGTH} bytes")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.session.connection_lost(reason)

    def send(self, raw: bytes) -> None:
        if self.transport is not None:
            self.transport.write(raw + b"\r\n")

    def register_producer(self, producer: IPushProducer) -> None:
        """Pause ``producer`` while the server is not reading what we send."""
        if self.transport is not None:
            cast(IConsumer, self.transport).registerProducer(producer, True)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection now, unsent data and all (TCP transports can)."""
        if self.transport is not None:
            getattr(self.transport, "abortConnection", self.transport.loseConnection)()


class ChatClientFactory(ClientFactory):
    """Builds the one protocol of a session."""

    noisy = False

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    def buildProtocol(self, addr: IAddress | None) -> ChatClientProtocol:
        return ChatClientProtocol(self.session)
