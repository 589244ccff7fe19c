"""A reload applies the options that can change live to the server as it runs (its
sessions, rules, admission, listeners, history, log level), or refuses as a whole."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel

from chatroom.history import MemoryHistory, Retention
from chatroom.history.fold import Joins
from chatroom.history.recent import RecentRecords
from chatroom.listeners import Listeners, listener_specs
from chatroom.logconfig import LogOutput
from chatroom.options import Options
from chatroom.reload import HangupService, Outcome, Reloader
from tests.unit.helpers import Server

T = TypeVar("T")


def now(call: Callable[[], T]) -> Deferred[T]:
    """The reload's blocking step, run at once (the server runs it in a thread)."""
    return maybeDeferred(call)


def result(d: Deferred[T]) -> T:
    found: list[T] = []
    d.addCallback(found.append)
    assert found, "the reload did not finish at once"
    return found[0]


class TakenPorts(MemoryReactorClock):
    """A memory reactor on which port 9999 is taken."""

    def listenTCP(self, port: int, *args: Any, **kwargs: Any) -> Any:
        if port == 9999:
            raise CannotListenError("", port, OSError(98, "Address already in use"))
        return super().listenTCP(port, *args, **kwargs)


class Running:
    """A server as ``tap`` wires it, on fakes: a line front end, memory listeners, a
    reloader; the options come from ``chatroom.toml`` in ``tmp_path``."""

    def __init__(self, tmp_path: Path, text: str, *argv: str) -> None:
        self.path = tmp_path / "chatroom.toml"
        self.write(text)
        self.options = Options()
        self.options.parseOptions(["--config", str(self.path), *argv])
        self.server = Server(self.options["limits"])
        self.services = self.server.services
        self.reactor = TakenPorts()
        from twisted.application.service import MultiService

        self.top = MultiService()
        self.listeners = Listeners(self.top, self.reactor, {"line": self.server.factory},
                                   self.services.admission)
        for spec in listener_specs(self.options):
            self.listeners.add(spec).setServiceParent(self.top)
        self.top.startService()
        self.log = LogOutput(open(os.devnull, "w"))  # noqa: SIM115 - for its level only
        self.reloader = Reloader(self.options, self.services, self.listeners, now, self.log)
        self.outcomes: list[Outcome] = []
        self.reloader.observers.append(self.outcomes.append)

    def write(self, text: str) -> None:
        self.path.write_text(text)

    def reload(self, text: str) -> Outcome:
        self.write(text)
        return result(self.reloader.reload("test"))

    def ports(self) -> list[int]:
        return [port for port, *_ in self.reactor.tcpServers]


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., Running]:
    return lambda text="", *argv: Running(tmp_path, text, *argv)


BASE = 'history = "none"\nport = 9000\n'


def test_a_lowered_max_line_holds_for_a_member_already_there(make: Callable[..., Running]
                                                             ) -> None:
    running = make(BASE + "max-line = 4096\n")
    server = running.server
    alice, bob = server.members("alice", "bob")
    alice.send("a" * 3000)
    server.flush()
    assert bob.lines() == ["alice: " + "a" * 3000]
    bob.clear()
    outcome = running.reload(BASE + "max-line = 1024\n")
    assert outcome.applied and outcome.changes == ["max-line 4096 -> 1024"]
    alice.send("b" * 3000)
    alice.send("still here")
    server.flush()
    assert alice.lines()[0] == "! line too long (1024 bytes max)"
    assert bob.lines() == ["alice: still here"]
    assert not alice.closing
    assert running.reloader.reloads == 1 and running.outcomes == [outcome]


def test_flood_control_and_output_caps_follow_for_every_connection(
    make: Callable[..., Running]
) -> None:
    running = make(BASE + "rate = 100\nburst = 100\nmax-out = 65536\n")
    alice = running.server.join("alice")
    choosing = running.server.connect()  # no nickname yet: a session too
    running.reload(BASE + "rate = 1\nburst = 3\nmax-out = 8192\n")
    for client in (alice, choosing):
        bucket = client.protocol.session.gate
        assert (bucket.rate, bucket.burst) == (1.0, 3)
        assert client.protocol.outbox is not None and client.protocol.outbox._cap == 8192


