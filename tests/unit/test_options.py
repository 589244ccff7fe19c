"""The twistd plugin is discoverable, and its options parse and default as documented."""

from __future__ import annotations

import pytest
from twisted.application.service import IServiceMaker
from twisted.internet.task import Clock
from twisted.plugin import getPlugins
from twisted.python import usage

from chatroom.limits import DEFAULTS, Limits
from chatroom.tap import Options, build_service


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_twistd_finds_the_plugin() -> None:
    makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
    assert "chatroom" in makers
    assert makers["chatroom"].options is Options


def test_defaults_come_from_limits() -> None:
    options = parse()
    assert options["limits"] == DEFAULTS == Limits()
    assert options["endpoints"] == ["tcp:8080:interface=127.0.0.1:backlog=1024"]


def test_port_and_interface() -> None:
    assert parse("--port", "9000", "-i", "0.0.0.0")["endpoints"] == [
        "tcp:9000:interface=0.0.0.0:backlog=1024"
    ]
    assert parse("-p", "9000", "-i", "::")["endpoints"] == [r"tcp:9000:interface=\:\::backlog=1024"]


def test_listen_is_repeatable_and_replaces_the_default_port() -> None:
    options = parse("--listen", "tcp6:8080", "--listen", "unix:/tmp/chat.sock")
    assert options["endpoints"] == ["tcp6:8080", "unix:/tmp/chat.sock"]
    options = parse("--listen", "tcp6:8081", "--port", "8080")
    assert options["endpoints"] == ["tcp:8080:interface=127.0.0.1:backlog=1024", "tcp6:8081"]


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
    service = build_service(parse("--listen", "tcp:0", "--port", "0", "--history", "none"), Clock())
    assert len(list(service)) == 3  # the goodbye service and two listeners


def test_history_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    options = parse("--history", str(tmp_path / "h.sqlite3"), "--history-keep", "1000,7d",
                    "--history-flush-ms", "50", "--history-replay", "5")
    assert options["limits"].history_replay == 5
    assert options["history-retention"].max_count == 1000
    service = build_service(options, Clock())
    assert len(list(service)) == 3  # history, goodbyes, listener
    assert (tmp_path / "h.sqlite3").exists()
    with pytest.raises(usage.UsageError):
        parse("--history-keep", "lots")
