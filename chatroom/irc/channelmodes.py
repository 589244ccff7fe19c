"""How IRC spells the chat's moderation: masks, prefixes and the numerics of refusals.

Kept apart from the command handlers (``chatroom.irc.moderation``) so that the core
protocol (JOIN, PRIVMSG, NAMES, WHO) and the renderer can use it without importing them.

**Masks.** A chat ban names one thing: a nickname, an account (``~a:NAME``), an address or
a network (``chatroom.domain.masks``). IRC clients send ``nick!user@host`` masks, and every
member's source here is ``nick!nick@chatroom`` (other front ends have no IRC user or host),
so ``irc_mask`` reads the parts that can name someone:

- ``bob``, ``bob!*@*``, ``*!bob@*``, ``*!~bob@chatroom``: the nickname ``bob`` (the user part
  is the nickname here, and the host ``chatroom`` names nobody in particular);
- ``~a:bob`` (also Solanum's ``$a:bob``): the account ``bob``;
- ``203.0.113.7``, ``*!*@203.0.113.7``, ``*!*@2001:db8::/32``, ``*!*@203.0.113.*``: an
  address or a network (trailing ``*`` octets are a /24, /16, /8);
- ``*`` and ``*!*@*``: everyone (only a server operator may set that).

Anything else (a wildcard inside a nickname, a host name, a nickname and an address at
once) is refused: the chat cannot hold it, and guessing would ban the wrong people.
``irc_form`` writes a chat mask back as IRC clients expect (``bob!*@*``, ``*!*@10.0.0.0/8``),
so a client's own ban matching agrees with the server's.
"""

from __future__ import annotations

from chatroom.domain import masks
from chatroom.domain.directory import RoomState
from chatroom.domain.errors import (
    BadKey,
    BadMask,
    Banned,
    ChatError,
    InviteOnly,
    Muted,
    RoomFull,
)
from chatroom.irc import numerics as n

HOST = "chatroom"
"""The host part of every member's source (``render.HOST``)."""

_EXTBANS = ("~a:", "$a:")


def irc_mask(raw: str) -> masks.Mask:
    """The chat mask an IRC ban mask names, or ``BadMask`` saying why there is none."""
    text = raw.strip()
    for prefix in _EXTBANS:
        if text.startswith(prefix):
            return masks.parse(masks.ACCOUNT_PREFIX + text[len(prefix):])
    if "!" not in text and "@" not in text:
        return masks.parse(text)
    nick, _, rest = text.partition("!")
    user, at, host = rest.partition("@")
    if not at:  # "nick@host" or "nick!user"
        if "@" in nick:
            nick, _, host = nick.partition("@")
        user = user or "*"
    host = host or "*"
    user = user.lstrip("~") or "*"
    if host not in ("*", HOST):
        if nick.strip("*") or user.strip("*"):
            raise BadMask(f"{raw} names a nickname and an address: ban one of them")
        return _network(host, raw)
    named = {part for part in (nick, user) if part != "*"}
    if not named:
        return masks.parse(masks.EVERYONE)
    if len(named) > 1:
        raise BadMask(f"{raw} names two nicknames")
    (only,) = named
    if "*" in only or "?" in only:
        raise BadMask(f"{raw}: wildcards in nicknames are not supported here; ban a "
                      "nickname, ~a:ACCOUNT, an address or a network")
    return masks.parse(only)


def _network(host: str, raw: str) -> masks.Mask:
    """``203.0.113.*`` as ``203.0.113.0/24``; an address or a network as it is."""
    if host.endswith(".*") and ":" not in host:
        octets = host.split(".")
        fixed = octets[:octets.index("*")]
        if len(octets) != 4 or not fixed or octets[len(fixed):] != ["*"] * (4 - len(fixed)):
            raise BadMask(f"{raw}: only whole trailing octets may be *")
        host = ".".join(fixed + ["0"] * (4 - len(fixed))) + f"/{8 * len(fixed)}"
    try:
        mask = masks.parse(host) if "*" not in host and "?" not in host else None
    except BadMask:
        mask = None
    if mask is None or mask.kind != "network":
        raise BadMask(f"{raw}: a host here is an address or a network (every member's "
                      f"host shows as {HOST})")
    return mask


def irc_form(mask: masks.Mask) -> str:
    """A chat mask as IRC clients expect a ban mask to look."""
    if mask.kind == "nick":
        return f"{mask.text}!*@*"
    if mask.kind == "network":
        return f"*!*@{mask.text}"
    if mask.kind == "everyone":
        return "*!*@*"
    return mask.text  # ~a:NAME, an extban


def irc_form_of(text: str) -> str:
    """``irc_form`` of a mask as events carry it (its text)."""
    try:
        return irc_form(masks.parse(text))
    except BadMask:
        return text


def prefixes(state: RoomState, member_id: str, multi: bool) -> str:
    """``@`` for an operator of the room, ``+`` for a voiced member; both with
    multi-prefix, else the highest."""
    marks = ("@" if member_id in state.operators else "") + (
        "+" if member_id in state.voiced else "")
    return marks if multi else marks[:1]


def join_refusal(error: ChatError) -> tuple[str, str] | None:
    """The numeric and text of a JOIN the room's modes or bans refuse, if it is one."""
    if isinstance(error, Banned):
        return n.ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"
    if isinstance(error, InviteOnly):
        return n.ERR_INVITEONLYCHAN, "Cannot join channel (+i)"
    if isinstance(error, BadKey):
        return n.ERR_BADCHANNELKEY, "Cannot join channel (+k)"
    if isinstance(error, RoomFull):
        return n.ERR_CHANNELISFULL, "Cannot join channel (+l)"
    return None


def speak_refusal(error: ChatError) -> str:
    """The text of the 404 for a message the room refuses (moderated, or muted)."""
    if isinstance(error, Muted):
        return "Cannot send to channel (you are muted)"
    return "Cannot send to channel (+m)"
