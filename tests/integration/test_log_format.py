"""``--log-format json`` and ``--log-level`` under a real ``twistd`` (and ``chatroom-server``):
one JSON object per line, each event with its fields, where twistd's options say."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.serverproc import BIN, LineClient, ServerProcess, free_port

TWISTD_N = [str(BIN / "twistd"), "--nodaemon", "--pidfile=", "chatroom"]


def events(text: str) -> list[dict[str, Any]]:
    """Every line of a JSON log, as the object it is (fails on a line that is not one)."""
    found = []
    for line in text.splitlines():
        event = json.loads(line)
        assert isinstance(event, dict), line
        found.append(event)
    return found


def first(found: list[dict[str, Any]], text: str) -> dict[str, Any]:
    return next(e for e in found if text in e.get("log_format", ""))


@pytest.mark.parametrize("command", [None, [str(BIN / "chatroom-server")]],
                         ids=["twistd", "chatroom-server"])
def test_json_logs_keep_every_field(tmp_path: Path, command: list[str] | None) -> None:
    server = ServerProcess(tmp_path, "--history", "none", "--log-format", "json",
                           command=command)
    try:
        alice = server.join("alice")
        alice.send("/nosuchcommand")
        alice.expect("unknown command")
        alice.send("/quit")
        assert alice.wait_closed()
        deadline = time.monotonic() + 5
        while "alice left" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        found = events(server.log())
    finally:
        server.kill()
    listening = first(found, "chatroom listening on")
    assert listening["port"] == server.port and listening["host"] == "127.0.0.1"
    assert listening["log_level"]["name"] == "info"
    assert listening["log_namespace"] == "chatroom.services"
    joined = first(found, "joined from")
    assert joined["nick"] == "alice" and joined["peer"].startswith("127.0.0.1:")
    assert joined["log_text"] == f"alice joined from {joined['peer']}"
    refused = first(found, "refused input")
    assert refused["log_level"]["name"] == "warn" and refused["what"] == "command"
    left = first(found, "left ({reason})")
    assert left["reason"] == "quit"


@pytest.fixture
def port() -> int:
    return free_port()


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("never listened")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_json_goes_to_twistds_logfile_and_the_level_holds(
    tmp_path: Path, port: int, started: list[subprocess.Popen[bytes]]
) -> None:
    out = tmp_path / "stdout"
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [str(BIN / "twistd"), "--nodaemon", "--pidfile=", "--logfile", "chat.json",
             "chatroom", "--port", str(port), "--history", "none",
             "--log-format", "json", "--log-level", "warn"],
            cwd=tmp_path, stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    started.append(proc)
    log = tmp_path / "chat.json"
    wait_listening(proc, port, out)
    client = LineClient(socket.create_connection(("127.0.0.1", port), timeout=5))
    client.expect("nickname")
    client.send("/join #x")  # before a nickname: refused, and logged as a warning
    client.expect("choose a nickname first")
    deadline = time.monotonic() + 5
    while "refused input" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    client.close()
    found = events(log.read_text())
    assert any("refused input" in e["log_format"] for e in found)
    assert all(e["log_level"]["name"] in ("warn", "error", "critical") for e in found), (
        "nothing under --log-level warn is logged"
    )
    assert out.read_text() == ""  # all of it went to --logfile
