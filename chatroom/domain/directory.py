"""The rooms of the server by name, and who is in each: a view kept in step with events.

The directory is a hub listener, like the fan-outs and the history recorder: it learns
that a room exists from the first ``Joined`` in it, who is in it from ``Joined`` and
``Left``, its topic from ``TopicSet``, and forgets it when the last member leaves. So every
node of a shared hub holds the same view, whoever made the change, and answering ``/who``
or ``/rooms`` never waits for the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chatroom.domain import roommodes, roomnames
from chatroom.domain.events import (
    MODERATION_EVENTS,
    Event,
    Joined,
    Left,
    Present,
    Renamed,
    TopicKnown,
    TopicSet,
)
from chatroom.domain.roommodes import Entry, ServerBan

_MODERATION = frozenset(MODERATION_EVENTS)


@dataclass(slots=True, eq=False)
class RoomState:
    """One room as this node knows it. ``members`` maps member ids to nicknames, in the
    order they joined; ``operators`` holds the ids of the room's operators. The rest is
    its moderation state (``roommodes``): ``voiced`` and ``invited`` members, the ``key``
    and member ``limit`` of modes ``k`` and ``l``, bans and mutes by mask key, and
    ``changed``, the time of the last change to all that."""

    name: str
    created: float
    members: dict[str, str] = field(default_factory=dict)
    operators: set[str] = field(default_factory=set)
    topic: str = ""
    topic_by: str = ""
    topic_time: float = 0.0
    modes: str = ""
    voiced: set[str] = field(default_factory=set)
    invited: set[str] = field(default_factory=set)
    key: str = ""
    limit: int = 0
    bans: dict[str, Entry] = field(default_factory=dict)
    mutes: dict[str, Entry] = field(default_factory=dict)
    changed: float = 0.0
    creator: str = ""  # the member whose join made the room here ("": none, or not known)
    registered: bool = False
    operator_accounts: set[str] = field(default_factory=set)  # of a registered room

    def nicks(self) -> list[str]:
        return list(self.members.values())


_STAYING = frozenset({"part", "kicked", "banned"})
"""Reasons to leave a room that do not mean leaving the server."""


def _node_of(member: str) -> str:
    """The node a member id was made on (``node.n``)."""
    return member.rpartition(".")[0]


class Directory:
    """Rooms by key, and the rooms of each member in the order they joined them.

    ``permanent`` names rooms that stay when empty (the default room; registered rooms
    once moderation can register them). ``server_operators`` maps the ids of members
    signed in as server operators to their nicknames; ``server_bans`` holds the bans
    from the whole server by mask key, and ``lifted_server_bans`` when each lifted since
    this process started (so a node that was down learns of the lifting, not only of
    what is banned, and an older ban does not come back)."""

    __slots__ = ("_alone", "_by_member", "_rooms", "lifted_server_bans", "permanent", "server_bans",
                 "server_operators")

    def __init__(self, permanent: Iterable[str] = ()) -> None:
        self._rooms: dict[str, RoomState] = {}
        # member id -> keys of its rooms, oldest join first: a tuple, since most members are
        # in one room or a few, and a dict of one costs 184 bytes a member
        self._by_member: dict[str, tuple[str, ...]] = {}
        self._alone: dict[str, tuple[str]] = {}  # room key -> (key,): one tuple for all
        self.permanent = {roomnames.key(name) for name in permanent}
        self.server_operators: dict[str, str] = {}
        self.server_bans: dict[str, ServerBan] = {}
        self.lifted_server_bans: dict[str, tuple[float, str]] = {}  # key -> (when, mask)

    def __call__(self, event: Event) -> None:
        kind = type(event)
        if kind is Joined:
            self._joined(event)
        elif kind is Left:
            self._left(event)
        elif kind is Renamed:
            assert isinstance(event, Renamed)
            for key in self._by_member.get(event.member, ()):
                members = self._rooms[key].members
                if event.member in members:
                    members[event.member] = event.new_nick
        elif kind is TopicSet or kind is TopicKnown:
            assert isinstance(event, TopicSet | TopicKnown)
            state = self.find(event.room)
            if state is not None and (kind is TopicSet or event.time >= state.topic_time):
                state.topic, state.topic_by, state.topic_time = event.text, event.nick, event.time
        elif kind is Present:
            assert isinstance(event, Present)
            self._present(event)
        elif kind in _MODERATION:
            roommodes.apply(self, event)

    def _joined(self, event: Event) -> None:
        key = roomnames.key(event.room)
        state = self._rooms.get(key)
        if state is None:
            state = self._rooms[key] = RoomState(event.room, event.time)
            if key not in self.permanent:
                # Whoever creates a room runs it; a permanent room has no owner.
                state.operators.add(event.member)
                state.creator = event.member
                state.modes = "t"
        elif (state.creator and not state.changed and event.time < state.created
              and _node_of(event.member) != _node_of(state.creator)):
            # Two nodes made the room at once, each first hearing its own member's join:
            # the earlier join made it, so that every node agrees on who runs it. (One
            # node's own joins come in order: the first it heard made the room.)
            state.operators.discard(state.creator)
            state.operators.add(event.member)
            state.creator, state.created = event.member, event.time
        state.members[event.member] = event.nick
        state.invited.discard(event.member)
        self._add_room(event.member, key)

    def _present(self, event: Present) -> None:
        """A member as another node has it: in exactly these rooms, quietly."""
        operator_of = {roomnames.key(name) for name in event.operator_of}
        wanted = {roomnames.key(name) for name in event.rooms}
        for key in list(self._by_member.get(event.member, ())):
            if key not in wanted:
                self._left(Left(self._rooms[key].name, event.time, event.member, event.nick))
        for name in event.rooms:
            key = roomnames.key(name)
            state = self._rooms.get(key)
            if state is None:
                state = self._rooms[key] = RoomState(name, event.time)
                if key not in self.permanent:
                    state.modes = "t"
            state.members[event.member] = event.nick
            if key in operator_of:
                state.operators.add(event.member)
            self._add_room(event.member, key)

    def _add_room(self, member: str, key: str) -> None:
        rooms = self._by_member.get(member)
        if rooms is None:  # its first room: the tuple every member in that room alone shares
            alone = self._alone.get(key)
            if alone is None:
                alone = self._alone[key] = (key,)
            self._by_member[member] = alone
        elif key not in rooms:
            self._by_member[member] = (*rooms, key)

    def _left(self, event: Event) -> None:
        key = roomnames.key(event.room)
        state = self._rooms.get(key)
        rooms = self._by_member.get(event.member)
        if rooms is not None:
            rooms = self._by_member[event.member] = tuple(k for k in rooms if k != key)
            if not rooms:
                del self._by_member[event.member]
                if getattr(event, "reason", "") not in _STAYING:
                    self.server_operators.pop(event.member, None)
        if state is None:
            return
        state.members.pop(event.member, None)
        state.operators.discard(event.member)
        state.voiced.discard(event.member)
        if not state.members and key not in self.permanent:
            del self._rooms[key]
            self._alone.pop(key, None)

    def find(self, name: str) -> RoomState | None:
        """The room called ``name`` (any spelling of it), if it exists."""
        return self._rooms.get(roomnames.key(name))

    def rooms(self) -> list[RoomState]:
        return list(self._rooms.values())

    def __len__(self) -> int:
        return len(self._rooms)

    def rooms_of(self, member: str) -> list[str]:
        """The names of the rooms ``member`` is in, oldest join first."""
        return [self._rooms[key].name for key in self._by_member.get(member, ())]

    def ensure(self, name: str, time: float) -> RoomState:
        """A permanent room exists even before anyone is in it."""
        key = roomnames.key(name)
        self.permanent.add(key)
        state = self._rooms.get(key)
        if state is None:
            state = self._rooms[key] = RoomState(name, time)
        return state