def test_the_room_rules_admission_and_commands_take_the_new_limits(
    make: Callable[..., Running]
) -> None:
    running = make(BASE)
    running.reload(BASE + "max-rooms-per-member = 2\nmax-clients = 3\nmax-per-ip = 1\n"
                   "history-replay = 5\nmax-room-name = 8\n")
    services = running.services
    assert services.chat.rules.max_rooms_per_member == 2
    assert services.chat.rules.max_name == 8
    assert services.commands.limits.history_replay == 5
    assert services.admission is not None and services.admission.max_clients == 3
    assert running.server.factory.limits is services.limits
    server = running.server
    alice = server.join("alice")
    alice.send("/join #a")
    alice.send("/join #b")
    server.flush()
    assert alice.lines()[-1].startswith("! you are in 2 rooms already")
    server.join("bob", host="10.0.0.2")
    assert server.connect(host="10.0.0.2").lines() == [
        "! too many connections from your address"
    ]
    server.join("carol", host="10.0.0.3")
    assert server.connect(host="10.0.0.4").lines() == ["! server full"]
    assert not alice.closing  # nobody in was dropped


def test_an_idle_timeout_set_by_a_reload_counts_from_the_reload(
    make: Callable[..., Running]
) -> None:
    running = make(BASE)
    server = running.server
    alice = server.join("alice")
    server.clock.advance(1000)  # silent long before the reload: not held against her
    running.reload(BASE + "idle-timeout = 60\n")
    server.clock.advance(59)
    assert not alice.closing
    server.clock.advance(2)
    assert alice.closing
    assert "idle for 60 seconds" in alice.lines()[-1]


def test_turning_the_idle_timeout_off_spares_everyone(make: Callable[..., Running]) -> None:
    running = make(BASE + "idle-timeout = 60\n")
    server = running.server
    alice = server.join("alice")
    running.reload(BASE + "idle-timeout = 0\n")
    server.clock.advance(3600)
    assert not alice.closing


def test_a_bad_value_is_refused_and_nothing_changes(make: Callable[..., Running]) -> None:
    running = make(BASE + "max-line = 4096\n")
    outcome = running.reload(BASE + "max-line = 1024\nrate = 0\n")
    assert not outcome.applied
    assert outcome.refusals == [f"{running.path}: rate = 0: must be at least 0.1"]
    assert running.services.limits.max_line == 4096  # not half applied
    assert running.reloader.refusals == 1 and running.reloader.reloads == 0


def test_an_option_read_only_at_start_refuses_the_whole_reload(
    make: Callable[..., Running]
) -> None:
    running = make(BASE)
    outcome = running.reload('history = "var/other.sqlite3"\nport = 9000\nmax-line = 1024\n'
                             'room = "#hall"\n')
    assert outcome.refusals == [
        "room: #lobby -> #hall needs a restart (members are in the default room)",
        "history: none -> var/other.sqlite3 needs a restart (the history store stays open "
        "where it is)",
    ]
    assert running.services.limits.max_line == 2048
    assert running.reloader.options["room"] == "#lobby"


def test_an_unreadable_file_is_refused(make: Callable[..., Running]) -> None:
    running = make(BASE)
    running.path.unlink()
    outcome = result(running.reloader.reload("test"))
    assert outcome.refusals[0].startswith(f"--config {running.path}: No such file")


def test_an_unexpected_error_is_a_refusal_told_to_whoever_asked(
    make: Callable[..., Running], monkeypatch: pytest.MonkeyPatch,
    logged_failures: list[dict[str, Any]],
) -> None:
    running = make(BASE)

    def broken() -> Any:
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(running.reloader, "_read", broken)
    outcome = result(running.reloader.reload("/rehash by alice"))
    assert outcome.refusals == ["the reload failed: RuntimeError: something nobody foresaw"
                                " (a bug: see the server's log)"]
    assert running.outcomes == [outcome]  # /rehash's operator is answered
    assert running.reloader.refusals == 1
    assert result(running.reloader.reload("again")).refusals  # the lock was released
    assert len(logged_failures) == 2  # with its traceback, for whoever fixes the bug
    logged_failures.clear()


