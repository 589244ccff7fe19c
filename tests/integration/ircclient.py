"""An IRC client from PyPI (jaraco's ``irc``) driven step by step, with bounded waits."""

from __future__ import annotations

import time
from collections.abc import Callable

import irc.client

TIMEOUT = 10.0


class LibClient:
    """One ``irc.client`` connection; every event it gets is kept in ``events``."""

    def __init__(self, port: int, nick: str, realname: str = "", password: str | None = None,
                 sasl_login: str | None = None) -> None:
        """``password`` alone is sent with PASS; with ``sasl_login``, by SASL PLAIN."""
        self.reactor = irc.client.Reactor()
        self.events: list[irc.client.Event] = []
        self._seen = 0
        self.reactor.add_global_handler("all_events", self._keep, -10)
        self.connection = self.reactor.server().connect(
            "127.0.0.1", port, nick, password=password, ircname=realname or nick,
            sasl_login=sasl_login,
        )

    def _keep(self, connection: irc.client.ServerConnection, event: irc.client.Event) -> None:
        self.events.append(event)

    def wait(
        self, kind: str, match: Callable[[irc.client.Event], bool] = lambda e: True,
        timeout: float = TIMEOUT,
    ) -> irc.client.Event:
        """The next event of ``kind`` that ``match`` accepts (earlier ones are passed)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._seen < len(self.events):
                event = self.events[self._seen]
                self._seen += 1
                if event.type == kind and match(event):
                    return event
            if time.monotonic() > deadline:
                kinds = [(e.type, e.arguments) for e in self.events[-15:]]
                raise AssertionError(f"no {kind} event within {timeout} s; last: {kinds}")
            self.reactor.process_once(0.05)

    def said(self, kind: str, text: str) -> irc.client.Event:
        return self.wait(kind, lambda e: bool(e.arguments) and e.arguments[-1] == text)

    def close(self) -> None:
        self.connection.close()
