"""One count of connections for the whole server, and the pause when descriptors run short."""

from __future__ import annotations

from typing import Any, cast

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatroom.admission import ACCEPT_BATCH, Admission, descriptors_in_use
from chatroom.limits import Limits
from chatroom.lines.factory import ChatFactory
from chatroom.session import Services
from chatroom.web.site import WebSite, build_web_site
from tests.unit.helpers import connect


class FakePort:
    """What the admission uses of a listening port: Twisted's TCP port has all of it."""

    def __init__(self) -> None:
        self.reading = True
        self.connected = True
        self.numberAccepts = 100

    def stopReading(self) -> None:
        self.reading = False

    def startReading(self) -> None:
        self.reading = True


class BatchingPort(FakePort):
    """Accepts as Twisted's TCP port does: a batch of up to ``numberAccepts`` sockets per
    read, going on after ``stopReading``; then it sizes the next batch itself."""

    def __init__(self, admission: Admission, waiting: int) -> None:
        super().__init__()
        self.admission = admission
        self.waiting = waiting  # connections in the kernel's queue

    def doRead(self) -> None:
        accepted = 0
        while accepted < self.numberAccepts and self.waiting:
            self.waiting -= 1
            self.admission.enter(None)
            accepted += 1
        if accepted == self.numberAccepts:
            self.numberAccepts += 20
        else:
            self.numberAccepts = max(1, accepted)


def front_ends(clock: Clock, limits: Limits) -> tuple[Admission, ChatFactory, WebSite]:
    """A line front end and a web front end of one server, as ``tap`` wires them."""
    services = Services.create(clock, limits)
    lines = ChatFactory(services)
    site = build_web_site(services, ping_interval=0, open_timeout=0, close_timeout=0)
    assert services.admission is not None
    return services.admission, lines, site


def http_connection(site: WebSite, host: str = "127.0.0.1", port: int = 50000) -> StringTransport:
    """An HTTP connection that has sent nothing yet (a browser's spare one, or slowloris)."""
    address = IPv4Address("TCP", host, port)
    transport = StringTransport(peerAddress=address)
    channel = site.buildProtocol(address)
    cast(Any, transport).protocol = channel
    channel.makeConnection(transport)
    return transport


def test_plain_http_connections_count_against_max_clients_on_every_port(clock):
    _, lines, site = front_ends(clock, Limits(max_clients=3))
    http_connection(site, port=1)
    http_connection(site, port=2)
    connect(lines, "10.0.0.1")
    refused = connect(lines, "10.0.0.2")
    assert refused.lines() == ["! server full"]
    assert refused.closing


def test_max_per_ip_counts_one_address_on_every_port(clock):
    _, lines, site = front_ends(clock, Limits(max_per_ip=2))
    http_connection(site, "10.0.0.1")
    connect(lines, "10.0.0.1")
    assert connect(lines, "10.0.0.1").lines() == ["! too many connections from your address"]
    assert "nickname" in connect(lines, "10.0.0.2").lines()[0]


def test_a_closed_http_connection_gives_its_place_back(clock):
    admission, lines, site = front_ends(clock, Limits(max_clients=1))
    http = http_connection(site)
    assert connect(lines, "10.0.0.1").lines() == ["! server full"]
    cast(Any, http).protocol.connectionLost(Failure(ConnectionDone()))
    assert admission.clients == 0
    assert "nickname" in connect(lines, "10.0.0.1").lines()[0]


def test_a_refused_connection_is_counted_until_it_closes(clock):
    admission, lines, _ = front_ends(clock, Limits(max_clients=1))
    connect(lines, "10.0.0.1")
    refused = connect(lines, "10.0.0.2")
    assert (admission.clients, admission.open) == (1, 2)  # it holds a descriptor still
    refused.lose()
    assert (admission.clients, admission.open) == (1, 1)


