"""A room's moderation state, and how each moderation event changes it.

The directory calls ``apply`` for every event in ``MODERATION_EVENTS``, on every node, so
every node holds the same modes, roles, bans and mutes, whoever changed them. Nothing here
checks permissions: that is ``Moderation``'s, on the node of the member who asked; an
event is a change that was allowed.

Modes (``FLAGS``): ``m`` moderated (only operators and voiced members speak), ``i``
invite-only, ``k`` key (``/join #dev KEY``), ``t`` topic locked to operators, ``l`` member
limit, ``s`` secret (not in ``/rooms`` for outsiders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from chatroom.domain import masks
from chatroom.domain.errors import BadMask
from chatroom.domain.events import (
    Event,
    Invited,
    MaskSet,
    ModeSet,
    Opered,
    RoleSet,
    RoomKnown,
    RoomRegistered,
    ServerBanSet,
)

if TYPE_CHECKING:
    from chatroom.domain.directory import Directory, RoomState

FLAGS = "mitkls"
"""The room modes, in the order they are shown."""

WITH_ARGUMENT = "kl"
"""Modes set with an argument (``+k KEY``, ``+l 10``); cleared without one."""

ROLES = {"o": "operator", "v": "voice"}
LISTS = {"b": "ban", "q": "mute"}


@dataclass(slots=True, eq=False)
class Entry:
    """One ban or mute: its mask, who set it, when, why; for a mute, the ids of the
    members it stays on whatever they are called later."""

    mask: masks.Mask
    by: str
    time: float
    reason: str = ""
    members: set[str] = field(default_factory=set)

    def encode(self) -> str:
        """The entry as one string, for ``RoomKnown``."""
        fields = (self.mask.text, self.by, repr(self.time), self.reason,
                  ",".join(sorted(self.members)))
        return "\t".join(value.replace("\t", " ") for value in fields)

    @classmethod
    def decode(cls, text: str) -> Entry | None:
        parts = text.split("\t")
        if len(parts) != 5:
            return None
        try:
            mask = masks.parse(parts[0])
            time = float(parts[2])
        except (BadMask, ValueError):
            return None
        members = {member for member in parts[4].split(",") if member}
        return cls(mask, parts[1], time, parts[3], members)


@dataclass(slots=True, eq=False)
class ServerBan:
    """One ban from the whole server."""

    mask: masks.Mask
    by: str
    time: float
    until: float  # 0: for ever
    reason: str = ""

    def active(self, now: float) -> bool:
        return not self.until or now < self.until


def shown_modes(state: RoomState, with_key: bool = True) -> str:
    """``+mtl 10`` style, ``+`` alone for none: the flags, then the arguments."""
    flags = "".join(flag for flag in FLAGS if flag in state.modes)
    args = []
    if "k" in flags and with_key:
        args.append(state.key)
    if "l" in flags:
        args.append(str(state.limit))
    return " ".join(["+" + flags, *args])


def apply(directory: Directory, event: Event) -> None:
    """Change the directory's state as ``event`` says (a moderation event)."""
    kind = type(event)
    if kind is ServerBanSet:
        assert isinstance(event, ServerBanSet)
        _server_ban(directory, event)
        return
    if kind is Opered:
        directory.server_operators[event.member] = event.nick
        return
    state = directory.find(event.room)
    if state is None and (kind is RoomRegistered or (
            kind is RoomKnown and cast(RoomKnown, event).registered)):
        state = directory.ensure(event.room, event.time)  # kept, even with nobody in it
    if state is None:
        return  # a room this node no longer has: nobody is in it to be ruled
    if kind is RoomRegistered:
        assert isinstance(event, RoomRegistered)
        directory.ensure(state.name, state.created)
        state.registered = True
        state.operator_accounts = set(event.accounts)
        return
    if kind is RoomKnown:
        assert isinstance(event, RoomKnown)
        if event.time >= state.changed:
            _known(state, event)
        return
    if kind is ModeSet:
        assert isinstance(event, ModeSet)
        _mode(state, event.change)
    elif kind is RoleSet:
        assert isinstance(event, RoleSet)
        _role(state, event)
    elif kind is MaskSet:
        assert isinstance(event, MaskSet)
        _mask(state, event)
    elif kind is Invited:
        assert isinstance(event, Invited)
        state.invited.add(event.target)
    state.changed = max(state.changed, event.time)


