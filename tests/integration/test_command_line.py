"""What a newcomer sees on the terminal: ``twistd chatroom`` and ``chatroom-server`` as
installed, each in a subprocess (a usage error, --version, an error at start)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.integration.serverproc import BIN

TWISTD_N = [str(BIN / "twistd"), "-n", "--pidfile=", "chatroom"]
SERVER = [str(BIN / "chatroom-server")]
COMMANDS = pytest.mark.parametrize("command", [TWISTD_N, SERVER], ids=["twistd", "chatroom-server"])


def run(command: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@COMMANDS
def test_a_bad_value_is_one_line_on_stderr_and_status_2(command: list[str], tmp_path: Path) -> None:
    result = run(command, "--max-line", "10", cwd=tmp_path)
    program = "chatroom" if command is TWISTD_N else "chatroom-server"
    assert result.stderr == f"{program}: --max-line 10: must be from 512 to 65536\n"
    assert result.stdout == ""
    assert result.returncode == 2


@COMMANDS
def test_version_is_chatrooms(command: list[str], tmp_path: Path) -> None:
    result = run(command, "--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"chatroom {version('chatroom')} (Twisted ")


@COMMANDS
def test_a_bad_history_is_said_once(command: list[str], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run(command, "--port", "0", "--history", "file/h.sqlite3", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("chatroom: cannot start: ")
    assert "cannot start" not in result.stdout  # not also in the log


@COMMANDS
def test_a_taken_port_is_said_once(command: list[str], tmp_path: Path, taken_port: int) -> None:
    result = run(command, "--port", str(taken_port), "--history", "none", cwd=tmp_path)
    assert result.returncode == 1
    assert (result.stdout + result.stderr).count("Address already in use") == 1
    assert "Traceback" not in result.stdout + result.stderr


def test_a_daemon_that_cannot_listen_says_why_and_does_not_hang(
    tmp_path: Path, taken_port: int
) -> None:
    # Without -n, twistd's parent waits for the daemon's word: a bare SystemExit in the
    # daemon left it waiting for ever.
    result = run([str(BIN / "twistd"), "--pidfile=", "--logfile", "twistd.log", "chatroom"],
                 "--port", str(taken_port), "--history", "none", cwd=tmp_path)
    assert result.returncode == 1
    assert "Address already in use" in result.stderr
    assert "Address already in use" in (tmp_path / "twistd.log").read_text()
