"""A reload reaches the IRC front end as it does the line one: flood control, the output
cap and the PING interval change for the IRC connections already open, new ones get the
new limits, and ISUPPORT tells the room rules now in force."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_rehash import Rehashing
from tests.unit.test_reload import result

BASE = 'history = "none"\nport = 9000\n'
BEFORE = BASE + ("rate = 100\nburst = 100\nmax-out = 65536\nirc-ping = 120\n"
                 "max-rooms-per-member = 20\n")
AFTER = BASE + ("rate = 1\nburst = 3\nmax-out = 8192\nirc-ping = 30\n"
                "max-rooms-per-member = 5\n")


def test_open_and_new_irc_connections_take_the_new_limits(tmp_path: Path) -> None:
    running = Rehashing(tmp_path, BEFORE)
    server = running.server
    alice = server.irc("alice")
    choosing = server.irc_connect()  # not registered yet: a session too
    running.path.write_text(AFTER)
    outcome = result(running.reloader.reload("test"))
    assert outcome.applied, outcome.refusals
    assert "irc-ping 120.0 -> 30.0" in outcome.changes
    newcomer = server.irc_connect()
    for client in (alice, choosing, newcomer):
        protocol = client.protocol
        bucket = protocol.session.gate
        assert (bucket.rate, bucket.burst) == (1.0, 3)
        assert protocol.outbox is not None and protocol.outbox._cap == 8192

    alice.send("VERSION")
    assert any("CHANLIMIT=#:5" in line for line in alice.lines())


def test_a_shorter_ping_interval_holds_for_open_connections_at_once(tmp_path: Path) -> None:
    running = Rehashing(tmp_path, BEFORE)
    server = running.server
    alice = server.irc("alice")
    server.clock.advance(10)
    running.path.write_text(AFTER)
    assert result(running.reloader.reload("test")).applied
    server.clock.advance(20)  # 30 s of silence: by the new interval, time to ask
    assert [line.split(" ")[0] for line in alice.lines()] == ["PING"]
    server.clock.advance(30)  # and as long again unanswered: gone
    assert alice.closing
