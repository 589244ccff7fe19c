"""Registered rooms and server bans into the state file, and back at start.

``StateKeeper`` is a hub listener: when a registered room changes (its registration, a
mode, a ban or mute, its topic) it writes the whole room once, at the end of the reactor
turn, however many changes the turn had; a server ban is written or deleted as it comes.
``restore`` puts what the file holds into a directory before anyone connects.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.accounts.statedb import MaskRecord, RoomRecord, ServerBanRecord, StateStore
from chatroom.domain import masks, roomnames
from chatroom.domain.directory import Directory, RoomState
from chatroom.domain.errors import BadMask
from chatroom.domain.events import (
    Event,
    MaskSet,
    ModeSet,
    RoomKnown,
    RoomRegistered,
    ServerBanSet,
    TopicSet,
)
from chatroom.domain.roommodes import Entry, ServerBan

_ROOM_CHANGES = frozenset((RoomRegistered, ModeSet, MaskSet, TopicSet, RoomKnown))


def record(state: RoomState) -> RoomRecord:
    """A registered room as the state file keeps it."""
    kept = [MaskRecord(kind, entry.mask.text, entry.by, entry.time, entry.reason)
            for kind, entries in (("b", state.bans), ("q", state.mutes))
            for entry in entries.values()]
    return RoomRecord(
        roomnames.key(state.name), state.name, state.topic, state.topic_by,
        state.topic_time, state.modes, state.key, state.limit, state.changed,
        tuple(sorted(state.operator_accounts)), tuple(kept),
    )


class StateKeeper:
    """Writes registered rooms and server bans as they change."""

    _log = Logger()

    def __init__(self, store: StateStore, directory: Directory, clock: IReactorTime) -> None:
        self.store = store
        self.directory = directory
        self._clock = clock
        self._due: set[str] = set()
        self._call: IDelayedCall | None = None

    def __call__(self, event: Event) -> None:
        kind = type(event)
        if kind is ServerBanSet:
            assert isinstance(event, ServerBanSet)
            self._server_ban(event)
        elif kind in _ROOM_CHANGES:
            state = self.directory.find(event.room)
            if state is not None and state.registered:
                self._due.add(state.name)
                if self._call is None:
                    self._call = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write the rooms that changed this turn."""
        self._call = None
        due, self._due = self._due, set()
        for name in due:
            state = self.directory.find(name)
            if state is not None and state.registered:
                self.store.save_room(record(state)).addErrback(self._not_kept, name)

    def _server_ban(self, event: ServerBanSet) -> None:
        """Write the change if the directory took it: one older than what this node knows
        (a node that missed the later one told it) is not written either."""
        try:
            key = masks.parse(event.mask).key
        except BadMask:
            return
        held = self.directory.server_bans.get(key)
        if event.change == "+":
            if held is None or held.time != event.time:
                return
            ban = ServerBanRecord(held.mask.text, held.by, held.time, held.until, held.reason)
            self.store.save_server_ban(ban).addErrback(self._not_kept, event.mask)
        elif held is None:
            self.store.delete_server_ban(event.mask).addErrback(self._not_kept, event.mask)

    def _not_kept(self, failure: Failure, what: str) -> None:
        self._log.failure("could not write {what} to the state file", failure, what=what)


def restore(store: StateStore, directory: Directory, now: float) -> None:
    """Registered rooms and live server bans from the state file into ``directory``."""
    for room in store.rooms:
        state = directory.ensure(room.name, room.time)
        state.registered = True
        state.operator_accounts = set(room.operators)
        state.topic, state.topic_by, state.topic_time = room.topic, room.topic_by, room.topic_time
        state.modes, state.key, state.limit = room.modes, room.room_key, room.limit
        state.changed = room.time
        for kept in room.masks:
            try:
                mask = masks.parse(kept.mask)
            except BadMask:
                continue
            entries = state.bans if kept.kind == "b" else state.mutes
            entries[mask.key] = Entry(mask, kept.by, kept.time, kept.reason)
    for ban in store.server_bans:
        if ban.until and ban.until <= now:
            continue
        try:
            mask = masks.parse(ban.mask)
        except BadMask:
            continue
        directory.server_bans[mask.key] = ServerBan(mask, ban.by, ban.time, ban.until,
                                                     ban.reason)
