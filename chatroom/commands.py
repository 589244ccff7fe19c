"""The slash commands, once for every front end: what each does to the room, and what the
member who typed it is told, through a small ``Replies`` port each front end implements
(a telnet line, a JSON frame). So a new front end is a new ``Replies``, not a fork."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chatroom.domain.errors import ChatError
from chatroom.domain.room import Member, Room
from chatroom.history.recent import RecentRecords
from chatroom.history.store import BadQuery, HistoryError, IHistory, Record
from chatroom.limits import Limits

HELP: list[tuple[str, str]] = [
    ("/who", "list everyone in the room"),
    ("/msg NICK TEXT", "send TEXT to NICK only"),
    ("/me TEXT", "describe what you do: * NICK TEXT"),
    ("/nick NEW", "change your nickname to NEW"),
    ("/history [N]", "show the last N lines said here (default 20)"),
    ("/search WORDS", "find earlier lines holding all the WORDS, newest first"),
    ("/help", "show this list"),
    ("/quit", "leave the room"),
    ("//TEXT", "say TEXT with one leading slash (not a command)"),
]
"""``(usage, what it does)`` for each command, in the order ``/help`` lists them."""

ABOUT_COMMAND = "command"
ABOUT_NICK = "nick"
SEARCH_LIMIT = 20


class Replies(Protocol):
    """What a front end shows the member who typed a command."""

    def cmd_refused(self, why: str, about: str) -> None:
        """A sentence saying why (``about``: ``command`` or ``nick``)."""

    def cmd_renamed(self, old: str, new: str) -> None: ...
    def cmd_members(self, nicks: list[str]) -> None: ...

    def cmd_records(self, records: list[Record], context: str, query: str | None) -> None:
        """Stored lines: ``context`` is ``history`` (oldest first) or ``search`` (newest
        first, for ``query``)."""

    def cmd_notice(self, text: str) -> None: ...
    def cmd_help(self) -> None: ...
    def cmd_quit(self, member: Member) -> None: ...

    def wait_for(self, result: Deferred[Any]) -> None:
        """Handle nothing more from this member until ``result`` has fired."""


class Commands:
    """Runs ``/command`` lines of joined members against the room."""

    def __init__(
        self,
        room: Room,
        limits: Limits,
        history: IHistory | None = None,
        recent: RecentRecords | None = None,
    ) -> None:
        self.room = room
        self.limits = limits
        self.history = history
        self.recent = recent
        self._table: dict[str, Callable[[Member, str, Replies], None]] = {
            "me": self._me,
            "msg": self._msg,
            "nick": self._nick,
            "who": self._who,
            "history": self._history,
            "search": self._search,
            "help": self._help,
            "quit": self._quit,
        }

    def run(self, member: Member, text: str, replies: Replies) -> None:
        """``text`` starts with ``/`` (and not ``//``, which is chat)."""
        name, _, rest = text[1:].partition(" ")
        handler = self._table.get(name.lower())
        if handler is None:
            replies.cmd_refused(
                f"unknown command /{name} (/help lists the commands)", ABOUT_COMMAND
            )
            return
        handler(member, rest.strip(), replies)

    def _me(self, member: Member, rest: str, replies: Replies) -> None:
        if not rest:
            replies.cmd_refused("usage: /me TEXT", ABOUT_COMMAND)
            return
        self.room.act(member, rest)

    def _msg(self, member: Member, rest: str, replies: Replies) -> None:
        target, _, text = rest.partition(" ")
        text = text.strip()
        if not target or not text:
            replies.cmd_refused("usage: /msg NICK TEXT", ABOUT_COMMAND)
            return
        try:
            self.room.whisper(member, target, text)
        except ChatError as e:
            replies.cmd_refused(str(e), ABOUT_COMMAND)

    def _nick(self, member: Member, rest: str, replies: Replies) -> None:
        if not rest:
            replies.cmd_refused("usage: /nick NEW", ABOUT_COMMAND)
            return
        old = member.nick

        def refused(failure: Failure) -> None:
            failure.trap(ChatError)
            replies.cmd_refused(str(failure.value), ABOUT_NICK)

        renamed = self.room.rename(member, rest)
        replies.wait_for(
            renamed.addCallbacks(lambda new: replies.cmd_renamed(old, new), refused)
        )

    def _who(self, member: Member, rest: str, replies: Replies) -> None:
        replies.cmd_members(self.room.members())

    def _history(self, member: Member, rest: str, replies: Replies) -> None:
        if self.recent is None:
            replies.cmd_refused("history is off on this server", ABOUT_COMMAND)
            return
        try:
            count = int(rest) if rest else self.limits.history_replay or 20
        except ValueError:
            replies.cmd_refused("usage: /history [N]", ABOUT_COMMAND)
            return
        records = self.recent.last(max(1, min(count, self.limits.history_max)))
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

        def found(records: list[Record]) -> None:
            if not records:
                replies.cmd_notice(f"no lines match {rest}")
                return
            replies.cmd_records(records, "search", rest)

        def refused(failure: Failure) -> None:
            failure.trap(BadQuery, HistoryError)
            replies.cmd_refused(str(failure.value), ABOUT_COMMAND)

        limit = min(SEARCH_LIMIT, self.limits.history_max)
        searched = self.history.search(rest, limit=limit, room=self.room.name)
        replies.wait_for(searched.addCallbacks(found, refused))

    def _help(self, member: Member, rest: str, replies: Replies) -> None:
        replies.cmd_help()

    def _quit(self, member: Member, rest: str, replies: Replies) -> None:
        replies.cmd_quit(member)
