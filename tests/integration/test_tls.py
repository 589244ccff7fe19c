"""A TLS listener (``--listen ssl:...``) as a user meets it: join, talk, /quit closes.

TLS transports keep the push ``Outbox`` (``SocketOutbox`` writes to the raw socket, which
would bypass the encryption), and a producer still registered holds a TLS transport's
``loseConnection`` up: /quit must unregister it, or the connection never closes.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.certs import certificate
from tests.integration.serverproc import LineClient, ServerProcess, free_port


def self_signed(path: Path) -> Path:
    """A key and a certificate for localhost, in one PEM file (what ``ssl:`` reads)."""
    key_pem, cert_pem, _ = certificate("localhost")
    pem = path / "server.pem"
    pem.write_bytes(key_pem + cert_pem)
    return pem


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, int, Path]]:
    pem = self_signed(tmp_path)
    port = free_port()
    server = ServerProcess(
        tmp_path, "--history", "none",
        "--listen", f"ssl:{port}:privateKey={pem}:interface=127.0.0.1",
    )  # fmt: skip
    try:
        yield server, port, pem
    finally:
        server.terminate()
        server.wait()


def tls_client(port: int, pem: Path) -> LineClient:
    context = ssl.create_default_context(cafile=str(pem))
    context.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return LineClient(context.wrap_socket(raw, server_hostname="localhost"))


def test_tls_members_chat_and_quit_closes(tls_server: tuple[ServerProcess, int, Path]) -> None:
    server, port, pem = tls_server
    alice = tls_client(port, pem)
    alice.expect("nickname")
    alice.send("alice")
    alice.expect("welcome, alice")
    bob = server.join("bob")  # plain TCP, same room
    alice.expect(r"\*\*\* bob joined")
    bob.send("hello over tcp")
    alice.expect("bob: hello over tcp")
    alice.send("hello over tls")
    bob.expect("alice: hello over tls")
    alice.send("/quit")
    alice.expect("goodbye, alice")
    assert alice.wait_closed(timeout=5), "the TLS connection was never closed after /quit"
    bob.expect(r"\*\*\* alice left")
    alice.close()
    bob.close()
