"""What the Redis hub keeps in Redis: key names, stream entries, and the Lua scripts.

Layout, for the server whose default room is ``#lobby`` (the ``{#lobby}`` hash tag keeps
its keys in one cluster slot, so the scripts may touch them together; every room of the
server shares them, since nicknames and the stream are the server's):

- ``chatroom:{#lobby}:log``: a stream, trimmed to about ``backlog`` entries. Every event
  a node publishes is one entry ``n`` (origin node) ``s`` (its sequence number there)
  ``e`` (the event as JSON), plus ``o`` (the node it speaks for) on the ``Left`` events
  a survivor writes for a dead node's members (with ``s`` 0: a script runs once). Readers
  drop an entry whose ``s`` is not above the last seen from ``n``: a node may send an
  entry twice after a reconnect; a gap means entries were trimmed before being read.
  The events of every room are in it (each names its room). ``Hello`` entries (``e`` is
  ``["Hello"]``) ask the other nodes to say who they have where (``Present``) and the
  topics they know (``TopicKnown``), for a node that just came.
- ``chatroom:{#lobby}:nick:<key>``: who holds a nickname (server-wide),
  ``member TAB node TAB nick``, with a time to live of one lease, renewed by its node.
- ``chatroom:{#lobby}:node:<node>``: a node's heartbeat, living two thirds of a lease.
- ``chatroom:{#lobby}:reap:<node>``: set once by the survivor that announced a dead node's
  members as left; the node deletes it if it comes back, and so learns it was reaped.
- ``chatroom:{#lobby}:heard``: exists while Redis keeps hearing the room: every renewal sets
  it to live a quarter of a lease. Gone means no node reached Redis for that long: Redis
  restarted (with or without its data), was frozen, or every node was away.
- ``chatroom:{#lobby}:settling``: set for one heartbeat (two thirds of a lease) when a
  renewal finds ``heard`` gone. While it lives, a missing heartbeat says nothing about a
  node (it may have been waiting for Redis like the others): nobody is reaped.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from chatroom.domain.events import (
    MODERATION_EVENTS,
    AccountSet,
    Acted,
    Event,
    Joined,
    Killed,
    Left,
    Notice,
    Present,
    Renamed,
    Said,
    TopicKnown,
    TopicSet,
    Whispered,
)

_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (Joined, Left, Renamed, Said, Acted, Whispered, Notice, TopicSet, Present,
                TopicKnown, Killed, AccountSet, *MODERATION_EVENTS)
}
_FIELDS: dict[type[Event], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _TYPES.values()
}
_REQUIRED: dict[type[Event], int] = {
    cls: sum(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )
    for cls in _TYPES.values()
}
"""Fields an entry must have: one written by an older node may lack later ones that have
defaults (``Left.by``)."""
_STRING_FIELDS = frozenset({"room", "member", "nick", "reason", "new_nick", "text", "target",
                            "target_nick", "message", "by", "change", "mask", "modes", "key",
                            "name", "hash"})
_NUMBER_FIELDS = frozenset({"time", "until", "limit", "registered"})
_ROOMS_FIELDS = frozenset({"rooms", "operator_of", "operators", "voiced", "bans", "mutes",
                           "invited", "accounts"})

HELLO = b'["Hello"]'
"""The payload of a node that just came: the others answer with ``Present`` and
``TopicKnown`` entries."""


class BadEntry(ValueError):
    """A stream entry this version cannot read: logged and skipped, never fatal."""


class Keys:
    """The names of one room's keys."""

    def __init__(self, room: str) -> None:
        prefix = f"chatroom:{{{room}}}:"
        self.prefix = prefix
        self.stream = prefix + "log"
        self.nick_pattern = prefix + "nick:*"
        self.heard = prefix + "heard"
        self.settling = prefix + "settling"

    def nick(self, key: str) -> str:
        return self.prefix + "nick:" + key

    def node(self, node: str) -> str:
        return self.prefix + "node:" + node

    def reap(self, node: str) -> str:
        return self.prefix + "reap:" + node


