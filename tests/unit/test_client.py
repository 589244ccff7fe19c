"""chatroom-client without I/O: line parsing and styling, the session and its protocol.

The session runs over a ``StringTransport`` with a ``task.Clock``; the user interface is a
recording fake. The pipe interface is tested with in-memory streams (and one real pipe).
"""

from __future__ import annotations

import io
import os
import queue
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import error as net_error
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import usage
from twisted.python.failure import Failure

from chatroom.client import Options, describe_address, wants_colour
from chatroom.clientlib.lines import (
    NICK_COLOURS,
    Kind,
    Line,
    Parser,
    fragments,
    nick_style,
    parse,
    plain,
    render,
    sanitize,
    to_ansi,
)
from chatroom.clientlib.pipe import PipeUi
from chatroom.clientlib.session import (
    ABORT_GRACE,
    EXIT_CONNECTION,
    EXIT_NICKNAME,
    EXIT_OK,
    QUIT_GRACE,
    ChatClientFactory,
    ChatClientProtocol,
    ClientSession,
    Phase,
    describe_failure,
)

SGR = re.compile("\x1b\\[[0-9;]*m")

# -- sanitize ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"alice: hi", "alice: hi"),
        (b"alice: \x1b[31mred\x1b[0m", "alice: red"),
        (b"alice: \x1b[2J\x1b[Hwiped", "alice: wiped"),
        (b"alice: \x1b]0;owned\x07title", "alice: title"),
        (b"alice: \x1b]8;;http://x\x1b\\link", "alice: link"),
        (b"alice: \x1bPdevice\x1b\\ctl", "alice: ctl"),
        (b"alice: lone\x1b", "alice: lone"),
        (b"alice: \x1b7saved", "alice: saved"),
        (b"a\x00b\x07c\x08d\x7fe\rf", "abcdef"),
        (b"tab\tkept", "tab\tkept"),
        ("8-bit \x9b31mcsi".encode(), "8-bit csi"),
        ("c1 \x85\x90x\x9c".encode(), "c1 "),
        ("bidi \u202egnp.exe".encode(), "bidi gnp.exe"),
        ("sep\u2028arator".encode(), "separator"),
        (b"bad \xff utf8", "bad \ufffd utf8"),
        ("Zoë: 日本".encode(), "Zoë: 日本"),
    ],
)
def test_sanitize_removes_whatever_could_drive_the_terminal(raw: bytes, shown: str) -> None:
    assert sanitize(raw) == shown


@given(st.binary(max_size=200))
def test_sanitized_text_has_no_controls_at_all(raw: bytes) -> None:
    text = sanitize(raw)
    assert not any((ord(c) < 0x20 and c != "\t") or 0x7F <= ord(c) <= 0x9F for c in text)
    assert "\x1b" not in text


# -- parse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "nick", "body"),
    [
        ("alice: hello", Kind.CHAT, "alice", "hello"),
        ("alice: /text: with colons", Kind.CHAT, "alice", "/text: with colons"),
        ("Zoë: hi", Kind.CHAT, "Zoë", "hi"),
        ("7of9: hi", Kind.CHAT, "7of9", "hi"),
        ("* bob waves", Kind.ACTION, "bob", "waves"),
        ("* bob", Kind.ACTION, "bob", ""),
        ("*** bob joined", Kind.NOTICE, None, "bob joined"),
        ("***", Kind.NOTICE, None, ""),
        ("! unknown command /x", Kind.ERROR, None, "unknown command /x"),
        ("[private] carol: psst: hi", Kind.PRIVATE, "carol", "psst: hi"),
        ("Choose a nickname:", Kind.PROMPT, None, "Choose a nickname:"),
        ("Nickname?", Kind.PROMPT, None, "Nickname?"),
        ("just some words", Kind.TEXT, None, "just some words"),
        ("", Kind.TEXT, None, ""),
        ("-x: not a nick", Kind.TEXT, None, "-x: not a nick"),
        ("has space: no", Kind.TEXT, None, "has space: no"),
    ],
)
def test_parse_tells_the_protocol_shapes_apart(
    text: str, kind: Kind, nick: str | None, body: str
) -> None:
    line = parse(text)
    assert (line.kind, line.nick, line.body, line.text, line.time) == (
        kind, nick, body, text, None
    )


