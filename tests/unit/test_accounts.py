"""Accounts on the line front end (StringTransport, Clock): /register, /password,
/unregister, the password prompt when choosing a registered nickname (a telnet's echo off
while it is typed, only for a client that negotiated), reserved nicknames, guesses slowed,
and the web page's password message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.internet.task import Clock

from chatroom.accounts.passwords import Cost, Passwords, here
from chatroom.accounts.service import Accounts
from chatroom.domain.events import AccountSet
from chatroom.lines.telnet import TelnetFilter
from tests.unit.helpers import Server, serving
from tests.unit.test_web_harness import FakeBrowser, make_site

CHEAP = Cost(time_cost=1, memory_kib=64, parallelism=1)
IAC, WILL, WONT, DO, DONT, ECHO, BINARY = (bytes((b,)) for b in (255, 251, 252, 253, 254, 1, 0))
PROMPT = "alice is a registered nickname: type its password"


def cheap(accounts: Accounts | None) -> Accounts:
    assert accounts is not None
    accounts.passwords = Passwords(here, CHEAP)
    return accounts


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        cheap(s.services.accounts)
        yield s


def registered(server: Server, nick: str = "alice", password: str = "open sesame") -> None:
    """``nick`` registered, then gone: its nickname is free but reserved."""
    client = server.join(nick)
    client.send(f"/register {password.replace(' ', '-')}")
    assert client.lines()[0].startswith(f"*** {nick} is registered to you")
    client.send("/quit")
    server.flush()
    client.finish()


def test_register_then_choosing_the_nickname_asks_for_its_password(server: Server) -> None:
    registered(server)
    bob = server.join("bob")
    alice = server.connect()
    alice.clear()
    alice.send("ALICE")
    assert alice.lines() == [PROMPT]
    alice.send("open-sesame")
    server.flush()
    assert alice.lines()[-1].startswith("*** welcome, alice!")
    member = alice.protocol.member
    assert member is not None and member.account == "alice"
    assert bob.lines() == ["*** alice joined"]
    assert [e["action"] for e in server.log if e.get("audit")] == ["registered"]
    assert "open-sesame" not in repr(server.log)


def test_a_wrong_password_is_an_error_and_a_new_prompt_and_slows_the_next(
    server: Server,
) -> None:
    registered(server)
    alice = server.connect()
    alice.clear()
    alice.send("alice")
    alice.send("guess")
    assert alice.lines() == [PROMPT, "! wrong password for alice", "Choose a nickname:"]
    alice.send("alice")
    alice.send("open-sesame")
    assert alice.lines() == [PROMPT]  # the right one, but it waits a second first
    server.clock.advance(1)
    server.flush()
    assert alice.lines()[-1].startswith("*** welcome, alice!")


def test_a_registered_nickname_cannot_be_taken_by_nick_and_its_owner_present_is_taken(
    server: Server,
) -> None:
    registered(server)
    bob = server.join("bob")
    bob.send("/nick Alice")
    server.flush()
    assert bob.lines() == ["! nickname Alice is registered: only its owner may use it, by "
                           "choosing it when connecting and giving its password"]
    alice = server.connect()
    alice.send("alice")
    alice.send("open-sesame")
    server.flush()
    alice.send("/nick ally")
    alice.send("/nick alice")  # its own account: no password needed
    server.flush()
    assert alice.lines()[-2:] == ["*** you are now known as ally", "*** you are now known as alice"]
    other = server.connect()
    other.clear()
    other.send("alice")  # present: taken like any nickname, no password asked
    server.flush()
    assert other.lines() == ["! nickname alice is already taken", "Choose a nickname:"]


def test_password_and_unregister(server: Server) -> None:
    alice = server.join("alice")
    alice.send("/password old newpassword")
    assert alice.lines() == [
        "! you are not signed in to an account: /register PASSWORD first"]
    alice.send("/register short")
    assert alice.lines() == ["! a password has 8 to 256 characters"]
    alice.send("/register first-pass")
    alice.lines()
    alice.send("/register again-pass")
    assert alice.lines() == ["! alice is registered already"]
    alice.send("/password wrong-pass second-pass")
    assert alice.lines() == ["! wrong password"]
    server.clock.advance(1)
    alice.send("/password first-pass second-pass")
    server.clock.advance(2)
    assert alice.lines() == ["*** your password is changed"]
    alice.send("/unregister second-pass")
    server.clock.advance(4)
    assert alice.lines() == ["*** alice is no longer registered: anyone may choose it"]
    alice.send("/quit")
    server.flush()
    alice.finish()
    again = server.connect()
    again.clear()
    again.send("alice")
    server.flush()
    assert again.lines()[-1].startswith("*** welcome, alice!")


def test_a_ban_by_account_names_its_owner_under_any_nickname(server: Server) -> None:
    registered(server)
    ops = server.join("ops")
    ops.send("/join #dev")
    alice = server.connect()
    alice.send("alice")
    alice.send("open-sesame")
    server.flush()
    alice.send("/nick someone")
    ops.send("/ban ~a:alice")
    alice.send("/join #dev")
    server.flush()
    assert alice.lines()[-1] == "! you are banned from #dev"


# -- telnet: echo off while the password is typed ------------------------------------------


def test_a_telnet_client_stops_echoing_for_the_password(server: Server) -> None:
    registered(server)
    alice = server.connect()
    alice.feed(IAC + WILL + BINARY)  # a telnet client speaks first (port 23, or "-PORT")
    alice.lines_and_negotiation()
    alice.send("alice")
    lines, negotiation = alice.lines_and_negotiation()
    assert (lines, negotiation) == ([PROMPT], IAC + WILL + ECHO)
    alice.feed(IAC + DO + ECHO)  # it agrees: nothing to say back
    assert alice.lines_and_negotiation() == ([], b"")
    alice.send("open-sesame")
    server.flush()
    lines, negotiation = alice.lines_and_negotiation()
    assert negotiation == IAC + WONT + ECHO
    assert lines[0] == "" and lines[-1].startswith("*** welcome, alice!")
    alice.feed(IAC + DONT + ECHO)  # acknowledged: nothing more
    assert alice.lines_and_negotiation() == ([], b"")


def test_a_client_that_never_negotiated_gets_no_telnet_bytes(server: Server) -> None:
    registered(server)
    alice = server.connect()
    alice.clear()
    alice.send("alice")
    alice.send("open-sesame")
    server.flush()
    raw = alice.take_raw()
    assert b"\xff" not in raw and raw.startswith(PROMPT.encode() + b"\r\n*** welcome")


def test_the_telnet_filter_keeps_ecos_state() -> None:
    telnet = TelnetFilter()
    assert telnet.hide_input() == b""  # not a telnet client
    telnet.feed(IAC + DO + ECHO)  # asked unasked: refused
    assert telnet.take_answer() == IAC + DO + BINARY + IAC + WONT + ECHO
    assert telnet.hide_input() == IAC + WILL + ECHO and telnet.hiding_input
    assert telnet.hide_input() == b""  # asked already
    telnet.feed(IAC + DONT + ECHO)  # refused: the client keeps echoing
    assert not telnet.hiding_input and telnet.take_answer() == b""
    assert telnet.show_input() == b""
    telnet.hide_input()
    telnet.feed(IAC + DO + ECHO)
    assert telnet.show_input() == IAC + WONT + ECHO and not telnet.hiding_input
    telnet.feed(IAC + DONT + ECHO)
    assert telnet.take_answer() == b""


# -- every node knows every account -------------------------------------------------------------


def test_an_account_registered_on_one_node_is_reserved_on_the_others(server: Server) -> None:
    from chatroom.accounts.guesses import Guesses
    from chatroom.domain.chat import Chat
    from chatroom.domain.moderation import Moderation

    other = Chat(server.hub, server.chat.names, server.clock, node="two")
    accounts = Accounts(Moderation(other, server.clock), Passwords(here, CHEAP),
                        Guesses(server.clock), server.clock)
    registered(server)
    account = accounts.book.find("ALICE")
    assert account is not None and account.hash.startswith("$argon2id$")
    assert accounts.asks_password("alice") == "alice"


# -- the web page ------------------------------------------------------------------------------


def test_the_page_is_asked_for_the_password_and_sends_it() -> None:
    clock = Clock()
    site = make_site(clock)
    cheap(site.chat.services.accounts)
    site.chat.services.chat.hub.publish(AccountSet("", 0.0, "", "", "alice", cheap_hash()))
    page = FakeBrowser(site, 50001)
    page.received()
    page.nick("alice")
    [asked] = page.received()
    assert asked == {"type": "password", "time": asked["time"], "nick": "alice",
                     "text": PROMPT}
    page.send({"type": "password", "password": "wrong one"})
    clock.advance(0)
    assert [(m["type"], m.get("text")) for m in page.received()] == [
        ("error", "wrong password for alice"), ("prompt", "Choose a nickname")]
    page.nick("alice")
    page.received()
    clock.advance(1)
    page.send({"type": "password", "password": "open sesame"})
    clock.advance(0)
    assert [m["type"] for m in page.received()][:1] == ["welcome"]


def cheap_hash(password: str = "open sesame") -> str:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(password)

