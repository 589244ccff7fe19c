"""The room as nc users meet it: a real twistd process, real sockets, PROTOCOL.md's tables."""

from __future__ import annotations

import re
import socket
import struct

from tests.integration.serverproc import LineClient, ServerProcess


def test_prompt_comes_before_any_input(server: ServerProcess) -> None:
    client = server.connect()
    assert "nickname" in (client.read_line() or "")


def test_two_members_chat_with_every_command(server: ServerProcess) -> None:
    alice = server.join("alice")
    bob = server.join("bob")
    alice.expect(r"^\*\*\* bob joined")

    alice.send("hello")
    assert bob.expect("alice") == "alice: hello"
    alice.send("/me waves")
    assert bob.expect("alice") == "* alice waves"
    alice.send("//etc/motd is a path")
    assert bob.expect("alice") == "alice: /etc/motd is a path"
    alice.send("/msg bob psst")
    assert bob.expect("psst") == "[private] alice: psst"
    alice.send("/msg nobody hi")
    assert alice.expect("^!").startswith("! no such member")
    assert alice.quiet() == []  # no echo of anything alice said

    bob.send("/who")
    assert bob.expect("in the room") == "*** 2 in the room: alice, bob"
    bob.send("/help")
    help_lines = [bob.expect(rf"^\*\*\* {command}\b") for command in ("/who", "/msg", "/me")]
    assert all(len(line) > 10 for line in help_lines)

    bob.send("/nick robert")
    assert bob.expect("known as") == "*** you are now known as robert"
    assert alice.expect("known as") == "*** bob is now known as robert"
    bob.send("/nick ALICE")
    assert bob.expect("^!") == "! nickname ALICE is already taken"
    assert alice.quiet() == []

    bob.send("/quit")
    bob.expect("goodbye")
    assert bob.wait_closed()
    assert alice.expect("left") == "*** robert left"


def test_taken_and_invalid_nicknames_get_an_error_and_a_new_prompt(server: ServerProcess) -> None:
    zoe = server.join("Zoë")
    client = server.connect()
    client.expect("nickname")
    attempts = [("ZOË", "taken"), ("_x", "start with"), ("a b", "space"), ("x" * 33, "32")]
    for attempt, why in attempts:
        client.send(attempt)
        assert why in client.expect("^!")
        client.expect("nickname")
    client.send("日本")
    client.expect("welcome, 日本")
    zoe.expect("日本 joined")


def test_a_client_choosing_a_nickname_hears_nothing(server: ServerProcess) -> None:
    alice = server.join("alice")
    lurker = server.connect()
    lurker.expect("nickname")
    alice.send("anyone here?")
    alice.send("/msg lurker hi")
    alice.expect("no such member")
    assert lurker.quiet() == []


def test_every_way_of_leaving_is_announced_once_and_frees_the_nick(
    server: ServerProcess,
) -> None:
    watcher = server.join("watcher")

    quitter = server.join("quitter")
    quitter.send("/quit")
    closer = server.join("closer")
    closer.close()
    halfcloser = server.join("halfcloser")
    halfcloser.sock.shutdown(socket.SHUT_WR)
    resetter = server.join("resetter")
    resetter.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    resetter.close()

    lefts = []
    for _ in range(4):
        lefts.append(watcher.expect("left$"))
    assert sorted(lefts) == sorted(
        f"*** {nick} left" for nick in ("quitter", "closer", "halfcloser", "resetter")
    )
    assert [line for line in watcher.quiet() if "left" in line] == []
    for nick in ("quitter", "closer", "halfcloser", "resetter"):
        server.join(nick)  # free again at once


def test_lines_from_one_sender_arrive_in_order(server: ServerProcess) -> None:
    alice = server.join("alice")
    bob = server.join("bob")
    alice.expect("bob joined")
    count = 30  # within the default burst, so flood control does not slow this test
    alice.send_raw(b"".join(f"line {i}\n".encode() for i in range(count)))
    got = [bob.expect("^alice: line") for _ in range(count)]
    assert got == [f"alice: line {i}" for i in range(count)]


def test_sanitising_reaches_other_clients(server: ServerProcess) -> None:
    alice = server.join("alice")
    bob = server.join("bob")
    alice.expect("bob joined")
    alice.send_raw(
        b"\xff\xfb\x1f\xff\xfa\x18\x01\xff\xf0"  # telnet WILL NAWS, SB TTYPE ... SE
        b"red \x1b[31mRED\x1b[0m\x07 bad \xc3\x28 \x1b]0;t\x07ok\r\n"
    )
    line = bob.expect("^alice:")
    assert line == "alice: red RED bad \ufffd( ok"


def test_telnet_negotiation_split_across_packets_is_removed(server: ServerProcess) -> None:
    alice = server.join("alice")
    bob = server.connect()
    bob.expect("nickname")
    chunks = (b"\xff", b"\xfd", b"\x03bo", b"b\xff", b"\xfa\x18", b"\x00xterm\xff", b"\xf0\r\n")
    for chunk in chunks:
        bob.send_raw(chunk)
    bob.expect("welcome, bob")
    alice.expect("bob joined")
    # Asked to send BINARY once; SGA refused (a chat reads line by line); nothing for SB
    assert bob.negotiation == b"\xff\xfd\x00\xff\xfc\x03"
    assert alice.negotiation == b""


def test_racing_for_one_nickname_exactly_one_wins(server: ServerProcess) -> None:
    clients = [server.connect() for _ in range(8)]
    for client in clients:
        client.expect("nickname")
    for client in clients:
        client.send("racer")
    outcomes = [client.expect(r"welcome|^!") for client in clients]
    assert sum(line.startswith("*** welcome") for line in outcomes) == 1


def test_server_output_is_valid_utf8_with_crlf(server: ServerProcess) -> None:
    alice = server.join("alice")
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    raw.sendall(b"bob\n")
    alice.expect("bob joined")
    alice.send_raw(b"caf\xc3\xa9 \xe9t\xe9 \xf0\x9f\x98\x80\n")
    data = b""
    while b"alice:" not in data or not data.endswith(b"\r\n"):
        data += raw.recv(4096)
    assert re.fullmatch(rb"(?:[^\r\n]*\r\n)+", data)
    assert "alice: café \ufffdt\ufffd 😀" in data.decode("utf-8")


def test_ipv6_listener(start_server) -> None:  # type: ignore[no-untyped-def]
    if not socket.has_ipv6:
        return
    server = start_server("--interface", "::1")
    client = LineClient(socket.create_connection(("::1", server.port), timeout=5))
    assert "nickname" in client.expect("nickname")