@pytest.mark.parametrize(
    ("text", "kind", "nick", "body", "time"),
    [
        ("[12:34] alice: hi", Kind.CHAT, "alice", "hi", "12:34"),
        ("[9:05:59] * bob waves", Kind.ACTION, "bob", "waves", "9:05:59"),
        ("[2024-05-01 12:34] *** bob joined", Kind.NOTICE, None, "bob joined",
         "2024-05-01 12:34"),
        ("[12:34] [private] bob: psst", Kind.PRIVATE, "bob", "psst", "12:34"),
    ],
)
def test_parse_understands_replay_time_prefixes(
    text: str, kind: Kind, nick: str | None, body: str, time: str
) -> None:
    line = parse(text)
    assert (line.kind, line.nick, line.body, line.time, line.text) == (
        kind, nick, body, time, text
    )


def test_parser_marks_lines_inside_a_history_replay() -> None:
    parser = Parser()
    lines = [
        parser.feed(text)
        for text in [
            "*** welcome, carol!",
            "*** last 2 lines",
            "[12:00] alice: hi",
            "[12:01] * bob waves",
            "*** end of history",
            "alice: live",
        ]
    ]
    assert [line.replayed for line in lines] == [False, True, True, True, True, False]
    assert lines[2].kind is Kind.CHAT and lines[2].nick == "alice"


def test_a_replay_without_its_end_marker_ends_by_itself() -> None:
    parser = Parser()
    parser.feed("*** last 1 lines")
    shown = [parser.feed(f"alice: {n}").replayed for n in range(Parser.SLACK + 5)]
    assert shown == [True] * (1 + Parser.SLACK) + [False] * 4
    assert not parser.replaying


def test_an_end_marker_outside_a_replay_is_just_a_notice() -> None:
    line = Parser().feed("*** end of history")
    assert line.kind is Kind.NOTICE and not line.replayed


# -- styling -----------------------------------------------------------------------------


def test_a_nickname_keeps_its_colour_whatever_its_case() -> None:
    assert nick_style("Alice") == nick_style("ALICE") == nick_style("alice")
    assert nick_style("Zoe\u0308") == nick_style("ZOË")  # NFC, as the server compares
    styles = {nick_style(f"user{n}") for n in range(50)}
    assert len(styles) > 4  # spread over the palette
    assert all(0 <= int(s.split("-")[1]) < len(NICK_COLOURS) for s in styles)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice: hi", [(nick_style("alice"), "alice"), ("", ": hi")]),
        ("* bob waves", [("action", "* "), (nick_style("bob") + " action", "bob"),
                         ("action", " waves")]),
        ("*** bob joined", [("notice", "*** bob joined")]),
        ("! no", [("error", "! no")]),
        ("[private] bob: psst", [("private", "[private]"), ("", " "),
                                 (nick_style("bob"), "bob"), ("", ": "), ("private", "psst")]),
        ("Choose a nickname:", [("", "Choose a nickname:")]),
        ("[12:34] *** x", [("time", "[12:34] "), ("notice", "*** x")]),
    ],
)
def test_each_shape_has_its_style(text: str, expected: list[tuple[str, str]]) -> None:
    assert fragments(parse(text)) == expected


def test_replayed_lines_are_dimmed_throughout() -> None:
    parser = Parser()
    parser.feed("*** last 5 lines")
    parts = fragments(parser.feed("[12:34] alice: hi"))
    assert all("replay" in style.split() for style, _ in parts)
    codes = [code[2:-1].split(";") for code in SGR.findall(to_ansi(parts))]
    assert codes and all("2" in params for params in codes if params != ["0"])


@given(st.text(max_size=80))
def test_styling_never_changes_the_text(text: str) -> None:
    line = parse(sanitize(text))
    assert plain(fragments(line)) == line.text
    assert SGR.sub("", to_ansi(fragments(line))) == line.text
    assert render(line, colour=False) == line.text


def test_colour_uses_ansi_and_plain_does_not() -> None:
    line = parse("! nickname taken")
    assert render(line, colour=True) == "\x1b[1;31m! nickname taken\x1b[0m"
    assert render(line, colour=False) == "! nickname taken"


# -- options and helpers -----------------------------------------------------------------


def test_options_defaults() -> None:
    options = Options()
    options.parseOptions([])
    assert (options["host"], options["port"], options["nick"]) == ("127.0.0.1", 8080, None)


def test_options_parse() -> None:
    options = Options()
    options.parseOptions(["--host", "::1", "--port", "9000", "--nick", "Zoë"])
    assert (options["host"], options["port"], options["nick"]) == ("::1", 9000, "Zoë")


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_options_refuse_bad_ports(port: str) -> None:
    with pytest.raises(usage.UsageError):
        Options().parseOptions(["--port", port])


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_terminal_without_no_color() -> None:
    assert wants_colour(_Stream(True), {"TERM": "xterm"})
    assert not wants_colour(_Stream(False), {"TERM": "xterm"})
    assert not wants_colour(_Stream(True), {"NO_COLOR": "1"})
    assert wants_colour(_Stream(True), {"NO_COLOR": ""})  # no-color.org: empty = unset
    assert not wants_colour(_Stream(True), {"TERM": "dumb"})
    assert not wants_colour(None, {})


