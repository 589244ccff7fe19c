"""A test clock with reactor turns, for code that yields to the reactor on purpose."""

from __future__ import annotations

from twisted.internet.task import Clock


class Reactor(Clock):
    """A test clock with reactor turns: a turn runs the calls due when it began, and a call
    made during a turn waits for the next one (``Clock.advance`` would run it at once)."""

    def turn(self) -> None:
        due = [call for call in self.calls if call.getTime() <= self.seconds()]
        for call in due:
            if call in self.calls:
                self.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)
