"""The twistd plugin is discoverable, and its options parse and default as documented."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from twisted.application.app import ServerOptions
from twisted.application.service import IServiceMaker
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage

from chatroom.admission import LISTEN_BACKLOG
from chatroom.domain.events import Said
from chatroom.history import HistoryService
from chatroom.limits import DEFAULTS, Limits
from chatroom.options import Options
from chatroom.services import ListeningService
from chatroom.tap import build_service

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_twistd_finds_the_plugin() -> None:
    makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
    assert "chatroom" in makers
    assert makers["chatroom"].options is Options


def readme_defaults() -> dict[str, str]:
    """The README's option table: ``{"max-line": "2048", ...}``."""
    rows = re.findall(r"^\| `--([a-z-]+)[^|]*\| ([^|]+?) \|", (ROOT / "README.md").read_text(),
                      re.MULTILINE)
    assert len(rows) > 10, "the README's option table moved or changed its shape"
    return dict(rows)


def test_defaults_are_the_documented_ones() -> None:
    options = parse()
    documented = readme_defaults()
    assert set(documented) == set(Options().synonyms.values()) - {"help", "version"}, (
        "every option has a row in the README's table, and every row an option"
    )
    for name, text in documented.items():
        field = name.replace("-", "_")
        value = getattr(options["limits"], field) if hasattr(DEFAULTS, field) else options[name]
        if re.fullmatch(r"\d+(\.\d+)?", text):
            assert float(value) == float(text), f"--{name}: README says {text}, it is {value}"
        elif value is None or isinstance(value, list):
            assert value in (None, []), f"--{name}: README says {text}, it is {value}"
        else:
            assert value == text, f"--{name}: README says {text}, it is {value}"
    assert options["endpoints"] == ["tcp:8080:interface=127.0.0.1:backlog=4096"]


def test_port_and_interface() -> None:
    assert parse("--port", "9000", "-i", "0.0.0.0")["endpoints"] == [
        "tcp:9000:interface=0.0.0.0:backlog=4096"
    ]
    assert parse("-p", "9000", "-i", "::")["endpoints"] == [r"tcp:9000:interface=\:\::backlog=4096"]


def test_listen_is_repeatable_and_replaces_the_default_port() -> None:
    options = parse("--listen", "tcp6:8080", "--listen", "unix:/tmp/chat.sock")
    assert options["endpoints"] == ["tcp6:8080", "unix:/tmp/chat.sock"]
    options = parse("--listen", "tcp6:8081", "--port", "8080")
    assert options["endpoints"] == ["tcp:8080:interface=127.0.0.1:backlog=4096", "tcp6:8081"]


def test_every_limit_is_an_option() -> None:
    options = parse(
        "--max-line", "512", "--rate", "2.5", "--burst", "7", "--max-out", "65536",
        "--max-clients", "10", "--max-per-ip", "3", "--nick-timeout", "5",
        "--idle-timeout", "600",
    )
    assert options["limits"] == Limits(
        max_line=512, rate=2.5, burst=7, max_out=65536, max_clients=10, max_per_ip=3,
        nick_timeout=5, idle_timeout=600,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("--max-line", "100"),
        ("--max-line", "70000"),
        ("--rate", "0"),
        ("--burst", "x"),
        ("--port", "70000"),
        ("--max-out", "10"),
        ("--nick-timeout", "-1"),
    ],
)
def test_nonsense_is_refused(argv: tuple[str, ...]) -> None:
    with pytest.raises(usage.UsageError):
        parse(*argv)


def test_help_documents_every_option_with_its_default() -> None:
    text = " ".join(str(Options()).split())
    for option in ("--port", "--interface", "--listen", "--max-line", "--rate", "--burst",
                   "--max-out", "--max-clients", "--max-per-ip", "--nick-timeout",
                   "--idle-timeout"):
        assert option in text
    assert "[default: 2048]" in text
    assert "default: 8080" in text


def test_build_service_wires_listeners_without_listening() -> None:
    reactor = MemoryReactorClock()
    options = parse("--listen", "tcp:7001:interface=127.0.0.2", "--port", "7000",
                    "--history", "none")
    service = build_service(options, reactor)
    listeners = [child for child in service if isinstance(child, ListeningService)]
    assert len(listeners) == 2
    assert reactor.tcpServers == []  # building does not listen: twistd forks after it
    assert all(listener.port is None for listener in listeners)
    service.privilegedStartService()  # where twistd listens, before dropping privileges
    assert [(port, interface) for port, _factory, _backlog, interface in reactor.tcpServers] == [
        (7000, "127.0.0.1"), (7001, "127.0.0.2"),
    ]


