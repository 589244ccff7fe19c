"""A real server in a subprocess, and raw-socket clients that talk to it as nc would."""

from __future__ import annotations

import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
LISTENING = re.compile(r"chatroom listening on (?!web |metrics |irc ).*port=(\d+)")
WEB_LISTENING = re.compile(r"chatroom listening on web .*port=(\d+)")
METRICS_LISTENING = re.compile(r"chatroom listening on metrics .*port=(\d+)")
IRC_LISTENING = re.compile(r"chatroom listening on irc .*port=(\d+)")


class ServerProcess:
    """``twistd -n chatroom ARGS`` started from a temporary directory.

    Started through the installed ``twistd`` script, so the test also proves that twistd
    finds the plugin as users start it. ``open_files`` sets the child's limit on open files:
    ``(soft, hard)``, or one number for both (then the server cannot raise it), as a small
    host would.
    """

    def __init__(
        self,
        workdir: Path,
        *args: str,
        command: list[str] | None = None,
        open_files: int | tuple[int, int] | None = None,
    ) -> None:
        self.workdir = workdir
        self.log_path = workdir / "server.log"
        argv = command or [str(BIN / "twistd"), "--nodaemon", "--pidfile=", "chatroom"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [*argv, "--port", "0", *args],
            cwd=workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=None if open_files is None else lambda: _limit_open_files(open_files),
        )
        self.port = self._wait_for_port(timeout=20)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not listen within {timeout} s:\n{self.log()}")

    @property
    def web_port(self) -> int:
        """The port of ``--web``, from the log line that says where it listens."""
        return self._logged_port(WEB_LISTENING, "web")

    @property
    def metrics_port(self) -> int:
        """The port of ``--metrics``, from the log line that says where it listens."""
        return self._logged_port(METRICS_LISTENING, "metrics")

    def _logged_port(self, pattern: re.Pattern[str], what: str, timeout: float = 10) -> int:
        """(Logged at start with the line port, maybe a moment after it.)"""
        deadline = time.monotonic() + timeout
        while (match := pattern.search(self.log())) is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {what} port in the log:\n{self.log()}")
            time.sleep(0.05)
        return int(match.group(1))

    @property
    def irc_port(self) -> int:
        """The port of ``--irc``, from the log line that says where it listens."""
        return self._logged_port(IRC_LISTENING, "IRC")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 10) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

    def connect(self, timeout: float = 5, source: str | None = None) -> LineClient:
        """A client; ``source`` is another loopback address to connect from (127.0.0.2),
        to look like another host."""
        address = None if source is None else (source, 0)
        return LineClient(socket.create_connection(("127.0.0.1", self.port), timeout=timeout,
                                                   source_address=address))

    def join(self, nick: str, source: str | None = None) -> LineClient:
        client = self.connect(source=source)
        client.expect("nickname")
        client.send(nick)
        client.expect(rf"welcome.*\b{re.escape(nick)}\b")
        return client


class LineClient:
    """A blocking line client with a bounded wait on everything."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.lines: list[str] = []
        self.negotiation = b""
        self.closed = False

    def send(self, line: str | bytes, end: bytes = b"\r\n") -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + end)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.closed:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\r\n")
        for raw in complete:
            # Telnet negotiation, for a client that sent some first, sits between lines
            while raw[:1] == b"\xff":
                self.negotiation += raw[:3]
                raw = raw[3:]
            self.lines.append(raw.decode("utf-8"))  # raises if the server sent bad UTF-8
        return True

    def read_line(self, timeout: float = 5) -> str | None:
        deadline = time.monotonic() + timeout
        while not self.lines:
            if not self._fill(deadline):
                return None
        return self.lines.pop(0)

    def expect(self, pattern: str, timeout: float = 5) -> str:
        """The first line matching ``pattern``; lines before it are skipped."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            while self.lines:
                line = self.lines.pop(0)
                if regex.search(line):
                    return line
            if not self._fill(deadline):
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s")

    def quiet(self, timeout: float = 0.3) -> list[str]:
        """Everything that arrives within ``timeout``: to show that nothing does."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        lines, self.lines = self.lines, []
        return lines

    def wait_closed(self, timeout: float = 5) -> bool:
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._fill(deadline)
        return self.closed

    def close(self) -> None:
        self.sock.close()


def open_file_bytes(pid: int) -> int:
    """Total size of the regular files ``pid`` holds open, deleted ones too: a request body
    spooled to a temporary file shows here."""
    total = 0
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            st = os.stat(entry)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000:
            total += st.st_size
    return total


def _limit_open_files(limit: int | tuple[int, int]) -> None:
    soft, hard = (limit, limit) if isinstance(limit, int) else limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, for a server started later to listen on.

    Chosen below the kernel's ephemeral range: a port from ``bind(0)`` is one that any
    outgoing connection may take as its source port before the server listens on it (the
    server then fails to start), and two calls in a row may return the same one.
    """
    low, _ = _ephemeral_range()
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
