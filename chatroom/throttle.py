"""A token bucket: how flood control and log rate limits decide what may happen now."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

_ALMOST_ONE = 1.0 - 1e-9
_MIN_WAIT = 0.001  # never schedule a wait so short that the clock would not move


class TokenBucket:
    """Holds up to ``burst`` tokens, refilled at ``rate`` per second; each action takes one."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, clock: IReactorTime) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.seconds()

    def take(self) -> bool:
        """Take a token if one is there; say whether one was."""
        now = self._clock.seconds()
        tokens = self._tokens + (now - self._last) * self.rate
        self._last = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens >= _ALMOST_ONE:  # float sums of refills fall short of 1 by a hair
            self._tokens = max(tokens - 1.0, 0.0)
            return True
        self._tokens = tokens
        return False

    def wait(self) -> float:
        """Seconds until the next token is there (0 if one is there now)."""
        now = self._clock.seconds()
        missing = 1.0 - (self._tokens + (now - self._last) * self.rate)
        if missing <= 1.0 - _ALMOST_ONE:
            return 0.0
        return max(missing / self.rate, _MIN_WAIT)
