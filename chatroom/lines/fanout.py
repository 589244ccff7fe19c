"""Room events to the members connected to one front end, batched once per reactor turn.

A member may be in several rooms: the fan-out keeps, for each room, which of its members are
in it (from the ``Joined`` and ``Left`` events of its own members), sends a room's lines to
those, and gives a line of a room that is not a member's current one its ``prefix`` form
(``#dev alice: hi``; the web's JSON names the room in every message and needs none). A
rename and a private line belong to people, not rooms: a rename goes once to everyone who
shares a room with the renamer, a private line (and an invitation) to its addressee. A
member kicked or banned from a room is told so too, before it leaves the room.

Every event is rendered to bytes once. Events that arrive in the same turn of the reactor
are joined into one buffer, and each member gets that one buffer in one write: under load
many lines share a write (and a ``send()``), at low load a line still leaves within the
turn it arrived in. A private line goes to its addressee only (a private line to oneself is
delivered: it is addressed, not broadcast), and a member who joined mid-turn gets only what
came after its join, so the order each member sees is the order the hub delivered.

Two front ends, two habits: a terminal echoes what its user typed, so the line front end
does not send a member's own lines back (``echo=False``); a web page has no local echo, so
the web front end does (``echo=True``: public lines to everyone, a private line to its
sender too), and queues its replies behind what is already on its way (``reply``).

A busy room's reactor would spend all its time writing: a write per member costs about the
same for one line as for ten, and while one pass over a big room runs the next lines
arrive, so passes follow each other back to back. So while passes take more than half
of the time (``BUSY``, averaged over the last few), the next pass starts ``REST`` x D after
the last one ended, D being how long it took (20 ms at most): lines that arrive meanwhile
share its writes. A room whose passes take less gets no rest: the reactor's poll counts
whole milliseconds, and a quiet line should not wait for one. At 3000 lines/s to 1000
members that cut the server's CPU by a third (0.34 to 0.23 s per million deliveries) and did
not raise the latency: the rest is shorter than the passes it saves. Nor does a room rest
whose lines come too seldom for a rest to gather another one (``GATHER``): at 500 lines/s
to 100 members passes take half the time, but each carries one line, and resting only made
every line later (p99 at 500 lines/s, the median of five runs: 2.3 against 1.7 ms).

A pass over one room that the reactor scheduled sends for ``SLICE`` at most; then the
reactor runs (reads, accepts, timers) and the pass goes on next turn where it stopped, as a
``Sweep`` (``chatroom.lines.sweep``) that owes the rest of the room its bytes. Lines of that
room that arrive meanwhile join the sweep: the members not yet served get them in the same
write, the others as the sweep comes round again, so in a room of 15 000 a line waits about
one pass, not two (p99 at 100 lines/s: 420 to 290 ms). ``flush`` still writes everything at
once (a server stopping); before a member's command or departure, ``flush_for`` writes what
that member is owed, and the rest of the room gets theirs in turn.

The fan-out also counts what its passes hand out (``tally``: deliveries and their bytes,
for the metrics endpoint), a pass at a time: the loops over members count only the members
they skip or send a room's prefixed form to, and the totals are added up once the pass is
done. A reply that goes out at once, not behind a pass, is not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from itertools import chain
from typing import Protocol, cast

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from chatroom.domain.chat import Member
from chatroom.domain.events import (
    VIEW_EVENTS,
    Event,
    Invited,
    Joined,
    Left,
    Renamed,
    Whispered,
)
from chatroom.domain.roomnames import key as room_key
from chatroom.lines.render import render
from chatroom.lines.storms import Storms, describe
from chatroom.lines.sweep import Sweep
from chatroom.stats import Tally

_QUIET = frozenset(VIEW_EVENTS)

REST = 0.5
"""In a busy room, after a pass over the members that took D seconds, the next waits until
REST x D later."""

BUSY = 0.5
"""The share of time spent in passes (a moving average) above which a room is busy."""

MAX_REST = 0.02
"""The longest such wait, in seconds, whatever the clock says."""

GATHER = 1.0
"""Lines a rest must be expected to gather (at the rate the last passes carried them) for a
busy room to take it."""

SLICE = 0.002
"""Seconds a scheduled pass over a room may send for before it lets the reactor run; the
rest of the room is owed what it did not get (``chatroom.lines.sweep``)."""


class Recipient(Protocol):
    def send(self, data: bytes) -> None: ...


Prefix = Callable[[str, bytes], bytes]
"""``prefix(room, data)``: the bytes of a line of ``room`` for a member whose current room
is another one."""

# A queued item: (room key, or None for a person's or the server's; the room's name;
# sender id; addressee: None for all, an id, or the set of ids of a rename; the bytes)
_Item = tuple[str | None, str, str, "str | frozenset[str] | None", bytes]


class Fanout:
    """The members on one front end, their rooms, and the bytes on their way to them."""

    def __init__(
        self,
        clock: IReactorTime,
        render: Callable[[Event], bytes] = render,
        echo: bool = False,
        rest: float = REST,
        prefix: Prefix | None = None,
        notice: Callable[[str], bytes] | None = None,
        storms: Callable[[], tuple[int, int]] | None = None,
        slice: float = SLICE,
    ) -> None:
        """``notice`` renders a server notice; with it and ``storms`` (which gives
        ``(members, rate)``), joins and leaves past that rate in a second, in a room of that
        many members here, are told as one summary at the end of the second (see
        ``storms``)."""
        self._clock = clock
        self._rest = rest
        self._slice = slice
        self._sweep: Sweep | None = None  # a room's pass that is still owing
        self._sweep_began = 0.0  # when the pass that is still owing began
        self._pass_ended = clock.seconds()
        self._pass_took = 0.0
        self._busy = 0.0  # moving average of the share of time spent in passes
        self._carried = 0  # items the pass under way has taken on so far
        self._gather = 0.0  # moving average of the items a rest would gather
        self._render = render
        self._prefix = prefix
        self._echo = echo
        self._members: dict[str, Recipient] = {}
        self._people: dict[str, Member] = {}
        self._rooms: dict[str, dict[str, Recipient]] = {}
        # member id -> keys of its rooms here: a tuple, since most members are in one room
        # or a few and a set costs 216 bytes a member
        self._member_rooms: dict[str, tuple[str, ...]] = {}
        self._alone: dict[str, tuple[str]] = {}  # room key -> (key,), shared by its members
        self._lost: str | None = None  # a member whose connection is gone, leaving (lost)
        # room key -> its members here, in order (the room's dict, frozen for a pass): ids
        # only, looked up as they are served (a tuple per member was 72 bytes each)
        self._groups: dict[str, tuple[str, ...]] = {}
        self._pending: list[_Item] = []
        # (member id, room key or None) -> index in _pending from which it gets that room's
        # items (None: the items of no room): a member gets only what came after it joined.
        self._late: dict[tuple[str, str | None], int] = {}
        self._flush_call: IDelayedCall | None = None
        self._flushing = False
        self.closed = False
        self._notice = notice
        self._storms: Storms | None = None
        if notice is not None and storms is not None:
            self._storms = Storms(clock, storms, self._summary)
        self.tally = Tally()
        """This front end's counts: what the fan-out hands out, and what its sessions
        take in."""

    def __len__(self) -> int:
        return len(self._members)

    @property
    def busy(self) -> bool:
        """Whether lines are on their way: queued, or owed by a pass under way."""
        return self._sweep is not None or bool(self._pending)

    def add(self, member: Member, recipient: Recipient) -> None:
        """``recipient`` gets ``member``'s share of every event delivered from now on."""
        self._members[member.id] = recipient
        self._people[member.id] = member
        if self._pending:
            self._late[(member.id, None)] = len(self._pending)

    def lost(self, member_id: str) -> None:
        """``member_id``'s connection is gone and it is about to leave: nothing can reach it,
        so its leaving its rooms does not flush what is queued (``remove`` ends this)."""
        self._lost = member_id

    def remove(self, member_id: str) -> None:
        if self._lost == member_id:
            self._lost = None
        if self._members.pop(member_id, None) is None:
            return
        del self._people[member_id]
        for key in self._member_rooms.pop(member_id, ()):
            group = self._rooms.get(key)
            if group is not None and group.pop(member_id, None) is not None:
                self._regroup(key, group)
        for late in [late for late in self._late if late[0] == member_id]:
            del self._late[late]

    def _regroup(self, key: str, group: dict[str, Recipient]) -> None:
        self._groups.pop(key, None)
        if not group:
            del self._rooms[key]
            self._alone.pop(key, None)

    def _group(self, key: str) -> tuple[str, ...]:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = tuple(self._rooms.get(key, ()))
        return group

    def deliver(self, event: Event) -> None:
        """Queue ``event`` for this turn's write; the hub calls this."""
        if self.closed:
            return
        kind = type(event)
        if kind in _QUIET:
            return  # a view of who is where, for directories: nothing to show
        if kind is Whispered or kind is Invited:
            assert isinstance(event, Whispered | Invited)
            self._queue((None, "", event.member, event.target, self._render(event)))
            return
        room = event.room
        if room:
            key = room_key(room)
            if kind is Joined or kind is Left:
                kicked = kind is Left and bool(cast(Left, event).by)
                storms = self._storms
                held = not kicked and storms is not None and storms.hold(
                    key, room, len(self._rooms.get(key, ())), kind is Joined, event.nick
                )
                if event.member in self._members:
                    if kicked:
                        self._removed(event, room)
                    self._moved(event.member, key, kind is Joined, queued=not held)
                if held:
                    return
            self._queue((key, room, event.member, None, self._render(event)))
        elif kind is Renamed:
            assert isinstance(event, Renamed)
            sharing: set[str] = set()
            for name in event.rooms:
                sharing.update(self._rooms.get(room_key(name), ()))
            if not self._echo:
                sharing.discard(event.member)  # the renamer is told by its own reply
            self._queue((None, "", event.member, frozenset(sharing), self._render(event)))
        else:  # a notice to everyone on the server
            self._queue((None, "", event.member, None, self._render(event)))

    def _removed(self, event: Event, room: str) -> None:
        """A member of this front end was kicked or banned from ``room``: it is told so
        (with the room's name), like the room, before it leaves it."""
        data = self._render(event)
        if self._prefix is not None:
            data = self._prefix(room, data)
        self._queue((None, "", "", event.member, data))

    def _moved(self, member_id: str, key: str, joined: bool, queued: bool = True) -> None:
        """One of this front end's members entered or left a room (``queued``: the line
        that says so is queued next)."""
        if joined:
            if self._sweep is not None and self._sweep.key == key:
                self._sweep.detached.add(member_id)
            group = self._rooms.setdefault(key, {})
            group[member_id] = self._members[member_id]
            rooms = self._member_rooms.get(member_id, ())
            if not rooms:
                alone = self._alone.get(key)
                if alone is None:
                    alone = self._alone[key] = (key,)
                self._member_rooms[member_id] = alone
            elif key not in rooms:
                self._member_rooms[member_id] = (*rooms, key)
            self._groups.pop(key, None)
            # Nothing of the room from before the join, nor the join itself.
            self._late[(member_id, key)] = len(self._pending) + (1 if queued else 0)
            return
        leaving = self._rooms.get(key)
        if leaving is None or member_id not in leaving:
            return
        if member_id != self._lost:
            self.flush_for(member_id)  # what the room said before it left still reaches it
        del leaving[member_id]
        if member_id in self._member_rooms:
            self._member_rooms[member_id] = tuple(
                k for k in self._member_rooms[member_id] if k != key)
        self._late.pop((member_id, key), None)
        self._regroup(key, leaving)

    def reply(self, member_id: str, recipient: Recipient, data: bytes) -> None:
        """Bytes for one member only (an error, a ``/who`` answer), after the events
        already queued for it."""
        if (self._pending or self._sweep is not None) and member_id in self._members:
            self._queue((None, "", member_id, member_id, data))
        else:
            # Not counted: the line front end's members get the passes' own writes this
            # way too, and a check here would cost every delivery something.
            recipient.send(data)

    def _queue(self, item: _Item) -> None:
        self._pending.append(item)
        if self._flush_call is None:
            wait = 0.0
            if self._busy > BUSY and self._gather >= GATHER and self._sweep is None:
                now = self._clock.seconds()
                wait = min(self._pass_ended + self._rest * self._pass_took - now, MAX_REST)
            self._flush_call = self._clock.callLater(max(wait, 0.0), self._scheduled)

    def flush(self) -> None:
        """Write everything queued and owed, now: one write per member."""
        self._run(None)

    def flush_for(self, member_id: str) -> None:
        """Write everything queued and owed to ``member_id`` now (before its command is
        answered, or before it leaves a room): in a busy room the others get theirs in turn,
        not all at once."""
        self._run(self._clock.seconds())  # a slice already up: queued lines join a sweep
        sweep, person = self._sweep, self._people.get(member_id)
        if sweep is None or person is None:
            return
        owed = sweep.take(member_id, person)
        if owed is not None:
            data, lines = owed
            self._members[member_id].send(data)
            self.tally.deliveries += lines
            self.tally.bytes_out += len(data)

    def _scheduled(self) -> None:
        """The turn's pass: over a room, it sends for a slice of time at most (``SLICE``)
        and owes the rest, which goes out in the next turns."""
        self._run(self._clock.seconds() + self._slice)

    def _run(self, deadline: float | None) -> None:
        if self._flushing:
            # Called from inside a flush (a member dropped while being written to): what
            # was queued meanwhile goes out in the turn already scheduled, after this one,
            # so nobody gets newer bytes before older ones.
            return
        self._flushing = True
        if self._sweep is None:
            self._sweep_began = self._clock.seconds()
        try:
            self._flush(deadline)
        finally:
            self._flushing = False
            self._ran()

    def _ran(self) -> None:
        """After a pass, or a slice of one: the rest of it goes on next turn; once it is
        over, how busy passes keep the reactor decides when the next may start (``REST``)."""
        if self._sweep is not None and not self._sweep:
            self._sweep = None
        if self._sweep is not None:
            if self._flush_call is None and not self.closed:
                self._flush_call = self._clock.callLater(0, self._scheduled)
        else:
            ended = self._clock.seconds()
            took = max(ended - self._sweep_began, 0.0)
            since = ended - self._pass_ended  # this pass, and the gap before it
            share = took / since if since > took else 1.0 if took > 0 else 0.0
            self._busy = 0.75 * self._busy + 0.25 * share
            # items came at carried / since a second, and a rest lasts rest x took
            self._gather = 0.75 * self._gather + 0.25 * self._carried * self._rest * share
            self._carried = 0
            self._pass_ended, self._pass_took = ended, took

    def _flush(self, deadline: float | None) -> None:
        call, self._flush_call = self._flush_call, None
        if call is not None and call.active():  # flushed early (a member leaving)
            call.cancel()
        pending, self._pending = self._pending, []
        self._carried += len(pending)
        late, self._late = self._late, {}
        sweep = self._sweep
        if sweep is not None and (deadline is None or not _joins(sweep.key, pending)):
            # Whatever is owed goes before anything new that the sweep cannot carry.
            self._serve(sweep, None)
            self._sweep = sweep = None
        if not pending:
            if sweep is not None:
                self._serve(sweep, deadline)
            return
        if len(pending) == 1 and not late and not self._echo and sweep is None:
            key, room, sender, target, data = pending[0]
            if key is not None and target is None:
                # The commonest case at low load: one line to a room but its sender.
                self._send_room(key, room, sender, data, deadline)
                return
        # Which rooms this pass touches, what each room's members share, and who gets
        # something of their own: senders, addressees, late joiners, members of several
        # touched rooms, and everyone when the server speaks to all.
        rooms: dict[str, str] = {}
        common: dict[str, list[bytes]] = {}
        special: set[str] = {member_id for member_id, _ in late}
        everyone = False
        # Where each member's own share is: the items of each room, and those of no room
        # (a member's share is walked over its rooms' items only, not the whole pass).
        by_room: dict[str, list[int]] = {}
        personal: list[int] = []
        for index, (key, room, sender, target, data) in enumerate(pending):
            if key is None:
                personal.append(index)
            else:
                by_room.setdefault(key, []).append(index)
            if target is None:
                if key is None:
                    everyone = True
                    continue
                rooms[key] = room
                common.setdefault(key, []).append(data)
                if not self._echo:
                    special.add(sender)
            elif isinstance(target, str):
                special.add(target)
                if self._echo:
                    special.add(sender)
            else:
                special.update(target)
                if self._echo:
                    special.add(sender)
        if everyone:
            special.update(self._members)
        elif len(rooms) > 1:
            seen: set[str] = set()
            for key in rooms:
                for member_id in self._rooms.get(key, ()):
                    if member_id in seen:
                        special.add(member_id)
                    seen.add(member_id)
        prefix = self._prefix
        people = self._people
        # Only a pass over one room is cut short (a sweep carries one room's lines).
        cut = deadline if len(rooms) == 1 and not everyone else None
        deliveries = sent_bytes = 0
        joining: tuple[bytes, bytes, int] | None = None  # for the pass under way, if any
        for key, room in rooms.items():
            lines = common[key]
            plain = b"".join(lines)
            prefixed = prefix(room, plain) if prefix is not None else plain
            if sweep is not None:  # the pass under way takes them on, after the specials
                joining = (plain, prefixed, len(lines))
                continue
            delivered, handed = self._send_group(key, plain, prefixed, len(lines), special, cut)
            deliveries += delivered
            sent_bytes += handed
        sweep = self._sweep
        members = self._members
        for member_id in special:
            own = members.get(member_id)
            if own is None:
                continue
            mine = self._share(member_id, pending, late, by_room, personal)
            if sweep is not None:
                owed = sweep.take(member_id, people[member_id])
                if owed is not None:  # what the sweep owes it goes first
                    mine.insert(0, owed[0])
                    deliveries += owed[1] - 1
            if mine:
                data = b"".join(mine)
                deliveries += len(mine)
                sent_bytes += len(data)
                own.send(data)
        tally = self.tally
        tally.deliveries += deliveries
        tally.bytes_out += sent_bytes
        if sweep is not None:
            if joining is not None:
                deliveries, sent_bytes = self._to_detached(sweep, special, *joining)
                tally.deliveries += deliveries
                tally.bytes_out += sent_bytes
                sweep.extend(*joining)
            if deadline is not None:  # the sweep moves on every turn, however busy
                deadline = max(deadline, self._clock.seconds() + self._slice / 2)
            self._serve(sweep, deadline)

    def _to_detached(
        self, sweep: Sweep, special: set[str], plain: bytes, prefixed: bytes, lines: int
    ) -> tuple[int, int]:
        """The room's lines of this turn for the members the sweep does not serve (and who
        get nothing else this turn), held until it comes round to the top of the room:
        deliveries and bytes."""
        room = self._rooms.get(sweep.key, {})
        people = self._people
        key = sweep.key
        sent = sent_bytes = 0
        for member_id in sweep.detached:
            recipient = room.get(member_id)
            if recipient is None or member_id in special:
                continue
            data = plain if people[member_id].current_key == key else prefixed
            sweep.hold(member_id, data)
            sent += 1
            sent_bytes += len(data)
        return sent * lines, sent_bytes

    def _serve(self, sweep: Sweep, deadline: float | None) -> None:
        key = sweep.key
        deliveries, sent_bytes = sweep.serve(
            deadline, self._clock.seconds, self._rooms.get(key, {}), self._people,
            lambda: self._group(key))
        tally = self.tally
        tally.deliveries += deliveries
        tally.bytes_out += sent_bytes

    def _send_room(
        self, key: str, room: str, sender: str, data: bytes, deadline: float | None
    ) -> None:
        prefixed = self._prefix(room, data) if self._prefix is not None else data
        deliveries, sent_bytes = self._send_group(key, data, prefixed, 1, (sender,), deadline)
        tally = self.tally
        tally.deliveries += deliveries
        tally.bytes_out += sent_bytes

    def _send_group(
        self,
        key: str,
        plain: bytes,
        prefixed: bytes,
        lines: int,
        skip: Collection[str],
        cut: float | None,
    ) -> tuple[int, int]:
        """A room's bytes to its members here but ``skip``, ``prefixed`` to those who talk
        in another room, until the clock passes ``cut``: the rest of the room is then owed
        them by a sweep. Deliveries and bytes handed out."""
        group = self._group(key)
        in_room = self._rooms.get(key, {})
        people = self._people
        now = self._clock.seconds
        sent = others = 0
        for member_id in group:
            if member_id in skip:
                continue
            recipient = in_room.get(member_id)
            if recipient is None:
                continue  # gone during this pass
            if people[member_id].current_key == key:
                recipient.send(plain)
            else:
                others += 1
                recipient.send(prefixed)
            sent += 1
            if not sent & 15 and cut is not None and now() > cut:
                at = group.index(member_id) + 1
                self._sweep = Sweep(key, group, at, plain, prefixed, lines, skip)
                break
        return sent * lines, (sent - others) * len(plain) + others * len(prefixed)

    def _share(
        self,
        member_id: str,
        pending: list[_Item],
        late: dict[tuple[str, str | None], int],
        by_room: dict[str, list[int]],
        personal: list[int],
    ) -> list[bytes]:
        """What of this pass is for ``member_id``, in order: one piece per event or reply."""
        person = self._people[member_id]
        echo = self._echo
        prefix = self._prefix
        parts: list[bytes] = []
        start_none = late.get((member_id, None), 0)
        lists = [by_room[key] for key in self._member_rooms.get(member_id, ()) if key in by_room]
        if personal:
            lists.append(personal)
        if not lists:
            return parts
        indices = lists[0] if len(lists) == 1 else sorted(chain.from_iterable(lists))
        for index in indices:
            key, room, sender, target, data = pending[index]
            if key is None:
                if index < start_none:
                    continue
                if target is None:
                    wanted = True
                elif isinstance(target, str):
                    wanted = target == member_id or (echo and sender == member_id)
                else:
                    wanted = (member_id in target) or (echo and sender == member_id)
                if wanted:
                    parts.append(data)
                continue
            if sender == member_id and not echo:
                continue
            if index < late.get((member_id, key), 0) or index < start_none:
                continue
            if member_id not in self._rooms.get(key, ()):
                continue
            if person.current_key == key or prefix is None:
                parts.append(data)
            else:
                parts.append(prefix(room, data))
        return parts

    def _summary(self, room: str, joined: list[str], left: list[str]) -> None:
        """A storm's second is over: one notice to the room for all who came and went."""
        if self.closed or self._notice is None:
            return
        self._queue((room_key(room), room, "", None, self._notice(describe(joined, left))))

    def close(self) -> None:
        """Deliver nothing more: the server is stopping."""
        self.closed = True
        if self._storms is not None:
            self._storms.close()
        self._pending = []
        self._sweep = None
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None


def _joins(key: str, pending: list[_Item]) -> bool:
    """Whether a sweep of room ``key`` can carry these items on: lines of that room, and
    bytes for particular members (they get theirs, with what the sweep owes them, at once).
    Anything else (another room's lines, a notice to everyone) must wait for the sweep."""
    for item_key, _, _, target, _ in pending:
        if item_key is None:
            if target is None:
                return False
        elif item_key != key:
            return False
    return True