def _mode(state: RoomState, change: str) -> None:
    if len(change) < 2 or change[0] not in "+-" or change[1] not in FLAGS:
        return
    on, flag, argument = change[0] == "+", change[1], change[2:].strip()
    if flag == "k":
        state.key = argument if on else ""
        on = on and bool(argument)
    elif flag == "l":
        try:
            state.limit = int(argument) if on else 0
        except ValueError:
            return
        on = on and state.limit > 0
    modes = state.modes.replace(flag, "")
    state.modes = "".join(f for f in FLAGS if f in modes or (on and f == flag))


def _role(state: RoomState, event: RoleSet) -> None:
    change = event.change
    if len(change) != 2 or change[1] not in ROLES:
        return
    people = state.operators if change[1] == "o" else state.voiced
    if change[0] == "+" and event.target in state.members:
        people.add(event.target)
    elif change[0] == "-":
        people.discard(event.target)


def _mask(state: RoomState, event: MaskSet) -> None:
    change = event.change
    if len(change) != 2 or change[1] not in LISTS:
        return
    entries = state.bans if change[1] == "b" else state.mutes
    try:
        mask = masks.parse(event.mask)
    except BadMask:
        return
    if change[0] == "+":
        entry = entries.get(mask.key)
        if entry is None:
            entry = entries[mask.key] = Entry(mask, event.nick, event.time, event.reason)
        if event.target:
            entry.members.add(event.target)
        return
    entries.pop(mask.key, None)
    if event.target:  # the member it named, under whatever mask named them before
        for key in [key for key, entry in entries.items() if event.target in entry.members]:
            del entries[key]


def _server_ban(directory: Directory, event: ServerBanSet) -> None:
    """Set or lift a server ban, unless this node knows of a later change to it: a node
    that comes back is told what the others hold, and tells them what it holds, and the
    later of two changes wins (by their time). A live change (one with a member, the
    operator) is the later by the stream's order, whatever its node's clock says."""
    try:
        mask = masks.parse(event.mask)
    except BadMask:
        return
    key = mask.key
    held = directory.server_bans.get(key)
    lifted = directory.lifted_server_bans.get(key)
    latest = max(held.time if held is not None else 0.0,
                 lifted[0] if lifted is not None else 0.0)
    if not event.member and event.time < latest:
        return  # a view older than what this node knows (a live change is later)
    if event.change == "+":
        directory.server_bans[key] = ServerBan(
            mask, event.nick, event.time, event.until, event.reason
        )
        directory.lifted_server_bans.pop(key, None)
    else:
        directory.server_bans.pop(key, None)
        directory.lifted_server_bans[key] = (event.time, mask.text)


def snapshot(state: RoomState, room: str) -> RoomKnown:
    """The room's moderation state as one view event."""
    return RoomKnown(
        room, state.changed, "", "", state.modes, state.key, state.limit,
        tuple(sorted(state.operators)), tuple(sorted(state.voiced)),
        tuple(entry.encode() for entry in state.bans.values()),
        tuple(entry.encode() for entry in state.mutes.values()),
        tuple(sorted(state.invited)), int(state.registered),
        tuple(sorted(state.operator_accounts)),
    )


def _known(state: RoomState, event: RoomKnown) -> None:
    state.modes = "".join(flag for flag in FLAGS if flag in event.modes)
    state.key, state.limit = event.key, event.limit
    state.operators = set(event.operators)
    state.voiced = set(event.voiced)
    state.invited = set(event.invited)
    if event.registered:
        state.registered = True
        state.operator_accounts = set(event.accounts)
    for entries, encoded in ((state.bans, event.bans), (state.mutes, event.mutes)):
        entries.clear()
        for text in encoded:
            entry = Entry.decode(text)
            if entry is not None:
                entries[entry.mask.key] = entry
    state.changed = event.time
