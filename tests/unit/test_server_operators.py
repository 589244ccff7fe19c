"""Server operators: the operators file, Argon2id passwords off the reactor thread, guesses
slowed per name and per address, ``/oper`` on the line front end, and ``chatroom-passwd``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from chatroom import passwd
from chatroom.accounts.guesses import Guesses
from chatroom.accounts.opers import OperatorsFileError, parse_operators
from chatroom.accounts.passwords import Cost, Passwords, PasswordsBusy, check_hash, here
from tests.unit.helpers import Server, serving
from tests.unit.test_moderation import value

CHEAP = Cost(time_cost=1, memory_kib=64, parallelism=1)


def cheap_hash(password: str) -> str:
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(password)



# -- the operators file ------------------------------------------------------------------


def test_the_operators_file_holds_names_and_hashes() -> None:
    one, two = cheap_hash("a"), cheap_hash("b")
    text = f"# operators\n\nroot {one}\n  ops.team-2\t{two}  \n"
    assert parse_operators(text) == {"root": one, "ops.team-2": two}


@pytest.mark.parametrize(("line", "why"), [
    ("root", "line 2: expected NAME HASH, got 1 words"),
    ("root $argon2id$x secret", "expected NAME HASH, got 3 words"),
    ("root hunter2", "line 2: not an Argon2 hash"),
    ("-root {hash}", "is not a name"),
    ("ROOT {hash}", "line 2: ROOT is there twice"),
    ("bob $argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "not Argon2id"),
])
def test_a_bad_line_stops_the_start_and_is_named(line: str, why: str) -> None:
    text = f"root {cheap_hash('x')}\n" + line.replace("{hash}", cheap_hash("y")) + "\n"
    with pytest.raises(OperatorsFileError, match=why):
        parse_operators(text, "opers.txt")


def test_check_hash_takes_argon2id() -> None:
    hashed = cheap_hash("x")
    assert check_hash(hashed) == hashed


# -- passwords --------------------------------------------------------------------------


def test_passwords_hash_and_verify_and_an_unknown_name_is_never_right() -> None:
    passwords = Passwords(here, CHEAP)
    hashed = value(passwords.hash("correct horse"))
    assert hashed.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert value(passwords.verify(hashed, "correct horse")) is True
    assert value(passwords.verify(hashed, "wrong")) is False
    assert value(passwords.verify(None, "")) is False
    assert value(passwords.verify("garbage", "x")) is False


def test_checks_run_where_they_are_told_a_few_at_a_time_and_a_queue_past_the_cap_is_refused(
) -> None:
    started: list[Deferred[Any]] = []

    def elsewhere(function: Any, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        started.append(d)
        d.addCallback(lambda _: function(*args))
        return d

    passwords = Passwords(elsewhere, CHEAP, at_once=2, max_waiting=1)
    hashed = cheap_hash("x")
    answers = [passwords.verify(hashed, "x") for _ in range(3)]
    assert len(started) == 2  # the third waits for a free place
    with pytest.raises(PasswordsBusy):
        passwords.verify(hashed, "x")
    for d in started[:]:
        d.callback(None)
    started[2].callback(None)
    assert [value(answer) for answer in answers] == [True, True, True]


# -- guesses --------------------------------------------------------------------------------


def test_each_wrong_guess_doubles_the_wait_up_to_the_longest_and_a_right_one_forgets() -> None:
    clock = Clock()
    guesses = Guesses(clock, longest=8.0)
    keys = ["oper:root", "from:203.0.113.7"]
    assert guesses.delay(keys) == 0
    waits = []
    for _ in range(6):
        guesses.failed(keys)
        waits.append(guesses.delay(keys))
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert guesses.delay(["from:203.0.113.7"]) == 8.0  # the address, whatever the name
    assert guesses.delay(["oper:other"]) == 0
    waited = guesses.wait(keys)
    clock.advance(7.9)
    assert not waited.called
    clock.advance(0.1)
    assert waited.called
    guesses.succeeded(keys)
    assert guesses.delay(keys) == 0 and len(guesses) == 0


def test_guesses_keep_at_most_max_keys() -> None:
    guesses = Guesses(Clock(), max_keys=3)
    for n in range(10):
        guesses.failed([f"from:{n}"])
    assert len(guesses) == 3 and guesses.delay(["from:9"]) == 1.0


# -- /oper on the line front end ------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        accounts = s.services.accounts
        assert accounts is not None
        accounts.passwords = Passwords(here, CHEAP)
        accounts.operators["Root"] = cheap_hash("s3cret pass")
        yield s


def test_oper_with_the_right_password_makes_a_server_operator(server: Server) -> None:
    alice, bob = server.members("alice", "bob")
    alice.send("/kill bob")
    assert alice.lines()[0].startswith("! only a server operator")
    alice.send("/oper root s3cret pass")
    server.flush()
    assert alice.lines() == [
        "*** you are now a server operator (Root): an operator of every room"]
    alice.send("/who")
    assert alice.lines() == ["*** 2 in the room: @alice, bob"]
    alice.send("/oper root s3cret pass")
    assert alice.lines() == ["! you are a server operator already (Root)"]
    alice.send("/kill bob go away")
    server.flush()
    assert alice.lines()[0] == "*** you disconnected bob"
    assert bob.lines()[-1] == "! you were disconnected by alice: go away"
    assert [e["action"] for e in server.log if e.get("audit")] == [
        "became server operator", "killed"]
    assert "s3cret" not in repr(server.log)


def test_a_wrong_guess_slows_the_next_from_that_address_and_for_that_name(
    server: Server,
) -> None:
    alice, bob = server.members("alice", "bob")
    carol = server.join("carol", host="198.51.100.9")
    alice.clear()
    alice.send("/oper root nope")
    assert alice.lines() == ["! wrong operator name or password"]
    carol.send("/oper ROOT s3cret pass")  # another address, the same name: waits 1 s
    alice.send("/oper nobody nope")  # another name, the same address: waits 1 s too
    assert carol.lines() == [] and alice.lines() == []
    server.clock.advance(1)
    assert carol.lines()[0].startswith("*** you are now a server operator")
    assert alice.lines() == ["! wrong operator name or password"]  # the same answer
    alice.send("talking while held")  # the wait held alice's own lines only
    server.flush()
    assert bob.lines()[-1] == "alice: talking while held"


def test_oper_usage(server: Server) -> None:
    [alice] = server.members("alice")
    alice.send("/oper root")
    assert alice.lines() == ["! usage: /oper NAME PASSWORD"]


# -- chatroom-passwd ---------------------------------------------------------------------------


def test_chatroom_passwd_prints_a_hash_of_the_line_it_reads() -> None:
    out = io.StringIO()
    passwd.main(["--time-cost", "1", "--memory-kib", "64", "--parallelism", "1"],
                stdin=io.StringIO("hunter2 and more\n"), stdout=out)
    hashed = out.getvalue().strip()
    assert PasswordHasher().verify(hashed, "hunter2 and more")
    assert hashed.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert parse_operators(f"root {hashed}") == {"root": hashed}


def test_chatroom_passwd_refuses_an_empty_password() -> None:
    with pytest.raises(SystemExit, match="cannot be empty"):
        passwd.main([], stdin=io.StringIO("\n"), stdout=io.StringIO())
