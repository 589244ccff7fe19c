"""Room events to the members connected here, batched once per reactor turn.

Every event is rendered to bytes once. Events that arrive in the same turn of the reactor
are joined into one buffer, and each member gets that one buffer in one write: under load
many lines share a write (and a ``send()``), at low load a line still leaves within the
turn it arrived in. The sender of a line does not get it back, the addressee of a private
line is the only one to get it, and a member who joined mid-turn gets only what came after
its join, so the order each member sees is the order the hub delivered. A private line to
oneself is delivered: it is addressed, not broadcast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from chatroom.domain.events import Event, Whispered
from chatroom.lines.render import render


class Recipient(Protocol):
    def send(self, data: bytes) -> None: ...


class Fanout:
    """The members of one room on this front end, and the bytes on their way to them."""

    def __init__(self, clock: IReactorTime, render: Callable[[Event], bytes] = render) -> None:
        self._clock = clock
        self._render = render
        self._members: dict[str, Recipient] = {}
        self._everyone: tuple[Recipient, ...] | None = ()
        # (sender id, addressee id or None for everyone, bytes), in delivery order
        self._pending: list[tuple[str, str | None, bytes]] = []
        self._joined_late: dict[str, int] = {}
        self._flush_call: IDelayedCall | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member_id: str, recipient: Recipient) -> None:
        """``recipient`` gets every event delivered from now on."""
        self._members[member_id] = recipient
        self._everyone = None
        if self._pending:
            self._joined_late[member_id] = len(self._pending)

    def remove(self, member_id: str) -> None:
        if self._members.pop(member_id, None) is not None:
            self._everyone = None
        self._joined_late.pop(member_id, None)

    def deliver(self, event: Event) -> None:
        """Queue ``event`` for this turn's write; the hub calls this."""
        if self.closed:
            return
        target = event.target if isinstance(event, Whispered) else None
        self._pending.append((event.member, target, self._render(event)))
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write everything queued: one write per member."""
        self._flush_call = None
        pending, self._pending = self._pending, []
        joined_late, self._joined_late = self._joined_late, {}
        if not pending:
            return
        everyone = self._everyone
        if everyone is None:
            everyone = self._everyone = tuple(self._members.values())
        if len(pending) == 1 and not joined_late:
            self._flush_one(pending[0], everyone)
            return
        special = set(joined_late)
        for sender, target, _ in pending:
            special.add(sender)
            if target is not None:
                special.add(target)
        common = b"".join([data for _, target, data in pending if target is None])
        members = self._members
        special_recipients = {members[m]: m for m in special if m in members}
        for recipient in everyone:
            member_id = special_recipients.get(recipient)
            if member_id is None:
                if common:
                    recipient.send(common)
                continue
            start = joined_late.get(member_id, 0)
            mine = b"".join(
                [
                    data
                    for sender, target, data in pending[start:]
                    if target == member_id or (target is None and sender != member_id)
                ]
            )
            if mine:
                recipient.send(mine)

    def _flush_one(
        self, item: tuple[str, str | None, bytes], everyone: tuple[Recipient, ...]
    ) -> None:
        sender, target, data = item
        members = self._members
        if target is not None:
            recipient = members.get(target)
            if recipient is not None:
                recipient.send(data)
            return
        skip = members.get(sender)
        for recipient in everyone:
            if recipient is not skip:
                recipient.send(data)

    def close(self) -> None:
        """Deliver nothing more: the server is stopping."""
        self.closed = True
        self._pending = []
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
