"""Starting and stopping as operators do: twistd, chatroom-server, SIGTERM, SIGINT."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.integration.serverproc import BIN, ServerProcess


def _stop_and_time(server: ServerProcess, sig: int = signal.SIGTERM) -> tuple[int, float]:
    started = time.monotonic()
    server.proc.send_signal(sig)
    status = server.wait(timeout=10)
    return status, time.monotonic() - started


def _clean_exit(status: int, sig: int) -> bool:
    # 0, or twistd's convention of ending by the re-raised signal once shutdown is done
    return status in (0, -sig)


def test_sigterm_says_goodbye_to_everyone_and_exits_cleanly(server: ServerProcess) -> None:
    alice = server.join("alice")
    choosing = server.connect()
    choosing.expect("nickname")
    status, took = _stop_and_time(server)
    assert alice.expect("shutting down") == "*** server shutting down"
    assert choosing.expect("shutting down") == "*** server shutting down"
    assert alice.wait_closed() and choosing.wait_closed()
    assert _clean_exit(status, signal.SIGTERM)
    assert took < 5
    log = server.log()
    assert "Traceback" not in log
    assert "alice left" not in "".join(alice.lines)  # nobody is told about the others leaving


def test_sigterm_with_a_client_that_never_reads(server: ServerProcess) -> None:
    sleeper = socket.create_connection(("127.0.0.1", server.port))
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sleeper.sendall(b"sleeper\n")
    talker = server.join("talker")
    for i in range(200):  # fill the sleeper's socket buffers and then some
        talker.send(f"{i} " + "x" * 1500)
        if i % 40 == 39:
            time.sleep(1.0 / 5)
    status, took = _stop_and_time(server)
    assert _clean_exit(status, signal.SIGTERM)
    assert took < 5
    assert "Traceback" not in server.log()
    sleeper.close()


def test_sigint_under_twistd_n_is_ctrl_c(server: ServerProcess) -> None:
    alice = server.join("alice")
    status, took = _stop_and_time(server, signal.SIGINT)
    alice.expect("shutting down")
    assert _clean_exit(status, signal.SIGINT)
    assert took < 5


def test_chatroom_server_script_serves_the_same_room(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, command=[str(BIN / "chatroom-server")])
    try:
        alice = server.join("alice")
        bob = server.join("bob")
        alice.send("hi")
        assert bob.expect("alice") == "alice: hi"
        status, _took = _stop_and_time(server)
        assert _clean_exit(status, signal.SIGTERM)
        assert "Traceback" not in server.log()
    finally:
        server.kill()


def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(BIN / "twistd"), "-n", "--pidfile=", "chatroom", "--port", str(port)],
            cwd=tmp_path, capture_output=True, text=True, timeout=30,
        )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Address already in use" in output or "address already in use" in output.lower()


def test_bad_option_value_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "chatroom", "--max-line", "10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "max-line" in result.stdout + result.stderr
