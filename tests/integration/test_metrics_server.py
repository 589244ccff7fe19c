"""``twistd chatroom --metrics``: a real server scraped over loopback as Prometheus would, its
text read with prometheus_client's own parser; ``/readyz`` against a real Redis stopped and
started again."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401 (a fixture)
from tests.integration.serverproc import ServerProcess

T = TypeVar("T")

METRICS = ("--metrics", "tcp:0:interface=127.0.0.1")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port: int) -> Samples:
    status, text = get(port, "/metrics")
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def eventually(ask: Callable[[], T], good: Callable[[T], bool], timeout: float = 20) -> T:
    """``ask()``'s first ``good`` answer, asked until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not good(answer := ask()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s; last answer {answer!r}")
        time.sleep(0.05)
    return answer


def test_metrics_follow_members_joining_talking_and_leaving(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, *METRICS, "--history", "history.sqlite3",
                           "--web", "tcp:0:interface=127.0.0.1")
    try:
        port = server.metrics_port
        assert get(port, "/healthz") == (200, "ok\n")
        assert get(port, "/readyz") == (200, "ready\n")
        assert get(port, "/nothing")[0] == 404
        quiet = scrape(port)
        assert value(quiet, "chatroom_members", front_end="line") == 0
        assert value(quiet, "chatroom_rooms") == 1
        assert any(name == "chatroom_build_info" for name, _ in quiet)

        alice, bob = server.join("alice"), server.join("bob")
        for i in range(3):
            alice.send(f"hello {i}")
            bob.expect(f"alice: hello {i}")
        alice.send("x" * 3000)  # over --max-line (2048)
        alice.expect("too long")
        busy = scrape(port)
        assert value(busy, "chatroom_connections", front_end="line") == 2
        assert value(busy, "chatroom_members", front_end="line") == 2
        assert value(busy, "chatroom_sockets_open") == 2
        assert value(busy, "chatroom_lines_in_total", front_end="line") == 2 + 3  # nicknames
        # bob's join to alice, alice's three lines to bob (not the error: a reply)
        assert value(busy, "chatroom_deliveries_total", front_end="line") == 4
        assert value(busy, "chatroom_bytes_out_total", front_end="line") == len(
            "*** bob joined\r\n" + "".join(f"alice: hello {i}\r\n" for i in range(3)))
        assert value(busy, "chatroom_input_refused_total", front_end="line",
                     reason="too_long") == 1
        assert value(busy, "chatroom_input_refused_total", front_end="line",
                     reason="nickname") == 0
        assert value(busy, "chatroom_members", front_end="web") == 0  # each under its name
        assert value(busy, "chatroom_deliveries_total", front_end="web") == 0

        # The history store writes every 200 ms: two joins and three lines.
        stored = eventually(lambda: scrape(port),
                            lambda found: value(found, "chatroom_history_written_total") >= 5)
        assert value(stored, "chatroom_history_queue") == 0
        assert value(stored, "chatroom_history_write_seconds_count") >= 1
        assert value(stored, "chatroom_history_write_seconds_bucket", le="+Inf") == value(
            stored, "chatroom_history_write_seconds_count")

        bob.send("/quit")
        bob.wait_closed()
        eventually(lambda: scrape(port),
                   lambda found: value(found, "chatroom_members", front_end="line") == 1)
    finally:
        server.terminate()
        server.wait()


def test_readyz_turns_503_while_redis_is_away_and_back_when_it_returns(
    tmp_path: Path, redis_server: RedisServer  # noqa: F811 (the fixture)
) -> None:
    server = ServerProcess(tmp_path, *METRICS, "--redis", redis_server.url,
                           "--history", "none")
    try:
        port = server.metrics_port
        eventually(lambda: get(port, "/readyz"), lambda answer: answer == (200, "ready\n"))
        assert value(scrape(port), "chatroom_redis_up") == 1
        alice = server.join("alice")  # in the room while it splits and mends

        redis_server.stop()
        _, body = eventually(lambda: get(port, "/readyz"), lambda answer: answer[0] == 503)
        assert body.startswith("redis: ")
        split = scrape(port)
        assert value(split, "chatroom_redis_up") == 0
        assert value(split, "chatroom_redis_splits_total") == 1
        assert value(split, "chatroom_redis_state", chatroom_redis_state="split") == 1
        assert get(port, "/healthz") == (200, "ok\n")  # alive all the same

        redis_server.start()
        redis_server.wait_ready()
        eventually(lambda: get(port, "/readyz"), lambda answer: answer == (200, "ready\n"))
        whole = scrape(port)
        assert value(whole, "chatroom_redis_up") == 1
        assert value(whole, "chatroom_redis_splits_total") == 1
        alice.expect("split")  # the member, still here, was told both
        alice.expect("whole again")
    finally:
        server.terminate()
        server.wait()