def pending_flush_delays(clock: Clock) -> list[float]:
    return sorted(call.getTime() - clock.seconds() for call in clock.getDelayedCalls())


@pytest.mark.parametrize(("argv", "delay"), [((), 0.2), (("--history-flush-ms", "50"), 0.05)])
def test_history_flush_ms_reaches_the_store(tmp_path, argv, delay) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    options = parse("--history", str(tmp_path / "h.sqlite3"), "--history-keep", "forever", *argv)
    service = build_service(options, clock)
    [history_service] = [child for child in service if isinstance(child, HistoryService)]
    assert pending_flush_delays(clock) == []
    history_service.history.record(Said("lobby", 0.0, "m1", "alice", "hi"))
    assert pending_flush_delays(clock) == [pytest.approx(delay)]  # the write's timer


def test_history_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    options = parse("--history", str(tmp_path / "h.sqlite3"), "--history-keep", "1000,7d",
                    "--history-replay", "5")
    assert options["limits"].history_replay == 5
    assert options["history-retention"].max_count == 1000
    assert options["history-retention"].max_age == 7 * 86400
    service = build_service(options, Clock())
    assert len(list(service)) == 4  # history, goodbyes, reload on SIGHUP, listener
    assert (tmp_path / "h.sqlite3").exists()
    with pytest.raises(usage.UsageError):
        parse("--history-keep", "lots")


# What a newcomer sees on the command line ----------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--max-line", "10"), "--max-line 10: must be from 512 to 65536"),
        (("--rate", "0"), "--rate 0: must be at least 0.1"),
        (("--burst", "x"), "--burst x: not a number"),
        (("--port", "70000"), "--port 70000: must be from 0 to 65535"),
        (("--history-keep", "lots"), "--history-keep lots: "),
    ],
)
def test_a_refused_value_names_the_option_the_value_and_the_range(argv, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(usage.UsageError) as refused:
        parse(*argv)
    assert str(refused.value).startswith(message)


def twistd(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``twistd ARGV``'s option parsing, in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        ServerOptions().parseOptions(list(argv))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_twistd_prints_one_line_for_a_bad_value_not_the_usage(capsys) -> None:  # type: ignore[no-untyped-def]
    status, out, err = twistd(capsys, "chatroom", "--max-line", "10")
    assert (status, out, err) == (2, "", "chatroom: --max-line 10: must be from 512 to 65536\n")


def test_twistd_chatroom_version_is_chatrooms(capsys) -> None:  # type: ignore[no-untyped-def]
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    status, out, _err = twistd(capsys, "chatroom", "--version")
    assert status == 0
    assert out.startswith(f"chatroom {setup['metadata']['version']} (Twisted ")


def test_help_has_no_doubled_full_stops() -> None:
    text = " ".join(str(Options()).split())
    assert "uses this Redis (default: this process only). redis://" in text
    assert not re.search(r"(?<!\.)\.\.(?!\.)|\. \.", text)  # "..." (an ellipsis) is fine


def test_a_bad_history_is_one_sentence_and_not_also_a_critical_log_event(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Under twistd this runs before logging starts, when critical events go to stderr too:
    # the autouse ``logged_failures`` fixture fails this test if one is logged.
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exited:
        build_service(parse("--history", str(tmp_path / "file" / "h.sqlite3")), Clock())
    assert str(exited.value.code).startswith("chatroom: cannot start: ")


def test_irc_is_off_unless_given_and_a_port_means_the_interface() -> None:
    assert parse()["irc-endpoint"] is None
    assert parse("--irc", "6667")["irc-endpoint"] == "tcp:6667:interface=127.0.0.1:backlog=4096"
    options = parse("--irc", "tcp6:6667", "--irc-name", "irc.example.org", "--irc-ping", "30")
    assert (options["irc-endpoint"], options["irc-name"], options["irc-ping"]) == (
        "tcp6:6667", "irc.example.org", 30.0)
    with pytest.raises(usage.UsageError):
        parse("--irc-ping", "1")


def test_every_tcp_listener_made_from_a_port_has_the_deep_backlog() -> None:
    """A port accepts ``ACCEPT_BATCH`` connections a turn: the rest of a reconnect storm
    waits in the kernel's listen queue, and one that finds it full may never be served
    (6000 line clients at once, with 1024: 1100 never accepted)."""
    options = parse("--port", "9000", "--web", "9001", "--irc", "9002")
    endpoints = [*options["endpoints"], options["web-endpoint"], options["irc-endpoint"]]
    assert all(e.endswith(f":backlog={LISTEN_BACKLOG}") for e in endpoints), endpoints
    assert LISTEN_BACKLOG >= 4096
