"""Accounts on IRC, on StringTransport and a Clock: SASL PLAIN at registration (900-908),
PASS, a registered nickname refused without its password, account-tag, account-notify."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests.unit.irchelpers import SERVER, Both, IRCClient, with_accounts


@pytest.fixture
def server() -> Iterator[Both]:
    with with_accounts() as s:
        yield s


def registered(server: Both, nick: str = "alice", password: str = "open-sesame") -> None:
    """``nick`` registered on the line front end, then gone: free, but reserved."""
    client = server.join(nick)
    client.send(f"/register {password}")
    assert client.lines()[0].startswith(f"*** {nick} is registered to you")
    client.send("/quit")
    server.flush()
    client.finish()


def plain(authcid: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def sasl_start(server: Both) -> IRCClient:
    client = server.irc_connect()
    client.send("CAP LS 302", "CAP REQ :sasl")
    lines = client.lines()
    assert "sasl=PLAIN" in lines[0] and lines[1] == f":{SERVER} CAP * ACK :sasl"
    return client


def test_sasl_plain_signs_in_to_the_account_and_its_nickname(server: Both) -> None:
    registered(server)
    alice = sasl_start(server)
    alice.send("NICK alice", "USER a 0 * :A", "AUTHENTICATE PLAIN")
    assert alice.lines() == ["AUTHENTICATE +"]
    alice.send(f"AUTHENTICATE {plain('alice', 'open-sesame')}")
    assert alice.lines() == [
        f":{SERVER} 900 alice alice!alice@chatroom alice :You are now logged in as alice",
        f":{SERVER} 903 alice :SASL authentication successful"]
    assert alice.protocol.member is None  # CAP END still to come
    alice.send("AUTHENTICATE PLAIN")
    assert alice.lines() == [
        f":{SERVER} 907 alice :You have already authenticated using SASL"]
    alice.send("CAP END")
    server.flush()
    member = alice.protocol.member
    assert member is not None and member.nick == "alice" and member.account == "alice"
    assert " 001 alice " in alice.lines()[0]
    assert "open-sesame" not in repr(server.log)


def test_sasl_failures_abort_mechanisms_and_length(server: Both) -> None:
    registered(server)
    alice = sasl_start(server)
    alice.send("AUTHENTICATE SCRAM-SHA-256")
    assert alice.lines() == [f":{SERVER} 908 * PLAIN :are available SASL mechanisms",
                             f":{SERVER} 904 * :SASL authentication failed"]
    alice.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'wrong-one')}")
    assert alice.lines() == ["AUTHENTICATE +", f":{SERVER} 904 * :SASL authentication failed"]
    alice.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'open-sesame', 'bob')}")
    assert alice.lines() == ["AUTHENTICATE +", f":{SERVER} 904 * :SASL authentication failed"]
    alice.send("AUTHENTICATE PLAIN", "AUTHENTICATE not-base64!")
    assert alice.lines() == ["AUTHENTICATE +", f":{SERVER} 904 * :SASL authentication failed"]
    alice.send("AUTHENTICATE PLAIN", "AUTHENTICATE *")
    assert alice.lines() == ["AUTHENTICATE +", f":{SERVER} 906 * :SASL authentication aborted"]
    alice.send("AUTHENTICATE PLAIN", *["AUTHENTICATE " + "A" * 400] * 5)
    assert alice.lines() == ["AUTHENTICATE +", f":{SERVER} 905 * :SASL message too long"]
    server.clock.advance(60)  # the wrong guesses above slowed the next one
    alice.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'open-sesame')}")
    server.clock.advance(60)
    assert alice.lines()[-1] == f":{SERVER} 903 * :SASL authentication successful"


def test_a_burst_waits_for_the_check_and_cap_end_mid_exchange_aborts(server: Both) -> None:
    registered(server)
    alice = sasl_start(server)
    alice.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'wrong-one')}")
    assert alice.lines()[-1] == f":{SERVER} 904 * :SASL authentication failed"
    # The next guess waits a second: the lines after it wait with it.
    alice.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'open-sesame')}",
               "CAP END", "NICK alice", "USER a 0 * :A")
    assert alice.lines() == ["AUTHENTICATE +"]
    server.clock.advance(1)
    server.flush()
    assert alice.lines()[:3] == [
        f":{SERVER} 900 * *!*@chatroom alice :You are now logged in as alice",
        f":{SERVER} 903 * :SASL authentication successful",
        f":{SERVER} 001 alice :Welcome to the chatroom IRC network, alice!alice@chatroom"]
    member = alice.protocol.member
    assert member is not None and member.account == "alice"
    bob = sasl_start(server)
    bob.send("AUTHENTICATE PLAIN", "CAP END", "NICK bob", "USER b 0 * :B")
    lines = bob.lines()
    assert lines[:2] == ["AUTHENTICATE +", f":{SERVER} 906 * :SASL authentication aborted"]
    assert bob.protocol.member is not None and bob.protocol.member.account is None


def test_a_response_of_400_bytes_waits_for_the_rest(server: Both) -> None:
    password = "\u00e9" * 147  # 294 bytes of UTF-8: a response of 404 bytes of base64
    registered(server, "alice", password)
    alice = sasl_start(server)
    response = plain("alice", password)
    assert len(response) == 404
    alice.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {response[:400]}")
    assert alice.lines() == ["AUTHENTICATE +"]
    alice.send(f"AUTHENTICATE {response[400:]}")
    assert alice.lines()[-1] == f":{SERVER} 903 * :SASL authentication successful"


def test_sasl_needs_the_capability_and_registration_not_done(server: Both) -> None:
    registered(server)
    bob = server.irc("bob")
    bob.send("AUTHENTICATE PLAIN")
    assert bob.lines() == [f":{SERVER} 904 bob :SASL authentication is only available while "
                           "registering, with the sasl capability"]
    carol = server.irc_connect()
    carol.send("AUTHENTICATE PLAIN")
    assert " 904 " in carol.lines()[0]


def test_a_registered_nickname_needs_its_password_pass_or_sasl(server: Both) -> None:
    registered(server)
    mallory = server.irc_connect()
    mallory.send("NICK alice", "USER m 0 * :M")
    server.flush()
    assert mallory.lines() == [
        f":{SERVER} NOTICE alice :alice is a registered nickname: connect with PASS and its "
        "password to use it",
        f":{SERVER} 433 * alice :Nickname is already in use"]
    mallory.send("NICK mallory")
    assert mallory.protocol.member is not None
    wrong = server.irc_connect()
    wrong.send("PASS nope-nope", "NICK alice", "USER m 0 * :M")
    server.flush()
    assert wrong.lines()[-1] == f":{SERVER} 433 * alice :Nickname is already in use"
    server.clock.advance(60)
    alice = server.irc_connect()
    alice.send("PASS open-sesame", "NICK alice", "USER a 0 * :A")
    server.flush()
    member = alice.protocol.member
    assert member is not None and member.account == "alice"
    other = sasl_start(server)  # SASL as alice, then a nickname registered to nobody
    other.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'open-sesame')}",
               "NICK ally", "USER a 0 * :A", "CAP END")
    server.flush()
    member = other.protocol.member
    assert member is not None and (member.nick, member.account) == ("ally", "alice")


def test_account_tag_and_whois_330(server: Both) -> None:
    registered(server)
    tagged = server.irc("tagged", "account-tag")
    plain_client = server.irc("plainclient")
    alice = server.irc_connect()
    alice.send("PASS open-sesame", "NICK alice", "USER a 0 * :A")
    server.flush()
    for client in (tagged, plain_client):
        client.clear()
    alice.send("PRIVMSG #lobby :signed")
    server.flush()
    assert tagged.lines() == ["@account=alice :alice!alice@chatroom PRIVMSG #lobby :signed"]
    assert plain_client.lines() == [":alice!alice@chatroom PRIVMSG #lobby :signed"]
    tagged.send("WHOIS alice")
    assert f":{SERVER} 330 tagged alice alice :is logged in as" in tagged.lines()


def test_account_notify_tells_of_register_and_unregister_on_the_line_front_end(
    server: Both,
) -> None:
    watcher = server.irc("watcher", "account-notify")
    dan = server.join("dan")
    watcher.clear()
    dan.send("/register dan-secret")
    server.flush()
    assert watcher.lines() == [":dan!dan@chatroom ACCOUNT dan"]
    dan.send("/password dan-secret dan-secret-2")
    server.flush()
    assert watcher.lines() == []
    dan.send("/unregister dan-secret-2")
    server.flush()
    assert watcher.lines() == [":dan!dan@chatroom ACCOUNT *"]
    deaf = server.irc("deaf")
    erin = server.join("erin")
    deaf.clear()
    erin.send("/register erin-secret")
    server.flush()
    assert deaf.lines() == []


def test_extended_join_gives_account_and_realname(server: Both) -> None:
    registered(server)
    watcher = server.irc("watcher", "extended-join", "server-time")
    plain_client = server.irc("plainclient")
    server.join("bob")
    alice = server.irc_connect()
    alice.send("CAP REQ :extended-join", "PASS open-sesame", "NICK alice",
               "USER a 0 * :Alice L", "CAP END")
    server.flush()
    assert ":alice!alice@chatroom JOIN #lobby alice :Alice L" in alice.lines()
    joins = [line for line in watcher.lines() if " JOIN " in line]
    assert all(line.startswith("@time=") for line in joins)
    assert [line.split(" ", 1)[1] for line in joins] == [
        ":bob!bob@chatroom JOIN #lobby * :bob", ":alice!alice@chatroom JOIN #lobby alice :Alice L"]
    assert [line for line in plain_client.lines() if " JOIN " in line] == [
        ":bob!bob@chatroom JOIN #lobby", ":alice!alice@chatroom JOIN #lobby"]
