"""``chatroom-client`` as users and scripts run it, against a real server.

Each test starts ``twistd -n chatroom --port 0``, drives the installed client through
pipes (or a tmux pane, for the terminal) and talks to it from a raw-socket peer.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.clienthelpers import (
    CLIENT,
    TIMEOUT,
    ChatServer,
    ClientProcess,
    RawClient,
    Tmux,
    free_port,
)

pytestmark = pytest.mark.skipif(
    not CLIENT.exists(),
    reason=f"{CLIENT} is missing: pip install --config-settings editable_mode=compat -e .",
)

Start = Callable[..., ClientProcess]
Peer = Callable[[str], RawClient]


@pytest.fixture
def chat_server(tmp_path: Path) -> Iterator[ChatServer]:
    server = ChatServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def start_client() -> Iterator[Start]:
    started: list[ClientProcess] = []

    def start(*args: str) -> ClientProcess:
        client = ClientProcess(*args)
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


@pytest.fixture
def peer(chat_server: ChatServer) -> Iterator[Peer]:
    """Raw-socket members of the room, joined under the given nickname."""
    peers: list[RawClient] = []

    def join(nick: str) -> RawClient:
        raw = RawClient(chat_server.port)
        peers.append(raw)
        raw.join(nick)
        return raw

    yield join
    for raw in peers:
        raw.close()


def joined(start_client: Start, server: ChatServer, nick: str = "carol") -> ClientProcess:
    client = start_client("--port", str(server.port), "--nick", nick)
    client.expect(rf"^\*\*\* welcome, {nick}\b")
    return client


def assert_clean_stderr(client: ClientProcess, *sentences: str) -> None:
    err = client.stderr()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == len(sentences), err
    for line, sentence in zip(lines, sentences, strict=True):
        assert line.startswith("chatroom-client: ") and sentence in line, err


def test_join_and_chat_both_ways(chat_server: ChatServer, start_client: Start,
                                 peer: Peer) -> None:
    bob = peer("bob")
    carol = joined(start_client, chat_server)
    assert carol.out[0] == "Choose a nickname:"
    bob.expect(r"^\*\*\* carol joined")
    carol.send("hello bob")
    bob.expect(r"^carol: hello bob$")
    bob.send("hi carol")
    assert carol.expect(r"bob:") == "bob: hi carol"
    carol.send("//not a command")
    bob.expect(r"^carol: /not a command$")
    carol.send("hé ✓")
    bob.expect(r"^carol: hé ✓$")


def test_me_msg_nick_and_who(chat_server: ChatServer, start_client: Start,
                             peer: Peer) -> None:
    bob = peer("bob")
    carol = joined(start_client, chat_server)
    carol.send("/me waves")
    bob.expect(r"^\* carol waves$")
    bob.send("/msg carol psst")
    assert carol.expect(r"^\[private\]") == "[private] bob: psst"
    carol.send("/msg bob back")
    bob.expect(r"^\[private\] carol: back$")
    carol.send("/msg nobody x")
    carol.expect(r"^! ")
    carol.send("/nick carla")
    carol.expect(r"^\*\*\* you are now known as carla$")
    bob.expect(r"^\*\*\* carol is now known as carla$")
    carol.send("/who")
    who = carol.expect(r"in the room")
    assert re.search(r"\bbob\b", who) and re.search(r"\bcarla\b", who)


def test_quit_exits_0_after_the_server_closes(chat_server: ChatServer, start_client: Start,
                                              peer: Peer) -> None:
    bob = peer("bob")
    carol = joined(start_client, chat_server)
    carol.send("/quit")
    assert carol.wait() == 0
    assert carol.out[-1] == "*** goodbye, carol"
    bob.expect(r"^\*\*\* carol left")
    assert_clean_stderr(carol)


def test_end_of_input_quits(chat_server: ChatServer, start_client: Start,
                            peer: Peer) -> None:
    bob = peer("bob")
    carol = joined(start_client, chat_server)
    carol.send("last words")
    carol.close_stdin()
    assert carol.wait() == 0
    bob.expect(r"^carol: last words$")
    bob.expect(r"^\*\*\* carol left")
    assert_clean_stderr(carol)


def test_ctrl_c_quits_cleanly(chat_server: ChatServer, start_client: Start,
                              peer: Peer) -> None:
    bob = peer("bob")
    carol = joined(start_client, chat_server)
    carol.proc.send_signal(signal.SIGINT)
    assert carol.wait() == 0
    bob.expect(r"^\*\*\* carol left")
    assert_clean_stderr(carol)


def test_a_script_picks_its_nickname_from_stdin(chat_server: ChatServer,
                                                start_client: Start, peer: Peer) -> None:
    bob = peer("bob")
    dave = start_client("--port", str(chat_server.port))
    dave.expect("nickname")
    dave.send("BOB")
    dave.expect(r"^! .*taken")
    dave.send("dave")
    dave.expect(r"^\*\*\* welcome, dave\b")
    bob.expect(r"^\*\*\* dave joined")


def test_a_refused_nick_ends_a_script_non_zero(chat_server: ChatServer,
                                               start_client: Start, peer: Peer) -> None:
    peer("bob")
    client = start_client("--port", str(chat_server.port), "--nick", "BOB")
    client.send("this must not become a nickname")
    assert client.wait() == 3
    assert_clean_stderr(client, "nickname BOB refused")
    assert not any("welcome" in line for line in client.out)


def test_lines_piped_in_arrive_all_and_in_order(chat_server: ChatServer,
                                                start_client: Start, peer: Peer) -> None:
    """More lines than the flood burst: the server slows the client, nothing is lost."""
    bob = peer("bob")
    carol = start_client("--port", str(chat_server.port), "--nick", "carol")
    for n in range(60):
        carol.send(f"line {n}")
    carol.close_stdin()
    for n in range(60):
        bob.expect(rf"^carol: line {n}$", timeout=TIMEOUT * 2)
    bob.expect(r"^\*\*\* carol left", timeout=TIMEOUT * 2)
    assert carol.wait() == 0


def test_server_shutdown_ends_the_client_with_a_sentence(
    chat_server: ChatServer, start_client: Start
) -> None:
    carol = joined(start_client, chat_server)
    chat_server.terminate()
    assert carol.wait() == 0
    assert "*** server shutting down" in carol.out
    assert_clean_stderr(carol, "connection closed by server")


def test_connection_refused_is_one_sentence_and_status_1(start_client: Start) -> None:
    client = start_client("--port", str(free_port()))
    assert client.wait() == 1
    assert client.out == []
    assert_clean_stderr(client, "connection refused")


def test_split_packets_escapes_and_a_reset_from_a_raw_server(start_client: Start) -> None:
    """The client must not trust the server: framing, sanitising, a broken connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        client = start_client("--port", str(listener.getsockname()[1]), "--nick", "eve")
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pieces = [b"Choose a nick", b"name:\r", b"\n", b"*** welcome, e", b"ve!\r\n",
                      b"bob: \x1b]0;pwned\x07hel", b"lo \x1b[31mred\x1b[0m\r\n",
                      "* bob \x9b2Jwaves\u202e\r\n".encode()]
            for piece in pieces[:3]:
                conn.sendall(piece)
                time.sleep(0.05)  # separate packets (not needed for correctness)
            assert conn.recv(100) == b"eve\r\n"
            for piece in pieces[3:]:
                conn.sendall(piece)
                time.sleep(0.05)
            client.expect(r"^\* bob")
            assert client.out == ["Choose a nickname:", "*** welcome, eve!",
                                  "bob: hello red", "* bob waves"]
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert client.wait() == 1
    assert_clean_stderr(client, "connection lost")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_terminal_keeps_typing_intact_and_uses_colour(
    chat_server: ChatServer, peer: Peer, tmp_path: Path
) -> None:
    bob = peer("bob")
    status = tmp_path / "status"
    command = (
        f"env -u NO_COLOR {shlex.quote(str(CLIENT))} --port {chat_server.port} --nick carol;"
        f" echo $? > {shlex.quote(str(status))}"
    )
    tmux = Tmux(f"chatroom-client-test-{chat_server.proc.pid}", command)
    try:
        tmux.wait_for(r"^carol>\s*$")
        bob.expect(r"^\*\*\* carol joined")
        tmux.type("hello wor")
        tmux.wait_for(r"^carol> hello wor$")
        bob.send("incoming line")
        # The line is printed above the prompt, then the prompt is redrawn: wait for both.
        screen = tmux.wait_for(r"^bob: incoming line$[\s\S]*^carol> hello wor\s*\Z")
        rows = [row for row in screen.splitlines() if row.strip()]
        assert rows[-1] == "carol> hello wor", screen  # the half-typed line, intact
        assert screen.count("hello wor") == 1, screen
        coloured = tmux.screen(escapes=True)
        incoming = next(row for row in coloured.splitlines() if "incoming line" in row)
        assert "\x1b[" in incoming, coloured

        tmux.type("ld")
        tmux.key("Enter")
        bob.expect(r"^carol: hello world$")
        tmux.type("/bogus")
        tmux.key("Enter")
        tmux.wait_for(r"^! unknown command")
        coloured = tmux.screen(escapes=True)
        error = next(row for row in coloured.splitlines() if "! unknown command" in row)
        assert re.search(r"\x1b\[(?:[0-9;]*;)?31m", error), coloured

        tmux.key("C-d")
        bob.expect(r"^\*\*\* carol left")
        deadline = time.monotonic() + TIMEOUT
        while not (status.exists() and status.read_text().strip()):
            assert time.monotonic() < deadline, tmux.screen()
            time.sleep(0.05)
        assert status.read_text().strip() == "0"
    finally:
        tmux.kill()


def test_no_color_keeps_a_terminal_plain(chat_server: ChatServer, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    command = (f"NO_COLOR=1 {shlex.quote(str(CLIENT))} --port {chat_server.port} --nick carol;"
               " sleep 5")
    tmux = Tmux(f"chatroom-client-test-nc-{chat_server.proc.pid}", command)
    try:
        tmux.wait_for(r"^carol>\s*$")
        tmux.type("/bogus")
        tmux.key("Enter")
        tmux.wait_for(r"^! unknown command")
        assert "\x1b[" not in tmux.screen(escapes=True)
        tmux.key("C-d")
    finally:
        tmux.kill()
