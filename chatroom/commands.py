"""The slash commands, once for every front end: what each does to the chat, and what the
member who typed it is told, through a small ``Replies`` port each front end implements
(a telnet line, a JSON frame). So a new front end is a new ``Replies``, not a fork."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from chatroom.domain import nicknames, roomnames
from chatroom.domain.chat import Chat, Member
from chatroom.domain.directory import RoomState
from chatroom.domain.errors import ChatError, NoSuchRoom
from chatroom.history.recent import RecentRecords
from chatroom.history.store import BadQuery, HistoryError, IHistory, Record
from chatroom.limits import Limits

HELP: list[tuple[str, str]] = [
    ("/who [#ROOM]", "list everyone in the room"),
    ("/msg NICK TEXT", "send TEXT to NICK only"),
    ("/me TEXT", "describe what you do: * NICK TEXT"),
    ("/nick NEW", "change your nickname to NEW"),
    ("/join #ROOM", "enter a room (made if new) and talk there"),
    ("/part [#ROOM] [WHY]", "leave a room (the current one unless named)"),
    ("/rooms", "list the rooms"),
    ("/topic [TEXT]", "show or set the current room's topic"),
    ("/history [N]", "show the last N lines said here (default 20)"),
    ("/search WORDS", "find earlier lines holding all the WORDS, newest first"),
    ("/kick NICK [WHY]", "take NICK out of the room (operators)"),
    ("/ban MASK [WHY]", "ban a nickname, ~a:ACCOUNT, address or network (operators)"),
    ("/unban MASK", "lift a ban (operators)"),
    ("/bans [#ROOM]", "list the room's bans: who set each, when, why"),
    ("/mute NICK [WHY]", "NICK reads but cannot talk here (operators); /unmute NICK"),
    ("/op NICK", "make NICK an operator of the room (operators); /deop NICK"),
    ("/voice NICK", "let NICK talk in a moderated room (operators); /devoice NICK"),
    ("/invite NICK", "let NICK into the room, even if invite-only (operators)"),
    ("/mode [+-]FLAGS ARGS", "room modes m i k t l s (operators); /mode alone shows them"),
    ("/register-room", "keep the room, its modes, bans and operators (an operator's account)"),
    ("/register PASSWORD", "reserve your nickname: choosing it will ask for PASSWORD"),
    ("/password OLD NEW", "change your account's password"),
    ("/unregister PASSWORD", "give your nickname up to anyone"),
    ("/oper NAME PASSWORD", "sign in as a server operator"),
    ("/kill NICK [WHY]", "disconnect NICK (server operators)"),
    ("/gban MASK [TIME]", "ban an address from the server, e.g. for 2h, and why"),
    ("/ungban MASK", "lift a server ban; /gbans lists them (server operators)"),
    ("/rehash", "reload the configuration file, as SIGHUP does (server operators)"),
    ("/help", "show this list"),
    ("/quit", "leave the server"),
    ("//TEXT", "say TEXT with one leading slash (not a command)"),
]
"""``(usage, what it does)`` for each command, in the order ``/help`` lists them. The
moderation commands (``moderation_commands``) also take ``#ROOM`` first."""

ABOUT_COMMAND = "command"
ABOUT_NICK = "nick"
ABOUT_ROOM = "room"
SEARCH_LIMIT = 20


class Replies(Protocol):
    """What a front end shows the member who typed a command."""

    def cmd_refused(self, why: str, about: str) -> None:
        """A sentence saying why (``about``: ``command``, ``nick`` or ``room``)."""

    def cmd_renamed(self, old: str, new: str) -> None: ...

    def cmd_members(self, nicks: list[str], room: str | None) -> None:
        """``/who``: ``room`` is ``None`` for the member's current room (the v1 answer)."""

    def cmd_records(self, records: list[Record], context: str, query: str | None) -> None:
        """Stored lines: ``context`` is ``history`` (oldest first) or ``search`` (newest
        first, for ``query``)."""

    def cmd_notice(self, text: str) -> None: ...
    def cmd_help(self) -> None: ...
    def cmd_quit(self, member: Member) -> None: ...

    def cmd_entered(self, room: RoomState, entered: bool, replay: list[Record]) -> None:
        """``/join``: the room is now current (``entered``: it was not joined before);
        show its topic, the replay and a line naming it."""

    def cmd_parted(self, room: str, current: str | None) -> None: ...
    def cmd_rooms(self, rooms: list[tuple[str, int, str]]) -> None: ...
    def cmd_topic(self, room: RoomState) -> None: ...

    def wait_for(self, result: Deferred[Any]) -> None:
        """Handle nothing more from this member until ``result`` has fired."""


