"""What a connection costs in memory: a 15 000-member room holds 15 000 of each of these
objects (issue 17), so their shape is checked here, not only measured
(``benchmarks/census.py``)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

from twisted.internet.task import Clock

from chatroom.domain import nicknames
from chatroom.domain.chat import Member
from chatroom.domain.directory import Directory
from chatroom.domain.events import Joined
from chatroom.limits import Limits
from chatroom.lines.fanout import Fanout
from chatroom.lines.framing import LineBuffer
from chatroom.lines.protocol import ChatLineProtocol
from chatroom.lines.telnet import TelnetFilter
from tests.unit.helpers import Client, Server, serving


def _life(client: Client) -> None:
    """Most of what a connection goes through: a line too long, a nickname, chat, a
    command, flood control, and the close."""
    client.feed(b"x" * 5000 + b"\r\n")
    client.send("alice")
    client.send("hello")
    client.send("/who")
    for n in range(30):
        client.send(f"line {n}")
    client.server.clock.advance(5)
    client.send("/quit")
    client.finish()


def test_a_line_connection_sets_every_attribute_in_its_constructor() -> None:
    # CPython 3.11 stores an instance's attributes in a compact array while their names
    # are the few its class's first instances set early; a name first set later (once
    # thousands of connections exist, as in a join storm) gives each instance a dict of
    # its own: 832 bytes a connection.
    with serving(rate=5.0, burst=5) as server:
        client = server.connect()
        protocol = client.protocol
        assert isinstance(protocol, ChatLineProtocol)
        at_start = set(vars(protocol))
        _life(client)
        assert set(vars(protocol)) - at_start == set()


def _bytes_each(count: int, make: Callable[[int], object]) -> float:
    """Bytes that ``make(i)`` leaves allocated, on average over ``count`` calls."""
    kept = []
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            kept.append(make(i))
        return (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        if started:
            tracemalloc.stop()


def test_the_directory_keeps_a_member_of_one_room_in_under_64_bytes() -> None:
    # The room's entry and the member's list of rooms: a dict of one room for each member
    # made it 224 bytes, a tuple of one for each 90; those in one room alone share one.
    directory = Directory(["#lobby"])
    joins = [Joined("#lobby", 1.0, f"node.{i}", f"nick{i}") for i in range(5000)]

    def join(i: int) -> None:
        directory(joins[i])

    assert _bytes_each(5000, join) < 64
    assert directory.rooms_of("node.7") == ["#lobby"]


def test_a_line_buffer_keeps_nothing_once_its_lines_are_taken() -> None:
    # An idle member's last line stayed in its buffer until it sent more.
    buffers = [LineBuffer(8192) for _ in range(1000)]

    def read(i: int) -> None:
        buffers[i].feed(b"x" * 500 + b"\r\n")
        assert buffers[i].next_line() == b"x" * 500
        assert buffers[i].next_line() is None

    assert _bytes_each(1000, read) < 16  # 8: the list of what each call returned


def test_a_telnet_filter_keeps_nothing_after_a_line_of_plain_text() -> None:
    filters = [TelnetFilter() for _ in range(1000)]
    packets = [f"caf\u00e9 {i}\r\n".encode() for i in range(1000)]

    def feed(i: int) -> None:
        assert filters[i].feed(packets[i]) == packets[i]

    assert _bytes_each(1000, feed) < 16


class _Nobody:
    def send(self, data: bytes) -> None:
        pass


def test_the_fanout_keeps_a_member_of_one_room_in_under_210_bytes() -> None:
    # Its entries in the fan-out's maps and the room's group; the member's rooms are one
    # tuple shared by every member in that room alone (a tuple each made it 234 bytes).
    fanout = Fanout(Clock())
    members = [Member(f"node.{i}", f"nick{i}") for i in range(1000)]
    joins = [Joined("#lobby", 1.0, member.id, member.nick) for member in members]
    nobody = _Nobody()

    def join(i: int) -> None:
        fanout.add(members[i], nobody)
        fanout.deliver(joins[i])
        fanout.flush()

    assert _bytes_each(1000, join) < 210
    assert len(fanout) == 1000


def test_a_session_leaves_the_services_when_its_connection_is_lost() -> None:
    # The services keep their sessions in a plain set (a weak one cost a weak reference,
    # 80 bytes, a connection): a lost connection's session must leave it, even while
    # something still refers to the session.
    with serving() as server:
        alice, bob = server.join("alice"), server.join("bob")
        sessions = server.services.sessions
        assert {alice.protocol.session, bob.protocol.session} <= sessions
        bob.lose()
        assert bob.protocol.session not in sessions
        assert alice.protocol.session in sessions


def test_a_line_member_costs_the_server_under_2800_bytes() -> None:
    # Everything a member who joined through the nickname path keeps, but the socket's
    # own objects (here a StringTransport and the test's Client): 3270 bytes before the
    # changes of issue 17.
    # (Not ``serving``: the log it keeps would be counted.)
    server = Server(Limits(max_per_ip=10_000, max_clients=10_000, nick_timeout=0.0))
    for i in range(100):  # the room and the maps exist, and have grown a little
        server.join(f"early{i}")

    def join(i: int) -> Client:
        client = server.connect()
        client.send(f"m{i}")
        if i % 100 == 99:
            server.flush()
            for each in server.clients:
                each.clear()
        return client

    assert _bytes_each(2000, join) < 2800
    assert len(server.chat.directory.find("#lobby").members) == 2100  # type: ignore[union-attr]


def test_a_nickname_that_is_its_own_key_is_kept_once() -> None:
    # The nickname registry keys each member by the nickname's skeleton; most nicknames
    # are their own, and an equal copy was ~55 bytes a member.
    nick = "".join(["memory", "test", "7"])  # made now: in no cache yet
    assert nicknames.key(nick) is nick
    assert nicknames.key("Memorytest8") == "memorytest8"
