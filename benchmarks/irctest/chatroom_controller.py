"""An irctest controller for chatroom's IRC front end (progval/irctest, the IRC conformance
suite). ``run.sh`` next to this file fetches irctest and runs it with this controller.

irctest imports this module by name (``--controller chatroom_controller``, with this folder on
``PYTHONPATH``) and calls ``run`` once per test: it starts ``twistd -n chatroom`` in a fresh
directory, with its history and state there, serving IRC on the port irctest chose.
``CHATROOM_TWISTD`` names the twistd to run (default: the checkout's ``.venv/bin/twistd``).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
from pathlib import Path

from irctest.basecontrollers import (
    BaseServerController,
    DirectoryBasedController,
    NotImplementedByController,
)
from irctest.specifications import Capabilities, OptionalBehaviors

ROOT = Path(__file__).resolve().parents[2]
OPERPASSWORD_HASH = (  # chatroom-passwd's for "operpassword", irctest's operator password
    "$argon2id$v=19$m=65536,t=3,p=4$ndR2GfGiUDp4hppTp3fV3A$86yZ4r5wDwbEUcXLBOi/Q3MRpCoW7Kiz36YO1QSAsAM"
)
TWISTD = os.environ.get("CHATROOM_TWISTD", str(ROOT / ".venv" / "bin" / "twistd"))

_started: list[subprocess.Popen[bytes]] = []


@atexit.register
def _stop_left_over() -> None:
    """Servers irctest did not stop (a test skipped from its setUp gets no tearDown): each
    is stopped by its own process group, which ``execute`` made for it."""
    for proc in _started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in _started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


class ChatroomController(BaseServerController, DirectoryBasedController):
    software_name = "chatroom"
    supported_sasl_mechanisms: set[str] = set()
    supports_sts = False
    capabilities = frozenset((
        Capabilities.AWAY_NOTIFY,
        Capabilities.BATCH,
        Capabilities.ECHO_MESSAGE,
        Capabilities.LABELED_RESPONSE,
        Capabilities.MESSAGE_TAGS,
        Capabilities.MULTI_PREFIX,
        Capabilities.SERVER_TIME,
    ))
    optional_behaviors = frozenset((
        OptionalBehaviors.MULTI_JOIN,
        OptionalBehaviors.MULTI_PRIVMSG,
    ))

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: str | None,
        ssl: bool,
        run_services: bool,
        faketime: str | None,
        websocket_hostname: str | None = None,
        websocket_port: int | None = None,
    ) -> None:
        if password is not None:
            raise NotImplementedByController("PASS (chatroom has no server password)")
        if ssl:
            raise NotImplementedByController("TLS (the controller serves plain TCP)")
        if run_services:
            raise NotImplementedByController("services")
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        assert self.proc is None
        self.create_config()
        assert self.directory is not None
        (self.directory / "opers").write_text(f"operuser {OPERPASSWORD_HASH}\n")
        self.port, self.hostname = port, hostname
        _, line_port = self.get_hostname_and_port()  # the line front end's, unused
        # loopback only, whatever irctest's hostname ("0.0.0.0", which Linux connects to
        # as 127.0.0.1)
        self.proc = self.execute(
            [
                TWISTD, "-n", "--pidfile=", f"--logfile={self.directory / 'chatroom.log'}",
                "chatroom", "--interface", "127.0.0.1", "--port", str(line_port),
                "--irc", str(port), "--irc-name", "My.Little.Server",
                "--history", str(self.directory / "history.sqlite"),
                "--state", str(self.directory / "state.sqlite"),
                "--opers", str(self.directory / "opers"),
                # irctest sends bursts and opens many clients from one address
                "--rate", "1000", "--burst", "1000", "--max-per-ip", "1000",
            ],
            cwd=self.directory,
        )
        _started.append(self.proc)


def get_irctest_controller_class() -> type[ChatroomController]:
    return ChatroomController