class Commands:
    """Runs ``/command`` lines of joined members against the chat."""

    def __init__(
        self,
        chat: Chat,
        limits: Limits,
        history: IHistory | None = None,
        recent: RecentRecords | None = None,
    ) -> None:
        self.chat = chat
        self.limits = limits
        self.history = history
        self.recent = recent
        self._table: dict[str, Callable[[Member, str, Replies], None]] = {
            "me": self._me,
            "msg": self._msg,
            "nick": self._nick,
            "who": self._who,
            "join": self._join,
            "part": self._part,
            "rooms": self._rooms,
            "topic": self._topic,
            "history": self._history,
            "search": self._search,
            "help": self._help,
            "quit": self._quit,
        }

    def add(self, name: str, handler: Callable[[Member, str, Replies], None]) -> None:
        """Another command (``/name``), from a module of its own (moderation, accounts)."""
        self._table[name] = handler

    def run(self, member: Member, text: str, replies: Replies, typed: str | None = None) -> None:
        """``text`` starts with ``/`` (and not ``//``, which is chat). ``typed`` is the line
        as received, before sanitising, where it may differ: ``/nick`` and ``/join`` take
        their argument from it, as a nickname or a room's name is checked as typed, never
        cleaned into another."""
        name, _, rest = text[1:].partition(" ")
        handler = self._table.get(name.lower())
        if handler is None:
            replies.cmd_refused(
                f"unknown command /{name} (/help lists the commands)", ABOUT_COMMAND
            )
            return
        if handler == self._nick or handler == self._join:
            rest = _argument(text if typed is None else typed)
        else:
            rest = rest.strip()
        try:
            handler(member, rest, replies)
        except ChatError as e:
            replies.cmd_refused(str(e), ABOUT_ROOM)

    def _me(self, member: Member, rest: str, replies: Replies) -> None:
        if not rest:
            replies.cmd_refused("usage: /me TEXT", ABOUT_COMMAND)
            return
        self.chat.act(member, rest)

    def _msg(self, member: Member, rest: str, replies: Replies) -> None:
        target, _, text = rest.partition(" ")
        text = text.strip()
        if not target or not text:
            replies.cmd_refused("usage: /msg NICK TEXT", ABOUT_COMMAND)
            return
        try:
            self.chat.whisper(member, target, text)
        except ChatError as e:
            replies.cmd_refused(str(e), ABOUT_COMMAND)

    def _nick(self, member: Member, rest: str, replies: Replies) -> None:
        if not nicknames.trim(rest):
            replies.cmd_refused("usage: /nick NEW", ABOUT_COMMAND)
            return
        old = member.nick

        def refused(failure: Failure) -> None:
            failure.trap(ChatError)
            replies.cmd_refused(str(failure.value), ABOUT_NICK)

        renamed = self.chat.rename(member, rest)
        replies.wait_for(
            renamed.addCallbacks(lambda new: replies.cmd_renamed(old, new), refused)
        )

    def _who(self, member: Member, rest: str, replies: Replies) -> None:
        if rest:
            state = self._seen_room(member, rest.split()[0])
            replies.cmd_members(self._marked(state), state.name)
            return
        if member.current is None:
            replies.cmd_refused(
                "you are in no room: /join one, or name one: /who #ROOM", ABOUT_ROOM
            )
            return
        state = self.chat.room(member.current)
        replies.cmd_members(self._marked(state), None)

    def _seen_room(self, member: Member, name: str) -> RoomState:
        """The room ``name`` as ``member`` may see it: a secret room (``s``) is no room
        to outsiders (as on IRC, where its topic is 442 and its NAMES and WHO are empty),
        but a server operator sees every room."""
        state = self.chat.room(name)
        if "s" in state.modes and member.id not in state.members and member.oper is None:
            raise NoSuchRoom(name)
        return state

    def _marked(self, state: RoomState) -> list[str]:
        """The room's nicknames, sorted, operators (server operators too) marked ``@``,
        voiced members ``+``."""
        ops, voiced = state.operators, state.voiced
        opers = self.chat.directory.server_operators
        people = sorted(state.members.items(), key=lambda item: nicknames.key(item[1]))
        return [
            ("@" + nick) if member in ops or member in opers
            else ("+" + nick) if member in voiced else nick
            for member, nick in people
        ]

    def _join(self, member: Member, rest: str, replies: Replies) -> None:
        if not rest:
            replies.cmd_refused("usage: /join #ROOM", ABOUT_COMMAND)
            return
        room, _, after = rest.strip().partition(" ")
        name = roomnames.normalize(room)
        key = after.split()[0] if after.split() else ""  # a room with mode k asks for it
        recent = self.recent
        loading = recent.load(name) if recent is not None else succeed(None)

        def enter(_: object) -> None:
            if not member.present:
                return
            try:
                state, entered = self.chat.enter(member, name, key)
            except ChatError as e:
                if recent is not None:
                    recent.forget(name)  # read for a room that was not made after all
                replies.cmd_refused(str(e), ABOUT_ROOM)
                return
            replay: list[Record] = []
            if entered and recent is not None and self.limits.history_replay > 0:
                replay = recent.last(state.name, self.limits.history_replay, joining=member.id)
            replies.cmd_entered(state, entered, replay)

        replies.wait_for(loading.addCallback(enter))

    def _part(self, member: Member, rest: str, replies: Replies) -> None:
        first, _, message = rest.partition(" ")
        room: str | None = first
        if not roomnames.is_room(first):
            room, message = None, rest
        name = self.chat.part(member, room, message.strip())
        replies.cmd_parted(name, member.current)

    def _rooms(self, member: Member, rest: str, replies: Replies) -> None:
        rows = [
            (state.name, len(state.members), state.topic)
            for state in self.chat.directory.rooms()
            if "s" not in state.modes or member.id in state.members
        ]
        rows.sort(key=lambda row: (-row[1], roomnames.key(row[0])))
        replies.cmd_rooms(rows)

    def _topic(self, member: Member, rest: str, replies: Replies) -> None:
        first, _, text = rest.partition(" ")
        room: str | None = first
        if not roomnames.is_room(first):
            room, text = None, rest
        text = text.strip()
        if not text:
            if room is None and member.current is None:
                replies.cmd_refused("you are in no room: /join one first", ABOUT_ROOM)
                return
            replies.cmd_topic(self._seen_room(member, room or member.current or ""))
            return
        self.chat.set_topic(member, room, text)

    def _current(self, member: Member, replies: Replies) -> str | None:
        if member.current is None:
            replies.cmd_refused("you are in no room: /join one first", ABOUT_ROOM)
        return member.current

    def _history(self, member: Member, rest: str, replies: Replies) -> None:
        if self.recent is None:
            replies.cmd_refused("history is off on this server", ABOUT_COMMAND)
            return
        most = self.limits.history_max
        try:
            count = int(rest) if rest else min(self.limits.history_replay or 20, most)
        except ValueError:
            count = 0
        if not 1 <= count <= most:
            replies.cmd_refused(f"usage: /history [N], N from 1 to {most}", ABOUT_COMMAND)
            return
        room = self._current(member, replies)
        if room is None:
            return
        records = self.recent.last(room, count)
        if not records:
            replies.cmd_notice("no history yet")
            return
        replies.cmd_records(records, "history", None)

    def _search(self, member: Member, rest: str, replies: Replies) -> None:
        if self.history is None:
            replies.cmd_refused("history is off on this server", ABOUT_COMMAND)
            return
        if not rest:
            replies.cmd_refused("usage: /search WORDS", ABOUT_COMMAND)
            return
        room = self._current(member, replies)
        if room is None:
            return

        def found(records: list[Record]) -> None:
            if not records:
                replies.cmd_notice(f"no lines match {rest}")
                return
            replies.cmd_records(records, "search", rest)

        def refused(failure: Failure) -> None:
            failure.trap(BadQuery, HistoryError)
            replies.cmd_refused(str(failure.value), ABOUT_COMMAND)

        limit = min(SEARCH_LIMIT, self.limits.history_max)
        searched = self.history.search(rest, limit=limit, room=room)
        replies.wait_for(searched.addCallbacks(found, refused))

    def _help(self, member: Member, rest: str, replies: Replies) -> None:
        replies.cmd_help()

    def _quit(self, member: Member, rest: str, replies: Replies) -> None:
        replies.cmd_quit(member)


_BLANK = re.compile("[ \t]")


def _argument(line: str) -> str:
    """What follows the command word of ``line``, untouched."""
    blank = _BLANK.search(line)
    return line[blank.end():] if blank is not None else ""
