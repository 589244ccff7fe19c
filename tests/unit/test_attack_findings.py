"""Holes found by attacking main (review/attack), as unit tests where they can be: each failed
before its fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.helpers import Server, serving


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as s:
        yield s


def test_a_line_said_before_a_switch_keeps_the_shape_of_the_room_current_then(
    server: Server,
) -> None:
    alice, bob = server.members("alice", "bob")
    for client in (alice, bob):
        client.send("/join #dev")
    server.flush()
    bob.send("/join #lobby")  # bob talks in #lobby, and is still in #dev
    server.flush()
    for client in (alice, bob):
        client.clear()
    alice.send("said in dev")  # in one turn of the reactor: alice's line, then bob's switch
    bob.send("/join #dev")
    server.flush()
    assert bob.lines() == ["#dev alice: said in dev", "*** now talking in #dev"]
