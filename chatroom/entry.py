"""Newcomers and leavers take turns: a join or reset storm must not hold up the room's lines.

Signing in is the costliest thing a client asks for: a nickname check, a room to enter, a
replay of what was said, a welcome. Half a millisecond each, it is nothing until 5 000
people reconnect at once (a restart, a network split healing): the reactor reads them all
in one turn, and the lines of everyone already in the room wait a second or more behind
them. So until a client has signed in, each line it sends waits for the pacer: within one
reactor turn, inputs of clients who are not in yet are handled for ``ENTRY_BUDGET`` seconds
at most, and the others wait (their reading paused, nothing lost) for the next turns, first
come first served. Between turns the reactor runs everything else, the room's fan-out
among it. While no fan-out has lines on their way (``watch``), newcomers take longer turns
(``IDLE_BUDGET``), since pausing them every few milliseconds would only slow them down
(15 000 joining an idle server: 7.5 s unpaced, 9.5 s at 4 ms a turn). But not unbounded
ones: the fan-out is idle between two of its passes too, and during a storm a turn that let
every waiting newcomer in at such a moment held the room's next lines up for 300 ms.

Leaving takes turns with them (``depart``). When 5 000 connections are reset at once, the
reactor learns of all of them in one poll, and each leaving (its rooms told, its nickname
freed, a log line) costs 70 µs: 400 ms in one turn. So past the turn's budget a lost
connection's leaving waits in the same line as the newcomers. Nothing can reach it any
more, so the wait costs it nothing; its nickname is free a few turns later. Except when the
server stops (``stop``): then every waiting leaving runs at once, and later ones do not
wait, so the rooms hear them, the history records them and other servers learn of them
before the hub and the history close.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

_log = Logger()

ENTRY_BUDGET = 0.004
"""Seconds per reactor turn spent on the input of clients who have not signed in yet."""

IDLE_BUDGET = 0.02
"""The same while no fan-out has lines on their way."""


class Holdable(Protocol):
    """An input gate: ``hold``/``release`` stop and restart its client's input."""

    closed: bool

    def hold(self, reason: str) -> None: ...
    def release(self, reason: str) -> None: ...


class _Leaving:
    """A lost connection's leaving, waiting in line like a newcomer's input."""

    __slots__ = ("_leave",)
    closed = False

    def __init__(self, leave: Callable[[], None]) -> None:
        self._leave = leave

    def hold(self, reason: str) -> None:
        pass

    def release(self, reason: str) -> None:
        # A bug in one leaving must not leave those waiting behind it held.
        try:
            self._leave()
        except Exception:
            _log.failure("a lost connection's leaving failed")


class EntryPacer:
    """Lets the input of clients who are not in yet, and the leaving of those whose
    connection is gone, through, a turn's budget at a time."""

    __slots__ = ("_began", "_budget", "_busy", "_clock", "_idle_budget", "_next_turn",
                 "_passing", "_stopping", "_waiting")

    def __init__(
        self, clock: IReactorTime, budget: float = ENTRY_BUDGET,
        idle_budget: float = IDLE_BUDGET,
    ) -> None:
        self._clock = clock
        self._budget = budget
        self._idle_budget = max(idle_budget, budget)
        self._began: float | None = None  # when this turn's first entry was let through
        self._next_turn: IDelayedCall | None = None
        self._waiting: deque[Holdable] = deque()
        self._passing: Holdable | None = None  # the one the next turn lets through
        self._busy: list[Callable[[], bool]] = []
        self._stopping = False

    def watch(self, busy: Callable[[], bool]) -> None:
        """``busy()`` says whether other work waits for the reactor (a fan-out's lines):
        only then do newcomers past the budget wait."""
        self._busy.append(busy)

    def _others_wait(self) -> bool:
        return any(busy() for busy in self._busy)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def admit(self, gate: Holdable) -> bool:
        """May this client's input be handled now? If not, its gate is held until its turn
        comes (``release("entry")``)."""
        if gate is self._passing:
            return True
        now = self._clock.seconds()
        if self._began is None:
            self._start_turn(now)
            return True
        if not self._waiting and not self._spent(now - self._began):
            return True
        gate.hold("entry")
        self._waiting.append(gate)
        self._schedule()
        return False

    def depart(self, leave: Callable[[], None]) -> None:
        """A connection is gone: ``leave`` runs now if this turn's budget allows, else in a
        later turn, in line with the newcomers; at once when the server is stopping."""
        if self._stopping:
            leave()
            return
        now = self._clock.seconds()
        if self._began is None:
            self._start_turn(now)
        elif self._waiting or self._spent(now - self._began):
            self._waiting.append(_Leaving(leave))
            self._schedule()
            return
        leave()

    def stop(self) -> None:
        """The server is stopping: the leavings still waiting run now, in order, and later
        ones at once (``depart``). The front ends' goodbyes, then the history and the hub
        closing, come after: a leaving left waiting ran when the history no longer
        recorded it, or never. Newcomers still waiting stay held: they are being closed."""
        self._stopping = True
        waiting = self._waiting
        self._waiting = deque(gate for gate in waiting if type(gate) is not _Leaving)
        for gate in waiting:
            if type(gate) is _Leaving:
                gate.release("entry")

    def _spent(self, used: float) -> bool:
        """Has this turn used its budget, ``used`` seconds in?"""
        if used < self._budget:
            return False
        return used >= self._idle_budget or self._others_wait()

    def _start_turn(self, now: float) -> None:
        self._began = now
        self._schedule()

    def _schedule(self) -> None:
        if self._next_turn is None:
            self._next_turn = self._clock.callLater(0, self._turn)

    def _turn(self) -> None:
        """A new turn: let the waiting through, oldest first, while the budget lasts."""
        self._next_turn = None
        self._began = None
        waiting = self._waiting
        while waiting:
            gate = waiting.popleft()
            if gate.closed:
                continue
            now = self._clock.seconds()
            if self._began is None:
                self._start_turn(now)
            elif self._spent(now - self._began):
                waiting.appendleft(gate)
                self._schedule()
                return
            self._passing = gate
            try:
                gate.release("entry")
            finally:
                self._passing = None
