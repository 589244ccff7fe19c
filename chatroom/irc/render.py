"""Room events as the IRC lines other members read, each rendered once for everyone.

Every line carries ``time`` (server-time) and ``msgid`` (message-tags) tags; what a
connection did not ask for is taken off on its way out (``keep_tags``), once per distinct
set of capabilities and batch of lines, not once per reader. A ``msgid`` is the line's
``line_id``, the id the history store gives the same line, so a client that fetches
history (CHATHISTORY) knows the lines it saw live.

Other front ends' members have no IRC user or host: everyone's source is
``nick!nick@chatroom``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime

from chatroom.domain.events import (
    Acted,
    Event,
    Invited,
    Joined,
    Left,
    MaskSet,
    ModeSet,
    Notice,
    Renamed,
    RoleSet,
    Said,
    TopicSet,
    Whispered,
)
from chatroom.history.store import line_id, row_for
from chatroom.irc.channelmodes import irc_form_of
from chatroom.irc.message import MAX_MESSAGE, build, cut, format_tags, split_text

HOST = "chatroom"
"""The host part of every member's source."""

ACTION_START = "\x01ACTION "
ACTION_END = "\x01"

_ALL_TAGS = re.compile(rb"(?m)^@time=([^; ]*);msgid=([^; ]*)(;account=[^ ]*)? ")
_ACCOUNT = b";account="
_JOIN = re.compile(rb"(?m)^((?:@[^ ]* )?:([^! ]+)![^ ]* JOIN [^ \r\n]+)\r$")


def source(nick: str) -> str:
    return f"{nick}!{nick}@{HOST}"


_second: tuple[float, str] = (math.nan, "")
"""The last whole second formatted, and its text: a busy room's lines share it."""


