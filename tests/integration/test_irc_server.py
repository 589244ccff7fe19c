"""``twistd chatroom --irc``: an IRC client library, nc-style clients and the web page in
the same rooms, over real sockets."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.ircclient import LibClient
from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
from tests.integration.serverproc import LineClient, ServerProcess

IRC = ("--irc", "tcp:0:interface=127.0.0.1", "--irc-name", "irc.test")


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(*IRC, "--web", "tcp:0:interface=127.0.0.1", "--history", ":memory:")


def irc_join(server: ServerProcess, nick: str) -> LibClient:
    client = LibClient(server.irc_port, nick, f"{nick} on IRC")
    client.wait("welcome")
    client.wait("join", lambda e: e.source.nick == nick and e.target == "#lobby")
    return client


def test_an_irc_client_and_an_nc_client_talk_in_the_lobby(server: ServerProcess) -> None:
    bob = server.join("bob")
    alice = irc_join(server, "alice")
    names = alice.wait("namreply")
    assert names.arguments[1] == "#lobby" and set(names.arguments[2].split()) == {"bob", "alice"}
    bob.expect(r"^\*\*\* alice joined$")
    alice.connection.privmsg("#lobby", "hi from irc")
    assert bob.expect("alice:") == "alice: hi from irc"
    bob.send("hi from nc")
    event = alice.said("pubmsg", "hi from nc")
    assert (event.source, event.target) == ("bob!bob@chatroom", "#lobby")
    bob.send("/me waves")
    assert alice.wait("action").arguments == ["waves"]
    alice.connection.action("#lobby", "nods")
    bob.expect(r"^\* alice nods$")
    alice.connection.privmsg("bob", "psst")
    bob.expect(r"^\[private\] alice: psst$")
    bob.send("/msg alice back")
    assert alice.said("privmsg", "back").source.nick == "bob"
    alice.connection.whois(["bob"])
    assert alice.wait("whoisuser").arguments[:2] == ["bob", "bob"]
    alice.connection.privmsg("nobody", "x")
    assert alice.wait("nosuchnick").arguments[0] == "nobody"
    alice.connection.quit("see you")
    bob.expect(r"^\*\*\* alice left \(see you\)$")
    assert "Traceback" not in server.log()


def test_joins_parts_renames_topics_and_quits_cross_every_front_end(
    server: ServerProcess,
) -> None:
    from websocket import create_connection  # websocket-client, installed with selenium

    nc = server.join("carol")
    page = create_connection(f"ws://127.0.0.1:{server.web_port}/ws", timeout=10)
    try:
        page.send(json.dumps({"type": "nick", "nick": "webdan"}))
        frames = Frames(page)
        frames.wait(lambda m: m.get("type") == "welcome")
        alice = irc_join(server, "alice")
        frames.wait(lambda m: m.get("type") == "joined" and m.get("nick") == "alice")
        nc.expect(r"^\*\*\* alice joined$")
        names = alice.wait("namreply")
        assert set(names.arguments[2].split()) == {"carol", "webdan", "alice"}

        # every front end into #dev: IRC first, so alice runs it
        alice.connection.join("#dev")
        alice.wait("join", lambda e: e.target == "#dev")
        nc.send("/join #dev")
        assert alice.wait("join", lambda e: e.target == "#dev").source.nick == "carol"
        page.send(json.dumps({"type": "say", "text": "/join #dev"}))
        assert alice.wait("join", lambda e: e.target == "#dev").source.nick == "webdan"
        nc.expect(r"\*\*\* webdan joined")

        # talking: each front end's line reaches the other two
        alice.connection.privmsg("#dev", "from irc")
        nc.expect(r"^alice: from irc$")
        frames.wait(lambda m: m.get("type") == "said" and m.get("text") == "from irc")
        page.send(json.dumps({"type": "say", "text": "from the page"}))
        assert alice.said("pubmsg", "from the page").source.nick == "webdan"
        nc.expect(r"^webdan: from the page$")

        # topic from IRC (alice is #dev's operator), seen by nc and the page
        alice.connection.topic("#dev", "release day")
        nc.expect(r"alice set the topic: release day")
        frames.wait(lambda m: m.get("type") == "topic" and m.get("text") == "release day")

        # renames from each side
        alice.connection.nick("alicia")
        nc.expect(r"alice is now known as alicia")
        frames.wait(lambda m: m.get("type") == "renamed" and m.get("new_nick") == "alicia")
        nc.send("/nick caroline")
        assert alice.wait("nick", lambda e: e.source.nick == "carol").target == "caroline"

        # parts from each side
        page.send(json.dumps({"type": "say", "text": "/part #dev"}))
        part = alice.wait("part", lambda e: e.target == "#dev")
        assert part.source.nick == "webdan"
        alice.connection.part(["#dev"], "later")
        nc.expect(r"\*\*\* alicia left \(later\)")

        # quits: nc's and the page's reach IRC, IRC's reaches both
        nc.send("/quit")
        assert alice.wait("quit").source.nick == "caroline"
        alice.connection.quit("bye all")
        frames.wait(lambda m: m.get("type") == "left" and m.get("nick") == "alicia")
    finally:
        page.close()
    assert "Traceback" not in server.log()


class Frames:
    """The page's JSON messages, read with a bounded wait."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def wait(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message: dict[str, Any] = json.loads(self.page.recv())
            if match(message):
                return message
        raise AssertionError("no such frame")


