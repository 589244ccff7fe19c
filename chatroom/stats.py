"""What the server counts as it works: plain numbers, read by the metrics endpoint.

The counting is kept out of the hot paths' way: a front end's fan-out adds up the
deliveries and bytes of a whole pass once it is done (never once per recipient), a session
adds one to an int per line it handles, and everything else (connections, members, rooms,
the history queue) is read where it already is, when someone asks (``chatroom.metrics``).
Nothing here knows Prometheus; nothing here allocates per line.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter


class Tally:
    """One front end's counts since the server started; its ``Fanout`` holds it, and the
    front end's sessions count into it."""

    __slots__ = ("bytes_out", "deliveries", "lines_in", "refused", "slow_readers")

    def __init__(self) -> None:
        self.lines_in = 0
        """Lines (web: messages) the sessions handled: chat, commands, nicknames."""
        self.deliveries = 0
        """What the fan-out's passes handed to members' connections, one per member each:
        room events, private lines, notices, and replies that waited behind them (a reply
        sent at once is not counted)."""
        self.bytes_out = 0
        """The bytes of those deliveries."""
        self.slow_readers = 0
        """Connections cut because they did not read what was sent to them."""
        self.refused: Counter[str] = Counter()
        """Refused input by what it was about (``Session.refuse``'s ``what``), and
        ``flood`` for each time a connection was slowed to its allowance."""


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
"""Upper bounds, in seconds, of the history's write-latency histogram."""


class Latency:
    """A histogram of durations, for something that happens a few times a second at most
    (a batch of history written): counts per bucket, their sum and how many."""

    __slots__ = ("bounds", "buckets", "count", "last", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.count = 0
        self.total = 0.0
        self.last = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.total += seconds
        self.last = seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """``(upper bound, observations at or under it)`` for each bucket and ``+Inf``, as
        Prometheus histograms count them."""
        out: list[tuple[str, int]] = []
        seen = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.buckets, strict=True):
            seen += count
            out.append((bound, seen))
        return out
