"""Password guessing, slowed down: per account (or operator name) and per address.

Each wrong password makes the next try on the same keys wait: ``first`` seconds after the
first failure, twice as long after each next one, ``longest`` at most; a right one forgets
the keys. So a person who mistypes waits a second, while a script guessing one account
from many addresses, or many accounts from one address, gets a guess a minute. The wait
holds the guesser's connection (it is not read meanwhile), nobody else's.

Memory is bounded: at most ``max_keys`` keys are kept, the least recently failed go first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater


class Guesses:
    """Failures by key, and how long the next guess on a key must wait."""

    def __init__(self, clock: IReactorTime, longest: float = 60.0, first: float = 1.0,
                 max_keys: int = 100_000) -> None:
        self._clock = clock
        self.longest = longest
        self.first = first
        self.max_keys = max_keys
        self._failed: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (n, until)

    def delay(self, keys: Iterable[str]) -> float:
        """Seconds the next guess on ``keys`` must wait (0: none)."""
        now = self._clock.seconds()
        waits = [self._failed[key][1] - now for key in keys if key in self._failed]
        return max([0.0, *waits])

    def wait(self, keys: Iterable[str]) -> Deferred[None]:
        """Fires when a guess on ``keys`` may be checked."""
        delay = self.delay(keys)
        if delay <= 0:
            return succeed(None)
        return deferLater(self._clock, delay, lambda: None)

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock.seconds()
        for key in keys:
            count = self._failed.pop(key, (0, 0.0))[0] + 1
            wait = min(self.first * 2 ** min(count - 1, 30), self.longest)
            self._failed[key] = (count, now + wait)
        while len(self._failed) > self.max_keys:
            self._failed.popitem(last=False)

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failed.pop(key, None)

    def __len__(self) -> int:
        return len(self._failed)
