"""SIGHUP to a real server: the config file is read again and what can change live does,
for the clients already connected too; what cannot is refused, logged, and the server
goes on as it was. Nobody is dropped."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.serverproc import BIN, LineClient, ServerProcess, free_port

COMMANDS = pytest.mark.parametrize(
    "command", [None, [str(BIN / "chatroom-server")]], ids=["twistd", "chatroom-server"]
)
BASE = 'history = "none"\n'


class Configured:
    """A server started with ``--config chatroom.toml``, and SIGHUP after a rewrite."""

    def __init__(self, start: Callable[..., ServerProcess], text: str,
                 command: list[str] | None = None) -> None:
        self.text = text
        self.server = start("--config", "chatroom.toml", command=command,
                            before=lambda workdir: self.write_in(workdir, text))
        self.path = self.server.workdir / "chatroom.toml"

    @staticmethod
    def write_in(workdir: Path, text: str) -> None:
        (workdir / "chatroom.toml").write_text(text)

    def reload(self, text: str) -> str:
        """Rewrite the file, SIGHUP, and the log line that says what came of it."""
        done = self.outcomes()
        self.path.write_text(text)
        self.server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            outcomes = self.outcomes()
            if len(outcomes) > len(done):
                return outcomes[-1]
            assert self.server.proc.poll() is None, self.server.log()
            time.sleep(0.05)
        raise AssertionError(f"no reload logged:\n{self.server.log()}")

    def outcomes(self) -> list[str]:
        return [line for line in self.server.log().splitlines()
                if "reload (SIGHUP) applied" in line or "reload (SIGHUP) refused" in line]


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[Callable[..., Configured]]:
    started: list[ServerProcess] = []

    def start(*args: str, before: Callable[[Path], None], **options: object) -> ServerProcess:
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir()
        before(workdir)
        server = ServerProcess(workdir, *args, **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield lambda text, command=None: Configured(start, text, command)
    for server in started:
        server.kill()


@COMMANDS
def test_sighup_lowers_max_line_for_a_client_already_connected(
    configured: Callable[..., Configured], command: list[str] | None
) -> None:
    running = configured(BASE + "max-line = 4096\n", command)
    alice = running.server.join("alice")
    bob = running.server.join("bob")
    alice.send("a" * 3000)
    bob.expect("alice: a{3000}$")
    said = running.reload(BASE + "max-line = 1024\n")
    assert "applied: max-line 4096 -> 1024" in said
    alice.send("b" * 3000)
    alice.expect(r"^! line too long \(1024 bytes max\)")
    alice.send("still here")
    assert bob.expect("alice: ") == "alice: still here"  # and the long line never came
    newcomer = running.server.join("carol")  # a new connection gets the new cap too
    newcomer.send("c" * 2000)
    newcomer.expect("line too long")
    assert running.server.proc.poll() is None


def test_a_bad_value_on_reload_is_refused_and_logged_while_the_server_runs_on(
    configured: Callable[..., Configured]
) -> None:
    running = configured(BASE + "max-line = 4096\n")
    alice = running.server.join("alice")
    bob = running.server.join("bob")
    said = running.reload(BASE + "max-line = 1024\nrate = 0\n")
    assert "refused, the running configuration is unchanged" in said
    assert f"{running.path}: rate = 0: must be at least 0.1" in said
    alice.send("a" * 3000)  # the old max-line still holds: nothing of the file applied
    bob.expect("alice: a{3000}$")
    said = running.reload('history = "elsewhere.sqlite3"\nmax-line = 1024\n')
    assert "history: none -> elsewhere.sqlite3 needs a restart" in said
    alice.send("b" * 3000)
    bob.expect("alice: b{3000}$")
    # the same file, fixed, is applied
    assert "applied: max-line 4096 -> 1024" in running.reload(BASE + "max-line = 1024\n")
    assert running.server.proc.poll() is None
    assert "Traceback" not in running.server.log()


def test_listeners_open_and_close_without_dropping_their_connections(
    configured: Callable[..., Configured]
) -> None:
    first, second = free_port(), free_port()
    running = configured(BASE + f'listen = ["tcp:{first}:interface=127.0.0.1"]\n')
    alice = LineClient(socket.create_connection(("127.0.0.1", first), timeout=5))
    alice.expect("nickname")
    alice.send("alice")
    alice.expect("welcome")
    said = running.reload(BASE + f'listen = ["tcp:{second}:interface=127.0.0.1"]\n')
    assert f"listening on tcp:{second}:interface=127.0.0.1" in said
    assert f"no longer listening on tcp:{first}:interface=127.0.0.1" in said
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", first), timeout=5)
    bob = LineClient(socket.create_connection(("127.0.0.1", second), timeout=5))
    bob.expect("nickname")
    bob.send("bob")
    bob.expect("welcome, bob! 2 people")
    alice.send("my port is closed, not me")
    assert bob.expect("alice:") == "alice: my port is closed, not me"


def test_the_log_level_changes_on_sighup(configured: Callable[..., Configured]) -> None:
    running = configured(BASE)
    running.server.join("alice")
    assert "connection from" in running.server.log()
    running.reload(BASE + 'log-level = "warn"\n')
    before = running.server.log()
    client = running.server.connect()
    client.expect("nickname")
    client.send("/join #x")  # refused before a nickname: a warning
    client.expect("choose a nickname first")
    deadline = time.monotonic() + 5
    while "refused input" not in running.server.log()[len(before):]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "connection from" not in running.server.log()[len(before):]


def test_a_lower_history_keep_trims_the_store_at_once(configured: Callable[..., Configured]
                                                      ) -> None:
    running = configured('history = "chat.sqlite3"\n')
    alice = running.server.join("alice")
    for n in range(5):
        alice.send(f"line {n}")
    alice.send("/history 10")
    alice.expect("line 4")
    said = running.reload('history = "chat.sqlite3"\nhistory-keep = "2"\n')
    assert "applied: history-keep 1000000 -> 2" in said
    deadline = time.monotonic() + 10
    while "history trimmed" not in running.server.log():
        assert time.monotonic() < deadline, running.server.log()
        time.sleep(0.05)
    assert "events older than 2" in running.server.log()


def test_sighup_reaches_open_irc_connections(configured: Callable[..., Configured]) -> None:
    from tests.integration.test_rehash import irc_member

    irc_port = free_port()
    irc = BASE + f'irc = "tcp:{irc_port}:interface=127.0.0.1"\n'
    running = configured(irc + "irc-ping = 120\nmax-rooms-per-member = 20\n")
    dave = irc_member(irc_port, "dave")
    dave.expect(" 366 ")  # registered: the end of the default room's NAMES
    said = running.reload(irc + "irc-ping = 5\nmax-rooms-per-member = 3\n")
    assert "irc-ping 120.0 -> 5.0" in said and "max-rooms-per-member 20 -> 3" in said
    dave.send("VERSION")
    dave.expect(" 351 ")
    assert "CHANLIMIT=#:3" in dave.expect(" 005 ")
    started = time.monotonic()
    dave.expect("^PING ", timeout=10)  # the new interval holds for it: not 120 s
    assert time.monotonic() - started < 8
    dave.send("PONG :x")
    dave.send("JOIN #a,#b,#c")
    assert " 405 dave #c :you are in 3 rooms already" in dave.expect(" 405 ")


def test_sighup_moves_the_metrics_endpoint(configured: Callable[..., Configured]) -> None:
    from tests.integration.test_metrics_server import get, scrape, value

    first, second = free_port(), free_port()
    running = configured(BASE + f'metrics = "tcp:{first}:interface=127.0.0.1"\n')
    alice = running.server.join("alice")
    assert value(scrape(first), "chatroom_reloads_total") == 0
    said = running.reload(BASE + f'metrics = "tcp:{second}:interface=127.0.0.1"\n')
    assert f"listening on metrics tcp:{second}:interface=127.0.0.1" in said
    assert f"no longer listening on metrics tcp:{first}:interface=127.0.0.1" in said
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", first), timeout=5)
    assert value(scrape(second), "chatroom_reloads_total") == 1
    assert value(scrape(second), "chatroom_members", front_end="line") == 1
    assert get(second, "/readyz")[0] == 200
    said = running.reload(BASE)  # turned off
    assert f"no longer listening on metrics tcp:{second}:interface=127.0.0.1" in said
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", second), timeout=5)
    alice.send("/who")
    alice.expect("1 in the room")