def test_cap_negotiation_and_ping_over_a_socket(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(*IRC, "--irc-ping", "5")
    raw = LineClient(socket.create_connection(("127.0.0.1", server.irc_port), timeout=10))
    raw.send("CAP LS 302")
    raw.send("NICK rawnick")
    raw.send("USER raw 0 * :raw")
    assert re.search(r"CAP \* LS :.*server-time", raw.expect(" CAP "))
    raw.send("CAP REQ :server-time")
    raw.expect(r"CAP rawnick ACK :server-time")
    assert not any(" 001 " in line for line in raw.quiet(0.3))  # held until CAP END
    raw.send("CAP END")
    raw.expect(r" 001 rawnick ")
    raw.expect(r"JOIN #lobby")
    raw.expect(r"^PING :irc.test$", timeout=12)
    raw.send("PONG :irc.test")
    raw.expect(r"^PING :irc.test$", timeout=12)
    assert raw.expect(r"^ERROR ", timeout=12).endswith("(Ping timeout: 5 seconds)")
    assert raw.wait_closed()


def test_sigterm_says_error_to_irc_clients(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(*IRC)
    alice = irc_join(server, "alice")
    server.terminate()
    assert server.wait() in (0, -signal.SIGTERM)
    error = alice.wait("error")
    assert "shutting down" in error.target


def test_chathistory_reads_the_sqlite_history(start_server: Callable[..., ServerProcess],
                                              tmp_path: Any) -> None:
    server = start_server(*IRC, "--history", str(tmp_path / "history.sqlite3"))
    bob = server.join("bob")
    raw = LineClient(socket.create_connection(("127.0.0.1", server.irc_port), timeout=10))
    raw.send("CAP LS 302")
    raw.send("CAP REQ :draft/chathistory batch server-time message-tags echo-message")
    raw.send("CAP END")
    raw.send("NICK histo")
    raw.send("USER h 0 * :h")
    raw.expect(r" 005 .*CHATHISTORY=200")
    raw.expect(r" 366 histo #lobby ")
    for i in range(5):
        bob.send(f"line {i}")
    raw.expect(r"PRIVMSG #lobby :line 4$")  # said: sockets are not ordered otherwise
    raw.send("CHATHISTORY LATEST #lobby * 3")
    start = raw.expect(r"BATCH \+\S+ chathistory #lobby")
    ref = start.split("+")[1].split(" ")[0]
    got = [raw.expect(rf"^@batch={ref};") for _ in range(3)]
    assert [line.rsplit(" :", 1)[1] for line in got] == ["line 2", "line 3", "line 4"]
    msgid = dict(item.partition("=")[::2] for item in got[0][1:].split(" ")[0].split(";"))
    raw.expect(rf"BATCH -{ref}")
    raw.send(f"CHATHISTORY BEFORE #lobby msgid={msgid['msgid']} 10")
    raw.expect(r"BATCH \+\S+ chathistory #lobby")
    before = [raw.expect(r"PRIVMSG #lobby") for _ in range(2)]
    assert [line.rsplit(" :", 1)[1] for line in before] == ["line 0", "line 1"]
    raw.expect(r"BATCH -")
    assert "Traceback" not in server.log()


def test_irc_on_one_node_nc_on_another_through_redis(
    start_server: Callable[..., ServerProcess], redis_server: RedisServer  # noqa: F811
) -> None:
    one = start_server(*IRC, "--redis", redis_server.url, "--history", "none")
    two = start_server("--redis", redis_server.url, "--history", "none")
    for node in (one, two):  # listening comes before being in step with the others
        deadline = time.monotonic() + 10
        while "in step with the room" not in node.log() and time.monotonic() < deadline:
            time.sleep(0.05)
    bob = two.join("bob")
    alice = irc_join(server=one, nick="alice")
    bob.expect(r"^\*\*\* alice joined$")
    alice.wait("endofnames")  # the NAMES of joining (node one may not know bob yet)
    alice.connection.names(["#lobby"])
    assert "bob" in alice.wait("namreply").arguments[2].split()
    alice.connection.privmsg("#lobby", "across nodes")
    bob.expect(r"^alice: across nodes$")
    bob.send("back across")
    assert alice.said("pubmsg", "back across").source.nick == "bob"
    bob.send("/nick robert")
    assert alice.wait("nick").target == "robert"
    alice.connection.join("#dev")
    alice.wait("join", lambda e: e.target == "#dev")
    bob.send("/join #dev")
    assert alice.wait("join", lambda e: e.target == "#dev").source.nick == "robert"
    alice.connection.topic("#dev", "two nodes")
    bob.expect(r"alice set the topic: two nodes")
    bob.send("/quit")
    assert alice.wait("quit").source.nick == "robert"
    alice.connection.quit("done")
