"""TLS on every front end with a real certificate (the line port, the web page over https
and its WebSocket over wss), and the certificate replaced under the running server:
after SIGHUP new connections get the new one, connections already open stay up."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.certs import certificate, install
from tests.integration.serverproc import BIN, LineClient, ServerProcess, free_port


def context(cert_pem: bytes) -> ssl.SSLContext:
    """A client that trusts exactly ``cert_pem``."""
    ctx = ssl.create_default_context(cadata=cert_pem.decode())
    ctx.check_hostname = False
    return ctx


def fingerprint_of(sock: ssl.SSLSocket) -> str:
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def tls_line_client(port: int, cert_pem: bytes) -> LineClient:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return LineClient(context(cert_pem).wrap_socket(raw, server_hostname="localhost"))


def wss_client(port: int, cert_pem: bytes) -> Any:
    from websocket import create_connection  # websocket-client, installed with selenium

    return create_connection(
        f"wss://127.0.0.1:{port}/ws", timeout=5, origin=f"https://127.0.0.1:{port}",
        sslopt={"context": context(cert_pem), "server_hostname": "localhost"},
    )


def https_get(port: int, cert_pem: bytes) -> str:
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/", timeout=5,
                                context=context(cert_pem)) as response:
        return str(response.read().decode())


def tls_member(port: int, cert_pem: bytes, fingerprint: str, nick: str) -> LineClient:
    """A member over TLS, having checked the certificate the server showed."""
    client = tls_line_client(port, cert_pem)
    assert fingerprint_of(client.sock) == fingerprint  # type: ignore[arg-type]
    client.expect("nickname")
    client.send(nick)
    client.expect(f"welcome, {nick}")
    return client


def web_serves(port: int, cert_pem: bytes, fingerprint: str) -> Any:
    """The page over https, and a WebSocket over wss, both with this certificate."""
    assert "<script" in https_get(port, cert_pem)
    browser = wss_client(port, cert_pem)
    assert fingerprint_of(browser.sock) == fingerprint
    return browser


def next_message(browser: Any, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(browser.recv())
        if message.get("type") == kind:
            return message


def wait_for_log(server: ServerProcess, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while server.log().count(text) < count:
        assert time.monotonic() < deadline, f"never logged {text!r}:\n{server.log()}"
        assert server.proc.poll() is None, server.log()
        time.sleep(0.05)


def test_certificates_are_replaced_on_sighup_without_dropping_anyone(tmp_path: Path) -> None:
    old_key, old_cert, old_print = certificate("old.example")
    install(tmp_path, old_key, old_cert)
    line_port, web_port = free_port(), free_port()
    files = f"privateKey={tmp_path / 'key.pem'}:certKey={tmp_path / 'cert.pem'}"
    server = ServerProcess(
        tmp_path, "--history", "none",
        "--listen", f"ssl:{line_port}:{files}:interface=127.0.0.1",
        "--web", f"ssl:{web_port}:{files}:interface=127.0.0.1",
    )  # fmt: skip
    try:
        alice = tls_member(line_port, old_cert, old_print, "alice")
        browser = web_serves(web_port, old_cert, old_print)
        browser.send(json.dumps({"type": "nick", "nick": "webbob"}))
        alice.expect("webbob joined")

        new_key, new_cert, new_print = certificate("new.example")
        install(tmp_path, new_key, new_cert)
        server.proc.send_signal(signal.SIGHUP)
        wait_for_log(server, "reload (SIGHUP) applied")
        log = server.log()
        assert f"new TLS certificate for ssl:{line_port}:" in log
        assert f"new TLS certificate for web ssl:{web_port}:" in log
        assert "CN=new.example" in log and new_print.upper()[:8] in log.replace(":", "")

        # New connections, on every front end, get the new certificate...
        carol = tls_member(line_port, new_cert, new_print, "carol")
        web_serves(web_port, new_cert, new_print).close()
        try:
            tls_line_client(line_port, old_cert)  # the old one is no longer served
            raise AssertionError("a client trusting only the old certificate got in")
        except ssl.SSLCertVerificationError:
            pass
        # ...and those open before chat on, on their old TLS sessions.
        alice.send("over the old session")
        assert next_message(browser, "said")["text"] == "over the old session"
        browser.send(json.dumps({"type": "say", "text": "me too"}))
        assert alice.expect("webbob:") == "webbob: me too"

        # A broken certificate is refused, and the good one goes on being served.
        (tmp_path / "cert.pem").write_text("not a certificate")
        server.proc.send_signal(signal.SIGHUP)
        wait_for_log(server, "reload (SIGHUP) refused")
        assert f"ssl:{line_port}:" in server.log().split("reload (SIGHUP) refused")[1]
        erin = tls_line_client(line_port, new_cert)
        assert fingerprint_of(erin.sock) == new_print  # type: ignore[arg-type]
        erin.expect("nickname")
        alice.send("still here")
        carol.expect("alice: still here")
        browser.close()
    finally:
        server.terminate()
        server.wait()
    assert "Traceback" not in server.log()


def test_a_certificate_that_cannot_be_read_stops_the_start_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    result = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "chatroom", "--history", "none",
         "--listen", "ssl:0:privateKey=bad.pem"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("chatroom: cannot start: ssl:0:privateKey=bad.pem: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stdout


def tls_irc_member(port: int, cert_pem: bytes, fingerprint: str, nick: str) -> LineClient:
    """An IRC client over TLS (NICK and USER by hand), registered, having checked the
    certificate the server showed."""
    client = tls_line_client(port, cert_pem)
    assert fingerprint_of(client.sock) == fingerprint  # type: ignore[arg-type]
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    client.expect(f" 001 {nick} ")
    client.expect(" JOIN ")
    return client


def test_the_irc_port_over_tls_gets_a_new_certificate_and_keeps_its_clients(
    tmp_path: Path,
) -> None:
    old_key, old_cert, old_print = certificate("old.example")
    install(tmp_path, old_key, old_cert)
    irc_port = free_port()
    files = f"privateKey={tmp_path / 'key.pem'}:certKey={tmp_path / 'cert.pem'}"
    server = ServerProcess(tmp_path, "--history", "none",
                           "--irc", f"ssl:{irc_port}:{files}:interface=127.0.0.1")
    try:
        alice = tls_irc_member(irc_port, old_cert, old_print, "alice")
        new_key, new_cert, new_print = certificate("new.example")
        install(tmp_path, new_key, new_cert)
        server.proc.send_signal(signal.SIGHUP)
        wait_for_log(server, "reload (SIGHUP) applied")
        assert f"new TLS certificate for irc ssl:{irc_port}:" in server.log()

        bob = tls_irc_member(irc_port, new_cert, new_print, "bob")
        try:
            tls_line_client(irc_port, old_cert)
            raise AssertionError("a client trusting only the old certificate got in")
        except ssl.SSLCertVerificationError:
            pass
        alice.send("PRIVMSG #lobby :over the old session")
        assert bob.expect("PRIVMSG").endswith(" PRIVMSG #lobby :over the old session")
        bob.send("PRIVMSG #lobby :and back")
        assert alice.expect("PRIVMSG").endswith(" PRIVMSG #lobby :and back")
    finally:
        server.terminate()
        server.wait()
    assert "Traceback" not in server.log()
