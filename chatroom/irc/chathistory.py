"""IRCv3 CHATHISTORY (draft/chathistory): a room's history from the server's own store.

``LATEST``, ``BEFORE``, ``AFTER``, ``AROUND`` and ``BETWEEN`` read one channel's history
(the client must be in it) with ``IHistory.page``; ``TARGETS`` lists the channels the
client is in that had messages between two times. References are ``*`` (LATEST only),
``timestamp=`` (server-time) or ``msgid=`` (a msgid this server gave: it holds the line's
exact time, so it names a place in the history). Answers are batches of PRIVMSGs with
their times and msgids; joins, parts and renames are not played back (no event-playback).
Private messages are never kept, so a nickname's history is always empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, ensureDeferred

from chatroom.history.store import MAX_ID, Kind, Position, Record
from chatroom.irc.message import Message, build
from chatroom.irc.protocol import command
from chatroom.irc.render import parse_msgid, parse_time, server_time

if TYPE_CHECKING:
    from chatroom.irc.protocol import IRCProtocol

SUBCOMMANDS = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS")
SPOKEN = (Kind.SAID, Kind.ACTED)
OVERREAD = 4
"""Records read per message wanted: joins and leaves in between are read and dropped."""


class Refused(Exception):
    """A FAIL reply: ``(code, *context, description)``."""


@command("CHATHISTORY")
def irc_chathistory(self: IRCProtocol, message: Message) -> Deferred[None] | None:
    params = message.params
    sub = params[0].upper() if params else ""
    if sub not in SUBCOMMANDS:
        _fail(self, "INVALID_PARAMS", sub or "*", "Unknown CHATHISTORY subcommand")
        return None
    needed = 4 if sub == "BETWEEN" else 3
    if len(params) - 1 < needed:
        _fail(self, "NEED_MORE_PARAMS", sub, "Not enough parameters")
        return None
    if self.factory.services.history is None:
        _fail(self, "MESSAGE_ERROR", sub, "History is off on this server")
        return None
    return ensureDeferred(_answer(self, sub, params[1:]))


def _fail(self: IRCProtocol, code: str, *context: str) -> None:
    self.reply(build(self.server, "FAIL", "CHATHISTORY", code, *context))


def _limit(self: IRCProtocol, text: str) -> int:
    most: int = self.factory.info.history_max
    if not text.isdigit():
        raise Refused("INVALID_PARAMS", text, "The limit must be a number")
    return max(1, min(int(text), most))


async def _answer(self: IRCProtocol, sub: str, args: list[str]) -> None:
    try:
        if sub == "TARGETS":
            await _targets(self, args)
        else:
            await _read(self, sub, args)
    except Refused as e:
        _fail(self, e.args[0], sub, *e.args[1:])


async def _read(self: IRCProtocol, sub: str, args: list[str]) -> None:
    history = self.factory.services.history
    assert history is not None
    target = args[0]
    member = self.session.member
    state = self.factory.chat.directory.find(target) if target.startswith("#") else None
    if target.startswith("#") and (state is None or member is None
                                    or member.id not in state.members):
        raise Refused("INVALID_TARGET", target, "You are not in that channel")
    limit = _limit(self, args[-1])
    if state is None:  # a nickname: private messages are never kept
        self.reply(self.history_batch("chathistory", target, [], batched=True))
        return
    room = state.name
    records: list[Record]
    if sub == "LATEST":
        after = None if args[1] == "*" else await _position(self, room, args[1], after=True)
        records = await _page(self, room, after, None, limit, newest=True)
    elif sub == "BEFORE":
        before = await _position(self, room, args[1], after=False)
        records = await _page(self, room, None, before, limit, newest=True)
    elif sub == "AFTER":
        after = await _position(self, room, args[1], after=True)
        records = await _page(self, room, after, None, limit, newest=False)
    elif sub == "AROUND":
        before = await _position(self, room, args[1], after=False)
        after = await _position(self, room, args[1], after=True)
        older = await _page(self, room, None, before, limit // 2, newest=True)
        newer = await _page(self, room, after, None, limit - len(older), newest=False)
        records = older + newer
    else:  # BETWEEN
        first = await _position(self, room, args[1], after=True)
        second = await _position(self, room, args[2], after=False)
        if first < second:
            records = await _page(self, room, first, second, limit, newest=False)
        else:  # backwards: the newest before the first reference, back to the second
            low = await _position(self, room, args[2], after=True)
            high = await _position(self, room, args[1], after=False)
            records = await _page(self, room, low, high, limit, newest=True)
    self.reply(self.history_batch("chathistory", room, records, batched=True))


async def _page(
    self: IRCProtocol, room: str, after: Position | None, before: Position | None,
    limit: int, newest: bool,
) -> list[Record]:
    """Up to ``limit`` chat lines and actions of ``room`` between the positions."""
    history = self.factory.services.history
    assert history is not None
    if limit <= 0:
        return []
    found = await history.page(room, after, before, limit * OVERREAD, newest)
    spoken = [record for record in found if record.kind in SPOKEN]
    return spoken[max(len(spoken) - limit, 0):] if newest else spoken[:limit]


async def _position(self: IRCProtocol, room: str, ref: str, after: bool) -> Position:
    """Where ``ref`` stands; for a time, just after it or just before it."""
    kind, _, value = ref.partition("=")
    if kind == "timestamp":
        moment = parse_time(value)
        if moment is None:
            raise Refused("INVALID_PARAMS", ref, "Not a timestamp")
        return (moment, MAX_ID if after else -1)
    if kind == "msgid":
        parsed = parse_msgid(value)
        if parsed is None:
            raise Refused("INVALID_PARAMS", ref, "Not a msgid of this server")
        line, moment = parsed
        history = self.factory.services.history
        assert history is not None
        same_time = await history.page(room, (moment, -1), (moment, MAX_ID), 50, newest=False)
        for record in same_time:
            if record.line_id == line:
                return (record.time, record.id)
        return (moment, MAX_ID if after else -1)  # gone from the store: its time will do
    raise Refused("INVALID_PARAMS", ref, "A reference is timestamp= or msgid=")


async def _targets(self: IRCProtocol, args: list[str]) -> None:
    history = self.factory.services.history
    assert history is not None
    first = await _position(self, "", args[0], after=True)
    second = await _position(self, "", args[1], after=False)
    low, high = min(first[0], second[0]), max(first[0], second[0])
    limit = _limit(self, args[2])
    member = self.session.member
    assert member is not None
    latest: list[tuple[float, str]] = []
    for room in self.factory.chat.directory.rooms_of(member.id):
        found = await _page(self, room, (low, MAX_ID), (high, -1), 1, newest=True)
        if found:
            latest.append((found[-1].time, room))
    latest.sort()
    ref = self.next_batch()
    tag = b"@batch=" + ref.encode() + b" "
    self.reply(
        build(self.server, "BATCH", "+" + ref, "draft/chathistory-targets", trailing=False)
        + b"".join(tag + build(self.server, "CHATHISTORY", "TARGETS", room, server_time(moment),
                               trailing=False)
                   for moment, room in latest[:limit])
        + build(self.server, "BATCH", "-" + ref, trailing=False)
    )
