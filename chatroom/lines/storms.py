"""Join and leave storms told as one line a second, not one line per person.

When thousands come or go at once (a reconnect after a restart, a network split healing),
telling each arrival to everyone present costs O(n^2): 5000 joins to a room of 5000 are 25
million lines. A ``Storms`` watches each room's joins and leaves: past ``rate`` of them
in a second, in a room of at least ``members`` on this front end, the rest of that second's
are held and told at its end as one notice, ``*** 312 people joined: ann, bob, cy and 309
others``. It keeps the shape of a notice (``*** text``), and no nickname can be "312
people", so a program that reads ``*** NICK joined`` lines never mistakes it for one; such
a program should ask ``/who`` after a summary. Below the rate nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall, IReactorTime

NAMED = 3
"""Nicknames a summary names before "and N others"."""


@dataclass(slots=True)
class _Storm:
    started: float
    count: int = 0
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    timer: IDelayedCall | None = None


Summary = Callable[[str, list[str], list[str]], None]
"""``summary(room, joined, left)``: tell the room who came and went in a storm."""


class Storms:
    """Per room: tell a join or leave now, or hold it for the second's summary."""

    __slots__ = ("_clock", "_rooms", "_settings", "_summary")

    def __init__(
        self, clock: IReactorTime, settings: Callable[[], tuple[int, int]], summary: Summary
    ) -> None:
        """``settings()`` gives ``(members, rate)`` now (they may change on a reload)."""
        self._clock = clock
        self._settings = settings
        self._summary = summary
        self._rooms: dict[str, _Storm] = {}

    def hold(self, key: str, room: str, size: int, joined: bool, nick: str) -> bool:
        """Count a join (or leave) of ``nick`` in ``room`` (``size`` members here); true if
        it is held for the summary instead of being told now."""
        members, rate = self._settings()
        if rate <= 0 and key not in self._rooms:
            return False
        now = self._clock.seconds()
        storm = self._rooms.get(key)
        if storm is None or (now - storm.started >= 1.0 and storm.timer is None):
            if size < members:
                self._rooms.pop(key, None)
                return False
            storm = self._rooms[key] = _Storm(now)
        storm.count += 1
        if storm.timer is None and (rate <= 0 or storm.count <= rate or size < members):
            return False
        (storm.joined if joined else storm.left).append(nick)
        if storm.timer is None:
            storm.timer = self._clock.callLater(
                max(storm.started + 1.0 - now, 0.0), self._tell, key, room
            )
        return True

    def _tell(self, key: str, room: str) -> None:
        storm = self._rooms.pop(key, None)
        if storm is None:
            return
        storm.timer = None
        if storm.joined or storm.left:
            self._summary(room, storm.joined, storm.left)

    def close(self) -> None:
        for storm in self._rooms.values():
            if storm.timer is not None and storm.timer.active():
                storm.timer.cancel()
        self._rooms.clear()


def describe(joined: list[str], left: list[str]) -> str:
    """``312 people joined: ann, bob, cy and 309 others; 2 people left: dee, eve``."""
    parts = []
    for nicks, verb in ((joined, "joined"), (left, "left")):
        if not nicks:
            continue
        people = "1 person" if len(nicks) == 1 else f"{len(nicks)} people"
        named = ", ".join(nicks[:NAMED])
        rest = len(nicks) - NAMED
        if rest > 0:
            named += f" and {rest} other{'s' if rest > 1 else ''}"
        parts.append(f"{people} {verb}: {named}")
    return "; ".join(parts)
