"""A real ``redis-server`` for tests: on a free loopback port, in a temporary directory.

Tests that need it use the ``redis_server`` fixture (import it into the test module);
they are skipped, not failed, when the binary is missing (``make`` installs it with
apt-get). The server is stopped by its PID, and only the process this helper started.
It can also require a password, listen with TLS only (a throwaway CA made here), or on
a UNIX socket as well.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import deferLater

from tests.integration.serverproc import free_port

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """One ``redis-server`` process that can be stopped, started again on the same port
    and data directory, frozen (SIGSTOP: connections stay open but nothing answers) and
    killed."""

    def __init__(self, directory: Path, password: str | None = None, *, tls: bool = False,
                 unix: bool = False) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = tls
        self.ca: Path | None = None
        if tls:
            self.ca = make_certificates(directory)
        # A socket path must fit in 108 bytes: not under pytest's long tmp_path.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="chatroom-redis-")) if unix else None

    @property
    def socket_path(self) -> Path | None:
        return None if self.socket_dir is None else self.socket_dir / "redis.sock"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ca={self.ca}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def command(self, *args: str) -> bytes:
        """One command over a plain blocking socket (loopback, test set-up and checks
        only): the reply's first line, or all of a short bulk reply."""
        parts = [a.encode() for a in args]
        request = b"*%d\r\n" % len(parts) + b"".join(
            b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
        with self._connect(timeout=2.0) as s:
            if self.password:
                s.sendall(b"AUTH %s\r\n" % self.password.encode())
                s.recv(64)
            s.sendall(request)
            first, _, rest = s.recv(65536).partition(b"\r\n")
            return rest if first.startswith(b"$") else first

    def _connect(self, timeout: float) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        if not self.tls:
            return raw
        context = ssl.create_default_context(cafile=str(self.ca))
        return context.wrap_socket(raw, server_hostname="127.0.0.1")

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
        if self.tls:
            args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(self.directory / "server.pem"),
                     "--tls-key-file", str(self.directory / "server.key"),
                     "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no"]
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def answers(self) -> bool:
        """True if the server answers PING now (a blocking check, loopback only)."""
        try:
            with self._connect(timeout=0.5) as s:
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

    def restart_empty(self) -> None:
        """SIGKILL, delete the data files, start again on the same port: a Redis without
        persistence that restarted (every key gone, the stream included)."""
        self.kill()
        for name in ("appendonlydir", "dump.rdb"):
            path = self.directory / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        self.start()

    def remove_socket_dir(self) -> None:
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

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


def make_certificates(directory: Path) -> Path:
    """A throwaway CA, and a certificate it signed for 127.0.0.1 and localhost
    (``server.pem``, ``server.key``); returns the CA's PEM file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("chatroom test CA"))
          .issuer_name(name("chatroom test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start)
          .not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False, key_cert_sign=True,
              crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory / "ca.pem"


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

    Like ``twistd chatroom --redis URL`` without history, with limits out of a
    benchmark's way, a chosen node name, and optionally without hiredis; it logs the
    same "chatroom listening on ... port=N" line, so ``ServerProcess`` can start it.
    """
    import argparse
    import sys

    from twisted.application.app import startApplication
    from twisted.application.service import Application, IService
    from twisted.internet import reactor  # noqa: TID251 - an entry point picks the reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from chatroom.hubs.local import LocalHub
    from chatroom.limits import Limits
    from chatroom.lines.factory import ChatFactory
    from chatroom.services import InOrder, ListeningService, ShutdownService
    from chatroom.session import Services

    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=None, help="omit for a LocalHub (a baseline)")
    parser.add_argument("--lease", type=float, default=15.0)
    parser.add_argument("--node", default=None)
    parser.add_argument("--room", default="#lobby")
    parser.add_argument("--port", default="0")
    parser.add_argument("--pure-python-parser", action="store_true",
                        help="hide hiredis, so txredisapi parses replies in Python")
    options = parser.parse_args(argv)
    if options.pure_python_parser:
        sys.modules["hiredis"] = None  # type: ignore[assignment]  # import now fails
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    top = InOrder()
    if options.redis:
        from chatroom.hubs.redis import RedisHub  # after the hiredis choice above

        hub: Any = RedisHub(options.redis, options.room, reactor, lease=options.lease,
                            node=options.node)
        hub.setServiceParent(top)  # started first, stopped last: the goodbyes go through it
    else:
        hub = LocalHub()
    limits = Limits(rate=1e6, burst=1_000_000, max_per_ip=100_000, max_clients=100_000)
    services = Services.create(reactor, limits, hub=hub, default_room=options.room)
    factory = ChatFactory(services)
    ShutdownService([factory], services.entry).setServiceParent(top)
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
