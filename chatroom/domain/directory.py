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

from chatroom.domain import roomnames
from chatroom.domain.events import Event, Joined, Left, Present, Renamed, TopicKnown, TopicSet


@dataclass(slots=True, eq=False)
class RoomState:
    """One room as this node knows it. ``members`` maps member ids to nicknames, in the
    order they joined; ``operators`` holds the ids of the room's operators."""

    name: str
    created: float
    members: dict[str, str] = field(default_factory=dict)
    operators: set[str] = field(default_factory=set)
    topic: str = ""
    topic_by: str = ""
    topic_time: float = 0.0
    modes: str = ""

    def nicks(self) -> list[str]:
        return list(self.members.values())


class Directory:
    """Rooms by key, and the rooms of each member in the order they joined them.

    ``permanent`` names rooms that stay when empty (the default room; registered rooms
    once moderation can register them)."""

    __slots__ = ("_by_member", "_rooms", "permanent")

    def __init__(self, permanent: Iterable[str] = ()) -> None:
        self._rooms: dict[str, RoomState] = {}
        self._by_member: dict[str, dict[str, None]] = {}
        self.permanent = {roomnames.key(name) for name in permanent}

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

    def _joined(self, event: Event) -> None:
        key = roomnames.key(event.room)
        state = self._rooms.get(key)
        if state is None:
            state = self._rooms[key] = RoomState(event.room, event.time)
            if key not in self.permanent:
                # Whoever creates a room runs it; a permanent room has no owner.
                state.operators.add(event.member)
                state.modes = "t"
        state.members[event.member] = event.nick
        self._by_member.setdefault(event.member, {})[key] = None

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
            self._by_member.setdefault(event.member, {})[key] = None

    def _left(self, event: Event) -> None:
        key = roomnames.key(event.room)
        state = self._rooms.get(key)
        rooms = self._by_member.get(event.member)
        if rooms is not None:
            rooms.pop(key, None)
            if not rooms:
                del self._by_member[event.member]
        if state is None:
            return
        state.members.pop(event.member, None)
        state.operators.discard(event.member)
        if not state.members and key not in self.permanent:
            del self._rooms[key]

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

    def is_in(self, member: str, name: str) -> bool:
        return roomnames.key(name) in self._by_member.get(member, ())

    def ensure(self, name: str, time: float) -> RoomState:
        """A permanent room exists even before anyone is in it."""
        key = roomnames.key(name)
        self.permanent.add(key)
        state = self._rooms.get(key)
        if state is None:
            state = self._rooms[key] = RoomState(name, time)
        return state

    def forget_member(self, member: str) -> list[str]:
        """Drop ``member`` from every room without an event (a hub that lost track of a
        node); returns the rooms it was in."""
        names = self.rooms_of(member)
        for name in names:
            self._left(Left(name, 0.0, member, ""))
        return names
