"""The rest of one room's fan-out pass, cut short so that the reactor can run.

A pass over 15 000 members is 15 000 ``send()`` calls, a tenth of a second or more. Run in
one go, it holds the reactor that long: nothing is read, nobody is accepted, and a line
that arrives meanwhile waits for the pass to end and then for a pass of its own, so the
last member hears it two passes late. So a scheduled pass stops when its time slice is up,
and the rest of the room is owed what it did not get: a ``Sweep`` goes on from there in the
next turns, a slice at a time.

Lines that arrive for the same room meanwhile join the sweep instead of waiting for it: the
members not yet served get them in the same write as what they are owed, and the members
already served get them as the sweep goes on around the room, starting again from the top.
So a line reaches everyone within about one pass of the room, however busy it is, and the
cost of joining is per stretch of members (``Stretch``), not per member.

Order holds for every member: a sweep's bytes only ever grow at the end, and a member who
gets bytes of its own meanwhile (a sender, an addressee, an answer) first gets what the sweep
owes it, and from then on its share of each line of the room is its own (it is
``detached``), until the sweep ends. A member who joined the room after the sweep began is
detached from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from chatroom.domain.chat import Member


class Recipient(Protocol):
    def send(self, data: bytes) -> None: ...


Group = tuple[str, ...]
"""A room's member ids, in the order the fan-out goes over them."""


class Stretch:
    """Members up to (not including) position ``upto`` are owed these bytes."""

    __slots__ = ("lines", "plain", "prefixed", "upto")

    def __init__(self, upto: int, plain: bytes, prefixed: bytes, lines: int) -> None:
        self.upto = upto
        self.plain = plain  # for a member whose current room this is
        self.prefixed = prefixed  # for a member of it who talks in another room
        self.lines = lines


class Sweep:
    """Where a room's pass stopped, and what each member from there on is owed.

    Positions count on around the (frozen) group: position ``p`` is member ``p % len``,
    the members still owed something are those from ``at`` up to ``end``, and ``end`` is at
    most one round after ``at`` (everyone owed something at most once)."""

    __slots__ = ("_at", "_group", "_held", "_positions", "_stretches", "detached", "key")

    def __init__(
        self,
        key: str,
        group: Group,
        at: int,
        plain: bytes,
        prefixed: bytes,
        lines: int,
        detached: Collection[str],
    ) -> None:
        self.key = key
        self._group = group
        self._at = at
        self._stretches = [Stretch(len(group), plain, prefixed, lines)]
        self.detached = set(detached)
        """Members the sweep does not serve: they get their bytes another way (and those
        who joined the room after it began)."""
        self._positions: dict[str, int] | None = None
        # A detached member's share of the room's lines, kept for the sweep's next coming
        # round to the top of the room (or its end): a newcomer costs one write a round,
        # not one a turn.
        self._held: dict[str, list[bytes]] = {}

    def __bool__(self) -> bool:
        """Whether anything is still owed."""
        return self._at < self._stretches[-1].upto

    def extend(self, plain: bytes, prefixed: bytes, lines: int) -> None:
        """More lines of the room, for everyone: after what each member is owed already."""
        for stretch in self._stretches:
            stretch.plain += plain
            stretch.prefixed = stretch.plain if prefixed is plain else stretch.prefixed + prefixed
            stretch.lines += lines
        around = self._at + len(self._group)
        if self._stretches[-1].upto < around:
            self._stretches.append(Stretch(around, plain, prefixed, lines))

    def take(self, member_id: str, person: Member) -> tuple[bytes, int] | None:
        """What the sweep owes ``member_id`` (bytes, lines), which from now on gets its bytes
        another way (it is detached); None if it owes it nothing."""
        if member_id in self.detached:
            held = self._held.pop(member_id, None)
            return None if held is None else (b"".join(held), 0)  # counted when held
        if self._positions is None:
            self._positions = {member_id: index for index, member_id in enumerate(self._group)}
        position = self._positions.get(member_id)
        if position is None:
            return None
        self.detached.add(member_id)
        at = self._at + (position - self._at) % len(self._group)  # its next turn
        for stretch in self._stretches:
            if at < stretch.upto:
                data = stretch.plain if person.current_key == self.key else stretch.prefixed
                return data, stretch.lines
        return None

    def hold(self, member_id: str, data: bytes) -> None:
        """Bytes for a detached member, sent when the sweep next comes round to the top of
        the room, or ends (or sooner, with ``take``)."""
        held = self._held.get(member_id)
        if held is None:
            self._held[member_id] = [data]
        else:
            held.append(data)

    def _send_held(self, members: Mapping[str, Recipient]) -> None:
        held, self._held = self._held, {}
        for member_id, pieces in held.items():
            recipient = members.get(member_id)
            if recipient is not None:
                recipient.send(b"".join(pieces))

    def serve(
        self,
        deadline: float | None,
        now: Callable[[], float],
        members: Mapping[str, Recipient],
        people: Mapping[str, Member],
        regroup: Callable[[], Group],
    ) -> tuple[int, int]:
        """Send what is owed, in turn, until ``now()`` passes ``deadline`` (None: all of
        it), to those of ``members`` (the room's members now) not detached: deliveries and
        bytes handed out. Each time the sweep comes round to the top of the room it goes on
        over the room as it is now (``regroup``); then, and when it ends, the detached get
        what was held for them."""
        deliveries = sent_bytes = sends = 0
        while True:
            group, size, key = self._group, len(self._group), self.key
            stretches, detached = self._stretches, self.detached
            at = self._at
            end = min(stretches[-1].upto, size)  # this round's part
            stretch = stretches[0]
            while at < end:
                while at >= stretch.upto:
                    stretches.pop(0)
                    stretch = stretches[0]
                member_id = group[at]
                at += 1
                if member_id in detached:
                    continue
                recipient = members.get(member_id)
                if recipient is None:
                    continue  # gone since
                current = people[member_id].current_key == key
                data = stretch.plain if current else stretch.prefixed
                recipient.send(data)
                deliveries += stretch.lines
                sent_bytes += len(data)
                sends += 1
                if sends & 15 == 0 and deadline is not None and now() > deadline:
                    break
            self._at = at
            if at < end:
                break  # the slice is up
            self._send_held(members)  # counted when held
            if at >= stretches[-1].upto:
                del stretches[:-1]
                break  # all served
            self._rebase(regroup())
        return deliveries, sent_bytes

    def _rebase(self, group: Group) -> None:
        """At the top of the room, with more still owed from the top on: go on over the room
        as it is now. Members keep their order in a room (newcomers come last), so what the
        first members are owed maps onto the first members of the new group still in place;
        members who joined since then were detached and now owe nothing, and are served
        with the rest from the next line on."""
        old, size = self._group, len(self._group)
        place = {member_id: index for index, member_id in enumerate(group)}
        stretches = self._stretches
        while stretches and stretches[0].upto <= size:
            stretches.pop(0)
        mapped = 0  # old members still in place, so far: their index in the new group
        old_index = 0
        kept: set[str] = set()
        for stretch in stretches:
            upto = stretch.upto - size
            while old_index < upto:
                member_id = old[old_index]
                old_index += 1
                if place.get(member_id) == mapped:
                    if member_id in self.detached:
                        kept.add(member_id)
                    mapped += 1
            stretch.upto = mapped
        self._group = group
        self._at = 0
        self.detached = kept
        self._positions = None
