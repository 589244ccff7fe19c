"""The web port's HTTP channel: no body read that the page would not send, a deadline for
every request, and every connection counted."""

from __future__ import annotations

from typing import Any, cast

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatroom.limits import Limits
from chatroom.web.channel import REFUSED_DEADLINE, ChatChannel
from chatroom.web.site import WebSite
from tests.unit.test_web_harness import HOST, FakeBrowser, make_site
from tests.unit.test_web_site import Response

MB = 1024 * 1024


class Connection:
    """One HTTP connection to the site, fed by hand."""

    def __init__(self, site: WebSite, host: str = "127.0.0.1", port: int = 40000) -> None:
        address = IPv4Address("TCP", host, port)
        self.transport = StringTransport(peerAddress=address)
        self.channel = site.buildProtocol(address)
        cast(Any, self.transport).protocol = self.channel
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        if not self.transport.disconnecting:  # a closing transport reads nothing more
            self.channel.dataReceived(data)

    def responses(self) -> list[Response]:
        raw = self.transport.value()
        self.transport.clear()
        out = []
        while raw:
            response = Response(raw)
            length = int(response.headers.get("content-length", "0"))
            response.body, raw = response.body[:length], response.body[length:]
            out.append(response)
        return out

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)

    def lose(self) -> None:
        self.channel.connectionLost(Failure(ConnectionDone()))


def head(method: str, path: str, *headers: str) -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", f"Host: {HOST}", *headers, "", ""]).encode()


@pytest.fixture
def site(clock):
    return make_site(clock)


# -- bodies ------------------------------------------------------------------------------


def test_a_400_mb_post_is_refused_at_its_headers_and_never_read(site):
    connection = Connection(site)
    connection.send(head("POST", "/", f"Content-Length: {400 * MB}") + b"x" * 65536)
    (response,) = connection.responses()
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["connection"] == "close"
    assert connection.closing  # reading stopped: the rest of the body stays in the kernel
    assert connection.channel.requests[0].content is None  # nothing was kept, in memory or on disk


def test_a_chunked_put_of_the_socket_path_is_refused_at_its_headers(site):
    connection = Connection(site)
    connection.send(head("PUT", "/ws", "Transfer-Encoding: chunked") + b"10000\r\n" + b"x" * 1000)
    (response,) = connection.responses()
    assert response.status == 405
    assert connection.closing


def test_a_get_with_a_body_over_the_cap_gets_413_at_its_headers(clock):
    connection = Connection(make_site(clock, Limits(web_max_body=100)))
    connection.send(head("GET", "/", "Content-Length: 101"))
    (response,) = connection.responses()
    assert response.status == 413
    assert connection.closing


def test_a_small_body_on_a_get_is_read_and_the_page_served(clock):
    connection = Connection(make_site(clock, Limits(web_max_body=100)))
    connection.send(head("GET", "/", "Content-Length: 100") + b"x" * 100)
    (response,) = connection.responses()
    assert response.status == 200
    assert not connection.closing


def test_a_chunked_body_is_kept_in_memory_up_to_the_cap_then_refused(clock):
    connection = Connection(make_site(clock, Limits(web_max_body=100)))
    connection.send(head("GET", "/", "Transfer-Encoding: chunked") + b"50\r\n" + b"x" * 80)
    assert connection.responses() == []
    connection.send(b"\r\n40\r\n" + b"y" * 64)  # 144 bytes in all
    (response,) = connection.responses()
    assert response.status == 413
    assert connection.closing
    connection.send(b"\r\n0\r\n\r\n")
    assert connection.responses() == []  # no second answer


def test_whatever_follows_a_refusal_in_the_same_read_is_not_handled(site):
    connection = Connection(site)
    connection.send(head("DELETE", "/") + head("GET", "/"))
    assert [r.status for r in connection.responses()] == [405]


# -- the request deadline ---------------------------------------------------------------


def test_a_request_trickling_in_is_cut_at_the_deadline_however_often_bytes_come(clock):
    connection = Connection(make_site(clock, Limits(web_header_timeout=10)))
    for byte in head("GET", "/")[:30]:
        connection.send(bytes([byte]))
        clock.advance(0.5)  # a byte every 0.5 s: an idle timeout would never fire
        if connection.closing:
            break
    assert connection.closing
    assert 9.5 <= clock.seconds() <= 10.0
    (response,) = connection.responses()
    assert response.status == 408


def test_a_connection_that_sends_nothing_is_closed_quietly_at_the_deadline(clock):
    connection = Connection(make_site(clock, Limits(web_header_timeout=10)))
    clock.advance(9.9)
    assert not connection.closing
    clock.advance(0.1)
    assert connection.closing
    assert connection.transport.value() == b""


def test_each_request_on_a_kept_alive_connection_has_its_own_deadline(clock):
    connection = Connection(make_site(clock, Limits(web_header_timeout=10)))
    clock.advance(8)
    connection.send(head("GET", "/app.js"))
    assert [r.status for r in connection.responses()] == [200]
    clock.advance(8)  # 16 s since the connection, 8 since the last answer
    assert not connection.closing
    clock.advance(2)
    assert connection.closing


def test_a_websocket_is_not_subject_to_the_http_deadline(clock):
    site = make_site(clock, Limits(nick_timeout=0, web_header_timeout=10))
    browser = FakeBrowser(site)
    browser.join("alice", clock)
    clock.advance(60)
    assert not browser.transport.disconnecting


# -- the count ---------------------------------------------------------------------------


def test_every_http_connection_counts_and_gives_its_place_back(clock):
    site = make_site(clock, Limits(max_clients=2))
    first, second = Connection(site, port=1), Connection(site, port=2)
    assert site.admission.clients == 2
    first.lose()
    second.lose()
    assert (site.admission.clients, site.admission.open) == (0, 0)


def test_over_the_limits_a_connection_gets_one_answer_then_closes(clock):
    site = make_site(clock, Limits(max_clients=1))
    Connection(site, port=1)
    refused = Connection(site, port=2)
    refused.send(head("GET", "/"))
    (response,) = refused.responses()
    assert response.status == 200  # the page: its WebSocket will be told the server is full
    assert response.headers["connection"] == "close"
    assert refused.closing


def test_over_the_limits_a_connection_has_a_short_deadline(clock):
    site = make_site(clock, Limits(max_clients=1, web_header_timeout=10))
    Connection(site, port=1)
    refused = Connection(site, port=2)
    clock.advance(REFUSED_DEADLINE)
    assert refused.closing


def test_a_websocket_keeps_the_place_its_http_connection_had(clock):
    site = make_site(clock, Limits(max_clients=1))
    browser = FakeBrowser(site)
    assert browser.ws is not None
    assert (site.admission.clients, site.admission.open) == (1, 1)  # counted once
    second = Connection(site, port=2)
    assert second.channel.seat is not None and second.channel.seat.refusal == "server full"
    browser.lose()
    assert (site.admission.clients, site.admission.open) == (0, 1)


def test_the_site_builds_our_channel():
    assert WebSite.protocol is ChatChannel