def encode_event(event: Event) -> bytes:
    """The event as compact UTF-8 JSON: its type name, then its fields in order."""
    kind = type(event)
    items: list[Any] = [kind.__name__]
    items.extend(getattr(event, name) for name in _FIELDS[kind])
    return json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_event(data: bytes) -> tuple[str, Event]:
    """``(type name, event)``; raises ``BadEntry``."""
    try:
        items = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadEntry(f"not JSON: {e}") from None
    if not isinstance(items, list) or not items or not isinstance(items[0], str):
        raise BadEntry("not a typed list")
    name = items[0]
    kind = _TYPES.get(name)
    if kind is None:
        raise BadEntry(f"unknown event type {name!r}")
    names = _FIELDS[kind]
    values = items[1:]
    if not _REQUIRED[kind] <= len(values) <= len(names):
        raise BadEntry(f"{name} has {len(values)} fields, not {len(names)}")
    for field, value in zip(names, values, strict=False):
        if field in _NUMBER_FIELDS:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise BadEntry(f"{field} is not a number")
        elif field in _STRING_FIELDS and not isinstance(value, str):
            raise BadEntry(f"{field} is not a string")
        elif field in _ROOMS_FIELDS and not (
            isinstance(value, list) and all(isinstance(room, str) for room in value)
        ):
            raise BadEntry(f"{field} is not a list of rooms")
    values = [tuple(v) if isinstance(v, list) else v for v in values]
    return name, kind(*values)


# Values of nickname keys start with "member TAB"; members and nicks hold no tab.

CLAIM = r"""
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. '\t' then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
"""KEYS: nick key. ARGV: member, value, lease ms. 1 if ``member`` holds the key now."""

RELEASE = r"""
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '\t' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
"""KEYS: nick key. ARGV: member. Deletes the key only if ``member`` holds it."""

_HEAR = r"""
local function hear(heard, settling, gap, heartbeat)
  if redis.call('EXISTS', heard) == 0 then
    redis.call('SET', settling, '1', 'PX', heartbeat)
  end
  redis.call('SET', heard, '1', 'PX', gap)
  return redis.call('EXISTS', settling) == 1
end
"""
"""Redis hears the room (a node renews or reaps): ``heard`` lives ``gap`` ms more. If it
was gone, Redis had heard nobody for that long, so every heartbeat may have run out
while its node was waiting for Redis: ``settling`` lives one ``heartbeat``. True while
it does."""

RENEW = _HEAR + r"""
hear(KEYS[3], KEYS[4], ARGV[4], ARGV[1])
local reaped = redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
local status = {}
for i = 5, #KEYS do
  local want = ARGV[i]
  local member = string.match(want, '^[^\t]*')
  local v = redis.call('GET', KEYS[i])
  if v and string.sub(v, 1, #member + 1) == member .. '\t' then
    redis.call('SET', KEYS[i], want, 'PX', ARGV[2])
    status[#status + 1] = 0
  elseif not v then
    redis.call('SET', KEYS[i], want, 'PX', ARGV[2])
    status[#status + 1] = 1
  else
    status[#status + 1] = 2
  end
end
return {reaped, status}
"""
"""KEYS: node key, reap key, ``heard``, ``settling``, then this node's nick keys. ARGV:
heartbeat ms, lease ms, node, hearing gap ms, then each nick key's value. Returns
``[reaped, [status per key]]``: 0 renewed, 1 was gone and is claimed again, 2 someone
else holds it."""

APPEND = r"""
for i = 3, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'n', ARGV[2], 's', ARGV[i],
             'e', ARGV[i + 1])
end
return 1
"""
"""KEYS: the stream. ARGV: max length, this node, then (seq, payload) per entry. Several
entries in one command, in order, as the plain XADDs would have added them."""

TOO_EARLY = 2
"""REAP's answer while Redis cannot tell a dead node from one on its way back."""

REAP = _HEAR + r"""
if hear(KEYS[4], KEYS[5], ARGV[6], ARGV[5]) then return 2 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[1]) then return 0 end
local entries = tonumber(ARGV[7])
for i = 0, entries - 1 do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'n', ARGV[3],
             's', ARGV[8 + 2 * i], 'e', ARGV[9 + 2 * i], 'o', ARGV[4])
end
local base = 8 + 2 * entries
for i = 6, #KEYS do
  local member = ARGV[base + i - 6]
  local v = redis.call('GET', KEYS[i])
  if v and string.sub(v, 1, #member + 1) == member .. '\t' then redis.call('DEL', KEYS[i]) end
end
return 1
"""
"""KEYS: the dead node's heartbeat key, its reap key, the stream, ``heard``, ``settling``,
then its members' nick keys. ARGV: reap marker ms, stream max length, this node, the dead
node, heartbeat ms, hearing gap ms, the number of entries, (seq, payload) per entry, then
the member holding each nick key. Writes the ``Left`` entries and frees the nicknames
only if the node is dead and nobody reaped it yet, all in one step: exactly one survivor
announces each dead member, and its nicknames are free when that is read. Returns 1 if
this call did, 0 if the node is alive or was reaped already, 2 if Redis has not heard the
room for a whole heartbeat yet (after a restart, say): too early to tell, try again."""
