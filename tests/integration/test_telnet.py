"""Debian's real ``telnet``, in a tmux pane, against a real server: it never goes deaf.

telnet sends IAC IP/BRK + IAC DO TIMING-MARK on Ctrl-C and Ctrl-\\ and then throws away
everything it receives until the mark is answered; before BINARY it also turns some bytes
of typed UTF-8 into those keys. A member on a plain socket checks what arrives.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Callable

import pytest

from tests.integration.clienthelpers import Tmux
from tests.integration.serverproc import ServerProcess

pytestmark = pytest.mark.skipif(
    shutil.which("telnet") is None or shutil.which("tmux") is None,
    reason="needs Debian's telnet and tmux (make sysdeps installs both)",
)

TEXT = "Grüße 日本 🎉"


@pytest.mark.parametrize(("negotiating", "nick"), [
    # As users type it: telnet says nothing until the server does, so the first line
    # with 本 in it reaches the server with its 0x9C turned into IAC BRK.
    (False, "alice"),
    # A port written "-PORT" makes telnet negotiate at once, as on port 23.
    (True, "日本"),
])
def test_real_telnet_types_utf8_survives_ctrl_backslash_and_leaves_on_ctrl_c(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, negotiating: bool, nick: str
) -> None:
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # tmux and telnet: UTF-8 in, UTF-8 shown
    bob = server.join("bob")
    port = f"-{server.port}" if negotiating else str(server.port)
    command = f"telnet -- 127.0.0.1 {shlex.quote(port)}; echo '[telnet exited]'; read _"
    tmux = Tmux(f"chatroom-telnet-test-{server.pid}-{int(negotiating)}", command, height=40)
    me = re.escape(nick)
    try:
        tmux.wait_for(r"^Choose a nickname:")
        tmux.type(nick)
        tmux.key("Enter")
        tmux.wait_for(rf"welcome, {me}!")
        bob.expect(rf"^\*\*\* {me} joined")

        for text in (TEXT, "σу " + TEXT):  # noqa: RUF001 - Greek sigma, Cyrillic u: 0x83 twice
            tmux.type(text)
            tmux.key("Enter")
            assert bob.expect(rf"^{me}: ") == f"{nick}: {text}"

        tmux.key("C-\\")  # IAC BRK, DO TIMING-MARK: ignored, and the mark answered
        tmux.type("/who")  # its answer comes after the mark's: shown only if that came
        tmux.key("Enter")
        tmux.wait_for(r"^\*\*\* 2 in the room: ")
        bob.send("are you still there?")
        tmux.wait_for(r"^bob: are you still there\?$")

        tmux.key("C-c")  # IAC IP, DO TIMING-MARK: leave, as /quit does
        tmux.wait_for(
            rf"\*\*\* goodbye, {me}$[\s\S]*^Connection closed by foreign host\.$"
            r"[\s\S]*^\[telnet exited\]$"
        )
        assert bob.expect(rf"^\*\*\* {me} left") == f"*** {nick} left"
        assert "Traceback" not in server.log()
    finally:
        tmux.kill()


def test_real_telnet_types_a_registered_nicknames_password_without_echo(
    start_server: Callable[..., ServerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's telnet, negotiating ("-PORT"), chooses a registered nickname: the password
    prompt turns its echo off, the password never shows on its screen, echo comes back."""
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    server = start_server("--password-time-cost", "1", "--password-memory-kib", "64")
    owner = server.join("alice")
    owner.send("/register s3cret-word")
    owner.expect("is registered to you")
    owner.send("/quit")
    owner.wait_closed()
    bob = server.join("bob")
    command = f"telnet -- 127.0.0.1 {shlex.quote('-' + str(server.port))}; read _"
    tmux = Tmux(f"chatroom-telnet-password-{server.pid}", command, height=30)
    try:
        tmux.wait_for(r"^Choose a nickname:")
        tmux.type("alice")
        tmux.key("Enter")
        tmux.wait_for(r"^alice is a registered nickname: type its password$")
        tmux.type("wrong-word")
        tmux.key("Enter")
        tmux.wait_for(r"^! wrong password for alice$")
        assert "wrong-word" not in tmux.screen()  # not echoed
        tmux.type("alice")  # echo is back on for the nickname
        tmux.key("Enter")
        tmux.wait_for(r"^alice$")
        tmux.wait_for(r"type its password$[\s\S]*type its password$")
        tmux.type("s3cret-word")  # the wrong guess makes this one wait a second
        tmux.key("Enter")
        screen = tmux.wait_for(r"welcome, alice!", timeout=15)
        assert "s3cret-word" not in screen
        assert bob.expect(r"^\*\*\* alice joined") == "*** alice joined"
        tmux.type("/who")
        tmux.key("Enter")
        tmux.wait_for(r"^/who$")  # typing shows again
        tmux.wait_for(r"^\*\*\* 2 in the room: alice, bob$")
    finally:
        tmux.kill()
