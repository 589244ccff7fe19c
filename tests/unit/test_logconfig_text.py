"""The text log's lines are Twisted's own, though their timestamps are made once a second
(issue 17: a join storm logs two lines a connection)."""

from __future__ import annotations

import io

from twisted.logger import LogLevel, textFileLogObserver

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
