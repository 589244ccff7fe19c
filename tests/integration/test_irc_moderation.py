"""Moderation and accounts over real sockets, an IRC client library (jaraco's ``irc``) next
to nc-style line clients: KICK, MODE +b and INVITE from IRC on a line member, a line
operator's /mode seen on IRC as MODE, OPER and KILL, SASL PLAIN, account-tag and
account-notify."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from argon2 import PasswordHasher

from tests.integration.ircclient import LibClient
from tests.integration.serverproc import LineClient, ServerProcess
from tests.integration.test_irc_server import IRC, irc_join


def test_an_irc_operator_kicks_and_bans_a_line_member_and_sees_a_line_operators_mode(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(*IRC)
    alice = irc_join(server, "alice")
    alice.connection.join("#dev")
    alice.wait("join", lambda e: e.target == "#dev")  # she made it: she runs it
    bob = server.join("bob")
    bob.send("/join #dev")
    alice.wait("join", lambda e: e.target == "#dev" and e.source.nick == "bob")

    alice.connection.kick("#dev", "bob", "spam")
    bob.expect(r"\*\*\* bob was kicked by alice \(spam\)$")
    assert alice.wait("kick").arguments == ["bob", "spam"]
    bob.send("/join #dev")
    alice.wait("join", lambda e: e.target == "#dev" and e.source.nick == "bob")

    alice.connection.mode("#dev", "+b bob!*@*")
    assert alice.wait("mode").arguments == ["+b", "bob!*@*"]
    bob.expect(r"\*\*\* bob was banned by alice$")
    bob.send("/join #dev")
    assert bob.expect("^!") == "! you are banned from #dev"
    alice.connection.mode("#dev", "b")
    assert alice.wait("banlist").arguments[:3] == ["#dev", "bob!*@*", "alice"]
    alice.connection.mode("#dev", "-b bob!*@*")
    alice.wait("mode", lambda e: e.arguments == ["-b", "bob!*@*"])

    alice.connection.mode("#dev", "+i")
    alice.wait("mode", lambda e: e.arguments == ["+i"])
    bob.send("/join #dev")
    assert bob.expect("^!") == "! #dev is invite-only: an operator of it can /invite you"
    alice.connection.invite("bob", "#dev")
    assert alice.wait("inviting").arguments == ["bob", "#dev"]
    bob.expect("#dev")
    bob.send("/join #dev")
    alice.wait("join", lambda e: e.target == "#dev" and e.source.nick == "bob")

    alice.connection.mode("#dev", "+o bob")
    alice.wait("mode", lambda e: e.arguments == ["+o", "bob"])
    carol = irc_join(server, "carol")
    carol.connection.invite("carol", "#dev")  # not in it
    carol.wait("notonchannel")
    bob.send("/invite #dev carol")
    carol.wait("invite")
    carol.connection.join("#dev")
    carol.wait("join", lambda e: e.target == "#dev")
    bob.send("/mode #dev +m")
    event = alice.wait("mode", lambda e: e.arguments == ["+m"])
    assert (event.source.nick, event.target) == ("bob", "#dev")
    carol.connection.privmsg("#dev", "can anyone hear me?")
    assert carol.wait("cannotsendtochan").arguments[0] == "#dev"
    alice.connection.mode("#dev", "+v carol")
    carol.wait("mode", lambda e: e.arguments == ["+v", "carol"])
    carol.connection.privmsg("#dev", "now I speak")
    bob.expect("carol: now I speak$")
    alice.connection.names(["#dev"])
    assert set(alice.wait("namreply").arguments[2].split()) == {"@alice", "@bob", "+carol"}
    assert "Traceback" not in server.log()


def test_oper_kill_sasl_account_tag_and_account_notify(
    start_server: Callable[..., ServerProcess], tmp_path: Path,
) -> None:
    opers = tmp_path / "opers.txt"
    hashed = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash("hunter2")
    opers.write_text(f"root {hashed}\n")
    server = start_server(*IRC, "--opers", str(opers), "--password-time-cost", "1",
                          "--password-memory-kib", "64")
    dave = server.join("dave")
    dave.send("/register dave-secret")
    dave.expect("is registered to you")
    dave.send("/quit")
    assert dave.wait_closed()

    watcher = LineClient(socket.create_connection(("127.0.0.1", server.irc_port), timeout=10))
    watcher.send("CAP REQ :account-tag account-notify")
    watcher.send("NICK watcher")
    watcher.send("USER w 0 * :w")
    watcher.send("CAP END")
    watcher.expect(r" 366 watcher #lobby ")

    thief = LibClient(server.irc_port, "dave")
    thief.wait("nicknameinuse")
    thief.close()
    signed = LibClient(server.irc_port, "dave", password="dave-secret", sasl_login="dave")
    assert signed.wait("loggedin").arguments[1] == "dave"
    signed.wait("saslsuccess")
    signed.wait("welcome")
    signed.wait("join", lambda e: e.target == "#lobby")
    signed.connection.privmsg("#lobby", "signed in")
    assert watcher.expect("signed in$").startswith("@account=dave ")

    erin = server.join("erin")
    watcher.expect("JOIN #lobby")
    erin.send("/register erin-secret")
    assert watcher.expect(" ACCOUNT ") == ":erin!erin@chatroom ACCOUNT erin"

    signed.connection.oper("root", "wrong")
    signed.wait("passwdmismatch")
    signed.connection.oper("root", "hunter2")
    signed.wait("youreoper")
    signed.connection.send_items("KILL", "erin", ":enough")
    assert erin.expect("^!") == "! you were disconnected by dave: enough"
    assert erin.wait_closed()
    assert signed.wait("quit").source.nick == "erin"
    log = server.log()
    assert "hunter2" not in log and "dave-secret" not in log
    assert "audit: dave killed erin: enough" in log
    assert "Traceback" not in log
