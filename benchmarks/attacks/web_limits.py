"""Attacks on the web port (issue 12, points 2-4), each against a fresh server, with figures.

    .venv/bin/python benchmarks/attacks/web_limits.py body       # 400 MB POST, chunked PUT
    .venv/bin/python benchmarks/attacks/web_limits.py pings      # pings, pongs never read
    .venv/bin/python benchmarks/attacks/web_limits.py latency    # others' latency, 4 ping floods
    .venv/bin/python benchmarks/attacks/web_limits.py slowloris  # 1100 slow HTTP, 1024 files
    .venv/bin/python benchmarks/attacks/web_limits.py all

To measure another checkout's server with the same attacks (say, main before a fix), put
its root first on the server's path: ``PYTHONPATH=/path/to/checkout .venv/bin/python ...``.

Each scenario starts ``twistd -n chatroom --web`` from this checkout's venv in a temporary
directory, attacks it over loopback, prints what it measured and stops the server by PID.
Every loop is bounded in count and in time (the slowest, ``slowloris``, takes about a minute;
``--interval`` shortens it). Server figures come from ``/proc/PID``: ``VmRSS`` (sampled every
50 ms for the peak) and the sizes of the regular files it holds open (a spooled body, deleted
or not); what the client could send before the server closed bounds what the server read.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.serverproc import ServerProcess, open_file_bytes  # noqa: E402

MB = 1024 * 1024


# -- the server and what /proc says about it ----------------------------------------------


@contextmanager
def server(*args: str, open_files: int | None = None) -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory() as workdir:
        web = "tcp:0:interface=127.0.0.1:backlog=1024"  # as --web PORT listens
        process = ServerProcess(
            Path(workdir), "--history", "none", "--web", web, *args, open_files=open_files
        )
        try:
            process.web_port  # noqa: B018 - waits for nothing, fails if --web did not listen
            yield process
        finally:
            process.kill()


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Sampler:
    """Peak RSS and peak open-file bytes of the server, sampled in a thread."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.peak_rss = process.rss_kb()
        self.peak_files = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak_rss = max(self.peak_rss, self.process.rss_kb())
                self.peak_files = max(self.peak_files, open_file_bytes(self.process.pid))
            except (OSError, AttributeError):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


# -- raw HTTP and WebSocket clients --------------------------------------------------------


