"""The service recipes in contrib/ as far as this machine can run them: the systemd unit
verified by ``systemd-analyze`` and its command lines run (start, ExecReload, stop); the
sysusers file applied to an empty root; the image's command line run as the image runs it
(a non-root user, the history on the volume), since no image can be pulled here."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.serverproc import LineClient, free_port

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"
UNIT = CONTRIB / "chatroom.service"
PREFIX = "/opt/chatroom"  # where both recipes install chatroom; here: this venv
VENV = sys.prefix


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


needs = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                           reason="systemd-analyze is not installed")


@needs
def test_the_unit_verifies_and_is_sandboxed(tmp_path: Path) -> None:
    unit = tmp_path / "chatroom.service"
    unit.write_text(UNIT.read_text().replace(PREFIX, VENV))  # its ExecStart must exist
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                              text=True, timeout=60)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr
    exposure = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                               "--threshold=30", str(unit)],
                              capture_output=True, text=True, timeout=60)
    assert exposure.returncode == 0, exposure.stdout[-500:]  # "OK" or better: under 3.0
    found = directives(UNIT.read_text())
    assert found["User"] == ["chatroom"] and found["ProtectSystem"] == ["strict"]
    assert found["StateDirectory"] == ["chatroom"] and found["Restart"] == ["on-failure"]
    assert found["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_the_sysusers_file_makes_the_units_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(CONTRIB / "chatroom.sysusers")],
                   check=True, capture_output=True, timeout=60)
    user = next(line for line in (tmp_path / "etc/passwd").read_text().splitlines()
                if line.startswith("chatroom:"))
    assert user.endswith(":/var/lib/chatroom:/usr/sbin/nologin")


# Running the recipes' command lines ----------------------------------------------------------

def _anyone_can_run(path: str) -> bool:
    real = Path(os.path.realpath(path))
    return all(p.stat().st_mode & 0o001 for p in [real, *real.parents])


UNPRIVILEGED = 10001 if os.geteuid() == 0 and _anyone_can_run(sys.executable) else None
"""Who runs them: the image's uid when the tests run as root (and Python is not in a
directory only root may enter, as a pyenv under /root is), else the tests' own user."""


@pytest.fixture
def state() -> Iterator[Path]:
    """A directory as systemd's StateDirectory or the image's volume is: owned by the
    service's user, 0750, and nowhere else writable for it."""
    directory = Path(tempfile.mkdtemp(prefix="chatroom-state-"))
    os.chmod(directory, 0o750)
    if UNPRIVILEGED is not None:
        os.chown(directory, UNPRIVILEGED, UNPRIVILEGED)
    yield directory
    shutil.rmtree(directory)


class Started:
    """A command line of a recipe, running as the unprivileged user."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.log_path = cwd.parent / f"{cwd.name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                user=UNPRIVILEGED, group=UNPRIVILEGED,
                extra_groups=[] if UNPRIVILEGED is not None else None,
            )

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def wait_for(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + 20
        while self.log().count(text) < count:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.log()}"
            assert time.monotonic() < deadline, f"never logged {text!r}:\n{self.log()}"
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log_path.unlink(missing_ok=True)


@pytest.fixture
def started() -> Iterator[list[Started]]:
    running: list[Started] = []
    yield running
    for each in running:
        each.kill()


def join(port: int, nick: str) -> LineClient:
    client = LineClient(socket.create_connection(("127.0.0.1", port), timeout=5))
    client.expect("nickname")
    client.send(nick)
    client.expect(f"welcome, {nick}")
    return client


def test_the_units_command_lines_start_reload_and_stop(state: Path, started: list[Started]
                                                        ) -> None:
    found = directives(UNIT.read_text())
    config = state / "chatroom.toml"  # stands for /etc/chatroom/chatroom.toml
    port = free_port()
    config.write_text(f"port = {port}\nmax-line = 4096\n")
    argv = shlex.split(found["ExecStart"][0].replace(PREFIX, VENV)
                       .replace("/etc/chatroom/chatroom.toml", str(config)))
    assert found["WorkingDirectory"] == ["/var/lib/chatroom"]
    server = Started(argv, cwd=state)
    started.append(server)
    server.wait_for("chatroom listening on")
    alice = join(port, "alice")
    alice.send("a" * 3000)
    config.write_text(f"port = {port}\nmax-line = 1024\n")
    reload = found["ExecReload"][0].replace("$MAINPID", str(server.proc.pid))
    subprocess.run(shlex.split(reload), check=True, timeout=10)
    server.wait_for("reload (SIGHUP) applied: max-line 4096 -> 1024")
    alice.send("b" * 3000)
    alice.expect("line too long")
    # The default history lands in the working directory, the unit's state directory.
    assert (state / "var" / "chatroom.sqlite3").exists()
    assert server.stop() in (0, -signal.SIGTERM)  # both are a clean stop to systemd
    assert alice.expect("shutting down")


CONTAINERFILE = CONTRIB / "Containerfile"


def instruction(name: str) -> str:
    values = re.findall(rf"^{name} (.+)$", CONTAINERFILE.read_text(), re.MULTILINE)
    assert len(values) == 1, f"one {name} in the Containerfile"
    return str(values[-1])


def test_the_images_command_line_runs_unprivileged_with_history_on_the_volume(
    state: Path, started: list[Started]
) -> None:
    user = instruction("USER").split(":")[0]
    assert user not in ("root", "0")
    volume = json.loads(instruction("VOLUME"))[0]
    assert instruction("WORKDIR") == volume
    argv = json.loads(instruction("ENTRYPOINT")) + json.loads(instruction("CMD"))
    history = argv[argv.index("--history") + 1]
    assert history.startswith(volume + "/"), "the history is on the volume"
    exposed = {int(p) for p in instruction("EXPOSE").split()}
    assert exposed == {int(argv[argv.index("--port") + 1]), int(argv[argv.index("--web") + 1])}
    # The same command line, on this machine: the venv for /opt/chatroom, a directory for
    # the volume, free loopback ports for the image's.
    line_port, web_port = free_port(), free_port()
    here = {PREFIX: VENV, volume: str(state), "0.0.0.0": "127.0.0.1",
            "8080": str(line_port), "8081": str(web_port)}
    local = [here.get(arg, arg).replace(volume + "/", str(state) + "/").replace(PREFIX, VENV)
             for arg in argv]
    first = Started(local, cwd=state)
    started.append(first)
    first.wait_for("chatroom listening on web")
    alice = join(line_port, "alice")
    alice.send("kept on the volume")
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=5) as page:
        assert b"<script" in page.read()
    assert first.stop() in (0, -signal.SIGTERM)
    stored = state / Path(history).name
    assert stored.exists()
    if UNPRIVILEGED is not None:
        assert stored.stat().st_uid == UNPRIVILEGED  # written by the image's user
    # A new container on the same volume has the history.
    second = Started(local, cwd=state)
    started.append(second)
    second.wait_for("chatroom listening on web")
    bob = LineClient(socket.create_connection(("127.0.0.1", line_port), timeout=5))
    bob.send("bob")
    bob.expect("alice: kept on the volume")
    assert second.stop() in (0, -signal.SIGTERM)
