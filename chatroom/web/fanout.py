"""Room events to the browsers connected here: one frame per event, batched per reactor turn.

Unlike the line front end's ``Fanout``, the sender gets its own events back: a browser has
no local echo, so the page shows what you said when the room has it, in room order (your
line appears between the lines that really came before and after it). A private message
goes to its addressee and back to its sender, nobody else. Every recipient of an event gets
the same bytes; events of one reactor turn are joined into one write per browser. A browser
that joined mid-turn gets only what came after its join. Replies to one member (errors,
``/who``) queue behind the events already pending for it, so it sees them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from chatroom.domain.events import Event, Whispered
from chatroom.web import messages


class Recipient(Protocol):
    def send(self, data: bytes) -> None: ...


class WebFanout:
    """The web members of one room on this process, and the frames on their way to them."""

    def __init__(
        self, clock: IReactorTime, render: Callable[[Event], bytes] = messages.render
    ) -> None:
        self._clock = clock
        self._render = render
        self._members: dict[str, Recipient] = {}
        # (addressees, or None for everyone; the frame), in delivery order
        self._pending: list[tuple[tuple[str, str] | None, bytes]] = []
        self._joined_late: dict[str, int] = {}
        self._flush_call: IDelayedCall | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member_id: str, recipient: Recipient) -> None:
        """``recipient`` gets every event delivered from now on."""
        self._members[member_id] = recipient
        if self._pending:
            self._joined_late[member_id] = len(self._pending)

    def remove(self, member_id: str) -> None:
        self._members.pop(member_id, None)
        self._joined_late.pop(member_id, None)

    def deliver(self, event: Event) -> None:
        """Queue ``event`` for this turn's write; the hub calls this."""
        if self.closed:
            return
        to = (event.member, event.target) if isinstance(event, Whispered) else None
        self._pending.append((to, self._render(event)))
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self.flush)

    def reply(self, member_id: str, recipient: Recipient, data: bytes) -> None:
        """Bytes for one member only (an error, ``/who``), after the events already queued
        for it: the echo of a line comes before the error about the next one."""
        if self._pending and member_id in self._members:
            self._pending.append(((member_id, member_id), data))
        else:
            recipient.send(data)

    def flush(self) -> None:
        """Write everything queued: one write per member."""
        call, self._flush_call = self._flush_call, None
        if call is not None and call.active():  # flushed early, by a member leaving
            call.cancel()
        pending, self._pending = self._pending, []
        joined_late, self._joined_late = self._joined_late, {}
        if not pending:
            return
        members = self._members
        private = any(to is not None for to, _ in pending)
        if not private and not joined_late:
            data = pending[0][1] if len(pending) == 1 else b"".join([d for _, d in pending])
            for recipient in list(members.values()):
                recipient.send(data)
            return
        common = b"".join([data for to, data in pending if to is None])
        special: set[str] = set(joined_late)
        for to, _ in pending:
            if to is not None:
                special.update(to)
        for member_id, recipient in list(members.items()):
            if member_id not in special:
                if common:
                    recipient.send(common)
                continue
            start = joined_late.get(member_id, 0)
            mine = b"".join(
                [data for to, data in pending[start:] if to is None or member_id in to]
            )
            if mine:
                recipient.send(mine)

    def close(self) -> None:
        """Deliver nothing more: the server is stopping."""
        self.closed = True
        self._pending = []
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