def read_head(sock: socket.socket, timeout: float) -> bytes:
    """The response's status line and headers (or what came before a close or timeout)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def websocket(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = read_head(sock, 5)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"no WebSocket: {head[:200]!r}")
    return sock


def ping_frames(count: int, size: int = 125) -> bytes:
    """``count`` client pings (masked with a zero key: the payload is sent as is)."""
    frame = bytes([0x89, 0x80 | size]) + b"\0\0\0\0" + b"p" * size
    return frame * count


# -- point 2: bodies ---------------------------------------------------------------------


def body_attack(label: str, head: bytes, chunks: Iterator[bytes], seconds: float) -> None:
    with server() as process:
        time.sleep(0.5)
        rss0 = process.rss_kb()
        sampler = Sampler(process)
        sock = socket.create_connection(("127.0.0.1", process.web_port))
        sock.settimeout(1.0)
        response: list[bytes] = []
        answered_at: list[float] = []
        closed_at: list[float] = []
        started = time.monotonic()

        def reader() -> None:
            reply = read_head(sock, seconds + 5)
            response.append(reply)
            answered_at.append(time.monotonic() - started)
            rest = b""
            try:
                sock.settimeout(seconds + 5)
                while chunk := sock.recv(65536):
                    rest += chunk
            except OSError:
                pass
            closed_at.append(time.monotonic() - started)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        sent = 0
        stopped = "all sent"
        try:
            sock.sendall(head)
            for chunk in chunks:
                if time.monotonic() - started > seconds:
                    stopped = f"{seconds:g} s limit"
                    break
                if closed_at:
                    stopped = "server closed"
                    break
                try:
                    sent += sock.send(chunk)
                except TimeoutError:
                    continue
        except OSError as e:
            stopped = f"send failed: {e.strerror or e}"
        thread.join(seconds + 10)
        elapsed = closed_at[0] if closed_at else float("nan")
        answered = answered_at[0] if answered_at and response[0] else float("nan")
        time.sleep(0.5)
        sampler.stop()
        status = response[0].split(b"\r\n", 1)[0].decode("latin-1") if response else "(none)"
        print(f"{label}:")
        print(f"  response {status!r} after {answered:.2f} s; connection closed after"
              f" {elapsed:.2f} s; client sent {sent / MB:.1f} MB ({stopped})")
        print(f"  server RSS {rss0 / 1024:.1f} MB before, {sampler.peak_rss / 1024:.1f} MB peak,"
              f" {process.rss_kb() / 1024:.1f} MB after; largest open file(s) total"
              f" {sampler.peak_files / MB:.1f} MB")
        sock.close()


def body(seconds: float = 60.0) -> None:
    size = 400 * MB
    chunk = b"x" * MB

    def fixed() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    body_attack(
        "POST / with a 400 MB body",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\n\r\n" % size,
        fixed(), seconds,
    )
    piece = b"%x\r\n" % len(chunk) + chunk + b"\r\n"

    def chunked() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield piece

    body_attack(
        "PUT /ws with a chunked body (up to 400 MB)",
        b"PUT /ws HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunked(), seconds,
    )


# -- point 4: pings ----------------------------------------------------------------------


def pings(seconds: float = 20.0, limit: int = 5_000_000) -> None:
    with server() as process:
        time.sleep(0.5)
        rss0 = process.rss_kb()
        sampler = Sampler(process)
        sock = websocket(process.web_port, rcvbuf=4096)
        sock.settimeout(0.5)
        batch = ping_frames(1000)
        sent_frames = 0
        outcome = "still open"
        started = time.monotonic()
        try:
            while time.monotonic() - started < seconds and sent_frames < limit:
                try:
                    sent = sock.send(batch)
                except TimeoutError:
                    continue
                sent_frames += sent // 131
        except OSError as e:
            outcome = f"closed by the server ({e.strerror or e})"
        elapsed = time.monotonic() - started
        time.sleep(1.0)
        sampler.stop()
        print(f"ping flood, never reading ({elapsed:.0f} s):")
        print(f"  pings the server's socket took: {sent_frames}; connection: {outcome}")
        print(f"  server RSS {rss0 / 1024:.1f} MB before, {sampler.peak_rss / 1024:.1f} MB peak,"
              f" {process.rss_kb() / 1024:.1f} MB after")
        sock.close()


class Flooder:
    """A browser that sends pings as fast as it can and reads whatever comes back."""

    def __init__(self, port: int, seconds: float) -> None:
        self.sock = websocket(port)
        self.deadline = time.monotonic() + seconds
        self.sent = 0
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._send, self._recv)]
        for thread in self.threads:
            thread.start()

    def _send(self) -> None:
        batch = ping_frames(200)
        self.sock.settimeout(0.5)
        while time.monotonic() < self.deadline:
            try:
                self.sent += self.sock.send(batch)
            except TimeoutError:
                continue
            except OSError:
                return

    def _recv(self) -> None:
        while time.monotonic() < self.deadline:
            try:
                if not self.sock.recv(262144):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def stop(self) -> None:
        self.deadline = 0
        for thread in self.threads:
            thread.join(2)
        self.sock.close()


def round_trips(alice: socket.socket, bob: socket.socket, count: int) -> list[float]:
    """Milliseconds from alice's line to bob's copy of it, ``count`` times."""
    times = []
    buffer = b""
    bob.settimeout(10)
    for i in range(count):
        tag = f"rt{i}-{os.getpid()}"
        started = time.monotonic()
        alice.sendall(f"{tag}\r\n".encode())
        while tag.encode() not in buffer:
            chunk = bob.recv(65536)
            if not chunk:
                raise RuntimeError("bob was disconnected")
            buffer += chunk
        times.append((time.monotonic() - started) * 1000)
        buffer = buffer[buffer.index(tag.encode()) + len(tag):]
        time.sleep(0.1)
    return times


def line_member(port: int, nick: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"{nick}\r\n".encode())
    data = b""
    while b"welcome" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError(f"{nick} was refused: {data!r}")
        data += chunk
    return sock


def latency(floods: int = 4, samples: int = 30) -> None:
    with server() as process:
        alice = line_member(process.port, "alice")
        bob = line_member(process.port, "bob")
        time.sleep(0.5)
        quiet = round_trips(alice, bob, samples)
        flooders = [Flooder(process.web_port, 60) for _ in range(floods)]
        time.sleep(2.0)
        cpu0 = _cpu_seconds(process.pid)
        t0 = time.monotonic()
        loud = round_trips(alice, bob, samples)
        cpu = (_cpu_seconds(process.pid) - cpu0) / (time.monotonic() - t0)
        sent = sum(f.sent for f in flooders) // 131
        for flooder in flooders:
            flooder.stop()
        print(f"latency alice -> bob over the line port, {samples} lines each (ms):")
        print(f"  quiet: p50 {statistics.median(quiet):.1f}, max {max(quiet):.1f}")
        print(f"  under {floods} ping floods: p50 {statistics.median(loud):.1f},"
              f" p90 {sorted(loud)[int(0.9 * len(loud))]:.1f}, max {max(loud):.1f};"
              f" server CPU {cpu:.2f} cores; pings taken by the server's sockets: {sent}")
        alice.close()
        bob.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- point 3: slowloris ------------------------------------------------------------------


def probe_line_port(port: int, timeout: float = 5.0) -> str:
    """What a new line client gets: the prompt, a refusal line, nothing, or an error."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as e:
        return f"connect failed: {e.strerror or e}"
    try:
        sock.settimeout(timeout)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return f"closed without a word ({data!r})" if not data else data.decode()
            data += chunk
        first = data.split(b"\r\n", 1)[0].decode()
        if "nickname" not in first:
            return first
        sock.sendall(b"probe%d\r\n" % (time.monotonic_ns() % 100000))
        while b"welcome" not in data and b"\r\n!" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return "prompt, then closed"
            data += chunk
        return "joined" if b"welcome" in data else "prompt, then " + data.decode().split("\r\n")[-2]
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except ConnectionResetError:
        return "connection reset"
    finally:
        sock.close()


