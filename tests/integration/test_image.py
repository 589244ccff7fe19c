"""The image recipe (contrib/Containerfile) built for real with buildah and run.

No registry of images is reachable here, so the image is built on a local base: Debian
bookworm with Python 3.11, made once by debootstrap from Debian's archive and kept in
buildah's store (``BASE`` is the recipe's only argument). The image's own entrypoint and
command then run in a container: as its non-root user, with the history on the volume, a
second container on the same volume replaying it, and SIGTERM (what ``podman stop``
sends) saying goodbye to everyone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.serverproc import LineClient, free_port

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "contrib" / "Containerfile"
BASE = "localhost/chatroom-test-base:bookworm"
IMAGE = "localhost/chatroom-test:latest"
UID = 10001  # the recipe's fixed uid
STORE = {**os.environ, "STORAGE_DRIVER": "vfs"}  # where the store is new: no fuse or overlay needed

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("buildah") and shutil.which("debootstrap")),
    reason="builds as root with buildah and debootstrap (make sysdeps installs them)",
)


def buildah(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, env=STORE,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"buildah {' '.join(args)}:\n{done.stderr[-3000:]}"
    return done.stdout.strip()


def has_image(name: str) -> bool:
    return name in buildah("images", "--format", "{{.Name}}:{{.Tag}}").split()


def make_base() -> None:
    """Debian bookworm with python3 and venv, as a one-layer image."""
    with tempfile.TemporaryDirectory(prefix="chatroom-rootfs-") as rootfs:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv",
             "bookworm", rootfs, "http://deb.debian.org/debian"],
            check=True, capture_output=True, timeout=900, stdin=subprocess.DEVNULL,
        )
        container = buildah("from", "scratch")
        try:
            mounted = buildah("mount", container)
            subprocess.run(["cp", "-a", f"{rootfs}/.", mounted], check=True, timeout=300)
            buildah("umount", container)
            buildah("commit", "--quiet", container, BASE)
        finally:
            buildah("rm", container)


def build_arguments() -> list[str]:
    """pip inside the build trusts what this machine's pip trusts (a proxy's CA, here)."""
    bundle = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    mounts = ["--volume", f"{bundle}:/etc/ssl/certs/ca-certificates.crt:ro"] \
        if Path(bundle).exists() else []
    return ["--isolation", "chroot", "--network", "host", *mounts,
            "--build-arg", f"BASE={BASE}"]


@pytest.fixture(scope="module")
def image() -> Iterator[dict[str, Any]]:
    if not has_image(BASE):
        make_base()
    buildah("bud", "--quiet", *build_arguments(), "--file", str(CONTAINERFILE),
            "--tag", IMAGE, str(ROOT))
    config = json.loads(buildah("inspect", "--type", "image", IMAGE))["OCIv1"]["config"]
    yield config
    buildah("rmi", IMAGE)


class Container:
    """One container of the image running its command with ``args`` (buildah run, chroot
    isolation, the host's loopback); the server inside is found by its PID to signal it
    as ``podman stop`` does."""

    def __init__(self, argv: list[str], volume: Path, log: Path) -> None:
        self.name = buildah("from", IMAGE)
        self.log_path = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["buildah", "run", "--isolation", "chroot", "--network", "host",
                 "--volume", f"{volume}:/var/lib/chatroom", self.name, "--", *argv],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=STORE,
            )

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + 60
        while text not in self.log():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.log()}"
            assert time.monotonic() < deadline, f"never logged {text!r}:\n{self.log()}"
            time.sleep(0.1)

    def server_pid(self) -> int:
        """The twistd process under this container's buildah."""
        pending = [self.proc.pid]
        while pending:
            pid = pending.pop()
            children: list[int] = []
            for task in Path(f"/proc/{pid}/task").glob("*"):  # Go forks from any thread
                try:
                    children += map(int, (task / "children").read_text().split())
                except OSError:
                    continue
            for child in children:
                try:
                    name = Path(f"/proc/{child}/comm").read_text().strip()
                except OSError:
                    continue
                if name == "twistd":  # not buildah's runtime, whose arguments name it too
                    return child
                pending.append(child)
        raise AssertionError("no twistd under the container")

    def stop(self) -> None:
        os.kill(self.server_pid(), signal.SIGTERM)
        self.proc.wait(30)

    def remove(self) -> None:
        if self.proc.poll() is None:
            # Killing buildah alone leaves the server in its chroot running: end it first.
            with contextlib.suppress(AssertionError, ProcessLookupError):
                os.kill(self.server_pid(), signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(10)
        buildah("rm", self.name)


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_the_image_builds_and_runs_unprivileged_with_history_on_the_volume(
    image: dict[str, Any], tmp_path: Path
) -> None:
    assert image["User"].split(":")[0] == "chatroom"
    assert image["WorkingDir"] == "/var/lib/chatroom"
    assert "/var/lib/chatroom" in image.get("Volumes", {})
    line_port, web_port = free_port(), free_port()
    ports = {"8080": str(line_port), "8081": str(web_port), "0.0.0.0": "127.0.0.1"}
    argv = [ports.get(arg, arg) for arg in image["Entrypoint"] + image["Cmd"]]
    volume = tmp_path / "volume"
    volume.mkdir(mode=0o750)
    os.chown(volume, UID, UID)

    first = Container(argv, volume, tmp_path / "first.log")
    try:
        first.wait_for("chatroom listening on web")
        assert uid_of(first.server_pid()) == UID
        alice = LineClient(socket.create_connection(("127.0.0.1", line_port), timeout=5))
        alice.expect("nickname")
        alice.send("alice")
        alice.expect("welcome, alice")
        alice.send("kept on the volume")
        first.stop()
        assert alice.expect("shutting down")
        assert "Traceback" not in first.log() and "plugin cache" not in first.log()
    finally:
        first.remove()
    stored = volume / "chatroom.sqlite3"
    assert stored.stat().st_uid == UID

    second = Container(argv, volume, tmp_path / "second.log")
    try:
        second.wait_for("chatroom listening on web")
        bob = LineClient(socket.create_connection(("127.0.0.1", line_port), timeout=5))
        bob.expect("nickname")
        bob.send("bob")
        bob.expect("alice: kept on the volume")
        second.stop()
    finally:
        second.remove()
