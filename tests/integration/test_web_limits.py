"""The web port under attack, over real sockets: issue 12, points 2 and 3.

The figures (RSS, latency, before and after) come from ``benchmarks/attacks/web_limits.py``;
these tests check the promises: a body the site does not accept is never read, and slow
HTTP clients cannot take the line port's descriptors.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time

from tests.integration.crowd import raise_open_files
from tests.integration.serverproc import ServerProcess, open_file_bytes

MB = 1024 * 1024
WEB = "tcp:0:interface=127.0.0.1:backlog=1024"


def status_line(sock: socket.socket, timeout: float = 5) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def push(sock: socket.socket, total: int, seconds: float) -> int:
    """Send up to ``total`` bytes for at most ``seconds``; how many the kernel took."""
    chunk = b"x" * MB
    sock.settimeout(0.5)
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < total and time.monotonic() < deadline:
        try:
            sent += sock.send(chunk)
        except TimeoutError:
            continue
        except OSError:  # the server closed: broken pipe or reset
            break
    return sent


def test_a_400_mb_post_and_an_endless_chunked_put_are_refused_unread(start_server) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = start_server("--web", WEB, "--history", "none")
    files, rss = open_file_bytes(server.pid), server.rss_kb()
    for head in (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (400 * MB),
        b"PUT /ws HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    ):
        sock = socket.create_connection(("127.0.0.1", server.web_port), timeout=5)
        sock.sendall(head)
        assert status_line(sock) == b"HTTP/1.1 405 Method Not Allowed"  # before any body
        sent = push(sock, 400 * MB, 10)
        assert sent < 32 * MB, f"the server took {sent / MB:.0f} MB of a body it refused"
        sock.close()
    assert open_file_bytes(server.pid) - files < MB  # nothing spooled to disk
    assert server.rss_kb() - rss < 4 * 1024
    assert "Traceback" not in server.log()


def test_slow_http_clients_cannot_take_the_line_ports_descriptors(start_server) -> None:  # type: ignore[no-untyped-def]
    count = 1100
    raise_open_files(count + 256)
    server: ServerProcess = start_server("--web", WEB, "--history", "none", "--max-per-ip", "5000",
                          "--web-header-timeout", "3", open_files=1024)
    log = server.log()
    assert re.search(r"serving at most \d+ connections at once \(the open files limit", log)
    slow = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.web_port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(sock)
    try:
        # At once: a line client is told the server is full (or let in), never cut silently.
        probe = server.connect()
        first = probe.read_line(timeout=20)  # it may wait in the queue while accepting pauses
        assert first in ("! server full", "Choose a nickname:"), first
        probe.close()
        # A byte each second keeps no slow client past its deadline; then there is room.
        deadline = time.monotonic() + 30
        joined = False
        while not joined and time.monotonic() < deadline:
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
            client = server.connect()
            if client.read_line(timeout=5) == "Choose a nickname:":
                client.send("latecomer")
                joined = client.expect("welcome|^!", timeout=5).startswith("***")
            client.close()
            if not joined:
                time.sleep(1)
        assert joined, "no line client could join once the slow clients' deadline passed"
        log = server.log()
        assert "EMFILE" not in log
        assert "Traceback" not in log
    finally:
        for sock in slow:
            sock.close()
