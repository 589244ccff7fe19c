"""The moderation slash commands: parsing and answers only; the rules are ``Moderation``'s.

Each command takes the room first if its first word names one (``/kick #dev bob spam``),
else it is about the member's current room. A refused command raises a ``ChatError``,
which ``Commands.run`` turns into ``! why`` for the member.

What the member who typed a command is told: the line front end does not send a member's
own events back to it (a terminal shows what was typed), so it gets a confirmation line;
a front end whose ``Replies`` has ``echoes_own_events`` (the page gets its own events) gets
none, as it already shows the event itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from chatroom.commands import ABOUT_ROOM, Commands, Replies
from chatroom.domain import roomnames
from chatroom.domain.chat import Member
from chatroom.domain.errors import ChatError
from chatroom.domain.masks import Mask
from chatroom.domain.moderation import Moderation
from chatroom.domain.roommodes import Entry, ServerBan

_DURATION = re.compile(r"(\d{1,9})([smhdw]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Handler = Callable[[Member, str, Replies], None]

_TARGETED: dict[str, tuple[str, bool, str]] = {
    # command: its usage, whether a reason may follow, what its author is told
    "ban": ("/ban [#ROOM] MASK [WHY]", True, "set a ban on {target} in {room}"),
    "unban": ("/unban [#ROOM] MASK", False, "lifted the ban on {target} in {room}"),
    "mute": ("/mute [#ROOM] NICK [WHY]", True, "muted {target} in {room}"),
    "unmute": ("/unmute [#ROOM] NICK", False, "unmuted {target} in {room}"),
    "op": ("/op [#ROOM] NICK", False, "made {target} an operator of {room}"),
    "deop": ("/deop [#ROOM] NICK", False, "took operator status from {target} in {room}"),
    "voice": ("/voice [#ROOM] NICK", False, "gave voice to {target} in {room}"),
    "devoice": ("/devoice [#ROOM] NICK", False, "took voice from {target} in {room}"),
}


def parse_duration(text: str) -> float | None:
    """``90``, ``90s``, ``30m``, ``2h``, ``7d``, ``1w`` in seconds, or ``None``."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    return float(int(match.group(1)) * _SECONDS[match.group(2)])


