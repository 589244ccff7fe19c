"""``--max-topic`` reaches the running server (issue 15 leftovers, point 5)."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.serverproc import ServerProcess


def test_max_topic_is_enforced_by_the_server(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--max-topic", "5")
    alice = server.join("alice")
    alice.send("/topic 123456")
    assert alice.expect("^!") == "! a topic has at most 5 characters"
    alice.send("/topic 12345")
    alice.send("/topic")
    assert alice.expect("topic").endswith("12345")