def slowloris(count: int = 1100, open_files: int = 1024, interval: float = 40.0) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))
    with server("--max-per-ip", str(count * 2), open_files=open_files) as process:
        web = process.web_port
        print(f"slowloris: {count} HTTP clients sending a header byte every {interval:g} s;"
              f" server limited to {open_files} open files")
        print(f"  before: line port -> {probe_line_port(process.port)}")
        socks: list[socket.socket] = []
        refused = 0
        started = time.monotonic()
        for _ in range(count):
            try:
                sock = socket.create_connection(("127.0.0.1", web), timeout=2)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-a: ")
                sock.setblocking(False)
                socks.append(sock)
            except OSError:
                refused += 1
        print(f"  opened {len(socks)} in {time.monotonic() - started:.1f} s ({refused} failed);"
              f" server holds {open_descriptors(process.pid)} descriptors")
        print(f"  at once: line port -> {probe_line_port(process.port)}")
        started = time.monotonic()  # from here on, times count from the last one opened
        checks = sorted({5.0, 12.0, interval + 5.0})
        next_byte = started + interval
        for at in checks:
            while time.monotonic() < started + at:
                if time.monotonic() >= next_byte:
                    for sock in socks:
                        with suppress(OSError):
                            sock.send(b"a")
                    next_byte += interval
                time.sleep(0.05)
            alive = sum(1 for sock in socks if _still_open(sock))
            print(f"  at {at:4.0f} s: {alive} slow clients still connected; server holds"
                  f" {open_descriptors(process.pid)} descriptors; line port ->"
                  f" {probe_line_port(process.port)}")
        log = process.log()
        print(f"  server log: {len(re.findall('EMFILE', log))} EMFILE, "
              f"{len(re.findall('Could not accept', log))} 'could not accept', "
              f"{len(re.findall('Traceback', log))} tracebacks")
        for line in [line for line in log.splitlines() if "EMFILE" in line][:3]:
            print(f"    {line}")
        for sock in socks:
            sock.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _still_open(sock: socket.socket) -> bool:
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return bool(data) and _still_open(sock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["body", "pings", "latency", "slowloris", "all"])
    parser.add_argument("--interval", type=float, default=40.0,
                        help="seconds between a slow client's bytes (slowloris)")
    args = parser.parse_args()
    if args.scenario in ("body", "all"):
        body()
    if args.scenario in ("pings", "all"):
        pings()
    if args.scenario in ("latency", "all"):
        latency()
    if args.scenario in ("slowloris", "all"):
        slowloris(interval=args.interval)


if __name__ == "__main__":
    main()