def describe_duration(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


def _room_first(rest: str) -> tuple[str | None, str]:
    """``(room or None, what follows it)``."""
    first, _, after = rest.partition(" ")
    if roomnames.is_room(first):
        return first, after.strip()
    return None, rest


def _word(rest: str, usage: str) -> tuple[str, str]:
    word, _, after = rest.partition(" ")
    if not word:
        raise ChatError(f"usage: {usage}")
    return word, after.strip()


class ModerationCommands:
    """Adds the moderation commands to ``Commands``."""

    def __init__(self, moderation: Moderation) -> None:
        self.moderation = moderation

    def install(self, commands: Commands) -> None:
        table: dict[str, Handler] = {
            "kick": self._kick, "bans": self._bans, "invite": self._invite, "mode": self._mode,
            "register-room": self._register_room,
            "kill": self._kill, "gban": self._gban, "ungban": self._ungban,
            "gbans": self._gbans,
        }
        table.update((action, self._targeted(action)) for action in _TARGETED)
        for name, handler in table.items():
            commands.add(name, handler)

    @staticmethod
    def _confirm(replies: Replies, text: str) -> None:
        if not getattr(replies, "echoes_own_events", False):
            replies.cmd_notice(text)

    def _kick(self, member: Member, rest: str, replies: Replies) -> None:
        room, rest = _room_first(rest)
        nick, reason = _word(rest, "/kick [#ROOM] NICK [WHY]")
        state = self.moderation.room_of(member, room)
        in_room = member.id in state.members
        shown = self.moderation.kick(member, room, nick, reason)
        if not in_room:  # a server operator from outside: the room's line does not reach it
            replies.cmd_notice(f"you kicked {shown} from {state.name}")

    def _bans(self, member: Member, rest: str, replies: Replies) -> None:
        room, _ = _room_first(rest)
        state, entries = self.moderation.bans(member, room)
        if not entries:
            replies.cmd_notice(f"{state.name} has no bans")
            return
        count = "1 ban" if len(entries) == 1 else f"{len(entries)} bans"
        replies.cmd_notice(f"{count} in {state.name}:")
        for entry in entries:
            replies.cmd_notice(describe_entry(entry))

    def _targeted(self, action: str) -> Handler:
        """The handler of a command that names one member or mask in a room."""
        usage, reasoned, done = _TARGETED[action]

        def handler(member: Member, rest: str, replies: Replies) -> None:
            room, rest = _room_first(rest)
            target, extra = _word(rest, usage)
            if extra and not reasoned:
                raise ChatError(f"usage: {usage}")
            act = getattr(self.moderation, action)
            result = act(member, room, target, extra) if reasoned else act(member, room, target)
            shown = result.text if isinstance(result, Mask) else result
            where = self.moderation.room_of(member, room).name
            self._confirm(replies, "you " + done.format(target=shown, room=where))

        return handler

    def _invite(self, member: Member, rest: str, replies: Replies) -> None:
        room, rest = _room_first(rest)
        nick, _ = _word(rest, "/invite [#ROOM] NICK")
        shown = self.moderation.invite(member, room, nick)
        where = self.moderation.room_of(member, room).name
        replies.cmd_notice(f"you invited {shown} to {where}")

    def _mode(self, member: Member, rest: str, replies: Replies) -> None:
        room, rest = _room_first(rest)
        if not rest:
            state, modes = self.moderation.modes(member, room)
            replies.cmd_notice(f"modes of {state.name}: {modes}")
            return
        spec, *arguments = rest.split()
        if spec[0] not in "+-":
            spec = "+" + spec
        outcome = self.moderation.apply_modes(member, room, spec, arguments)
        where = self.moderation.room_of(member, room).name
        if outcome.done:
            self._confirm(replies, f"you set mode {' '.join(outcome.done)} on {where}")
        elif not outcome.refused:
            replies.cmd_notice(f"modes of {where} unchanged")
        for change, why in outcome.refused:  # one line each, as IRC answers each
            replies.cmd_refused(f"mode {change} refused: {why}", ABOUT_ROOM)

    def _register_room(self, member: Member, rest: str, replies: Replies) -> None:
        room, _ = _room_first(rest)
        state = self.moderation.register_room(member, room)
        replies.cmd_notice(f"{state.name} is registered: it keeps its topic, modes, bans and "
                           "operators across restarts and when empty")

    def _kill(self, member: Member, rest: str, replies: Replies) -> None:
        nick, reason = _word(rest, "/kill NICK [WHY]")
        shown = self.moderation.kill(member, nick, reason)
        replies.cmd_notice(f"you disconnected {shown}")

    def _gban(self, member: Member, rest: str, replies: Replies) -> None:
        raw, rest = _word(rest, "/gban MASK [DURATION] [WHY]")
        first, _, after = rest.partition(" ")
        duration = parse_duration(first) if first else None
        reason = after.strip() if duration is not None else rest
        mask = self.moderation.gban(member, raw, duration, reason)
        length = f"for {describe_duration(duration)}" if duration else "until lifted"
        replies.cmd_notice(f"{mask.text} is banned from the server {length}")

    def _ungban(self, member: Member, rest: str, replies: Replies) -> None:
        raw, _ = _word(rest, "/ungban MASK")
        mask = self.moderation.ungban(member, raw)
        replies.cmd_notice(f"{mask.text} is no longer banned from the server")

    def _gbans(self, member: Member, rest: str, replies: Replies) -> None:
        bans = self.moderation.gbans(member)
        if not bans:
            replies.cmd_notice("no server bans")
            return
        replies.cmd_notice(f"{len(bans)} server ban{'s' if len(bans) != 1 else ''}:")
        for ban in bans:
            replies.cmd_notice(describe_server_ban(ban))


def describe_entry(entry: Entry) -> str:
    """One ban as ``/bans`` lists it: the mask, by whom, when, why."""
    why = f": {entry.reason}" if entry.reason else ""
    return f"{entry.mask.text} (by {entry.by}, {_when(entry.time)}){why}"


def describe_server_ban(ban: ServerBan) -> str:
    until = f"until {_when(ban.until)}" if ban.until else "until lifted"
    why = f": {ban.reason}" if ban.reason else ""
    return f"{ban.mask.text} (by {ban.by}, {_when(ban.time)}, {until}){why}"

