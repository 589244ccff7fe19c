"""Moderation as nc users meet it: a real twistd process, real sockets, PROTOCOL.md's
Moderation section, command by command."""

from __future__ import annotations

import re

from tests.integration.serverproc import LineClient, ServerProcess


def dev(server: ServerProcess) -> tuple[LineClient, LineClient, LineClient]:
    """alice makes #dev; bob (from 127.0.0.2) and carol join it."""
    alice = server.join("alice")
    bob = server.join("bob", source="127.0.0.2")
    carol = server.join("carol")
    alice.send("/join #dev")
    alice.expect("you joined")
    for client in (bob, carol):
        client.send("/join #dev")
        client.expect("you joined")
    alice.expect("carol joined")
    bob.expect("carol joined")
    return alice, bob, carol


def test_kick_ban_bans_unban(server: ServerProcess) -> None:
    alice, bob, carol = dev(server)
    bob.send("/kick carol")
    assert bob.expect("^!") == "! you are not an operator of #dev"

    alice.send("/kick bob stop that")
    assert carol.expect("kicked") == "*** bob was kicked by alice (stop that)"
    assert bob.expect("kicked") == "#dev *** bob was kicked by alice (stop that)"
    bob.send("/join #dev")
    bob.expect("you joined #dev")
    alice.expect(r"^\*\*\* bob joined")

    alice.send("/ban 127.0.0.1")
    assert alice.expect("^!") == "! 127.0.0.1 names you: you would ban yourself"
    alice.send("/ban 0.0.0.0/0")
    assert "only a server operator may ban it" in alice.expect("^!")
    alice.send("/ban 127.0.0.2 flooding")
    assert alice.expect("set a ban") == "*** you set a ban on 127.0.0.2 in #dev"
    assert carol.expect("banned by") == "*** bob was banned by alice (flooding)"
    assert bob.expect("banned by") == "#dev *** bob was banned by alice (flooding)"
    bob.send("/join #dev")
    assert bob.expect("^!") == "! you are banned from #dev"
    bob.send("/bans #dev")
    assert bob.expect("bans? in") == "*** 1 ban in #dev:"
    assert re.fullmatch(r"\*\*\* 127\.0\.0\.2 \(by alice, \d{4}-\d\d-\d\d \d\d:\d\d UTC\): "
                        r"flooding", bob.expect("by alice"))
    alice.send("/unban 127.0.0.2")
    alice.expect("lifted")
    bob.send("/join #dev")
    bob.expect("you joined #dev")
    log = server.log()
    assert "audit: alice kicked bob in #dev: stop that" in log
    assert "audit: alice banned 127.0.0.2 in #dev: flooding" in log


def test_mute_voice_op_and_moderated(server: ServerProcess) -> None:
    alice, bob, carol = dev(server)
    alice.send("/mute bob")
    alice.expect("you muted bob")
    carol.expect("alice muted bob")
    bob.send("anyone?")
    assert bob.expect("^!") == "! you are muted in #dev"
    alice.send("/unmute bob")
    alice.expect("you unmuted")
    bob.send("back")
    assert carol.expect("back") == "bob: back"

    alice.send("/mode +m")
    alice.expect("you set mode")
    bob.send("hello")
    assert bob.expect("^!") == "! #dev is moderated: only its operators and voiced members speak"
    alice.send("/voice bob")
    alice.expect("gave voice")
    bob.send("voiced")
    assert carol.expect("voiced") == "bob: voiced"
    alice.send("/op carol")
    alice.expect("made carol")
    carol.send("/who")
    assert carol.expect("in the room") == "*** 3 in the room: @alice, +bob, @carol"
    carol.send("/deop alice")
    carol.expect("took operator status")
    alice.send("/kick carol")
    assert alice.expect("^!") == "! you are not an operator of #dev"


def test_modes_invite_key_limit_secret_topic(server: ServerProcess) -> None:
    alice, bob, carol = dev(server)
    dora = server.join("dora")
    alice.send("/mode")
    assert alice.expect("modes of") == "*** modes of #dev: +t"
    bob.send("/topic mine")
    assert bob.expect("^!") == "! you are not an operator of #dev"
    alice.send("/mode -t+ik sesame")
    assert alice.expect("you set mode") == "*** you set mode -t +i +k sesame on #dev"
    bob.send("/topic anyone may set it now")
    carol.expect("set the topic")
    dora.send("/join #dev")
    assert dora.expect("^!") == "! #dev is invite-only: an operator of it can /invite you"
    alice.send("/invite dora")
    alice.expect("you invited dora")
    assert dora.expect("invites you") == "*** alice invites you to #dev: /join #dev"
    dora.send("/join #dev")
    assert dora.expect("^!") == "! #dev needs its key: /join #dev KEY"
    dora.send("/join #dev sesame")
    dora.expect("you joined #dev")
    dora.send("/part")
    dora.expect("you left")
    alice.send("/mode -ik+ls 3")
    alice.expect("you set mode")
    dora.send("/join #dev")
    assert dora.expect("^!") == "! #dev is full (3 members at most)"
    dora.send("/rooms")
    assert dora.expect(r"^\*\*\* #") == "*** #lobby (4)"
    assert dora.quiet() == []  # #dev is secret
    bob.send("/rooms")
    assert bob.expect("#dev") == "*** #dev (3) anyone may set it now"


def test_a_flood_of_moderation_commands_is_held_like_any_line(
    start_server: object,
) -> None:
    server = start_server("--rate", "2", "--burst", "3")  # type: ignore[operator]
    alice, _bob, carol = dev(server)
    for _ in range(8):
        alice.send("/mode +m")
        alice.send("/mode -m")
    # Slowed, not dropped: every one of the 16 changes comes, in order, at the rate.
    seen = [carol.expect(r"alice set mode [+-]m", timeout=15) for _ in range(16)]
    assert seen == ["*** alice set mode +m", "*** alice set mode -m"] * 8
