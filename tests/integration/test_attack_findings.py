"""Holes found by attacking main over real sockets (review/attack, issues 12 and 13).

Each test failed on the code it was written against and passes with its fix. Every wait
is bounded; every server is stopped by its PID.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.integration.serverproc import LineClient, ServerProcess

StartServer = Callable[..., ServerProcess]


def _replay(client: LineClient) -> list[str]:
    """The chat lines of a replay, without their time."""
    lines = client.quiet(1.0)
    return [line.split("] ", 1)[1] for line in lines if line.startswith("[") and ": " in line]


def _said_before_churn(server: ServerProcess) -> LineClient:
    alice = server.join("alice")
    for n in range(3):
        alice.send(f"old line {n}")
    alice.send("/history 3")
    alice.expect("end of history")
    return alice


def _newcomer_replay(server: ServerProcess, alice: LineClient) -> list[str]:
    alice.send("new line")
    alice.send("/history 1")  # alice's lines are in, before the newcomer comes
    alice.expect("end of history")
    newcomer = server.connect()
    newcomer.expect("nickname")
    newcomer.send("newcomer")
    return _replay(newcomer)


WANTED = ["alice: old line 0", "alice: old line 1", "alice: old line 2", "alice: new line"]


def test_the_replay_of_a_live_room_survives_churn_of_other_rooms(
    start_server: StartServer,
) -> None:
    # --max-rooms sizes the replay buffers' LRU (1000 by default: 1100 rooms do the same)
    server = start_server("--history", "var/h.sqlite3", "--max-rooms", "5")
    alice = _said_before_churn(server)
    mallory = server.join("mallory")
    for n in range(6):  # six rooms made and left, one after the other: never over a limit
        mallory.send(f"/join #junk{n}")
        mallory.expect("you joined")
        mallory.send("/part")
        mallory.expect("you left")
    assert _newcomer_replay(server, alice) == WANTED


def test_refused_joins_do_not_cost_a_live_room_its_replay(start_server: StartServer) -> None:
    server = start_server("--history", "var/h.sqlite3", "--max-rooms-per-member", "1",
                          "--rate", "100000", "--burst", "100000")
    alice = _said_before_churn(server)
    mallory = server.join("mallory")  # in #lobby: one room, the most allowed
    for n in range(1100):  # the default --max-rooms, and then some
        mallory.send(f"/join #junk{n}")
    for _ in range(1100):
        mallory.expect("^! you are in 1 room already", timeout=30)
    assert _newcomer_replay(server, alice) == WANTED


@pytest.mark.parametrize(("present", "lookalike"), [
    ("alice", "ali\u0307ce"),
    ("jim", "j\u0307im"),
])
def test_a_soft_dotted_letter_with_a_dot_above_is_a_lookalike(
    server: ServerProcess, present: str, lookalike: str,
) -> None:
    holder = server.join(present)  # kept: a client that is dropped closes, freeing the name
    other = server.connect()
    other.expect("nickname")
    other.send(lookalike)
    assert other.expect("^!|welcome").startswith("! ")
    assert holder.quiet() == []


def test_a_room_name_with_a_dot_above_an_i_is_the_same_room(server: ServerProcess) -> None:
    alice = server.join("alice")
    alice.send("/join #admin")
    alice.expect("you joined")
    bob = server.join("bob")
    bob.send("/join #admi\u0307n")
    assert bob.expect("you joined") == "*** you joined #admin; 2 people are here"


def test_a_search_of_the_memory_history_does_not_hold_everyone_up(
    start_server: StartServer,
) -> None:
    server = start_server("--history", ":memory:", "--rate", "100000", "--burst", "100000",
                          "--history-search-ms", "100")
    alice = server.join("alice")
    alice.sock.settimeout(60)
    chunk = "".join(f"line {n} of what was said\r\n" for n in range(1000)).encode()
    for _ in range(300):
        alice.send_raw(chunk)
    alice.send("/history 1")
    alice.expect("end of history", timeout=60)
    dave, erin = server.join("dave"), server.join("erin")
    dave.quiet(0.2)
    alice.send("/search zzzqqq")  # no match: every record is read
    time.sleep(0.05)
    began = time.monotonic()
    erin.send("still here?")
    dave.expect("still here", timeout=60)
    assert time.monotonic() - began < 0.5