def test_the_open_files_limit_caps_max_clients_less_what_is_in_use_and_the_reserve(clock):
    limits = Limits(max_clients=5000, fd_reserve=128)
    admission = Admission(limits, clock, open_files=1024, in_use=20)
    assert admission.max_clients == 1024 - 20 - 128
    assert admission.pause_at == 1024 - 20 - 64
    assert "at most 876 connections" in admission.describe()
    roomy = Admission(limits, clock, open_files=20000, in_use=20)
    assert roomy.max_clients == 5000
    assert Admission(limits, clock).max_clients == 5000  # no limit on open files


def test_by_default_the_open_files_limit_alone_caps_the_connections(clock):
    """Issue 17: 15 000 people with default limits. A fixed default (5000 before) refused
    the 5001st on a host whose open files allow 20 000."""
    limits = Limits(fd_reserve=128)
    assert limits.max_clients == 0
    admission = Admission(limits, clock, open_files=20000, in_use=20)
    assert admission.max_clients == 20000 - 20 - 128
    assert "at most 19852 connections" in admission.describe()
    assert "--max-clients 0" in admission.describe()
    assert Admission(limits, clock).refusal("10.0.0.1") is None  # open files not known


def test_accepting_pauses_on_every_port_before_descriptors_run_out_and_resumes(clock):
    admission = Admission(Limits(max_clients=10, fd_reserve=16), clock, open_files=40,
                          in_use=4)  # 10 clients; accepting pauses at 40 - 4 - 8 = 28 sockets
    line_port, web_port = FakePort(), FakePort()
    admission.watch(line_port)
    admission.watch(web_port)
    seats = [admission.enter(f"10.0.0.{i}") for i in range(27)]
    assert [seat.admitted for seat in seats].count(True) == 10
    assert line_port.reading and web_port.reading
    assert line_port.numberAccepts == 1  # one socket of room left: one accept per read
    seats.append(admission.enter("10.0.0.99"))
    assert not line_port.reading and not web_port.reading
    seats[-1].leave()  # a refused one closed: a descriptor is free again
    assert line_port.reading and web_port.reading


def test_twisteds_batches_never_carry_the_count_past_the_pause(clock):
    admission = Admission(Limits(max_clients=5000, fd_reserve=128), clock, open_files=1024,
                          in_use=10)
    port = BatchingPort(admission, waiting=2000)
    admission.watch(port)
    for _ in range(200):
        if port.reading:
            port.doRead()
    assert not port.reading
    assert admission.pause_at is not None
    assert admission.pause_at <= admission.open <= admission.pause_at + 1


def test_a_port_accepts_a_bounded_batch_a_turn_however_many_wait(clock):
    """Twisted grows a port's batch by 20 after each full one: in a storm of newcomers one
    read would go on accepting for longer and longer, and the room's lines would wait."""
    admission = Admission(Limits(max_clients=0), clock, open_files=None)
    port = BatchingPort(admission, waiting=5000)
    admission.watch(port)
    reads = []
    for _ in range(40):
        before = port.waiting
        port.doRead()
        reads.append(before - port.waiting)
    assert max(reads) == ACCEPT_BATCH
    assert sum(reads) == 40 * ACCEPT_BATCH


def test_a_port_that_stopped_listening_is_left_alone(clock):
    admission = Admission(Limits(max_clients=1, fd_reserve=16), clock, open_files=20, in_use=0)
    port = FakePort()
    admission.watch(port)
    seats = [admission.enter(None) for _ in range(12)]
    assert not port.reading
    admission.unwatch(port)
    for seat in seats:
        seat.leave()
    assert not port.reading


def test_a_seat_is_given_back_once(clock):
    admission = Admission(Limits(max_clients=1), clock)
    seat = admission.enter("10.0.0.1")
    seat.leave()
    seat.leave()
    assert (admission.clients, admission.open) == (0, 0)
    assert admission.enter("10.0.0.1").admitted


@pytest.mark.skipif(not descriptors_in_use(), reason="the system does not list descriptors")
def test_descriptors_in_use_counts_this_process(tmp_path):
    before = descriptors_in_use()
    with open(tmp_path / "x", "w"):
        assert descriptors_in_use() == before + 1
