"""Log lines a client can provoke, at a bounded rate, so bad input cannot flood the log."""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.throttle import TokenBucket


class RateLimitedLog:
    """Passes warnings to ``logger`` while its bucket has tokens; counts the rest.

    The next warning that gets through carries ``suppressed``: how many were dropped since
    the last one, so the operator still learns how bad it was.
    """

    def __init__(
        self, logger: Logger, clock: IReactorTime, rate: float = 10.0, burst: int = 50
    ) -> None:
        self._logger = logger
        self._bucket = TokenBucket(rate, burst, clock)
        self.suppressed = 0

    def warn(self, format: str, **fields: Any) -> None:
        if not self._bucket.take():
            self.suppressed += 1
            return
        if self.suppressed:
            format += " ({suppressed} similar warnings suppressed)"
            fields["suppressed"] = self.suppressed
            self.suppressed = 0
        self._logger.warn(format, **fields)