def test_the_command_line_still_wins_after_a_reload(make: Callable[..., Running]) -> None:
    running = make(BASE, "--max-line", "1024")
    outcome = running.reload(BASE + "max-line = 4096\n")
    assert outcome.applied and outcome.changes == []
    assert running.services.limits.max_line == 1024


def test_listeners_are_opened_and_closed(make: Callable[..., Running]) -> None:
    running = make(BASE)
    assert running.ports() == [9000]
    outcome = running.reload(BASE + 'listen = ["tcp:9001"]\n')
    assert outcome.changes == ["listening on tcp:9001"]
    assert running.ports() == [9000, 9001]
    outcome = running.reload('history = "none"\nlisten = ["tcp:9001"]\n')
    assert outcome.changes == ["no longer listening on tcp:9000:interface=127.0.0.1:backlog=4096"]
    kept = [svc for svc in running.top if getattr(svc, "port", None) is not None]
    assert [svc.description for svc in kept] == ["tcp:9001"]


def test_a_port_that_cannot_be_opened_refuses_the_reload(make: Callable[..., Running]) -> None:
    running = make(BASE)
    outcome = running.reload(BASE + 'listen = ["tcp:9001", "tcp:9999"]\n')
    assert outcome.refusals == [
        "cannot listen on tcp:9999: Couldn't listen on any:9999: [Errno 98] Address already "
        "in use."
    ]
    assert len(running.listeners.open) == 1
    assert running.reactor.tcpServers[1][0] == 9001  # opened, then closed again
    assert len(running.top.services) == 1
    assert running.reloader.options["listen"] == []


def test_a_front_end_that_was_off_cannot_be_turned_on(make: Callable[..., Running]) -> None:
    running = make(BASE)
    outcome = running.reload(BASE + "web = 8081\n")
    assert outcome.refusals == [
        "web: the web front end was off at start; turning it on needs a restart"
    ]


def test_history_retention_and_joins_change_live(make: Callable[..., Running]) -> None:
    running = make(BASE)
    clock = running.server.clock
    history = MemoryHistory(clock)
    recent = RecentRecords(10)
    running.services.history, running.services.recent = history, recent
    from tests.unit.test_history_contract import said  # one record at a time

    for n in range(5):
        history.record(said(str(n)))
    running.reload(BASE + 'history-keep = "2"\nhistory-joins = "hide"\n')
    assert history._retention == Retention(max_count=2)
    assert len(history._records) == 2
    assert recent.joins is Joins.HIDE


def test_the_log_level_changes_live(make: Callable[..., Running]) -> None:
    running = make(BASE)
    predicate = running.log.predicate
    assert predicate({"log_level": LogLevel.info, "log_namespace": "x"}).name == "maybe"
    running.reload(BASE + 'log-level = "error"\n')
    assert predicate({"log_level": LogLevel.warn, "log_namespace": "x"}).name == "no"


def test_sighup_reloads_through_the_reactor_thread(make: Callable[..., Running]) -> None:
    running = make(BASE)
    calls: list[Callable[[], Any]] = []

    class Reactor:
        def callFromThread(self, call: Callable[[], Any]) -> None:
            calls.append(call)

    service = HangupService(running.reloader, Reactor())
    before = signal.getsignal(signal.SIGHUP)
    service.startService()
    try:
        running.write(BASE + "max-line = 1024\n")
        os.kill(os.getpid(), signal.SIGHUP)
        assert len(calls) == 1  # the handler only hands over
        assert running.services.limits.max_line == 2048
        calls[0]()
        assert running.services.limits.max_line == 1024
    finally:
        service.stopService()
    assert signal.getsignal(signal.SIGHUP) == before


def test_the_web_front_end_follows_too(make: Callable[..., Running]) -> None:
    from twisted.internet.address import IPv4Address

    from chatroom.web.protocol import max_frame
    from chatroom.web.site import build_web_site

    running = make(BASE)
    site = build_web_site(running.services)
    browser = site.chat.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    running.reload(BASE + "web-max-body = 10\nweb-header-timeout = 3\nmax-line = 1024\n")
    assert (site.limits.web_max_body, site.limits.web_header_timeout) == (10, 3.0)
    assert site.chat.limits.max_line == 1024
    assert browser._max_frame == max_frame(running.services.limits)
