"""IRC's moderation commands, on the chat's ``Moderation``: KICK, INVITE, MODE (channel
roles, bans, mutes and modes; user modes), OPER, KILL, and the server bans (GBAN).

The rules are ``Moderation``'s, the same for every front end; here a command is parsed the
way IRC servers do and each refusal becomes the numeric IRC clients know (482 for a
non-operator, 441, 401, 403, 442, 443, 472, 478, 481, 696). What others see comes from the
events (``render``): a kick is a ``KICK`` line to the channel on IRC and ``*** bob was
kicked by alice`` on the line front end; a mode, role, ban or mute set on any front end is
a ``MODE`` line to IRC members. The member who changed modes is not sent its own events
(IRC clients do not echo them), so it gets one ``MODE`` line of what changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from chatroom.domain import nicknames
from chatroom.domain.chat import Member
from chatroom.domain.directory import RoomState
from chatroom.domain.errors import (
    ChatError,
    MemberNotInRoom,
    NoSuchMember,
    NoSuchRoom,
    NotOperator,
    NotServerOperator,
)
from chatroom.domain.moderation import Moderation
from chatroom.domain.roommodes import Entry
from chatroom.irc import numerics as n
from chatroom.irc.channelmodes import irc_form, irc_mask
from chatroom.irc.message import Message, build
from chatroom.irc.protocol import command, user_text
from chatroom.irc.render import source
from chatroom.irc.support import KICK_LENGTH, MODES, TARGETS
from chatroom.moderation_commands import (
    describe_duration,
    describe_server_ban,
    parse_duration,
)

if TYPE_CHECKING:
    from chatroom.irc.protocol import IRCProtocol

LISTS = "bq"
ALWAYS_ARGUMENT = "kov"  # a parameter to set and to unset (``-k`` takes one, ignored)
SET_ARGUMENT = "l"
FLAGS = "imnst"

Change = tuple[str, str, str]  # sign, flag, argument


def _moderation(self: IRCProtocol) -> Moderation:
    moderation: Moderation | None = self.factory.services.moderation
    assert moderation is not None
    return moderation


def _me(self: IRCProtocol) -> Member:
    member = self.session.member
    assert member is not None
    return member


def _refused(self: IRCProtocol, error: ChatError, channel: str, nick: str = "") -> None:
    """The numeric of a refused channel command."""
    nick = nick.strip() or "*"  # never an empty middle parameter
    if isinstance(error, NotOperator):
        self._numeric(n.ERR_CHANOPRIVSNEEDED, channel, "You're not channel operator")
    elif isinstance(error, MemberNotInRoom):
        self._numeric(n.ERR_USERNOTINCHANNEL, nick, channel,
                      "They aren't on that channel")
    elif isinstance(error, NoSuchMember):
        self._numeric(n.ERR_NOSUCHNICK, nick, "No such nick/channel")
    elif isinstance(error, NoSuchRoom):
        self._numeric(n.ERR_NOSUCHCHANNEL, channel, "No such channel")
    elif isinstance(error, NotServerOperator):
        self._numeric(n.ERR_CHANOPRIVSNEEDED, channel, str(error))
    else:
        self._notice_to_self(str(error))


def _channel(self: IRCProtocol, name: str, member: Member) -> RoomState | None:
    """The channel a command is about, if ``member`` is in it (a server operator need
    not be), or ``None`` after 403 or 442."""
    state = self.room_or_error(name, must_be_in=False)
    if state is None:
        return None
    if member.id not in state.members and member.oper is None:
        self._numeric(n.ERR_NOTONCHANNEL, state.name, "You're not on that channel")
        return None
    return state


# -- KICK and INVITE ---------------------------------------------------------------------


@command("KICK")
def irc_kick(self: IRCProtocol, message: Message) -> None:
    params = message.params
    nicks = [nick for nick in params[1].split(",") if nick] if len(params) > 1 else []
    if not nicks:
        self._numeric(n.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
        return
    member = _me(self)
    state = _channel(self, params[0], member)
    if state is None:
        return
    reason = user_text(params[2])[:KICK_LENGTH] if len(params) > 2 else ""
    moderation = _moderation(self)
    # Asked once: an operator who kicks itself is out of the room by the next target,
    # yet its own KICK came to it through the room.
    outside = member.id not in state.members  # a server operator from outside
    for nick in nicks[:TARGETS]:
        try:
            shown = moderation.kick(member, state.name, nick, reason)
        except ChatError as e:
            _refused(self, e, state.name, nick)
            continue
        if outside:
            self.reply(build(source(member.nick), "KICK", state.name, shown,
                             reason or member.nick))


@command("INVITE")
def irc_invite(self: IRCProtocol, message: Message) -> None:
    params = message.params
    if len(params) < 2 or not params[0].strip():
        self._numeric(n.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    nick, channel = params[0], params[1]
    member = _me(self)
    state = _channel(self, channel, member)
    if state is None:
        return
    holder = self.factory.chat.names.lookup(nicknames.key(nick))
    if holder is None:
        self._numeric(n.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    if holder[1] in state.members:
        self._numeric(n.ERR_USERONCHANNEL, holder[0], state.name, "is already on channel")
        return
    try:
        shown = _moderation(self).invite(member, state.name, nick)
    except ChatError as e:
        _refused(self, e, state.name, nick)
        return
    self.reply(build(self.server, n.RPL_INVITING, self.nick, shown, state.name, trailing=False))


# -- MODE ------------------------------------------------------------------------------


@command("MODE")
def irc_mode(self: IRCProtocol, message: Message) -> None:
    if not message.params:
        self._numeric(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
        return
    if message.params[0].startswith("#"):
        _channel_mode(self, message.params[0], message.params[1:])
    else:
        _user_mode(self, message.params)


def _user_mode(self: IRCProtocol, params: list[str]) -> None:
    """``+i`` is kept; ``o`` shows a server operator (OPER sets it)."""
    member = _me(self)
    if nicknames.key(params[0]) != nicknames.key(member.nick):
        self._numeric(n.ERR_USERSDONTMATCH, "Can't change mode for other users")
        return
    if len(params) == 1:
        modes = ("i" if self.invisible else "") + ("o" if member.oper is not None else "")
        self._numeric(n.RPL_UMODEIS, "+" + modes)
        return
    change = params[1]
    if any(c not in "+-io" for c in change):
        self._numeric(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
        return
    sign = "+"
    for char in change:
        if char in "+-":
            sign = char
        elif char == "i" and (sign == "+") != self.invisible:
            self.invisible = sign == "+"
            self.reply(build(source(member.nick), "MODE", member.nick, sign + "i"))
        # "o": OPER makes a server operator, and one stays so until it leaves


def _channel_mode(self: IRCProtocol, target: str, params: list[str]) -> None:
    member = _me(self)
    moderation = _moderation(self)
    try:
        state, shown = moderation.modes(member, target)
    except NoSuchRoom:
        self._numeric(n.ERR_NOSUCHCHANNEL, target, "No such channel")
        return
    if not params:
        flags, _, arguments = shown.partition(" ")
        modes = "+" + "".join(sorted(set(flags[1:]) | {"n"}))
        self.reply(build(self.server, n.RPL_CHANNELMODEIS, self.nick, state.name, modes,
                         *arguments.split(), trailing=False))
        self.reply(build(self.server, n.RPL_CREATIONTIME, self.nick, state.name,
                         str(int(state.created)), trailing=False))
        return
    changes, lists = _parse(self, params[0], params[1:], moderation.rules.max_mode_changes)
    for flag in lists:
        _list(self, member, state, flag)
    if not changes:
        return
    if not moderation.is_operator(member, state):
        self._numeric(n.ERR_CHANOPRIVSNEEDED, state.name, "You're not channel operator")
        return
    done: list[Change] = []
    for sign, flag, argument in changes:
        try:
            shown_argument = _apply(self, moderation, member, state, sign, flag, argument)
        except ChatError as e:
            _mode_refused(self, e, state.name, flag, argument)
            continue
        if shown_argument is not None:
            done.append((sign, flag, shown_argument))
    if done:
        self.reply(build(source(member.nick), "MODE", state.name, *_modestring(done),
                         trailing=False))


def _parse(self: IRCProtocol, spec: str, arguments: list[str], most: int
           ) -> tuple[list[Change], str]:
    """The changes a modestring asks for, and the lists it asks to see (``MODE #a b``).
    Unknown flags get 472, missing parameters 461; at most ``MODES`` changes with a
    parameter are taken, and at most ``most`` (``--max-mode-changes``) in all."""
    arguments = list(arguments)
    changes: list[Change] = []
    lists = ""
    sign = "+"
    with_argument = 0
    for char in spec:
        if char in "+-":
            sign = char
            continue
        if len(changes) >= most:
            break  # "+m-m+m-m..." to the line's end: one line, hundreds of broadcasts
        if char in LISTS and not arguments:
            if char not in lists:
                lists += char
            continue
        takes = char in LISTS or char in ALWAYS_ARGUMENT or (char in SET_ARGUMENT
                                                              and sign == "+")
        if char not in LISTS + ALWAYS_ARGUMENT + SET_ARGUMENT + FLAGS:
            self._numeric(n.ERR_UNKNOWNMODE, char, "is unknown mode char to me")
            continue
        argument = ""
        if takes:
            if not arguments:
                if char == "k" and sign == "-":
                    changes.append((sign, char, ""))
                    continue
                self._numeric(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                continue
            argument = arguments.pop(0)
            with_argument += 1
            if with_argument > MODES:
                continue
        changes.append((sign, char, argument))
    return changes, lists


def _apply(self: IRCProtocol, moderation: Moderation, member: Member, state: RoomState,
           sign: str, flag: str, argument: str) -> str | None:
    """Make one change; its parameter as the MODE line shows it (``""``: none), or
    ``None`` when it was so already."""
    room = state.name
    if flag in "ov":
        target = _member_id(state, argument)
        people = state.operators if flag == "o" else state.voiced
        if target is not None and (sign == "+") == (target in people):
            return None
        act = {"+o": moderation.op, "-o": moderation.deop, "+v": moderation.voice,
               "-v": moderation.devoice}[sign + flag]
        return act(member, room, argument)
    if flag in LISTS:
        mask = irc_mask(argument)
        entries = state.bans if flag == "b" else state.mutes
        named = _member_id(state, mask.text) if mask.kind == "nick" else None
        there = mask.key in entries or (flag == "q" and named is not None and any(
            named in entry.members for entry in entries.values()))
        if (sign == "+") == there:
            return None
        if sign == "+" and len(entries) >= moderation.rules.max_bans:
            self._numeric(n.ERR_BANLISTFULL, room, flag, "Channel list is full")
            return None
        if flag == "b":
            (moderation.ban if sign == "+" else moderation.unban)(member, room, mask.text)
        else:
            (moderation.mute if sign == "+" else moderation.unmute)(member, room, mask.text)
        return irc_form(mask)
    if flag == "n":
        if sign == "-":
            self._numeric(n.ERR_UNKNOWNMODE, "n", "is always set here: only a channel's "
                                                  "members talk in it")
        return None
    done = moderation.set_modes(member, room, sign + flag,
                                [argument] if sign == "+" and flag in "kl" else [])
    if not done:
        return None
    if flag == "k" and sign == "-":
        return "*"
    return done[0].partition(" ")[2]


def _member_id(state: RoomState, nick: str) -> str | None:
    key = nicknames.key(nick.strip())
    for member_id, shown in state.members.items():
        if nicknames.key(shown) == key:
            return member_id
    return None


def _mode_refused(self: IRCProtocol, error: ChatError, channel: str, flag: str,
                  argument: str) -> None:
    if isinstance(error, NotOperator | MemberNotInRoom | NoSuchMember | NoSuchRoom) or (
            isinstance(error, NotServerOperator) and flag == "o"):
        _refused(self, error, channel, argument)
    else:  # a bad mask, key or limit; a mask too broad, or naming oneself
        self._numeric(n.ERR_INVALIDMODEPARAM, channel, flag, argument or "*", str(error))


def _modestring(done: list[Change]) -> list[str]:
    """``+ov-b``, then the parameters: what a MODE line says of ``done``."""
    spec = ""
    sign = ""
    parameters = []
    for change_sign, flag, argument in done:
        if change_sign != sign:
            spec += change_sign
            sign = change_sign
        spec += flag
        if argument:
            parameters.append(argument)
    return [spec, *parameters]


def _list(self: IRCProtocol, member: Member, state: RoomState, flag: str) -> None:
    """A channel's bans (367/368) or mutes (728/729): mask, who set it, when."""
    moderation = _moderation(self)
    entries: list[Entry]
    if flag == "b":
        _, entries = moderation.bans(member, state.name)
        out = [build(self.server, n.RPL_BANLIST, self.nick, state.name,
                     irc_form(entry.mask), entry.by, str(int(entry.time)), trailing=False)
               for entry in entries]
        out.append(build(self.server, n.RPL_ENDOFBANLIST, self.nick, state.name,
                         "End of channel ban list"))
    else:
        _, entries = moderation.mutes(member, state.name)
        out = [build(self.server, n.RPL_QUIETLIST, self.nick, state.name, "q",
                     irc_form(entry.mask), entry.by, str(int(entry.time)), trailing=False)
               for entry in entries]
        out.append(build(self.server, n.RPL_ENDOFQUIETLIST, self.nick, state.name, "q",
                         "End of channel quiet list"))
    self.reply(b"".join(out))


# -- server operators -------------------------------------------------------------------


@command("OPER")
def irc_oper(self: IRCProtocol, message: Message) -> Deferred[None] | None:
    params = message.params
    if len(params) < 2:
        self._numeric(n.ERR_NEEDMOREPARAMS, "OPER", "Not enough parameters")
        return None
    member = _me(self)
    if member.oper is not None:
        self._numeric(n.RPL_YOUREOPER, "You are now an IRC operator")
        return None
    accounts = self.factory.services.accounts
    if accounts is None or not accounts.operators:
        self._numeric(n.ERR_NOOPERHOST, "No O-lines for your host")
        return None

    def answered(right: bool) -> None:
        if not right:
            # Which of the name and the password was wrong is not told.
            self._numeric(n.ERR_PASSWDMISMATCH, "Password incorrect")
            return
        self._numeric(n.RPL_YOUREOPER, "You are now an IRC operator")
        self.reply(build(source(member.nick), "MODE", member.nick, "+o"))

    checking: Deferred[None] = accounts.oper(member, params[0], params[1]).addCallback(
        answered)
    return checking


def _server_operator(self: IRCProtocol, message: Message, need: int = 1) -> Member | None:
    """The member giving a server operator's command, if it is one and gave the
    ``need`` parameters it takes; else ``None`` after 461 or 481."""
    if len(message.params) < need or (need and not message.params[0]):
        self._numeric(n.ERR_NEEDMOREPARAMS, message.command, "Not enough parameters")
        return None
    member = _me(self)
    if member.oper is None:
        self._numeric(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        return None
    return member


@command("KILL")
def irc_kill(self: IRCProtocol, message: Message) -> None:
    member = _server_operator(self, message)
    if member is None:
        return
    params = message.params
    reason = user_text(params[1])[:KICK_LENGTH] if len(params) > 1 else ""
    try:
        _moderation(self).kill(member, params[0], reason)
    except NoSuchMember:
        self._numeric(n.ERR_NOSUCHNICK, params[0], "No such nick/channel")


@command("GBAN")
def irc_gban(self: IRCProtocol, message: Message) -> None:
    """``GBAN MASK [DURATION] [:REASON]``, as ``/gban``: an address or a network, kept
    out of the server (``*!*@203.0.113.0/24`` is read as the network)."""
    member = _server_operator(self, message)
    if member is None:
        return
    rest = message.params[1:]
    duration = parse_duration(rest[0]) if rest else None
    if duration is not None:
        rest = rest[1:]
    reason = user_text(" ".join(rest))[:KICK_LENGTH]
    try:
        mask = _moderation(self).gban(member, irc_mask(message.params[0]).text, duration,
                                      reason)
    except ChatError as e:
        self._notice_to_self(str(e))
        return
    length = f"for {describe_duration(duration)}" if duration else "until lifted"
    self._notice_to_self(f"{mask.text} is banned from the server {length}")


@command("UNGBAN")
def irc_ungban(self: IRCProtocol, message: Message) -> None:
    member = _server_operator(self, message)
    if member is None:
        return
    try:
        mask = _moderation(self).ungban(member, irc_mask(message.params[0]).text)
    except ChatError as e:
        self._notice_to_self(str(e))
        return
    self._notice_to_self(f"{mask.text} is no longer banned from the server")


@command("GBANS")
def irc_gbans(self: IRCProtocol, message: Message) -> None:
    member = _server_operator(self, message, need=0)
    if member is None:
        return
    bans = _moderation(self).gbans(member)
    self._notice_to_self(f"{len(bans)} server ban{'s' if len(bans) != 1 else ''}"
                         + (":" if bans else ""))
    for ban in bans:
        self._notice_to_self(describe_server_ban(ban))