def test_addresses_and_failures_read_as_sentences() -> None:
    assert describe_address("::1", 80) == "[::1]:80"
    assert describe_address("example.org", 80) == "example.org:80"
    assert describe_failure(Failure(net_error.ConnectionRefusedError())) == (
        "connection refused"
    )
    assert describe_failure(Failure(net_error.DNSLookupError("x"))) == "host not found"
    assert describe_failure(Failure(net_error.ConnectionLost())) == (
        "the connection was reset or broken"
    )


# -- the session over a StringTransport --------------------------------------------------


class FakeUi:
    """Records what the session asks of a user interface."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.statuses: list[str] = []
        self.nicks: list[str | None] = []
        self.input_stopped = False

    def show(self, line: Line) -> None:
        self.lines.append(line)

    def status(self, sentence: str) -> None:
        self.statuses.append(sentence)

    def set_nick(self, nick: str | None) -> None:
        self.nicks.append(nick)

    def stop_input(self) -> None:
        self.input_stopped = True

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


class Client:
    """A session, its protocol and transport, and what it finished with."""

    def __init__(self, clock: Clock, **kwargs: Any) -> None:
        self.ui = FakeUi()
        self.session = ClientSession(self.ui, clock, **kwargs)
        self.protocol = ChatClientFactory(self.session).buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.exit: list[int] = []
        self.session.finished.addCallback(self.exit.append)

    def receive(self, *lines: str) -> None:
        self.protocol.dataReceived(b"".join(line.encode() + b"\r\n" for line in lines))

    def sent(self) -> list[bytes]:
        """Lines written since the last call."""
        data: bytes = self.transport.value()
        self.transport.clear()
        assert data == b"" or data.endswith(b"\r\n")
        return data.split(b"\r\n")[:-1]

    def close(self, reason: type[Exception] = net_error.ConnectionDone) -> None:
        self.protocol.connectionLost(Failure(reason()))

    def join(self, nick: str = "carol") -> None:
        self.receive("Choose a nickname:")
        if self.session.auto_nick is None:
            self.session.user_typed(nick)
        assert self.sent() == [nick.encode()]
        self.receive(f"*** welcome, {nick}! nobody else is here")
        assert self.session.phase is Phase.JOINED


def test_lines_split_anywhere_across_packets_arrive_whole(clock: Clock) -> None:
    client = Client(clock)
    data = "Choose a nickname:\r\n*** welcome, Zoë!\r\nbob: hé\nbob: done\r\n".encode()
    for i in range(len(data)):
        client.protocol.dataReceived(data[i:i + 1])
    assert client.ui.texts == ["Choose a nickname:", "*** welcome, Zoë!", "bob: hé",
                               "bob: done"]


def test_received_lines_are_sanitised_before_anything_sees_them(clock: Clock) -> None:
    client = Client(clock)
    client.protocol.dataReceived(b"bob: \x1b[2J\x1b]0;t\x07hi\x00\r\n")
    assert client.ui.texts == ["bob: hi"]
    assert client.ui.lines[0].kind is Kind.CHAT


def test_auto_nick_answers_the_first_prompt_and_input_waits_for_the_welcome(
    clock: Clock,
) -> None:
    client = Client(clock, auto_nick="zoë")
    client.session.user_typed("hello")  # typed (or piped) before the server asked
    assert client.sent() == []
    client.receive("Choose a nickname:")
    assert client.sent() == ["zoë".encode()]
    client.session.user_typed("/me waves")
    client.receive("*** welcome, Zoë! nobody else is here")
    assert client.sent() == [b"hello", b"/me waves"]
    assert client.ui.nicks == ["Zoë"]  # as the server spells it
    client.session.user_typed("now")
    assert client.sent() == [b"now"]


def test_a_refused_auto_nick_ends_a_script_with_its_own_status(clock: Clock) -> None:
    client = Client(clock, auto_nick="bob", can_retry=False, quit_grace=None)
    client.session.user_typed("hello")
    client.receive("Choose a nickname:")
    client.sent()
    client.receive("! nickname bob is already taken", "Choose a nickname:")
    assert client.transport.disconnecting
    assert client.sent() == []  # "hello" never became a nickname attempt
    client.close()
    assert client.exit == [EXIT_NICKNAME]
    assert client.ui.statuses == ["nickname bob refused: nickname bob is already taken"]
    assert "! nickname bob is already taken" in client.ui.texts


def test_a_refused_auto_nick_lets_a_person_choose_another(clock: Clock) -> None:
    client = Client(clock, auto_nick="bob", can_retry=True)
    client.receive("Choose a nickname:")
    client.sent()
    client.session.user_typed("hi all")  # typed while waiting: not a nickname
    client.receive("! nickname bob is already taken", "Choose a nickname:")
    assert not client.transport.disconnecting
    assert client.sent() == []
    assert client.ui.statuses == ["1 line(s) typed before joining were not sent"]
    client.session.user_typed("bob2")
    assert client.sent() == [b"bob2"]
    client.receive("*** welcome, bob2!")
    assert client.session.nick == "bob2"


def test_typed_nicknames_are_matched_to_their_answers(clock: Clock) -> None:
    client = Client(clock)
    client.receive("Choose a nickname:")
    client.session.user_typed("bad nick")
    client.session.user_typed("alice")
    client.session.user_typed("hello")  # sent before the server answered: it is chat
    assert client.sent() == [b"bad nick", b"alice", b"hello"]
    client.receive("! a nickname may hold only letters", "Choose a nickname:")
    assert client.session.phase is Phase.CHOOSING
    client.receive("*** welcome, alice!")
    assert client.session.nick == "alice"


def test_a_rename_confirmation_updates_the_nickname(clock: Clock) -> None:
    client = Client(clock)
    client.join("carol")
    client.session.user_typed("/nick carla")
    assert client.sent() == [b"/nick carla"]
    client.receive("*** carol is now known as carla")  # what others see: not us
    assert client.session.nick == "carol"
    client.receive("*** you are now known as carla")
    assert client.session.nick == "carla"
    assert client.ui.nicks == ["carol", "carla"]


def test_quit_is_sent_and_the_server_closes(clock: Clock) -> None:
    client = Client(clock)
    client.join()
    client.session.user_typed("/QUIT bye")
    assert client.sent() == [b"/quit"]
    assert client.ui.input_stopped
    client.session.user_typed("too late")
    assert client.sent() == []
    client.receive("*** goodbye, carol")
    client.close()
    assert client.exit == [EXIT_OK]
    assert client.ui.statuses == []
    assert client.ui.texts[-1] == "*** goodbye, carol"
    assert not clock.getDelayedCalls()


def test_quit_gives_the_server_a_bounded_time_to_close(clock: Clock) -> None:
    client = Client(clock)
    client.join()
    client.session.quit()
    clock.advance(QUIT_GRACE - 0.1)
    assert not client.transport.disconnecting
    clock.advance(0.1)
    assert client.transport.disconnecting and not client.transport.disconnected
    clock.advance(ABORT_GRACE)
    assert client.transport.disconnected  # StringTransport's mark of abortConnection
    client.close()
    assert client.exit == [EXIT_OK]


def test_end_of_input_quits(clock: Clock) -> None:
    client = Client(clock, quit_grace=None)
    client.join()
    client.session.input_ended()
    assert client.sent() == [b"/quit"]
    assert clock.getDelayedCalls() == []  # scripts wait for the server as long as it takes
    client.close()
    assert client.exit == [EXIT_OK]


def test_end_of_input_before_the_welcome_quits_after_the_held_lines(clock: Clock) -> None:
    client = Client(clock, auto_nick="carol", quit_grace=None)
    client.session.user_typed("one")
    client.session.input_ended()
    client.receive("Choose a nickname:", "*** welcome, carol!")
    assert client.sent() == [b"carol", b"one", b"/quit"]


def test_interrupt_quits_and_a_second_interrupt_drops_the_connection(clock: Clock) -> None:
    client = Client(clock, quit_grace=None)
    client.join()
    client.session.interrupted()
    assert client.sent() == [b"/quit"]
    assert len(clock.getDelayedCalls()) == 1  # an interrupt is always bounded
    client.session.interrupted()
    assert client.transport.disconnected
    client.close(net_error.ConnectionLost)
    assert client.exit == [EXIT_OK]
    assert client.ui.statuses == []


def test_server_closing_is_said_in_one_sentence(clock: Clock) -> None:
    client = Client(clock)
    client.join()
    client.receive("*** server shutting down")
    client.close()
    assert client.exit == [EXIT_OK]
    assert client.ui.statuses == ["connection closed by server"]
    assert client.ui.input_stopped


def test_server_closing_before_a_nickname_is_a_failure(clock: Clock) -> None:
    client = Client(clock)
    client.receive("! server full")
    client.close()
    assert client.exit == [EXIT_CONNECTION]
    assert client.ui.statuses == ["connection closed by server before joining"]


def test_a_broken_connection_exits_with_status_1(clock: Clock) -> None:
    client = Client(clock)
    client.join()
    client.close(net_error.ConnectionLost)
    assert client.exit == [EXIT_CONNECTION]
    assert client.ui.statuses == ["connection lost: the connection was reset or broken"]


def test_a_line_over_the_limit_drops_the_server(clock: Clock) -> None:
    client = Client(clock)
    client.join()
    client.protocol.dataReceived(b"x" * (ChatClientProtocol.MAX_LENGTH + 1))
    assert client.transport.disconnected
    client.close(net_error.ConnectionLost)
    assert client.exit == [EXIT_CONNECTION]
    assert "over" in client.ui.statuses[0]


def test_replayed_history_reaches_the_ui_marked(clock: Clock) -> None:
    client = Client(clock)
    client.join()
    client.receive("*** last 1 lines", "[12:00] bob: earlier", "*** end of history",
                   "bob: now")
    assert [line.replayed for line in client.ui.lines[-4:]] == [True, True, True, False]


# -- the pipe interface ------------------------------------------------------------------


class PipeHarness:
    def __init__(self, clock: Clock, colour: bool = False, stdout: Any = None) -> None:
        self.stdout = stdout if stdout is not None else io.BytesIO()
        self.stderr = io.StringIO()
        self.calls: queue.Queue[tuple[Callable[..., object], tuple[Any, ...]]] = queue.Queue()
        self.ui = PipeUi(self.call, -1, self.stdout, self.stderr, colour)
        self.client = Client(clock, quit_grace=None)
        self.client.session.ui = self.ui
        self.ui._session = self.client.session
        self.ui._reading = True

    def call(self, f: Callable[..., object], *args: Any) -> None:
        self.calls.put((f, args))


def test_pipe_prints_each_line_as_received(clock: Clock) -> None:
    pipe = PipeHarness(clock)
    pipe.client.receive("Choose a nickname:", "bob: \x1b[1mhi", "* bob waves")
    assert pipe.stdout.getvalue() == b"Choose a nickname:\nbob: hi\n* bob waves\n"


def test_pipe_colours_only_when_asked(clock: Clock) -> None:
    pipe = PipeHarness(clock, colour=True)
    pipe.client.receive("! no")
    assert pipe.stdout.getvalue() == b"\x1b[1;31m! no\x1b[0m\n"


def test_pipe_splits_input_into_lines_and_quits_at_eof(clock: Clock) -> None:
    pipe = PipeHarness(clock)
    pipe.client.join()
    pipe.ui._received(b"one\r\ntw")
    pipe.ui._received(b"o\nthree")
    assert pipe.client.sent() == [b"one", b"two"]
    pipe.ui._received(b"")
    assert pipe.client.sent() == [b"three", b"/quit"]


def test_pipe_status_goes_to_stderr(clock: Clock) -> None:
    pipe = PipeHarness(clock)
    pipe.client.join()
    pipe.client.close()
    assert pipe.stderr.getvalue() == "chatroom-client: connection closed by server\n"


class _Broken(io.BytesIO):
    def write(self, data: Any) -> int:
        raise BrokenPipeError()


def test_pipe_leaves_quietly_when_stdout_goes_away(clock: Clock) -> None:
    pipe = PipeHarness(clock, stdout=_Broken())
    pipe.client.receive("Choose a nickname:")
    assert pipe.client.session.phase is Phase.QUITTING
    assert pipe.client.sent() == [b"/quit"]


def test_pipe_reads_stdin_on_a_thread(clock: Clock) -> None:
    read_fd, write_fd = os.pipe()
    pipe = PipeHarness(clock)
    pipe.ui._fd = read_fd
    pipe.client.join()
    pipe.ui.start(pipe.client.session)
    assert pipe.client.transport.producer is pipe.ui._gate
    os.write(write_fd, b"hello\n")
    os.close(write_fd)
    try:
        for _ in range(10):  # bounded: each get waits at most 5 s
            f, args = pipe.calls.get(timeout=5)
            f(*args)
            if pipe.client.session.phase is Phase.QUITTING:
                break
    finally:
        os.close(read_fd)
    assert pipe.client.sent() == [b"hello", b"/quit"]
