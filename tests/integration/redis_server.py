"""A real ``redis-server`` for tests: on a free loopback port, in a temporary directory.

Tests that need it use the ``redis_server`` fixture (import it into the test module);
they are skipped, not failed, when the binary is missing (``make`` installs it with
apt-get). The server is stopped by its PID, and only the process this helper started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import deferLater

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process that can be stopped, started again on the same port
    and data directory, frozen (SIGSTOP: connections stay open but nothing answers) and
    killed."""

    def __init__(self, directory: Path, password: str | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--daemonize", "no", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always",
            "--logfile", str(self.directory / "redis.log"), "--loglevel", "warning",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def answers(self) -> bool:
        """True if the server answers PING now (a blocking check, loopback only)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                if self.password:
                    s.sendall(b"AUTH %s\r\n" % self.password.encode())
                    if not s.recv(64).startswith(b"+OK"):
                        return False
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until it answers; for fixtures, before the test's reactor work begins."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.02)
        raise TimeoutError(f"redis-server did not answer in {timeout} s: {self.log_tail()}")

    async def ready(self, reactor: Any, timeout: float = 10.0) -> None:
        """Wait, without blocking the reactor for long, until it answers."""
        for _ in range(int(timeout / 0.05)):
            if self.answers():
                return
            await deferLater(reactor, 0.05, lambda: None)
        raise TimeoutError(f"redis-server did not answer in {timeout} s: {self.log_tail()}")

    async def stop_async(self, reactor: Any, timeout: float = 10.0) -> None:
        """SIGTERM (Redis writes its data and exits), then wait for the exit."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            os.kill(process.pid, signal.SIGTERM)
        for _ in range(int(timeout / 0.05)):
            if process.poll() is not None:
                self.process = None
                return
            await deferLater(reactor, 0.05, lambda: None)
        self.kill()

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGCONT)
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)

    def pause(self) -> None:
        """Freeze the server: it keeps its connections but answers nothing."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def log_tail(self) -> str:
        try:
            return (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty Redis for one test; skipped when redis-server is not installed."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def run_node(argv: list[str]) -> None:
    """A test-only server: ``Room(RedisHub)`` + the line front end on a free port.

    Stands in for ``twistd chatroom --redis URL`` until tap.py has that option; it logs
    the same "chatroom listening on ... port=N" line, so ``ServerProcess`` can start it.
    """
    import argparse
    import sys

    from twisted.application.app import startApplication
    from twisted.application.service import Application, IService, MultiService
    from twisted.internet import reactor  # noqa: TID251 - an entry point picks the reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from chatroom.domain.room import Room
    from chatroom.hubs.local import LocalHub
    from chatroom.hubs.redis import RedisHub
    from chatroom.limits import Limits
    from chatroom.lines.factory import ChatFactory
    from chatroom.tap import ListeningService, ShutdownService

    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=None, help="omit for a LocalHub (a baseline)")
    parser.add_argument("--lease", type=float, default=15.0)
    parser.add_argument("--node", default=None)
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--port", default="0")
    options = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    top = MultiService()
    if options.redis:
        hub: Any = RedisHub(options.redis, options.room, reactor, lease=options.lease,
                            node=options.node)
        hub.setServiceParent(top)  # started first, stopped last: the goodbyes go through it
    else:
        hub = LocalHub()
    room = Room(options.room, hub, reactor)
    factory = ChatFactory(room, Limits(rate=1e6, burst=1_000_000, max_per_ip=100_000,
                                       max_clients=100_000), reactor)
    ShutdownService([factory]).setServiceParent(top)
    where = f"tcp:{options.port}:interface=127.0.0.1"
    ListeningService(where, serverFromString(reactor, where), factory).setServiceParent(top)
    application = Application("chatroom-redis-node")
    top.setServiceParent(application)
    IService(application).privilegedStartService()
    startApplication(application, False)
    reactor.run()


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["node"]:
        run_node(sys.argv[2:])