def server_time(seconds: float) -> str:
    """IRCv3 server-time: UTC, milliseconds, ``Z``."""
    global _second
    # datetime.fromtimestamp's rounding, to the microsecond; then milliseconds, cut
    fraction, whole = math.modf(seconds)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    if _second[0] != whole:
        moment = datetime.fromtimestamp(whole, UTC)
        _second = (whole, moment.strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{_second[1]}{micro // 1000:03d}Z"


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of a server-time string, or ``None`` if it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def message_lines(
    tags: dict[str, str], nick: str, command: str, target: str, text: str, action: bool
) -> bytes:
    """``PRIVMSG``/``NOTICE`` lines of ``text`` from ``nick`` to ``target``: one, or as
    many as 512 bytes a line need, each with its own msgid."""
    src = source(nick)
    overhead = len(f":{src} {command} {target} :".encode()) + 2
    if action:
        overhead += len(ACTION_START) + len(ACTION_END)
    pieces = split_text(text, MAX_MESSAGE - overhead)
    # what build(src, command, target, body, tags=tags) writes, without its generality:
    # this runs once per message for every room's readers
    prefix = f":{src} {command} {target} :"
    out = []
    msgid = tags.get("msgid")
    for number, piece in enumerate(pieces, 1):
        if msgid is not None and number > 1:
            tags = {**tags, "msgid": f"{msgid}/{number}"}
        body = ACTION_START + piece + ACTION_END if action else piece
        line = (prefix + body).encode("utf-8", "replace")
        if len(line) > MAX_MESSAGE - 2:
            line = cut(line, MAX_MESSAGE - 2)
        head = ("@" + format_tags(tags) + " ").encode("utf-8", "replace") if tags else b""
        out.append(head + line + b"\r\n")
    return b"".join(out)


class Renderer:
    """``render(event)``: the IRC lines of ``event``, all tags on (see ``keep_tags``).

    ``account_of`` gives the account a member (by id) is signed in to, if it is known here
    (account-tag): lines from that member carry ``account=``."""

    def __init__(
        self, server: str, account_of: Callable[[str], str | None] = lambda member: None
    ) -> None:
        self.server = server
        self.account_of = account_of

    def tags(self, event: Event, msgid: str) -> dict[str, str]:
        tags = {"time": server_time(event.time), "msgid": msgid}
        if event.member:
            account = self.account_of(event.member)
            if account is not None:
                tags["account"] = account
        return tags

    def __call__(self, event: Event, command: str = "PRIVMSG") -> bytes:
        kind = type(event)
        if kind is Said or kind is Acted:
            assert isinstance(event, Said | Acted)
            tags = self.tags(event, event_id(event))
            return message_lines(tags, event.nick, command, event.room, event.text,
                                 kind is Acted)
        if kind is Whispered:
            assert isinstance(event, Whispered)
            tags = self.tags(event, event_id(event))
            text = event.text
            action = text.startswith(ACTION_START)  # not made by chat; never from others
            return message_lines(tags, event.nick, command, event.target_nick, text, action)
        src = source(event.nick)
        tags = self.tags(event, event_id(event))
        if kind is Joined:
            return build(src, "JOIN", event.room, tags=tags, trailing=False)
        if kind is Left:
            assert isinstance(event, Left)
            if event.by:  # kicked or banned by an operator: the line is theirs
                tags.pop("account", None)
                return build(source(event.by), "KICK", event.room, event.nick,
                             event.message or event.by, tags=tags)
            if event.reason == "part":
                if event.message:
                    return build(src, "PART", event.room, event.message, tags=tags)
                return build(src, "PART", event.room, tags=tags, trailing=False)
            return build(src, "QUIT", quit_message(event.message), tags=tags)
        if kind is Renamed:
            assert isinstance(event, Renamed)
            return build(src, "NICK", event.new_nick, tags=tags, trailing=False)
        if kind is TopicSet:
            assert isinstance(event, TopicSet)
            return build(src, "TOPIC", event.room, event.text, tags=tags)
        if kind is Notice:
            assert isinstance(event, Notice)
            return build(self.server, "NOTICE", event.room or "$*", event.text, tags=tags)
        if kind is ModeSet:
            assert isinstance(event, ModeSet)
            flag, _, argument = event.change.partition(" ")
            if flag == "-k":
                argument = "*"  # a key is a parameter both ways (CHANMODES type B)
            return build(src, "MODE", event.room, flag, *([argument] if argument else []),
                         tags=tags, trailing=False)
        if kind is RoleSet or kind is MaskSet:
            assert isinstance(event, RoleSet | MaskSet)
            who = (event.target_nick if isinstance(event, RoleSet)
                   else irc_form_of(event.mask))
            origin = src if event.nick else self.server  # a registered room's own doing
            return build(origin, "MODE", event.room, event.change, who, tags=tags,
                         trailing=False)
        if kind is Invited:
            assert isinstance(event, Invited)
            return build(src, "INVITE", event.target_nick, event.room, tags=tags,
                         trailing=False)
        raise TypeError(f"no IRC shape for {event!r}")


def quit_message(message: str) -> str:
    return f"Quit: {message}" if message else "Quit"


def msgid(line: str, time: float) -> str:
    """An IRC msgid: the line's history id and its exact time, so that a client naming it
    in CHATHISTORY names a place in the history (``parse_msgid``). A long text sent as
    several messages gives them ``/2``, ``/3``... after it."""
    return f"{line}-{time.hex()}"


def parse_msgid(text: str) -> tuple[str, float] | None:
    """``(line id, time)`` of a msgid this server gave, or ``None``."""
    line, _, time = text.split("/", 1)[0].partition("-")
    try:
        return line, float.fromhex(time)
    except ValueError:
        return None


def event_id(event: Event) -> str:
    """The msgid of ``event``, made of its history line id; a quit's leaves share one (a
    quit is one line to IRC, however many rooms it is told in)."""
    kind = type(event)
    if kind is Left:
        assert isinstance(event, Left)
        if event.reason != "part":
            return msgid(line_id((event.time, "", "left", event.nick, "", None)), event.time)
    if kind is Whispered:
        assert isinstance(event, Whispered)
        row = (event.time, "", "private", event.nick, event.text, event.target_nick)
        return msgid(line_id(row), event.time)
    found = row_for(event)
    if found is None:
        found = (event.time, event.room, type(event).__name__, event.nick, "", None)
    return msgid(line_id(found), event.time)


def keep_tags(data: bytes, time: bool, msgid: bool, account: bool = True) -> bytes:
    """Rendered lines with only the tags a reader asked for."""
    if _ACCOUNT in data:
        if time and msgid and account:
            return data
        return _ALL_TAGS.sub(lambda match: _kept(match, time, msgid, account), data)
    if time and msgid:
        return data
    if time:
        return _ALL_TAGS.sub(rb"@time=\1 ", data)
    if msgid:
        return _ALL_TAGS.sub(rb"@msgid=\2 ", data)
    return _ALL_TAGS.sub(b"", data)


def _kept(match: re.Match[bytes], time: bool, msgid: bool, account: bool) -> bytes:
    tags = []
    if time:
        tags.append(b"time=" + match[1])
    if msgid:
        tags.append(b"msgid=" + match[2])
    if account and match[3]:
        tags.append(match[3][1:])
    return b"@" + b";".join(tags) + b" " if tags else b""


def extend_joins(data: bytes, about: Callable[[str], tuple[str, str]]) -> bytes:
    """extended-join: each JOIN line in ``data`` with the joiner's account (``*``: none
    known) and realname, as ``about(nick)`` gives them."""

    def extend(match: re.Match[bytes]) -> bytes:
        account, realname = about(match[2].decode("utf-8", "replace"))
        return b"%s %s :%s\r" % (match[1], account.encode(), realname.encode())

    return _JOIN.sub(extend, data)
