"""``/rehash`` (line, web) and IRC ``REHASH``: a server operator reloads the configuration
as SIGHUP does and is told the log's sentences; anyone else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.application.service import MultiService
from twisted.internet.testing import MemoryReactorClock

from chatroom.listeners import Listeners, listener_specs
from chatroom.options import Options
from chatroom.reload import Reloader
from tests.unit.irchelpers import Both, IRCClient
from tests.unit.test_reload import now, result

BASE = 'history = "none"\nport = 9000\n'


class Rehashing:
    """A line and an IRC front end on one chat, with a reloader of ``chatroom.toml``."""

    def __init__(self, tmp_path: Path, text: str) -> None:
        self.path = tmp_path / "chatroom.toml"
        self.path.write_text(text)
        options = Options()
        options.parseOptions(["--config", str(self.path)])
        self.server = Both(options["limits"])
        services = self.server.services
        top = MultiService()
        listeners = Listeners(top, MemoryReactorClock(),
                              {"line": self.server.factory, "irc": self.server.irc_factory},
                              services.admission)
        for spec in listener_specs(options):
            listeners.add(spec).setServiceParent(top)
        top.startService()
        self.reloader = Reloader(options, services, listeners, now)
        services.reloader = self.reloader
        self.triggers: list[str] = []
        self.reloader.observers.append(lambda outcome: self.triggers.append(outcome.trigger))

    def oper(self, nick: str) -> None:
        moderation = self.server.services.moderation
        assert moderation is not None
        member = next(session.member for session in self.server.services.sessions
                      if session.member is not None and session.member.nick == nick)
        moderation.make_server_operator(member, "root")


@pytest.fixture
def rehashing(tmp_path: Path) -> Rehashing:
    return Rehashing(tmp_path, BASE + "max-line = 4096\n")


def test_an_operator_reloads_and_is_told_what_changed(rehashing: Rehashing) -> None:
    server = rehashing.server
    alice = server.join("alice")
    rehashing.oper("alice")
    alice.clear()
    rehashing.path.write_text(BASE + "max-line = 1024\n")
    alice.send("/rehash")
    server.flush()
    assert alice.lines() == ["*** reload applied: max-line 4096 -> 1024"]
    assert server.services.limits.max_line == 1024
    assert rehashing.triggers == ["/rehash by alice as root"]
    alice.send("/rehash")
    server.flush()
    assert alice.lines() == ["*** reload applied: nothing changed"]


def test_a_refused_reload_is_told_as_errors_and_nothing_applies(rehashing: Rehashing) -> None:
    server = rehashing.server
    alice = server.join("alice")
    rehashing.oper("alice")
    alice.clear()
    rehashing.path.write_text('history = "x.sqlite3"\nport = 9000\nmax-line = 1024\n')
    alice.send("/rehash")
    server.flush()
    assert alice.lines() == [
        "! reload refused, the running configuration is unchanged: history: none -> "
        "x.sqlite3 needs a restart (the history store stays open where it is)"]
    assert server.services.limits.max_line == 4096


def test_anyone_else_gets_the_server_operators_error(rehashing: Rehashing) -> None:
    server = rehashing.server
    bob = server.join("bob")
    bob.clear()
    rehashing.path.write_text(BASE + "max-line = 1024\n")
    bob.send("/rehash")
    server.flush()
    assert bob.lines() == ["! only a server operator may do that (/oper NAME PASSWORD)"]
    assert rehashing.triggers == [] and server.services.limits.max_line == 4096


def test_a_server_without_a_reloader_says_so(rehashing: Rehashing) -> None:
    server = rehashing.server
    server.services.reloader = None
    alice = server.join("alice")
    rehashing.oper("alice")
    alice.clear()
    alice.send("/rehash")
    server.flush()
    assert alice.lines() == ["! this server has no configuration to reload"]


def _answer(client: IRCClient) -> list[str]:
    return [" ".join(line.split(" ")[1:]) for line in client.lines()]


def test_irc_rehash_answers_382_then_the_outcome(rehashing: Rehashing) -> None:
    server = rehashing.server
    alice = server.irc("alice")
    rehashing.oper("alice")
    server.flush()
    alice.clear()
    rehashing.path.write_text(BASE + "max-line = 1024\n")
    alice.send("REHASH")
    server.flush()
    assert _answer(alice) == [
        f"382 alice {rehashing.path} :Rehashing",
        "NOTICE alice :reload applied: max-line 4096 -> 1024",
    ]
    assert rehashing.triggers == ["/rehash by alice as root"]


def test_irc_rehash_by_anyone_else_is_481(rehashing: Rehashing) -> None:
    server = rehashing.server
    bob = server.irc("bob")
    bob.send("REHASH")
    server.flush()
    assert _answer(bob) == ["481 bob :Permission Denied- You're not an IRC operator"]
    assert rehashing.triggers == []


def test_a_reload_reads_the_operators_file_again_and_refuses_a_bad_one(tmp_path: Path) -> None:
    from argon2 import PasswordHasher

    hashed = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash("pw")
    opers = tmp_path / "opers.txt"
    opers.write_text(f"root {hashed}\n")
    config = BASE + f'opers = "{opers}"\n'
    running = Rehashing(tmp_path, config)
    services = running.server.services
    assert services.accounts is not None
    outcome = result(running.reloader.reload("test"))
    assert outcome.changes == ["server operators changed (1 in the file)"]
    assert list(services.operators) == list(services.accounts.operators) == ["root"]
    opers.write_text(f"root {hashed}\nadmin not-a-hash\n")
    outcome = result(running.reloader.reload("test"))
    (refusal,) = outcome.refusals
    assert refusal.startswith(f"--opers: {opers}, line 2: not an Argon2 hash")
    assert list(services.accounts.operators) == ["root"]
