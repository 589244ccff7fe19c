"""Issue 12, points 5 and 6, as an nc user meets them: a real twistd process, real sockets.

Nicknames are checked as typed (a control character or an escape sequence is refused with
a reason, never cleaned into another name) and a look-alike of a present nickname is
taken. No line can pose as another: runs of blanks collapse, bidi controls and invisible
format characters are removed.
"""

from __future__ import annotations

from tests.integration.serverproc import ServerProcess


def test_a_lookalike_or_altered_nickname_is_refused_with_a_reason(
    server: ServerProcess,
) -> None:
    alice = server.join("alice")
    client = server.connect()
    client.expect("nickname")
    attempts: list[tuple[bytes, str]] = [
        ("\u0430lice".encode(), "! nickname \u0430lice is already taken"),  # Cyrillic a
        ("\uff41\uff4c\uff49\uff43\uff45".encode(), "already taken"),  # fullwidth
        (b"ctl\x01x", "! a nickname cannot hold the control character U+0001"),
        (b"esc\x1b[31mred", "! a nickname cannot hold an escape sequence (ESC, U+001B)"),
        (b"del\x7f", "control character U+007F"),
        ("alice\ufe0f".encode(), "invisible character U+FE0F (VARIATION SELECTOR-16)"),
        ("\u3164".encode(), "invisible character U+3164 (HANGUL FILLER)"),
    ]
    for typed, why in attempts:
        client.send(typed)
        assert why in client.expect("^!"), typed
        client.expect("nickname")  # a new prompt: the client may try again
    client.send("ctlx")
    client.expect("welcome, ctlx!")
    # The first thing alice hears since her welcome: nothing was announced before.
    assert alice.read_line() == "*** ctlx joined"


def test_nick_command_refuses_an_altered_or_lookalike_nickname(server: ServerProcess) -> None:
    alice = server.join("alice")
    bob = server.join("bob")
    alice.expect("bob joined")
    for typed, why in [
        (b"/nick ctl\x01x", "control character U+0001"),
        (b"/nick esc\x1b[31mred", "escape sequence"),
        ("/nick \u0430LICE".encode(), "already taken"),
    ]:
        bob.send(typed)
        assert why in bob.expect("^!"), typed
    bob.send("still bob")
    assert alice.read_line() == "bob: still bob"  # no rename was announced before it


def test_no_forged_lines_reach_another_member(server: ServerProcess) -> None:
    alice = server.join("alice")
    bob = server.join("bob")
    alice.expect("bob joined")
    bob.send(b"ok" + b" " * 70 + b"*** bob left")  # on 80 columns, a line of its own
    bob.send(b"ok" + b"\t" * 10 + b"*** bob left")
    bob.send("ok\u3000\u3000\u3000\u2003\u2003\u00a0\u00a0*** bob left".encode())
    bob.send("a\u200eb\u200fc\u061cd\u00ade\u2060f\ufeffg \U0001f468\u200d\U0001f469".encode())
    assert alice.read_line() == "bob: ok *** bob left"
    assert alice.read_line() == "bob: ok *** bob left"
    assert alice.read_line() == "bob: ok *** bob left"
    assert alice.read_line() == "bob: abcdefg \U0001f468\u200d\U0001f469"
