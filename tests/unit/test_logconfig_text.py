"""The text log's lines are Twisted's own, though their timestamps are made once a second
(issue 17: a join storm logs two lines a connection)."""

from __future__ import annotations

import io

from twisted.logger import LogLevel, textFileLogObserver
from twisted.python.failure import Failure

from chatroom.logconfig import text_lines_observer


def test_each_line_is_what_twisteds_text_observer_writes() -> None:
    ours, twisteds = io.StringIO(), io.StringIO()
    observe, expected = text_lines_observer(ours), textFileLogObserver(twisteds)
    base = 1_795_500_000.0
    times = [base, base + 0.5, base + 0.99995, base + 0.9999996, base + 1.0, base + 1.2,
             base + 0.3, base + 3600.7, None]
    for n, when in enumerate(times):
        event = {"log_format": "{nick} joined from {peer}", "nick": f"user{n}",
                 "peer": "127.0.0.1:4000", "log_level": LogLevel.info,
                 "log_namespace": "chatroom.session.Session", "log_system": "-"}
        if when is not None:
            event["log_time"] = when
        observe(event)
        expected(event)
    assert ours.getvalue() == twisteds.getvalue()
    assert ours.getvalue().count("\n") == len(times)


class _Peer:
    host = "127.0.0.1"

    def __repr__(self) -> str:
        return "<peer>"

    def name(self) -> str:
        return "called"


def test_any_event_is_written_as_twisteds_text_observer_writes_it() -> None:
    failure = Failure(ZeroDivisionError("division by zero"))
    events: list[dict[str, object]] = [
        {"log_format": "{nick} joined from {peer}{kind}", "nick": "alice", "peer": "1.2.3.4",
         "kind": ""},
        {"log_format": "{n:>5d} bytes, {rate:.1f}/s", "n": 42, "rate": 2.345},
        {"log_format": "{peer!r} {peer.host} {peer.name()}", "peer": _Peer()},
        {"log_format": "{items[0]} {0} {}", "items": ["x"]},
        {"log_format": "missing {nobody}"},
        {"log_format": "two\nlines {x}", "x": "and\nmore"},
        {"log_format": "", "x": 1},
        {"log_format": "{x}", "x": ""},
        {"log_format": b"bytes {x}", "x": 1},
        {"log_format": "failed {x}", "x": 1, "log_failure": failure},
        {"log_format": "{{literal}} {x}", "x": 1, "log_system": "web"},
        {"log_format": "{x}", "x": 1, "log_level": None},
        {"no_format": True},
    ]
    ours, twisteds = io.StringIO(), io.StringIO()
    observe, expected = text_lines_observer(ours), textFileLogObserver(twisteds)
    for n, event in enumerate(events):
        event = {"log_level": LogLevel.info, "log_namespace": "chatroom.x",
                 "log_time": 1_795_500_000.0 + n, **event}
        if event["log_level"] is None:
            del event["log_level"]
        observe(dict(event))
        expected(dict(event))
        assert ours.getvalue() == twisteds.getvalue(), event
