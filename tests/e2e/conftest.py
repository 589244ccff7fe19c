"""Browser tests: a real server process, headless Chromium through chromedriver, a raw TCP peer.

The tests skip themselves, cleanly, when Chromium, chromedriver or selenium is missing
(``make`` installs them).
Every process is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT = 15.0
LISTENING = re.compile(r"listening lines=(\d+) web=(\d+)")

BROWSER_MISSING = (
    "chromium and chromium-driver are not installed"
    if CHROMIUM is None or CHROMEDRIVER is None else None
)
"""Why the browser tests cannot run here; each test module skips itself with it."""


class ServerProcess:
    """``python -m tests.e2e.webserver`` in its own directory, stopped by PID."""

    def __init__(self, workdir: Path, web_port: int = 0, *args: str) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"server-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.webserver", "--web-port", str(web_port), *args],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.line_port, self.web_port = self._wait_for_ports()
        self.url = f"http://127.0.0.1:{self.web_port}/"

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def _wait_for_ports(self) -> tuple[int, int]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log())
            if match:
                return int(match.group(1)), int(match.group(2))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not start:\n{self.log()}")

    def stop(self) -> int | None:
        """SIGTERM, as an operator would; SIGKILL only if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class RawClient:
    """nc in a test: a bare socket that sends lines and waits for lines that match."""

    def __init__(self, port: int, source: str | None = None) -> None:
        """Connect to ``port``; from the loopback address ``source`` when given."""
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=TIMEOUT,
            source_address=None if source is None else (source, 0),
        )
        self._buffer = b""
        self.lines: list[str] = []
        self._cursor = 0

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> str:
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.lines):
                line = self.lines[self._cursor]
                self._cursor += 1
                if compiled.search(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r}; got {self.lines!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise AssertionError(f"closed before a line matching {pattern!r}")
            self._buffer += data
            *complete, self._buffer = self._buffer.split(b"\r\n")
            self.lines += [c.decode("utf-8", "replace") for c in complete]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path)
    yield process
    process.stop()


@pytest.fixture
def raw_clients() -> Iterator[Callable[[int], RawClient]]:
    opened: list[RawClient] = []

    def connect(port: int) -> RawClient:
        client = RawClient(port)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Open a fresh headless Chromium (its own profile); all are quit after the test."""
    opened: list[Any] = []

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    def open_browser(width: int = 1200, height: int = 800) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM or ""
        profile = tmp_path / f"profile-{len(opened)}"
        for flag in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "--lang=en-GB",
        ):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=options)
        driver.set_page_load_timeout(TIMEOUT)
        opened.append(driver)
        return driver

    yield open_browser
    for driver in opened:
        with contextlib.suppress(Exception):
            driver.quit()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
