"""Real processes for the client's integration tests: a server, the client, nc-like peers.

Every wait is bounded (``TIMEOUT`` seconds unless told otherwise) and every process
started here is stopped by its PID, or its own socket for tmux.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from tests.integration.serverproc import free_port as free_port

BIN = Path(sys.executable).parent
CLIENT = BIN / "chatroom-client"
TWISTD = BIN / "twistd"
TIMEOUT = 10.0
LISTENING = re.compile(r"chatroom listening on .*?port=(\d+)")


class ChatServer:
    """``twistd -n --pidfile= chatroom --port 0`` in its own directory."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.log_path = workdir / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(TWISTD), "-n", "--pidfile=", "chatroom", "--port", "0", *args],
            cwd=workdir, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.port = self._wait_for_port()

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not start:\n{self.log()}")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        self._log.close()


class RawClient:
    """A peer that speaks the protocol over a bare socket, as nc would."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self._buffer = b""
        self.seen: list[str] = []

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self, timeout: float = TIMEOUT) -> str | None:
        """The next line, or None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line within {timeout} s; saw {self.seen!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        text = line.decode("utf-8")
        self.seen.append(text)
        return text

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Read lines until one matches ``pattern`` (re.search); return it."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"closed before {pattern!r}; saw {self.seen!r}")
            if re.search(pattern, line):
                return line

    def join(self, nick: str) -> None:
        self.expect("nickname")
        self.send(nick)
        self.expect(rf"\b{re.escape(nick)}\b")

    def close(self) -> None:
        self.sock.close()


def _pump(stream: IO[bytes], into: queue.Queue[bytes | None]) -> None:
    for line in iter(stream.readline, b""):
        into.put(line)
    into.put(None)


class ClientProcess:
    """``chatroom-client`` with its stdin, stdout and stderr on pipes."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [str(CLIENT), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._out: queue.Queue[bytes | None] = queue.Queue()
        self._err: queue.Queue[bytes | None] = queue.Queue()
        self.out: list[str] = []
        self._err_lines: list[bytes] = []
        for stream, into in ((self.proc.stdout, self._out), (self.proc.stderr, self._err)):
            threading.Thread(target=_pump, args=(stream, into), daemon=True).start()
        self._out_done = False
        self._err_done = False

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Read stdout lines until one matches ``pattern`` (re.search); return it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self._out.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} in {timeout} s; saw {self.out!r}") from None
            if raw is None:
                self._out_done = True
                raise AssertionError(f"stdout ended before {pattern!r}; saw {self.out!r}; "
                                     f"stderr {self.stderr()!r}")
            line = raw.decode("utf-8")
            assert line.endswith("\n") and not line.endswith("\r\n"), repr(line)
            self.out.append(line[:-1])
            if re.search(pattern, line[:-1]):
                return line[:-1]

    def wait(self, timeout: float = TIMEOUT) -> int:
        """The exit status; everything left on stdout is read into ``out``."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"client still running after {timeout} s; out {self.out!r}"
                                 ) from None
        while not self._out_done:
            raw = self._out.get(timeout=TIMEOUT)
            if raw is None:
                break
            self.out.append(raw.decode("utf-8").rstrip("\n"))
        self._out_done = True
        return code

    def stderr(self) -> str:
        """All of stderr so far (complete once the process has exited)."""
        while not self._err_done:
            try:
                raw = self._err.get(timeout=TIMEOUT if self.proc.poll() is not None else 0.0)
            except queue.Empty:
                break
            if raw is None:
                self._err_done = True
            else:
                self._err_lines.append(raw)
        return b"".join(self._err_lines).decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Tmux:
    """A private tmux server (its own socket) with one window running a command."""

    def __init__(self, name: str, command: str, width: int = 100, height: int = 20) -> None:
        exe = shutil.which("tmux")
        assert exe is not None
        self.exe = exe
        self.name = name
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "main",
                   "-x", str(width), "-y", str(height), command)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run([self.exe, "-L", self.name, *args], capture_output=True,
                                timeout=TIMEOUT, check=True)
        return result.stdout.decode("utf-8", "replace")

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "main:", "-l", text)

    def key(self, key: str) -> None:
        self._tmux("send-keys", "-t", "main:", key)

    def screen(self, escapes: bool = False) -> str:
        return self._tmux("capture-pane", "-p", "-t", "main:", *(["-e"] if escapes else []))

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Poll the screen until ``pattern`` (re.search, multiline) shows; return it."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen, re.MULTILINE):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on screen in {timeout} s:\n{screen}")
            time.sleep(0.05)

    def kill(self) -> None:
        subprocess.run([self.exe, "-L", self.name, "kill-server"], capture_output=True,
                       timeout=TIMEOUT, check=False)
