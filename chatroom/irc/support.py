"""What the IRC front end announces: its capabilities (CAP LS) and ISUPPORT tokens (005).

Only what holds: a capability is listed when the server does what it says, and a token
gives the server's real limits. ``CASEMAPPING=ascii`` with ``UTF8MAPPING=rfc8265`` is how
the server ergo announces Unicode names: every client knows ``ascii``; a client that knows
``UTF8MAPPING`` folds Unicode case too. Chatroom goes further than both (nicknames that
look alike, by their UTS #39 skeleton, are one nickname), which a casemapping cannot say;
docs/irc.md does.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.domain.chat import RoomRules
from chatroom.domain.nicknames import MAX_NICK_LENGTH

CAPS_BASE = (
    "account-notify",
    "account-tag",
    "away-notify",
    "batch",
    "cap-notify",
    "echo-message",
    "extended-join",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "server-time",
    "userhost-in-names",
)
CHATHISTORY = "draft/chathistory"
SASL_MECHANISMS = "PLAIN"

CHANMODES = "bq,k,l,imnst"
"""Lists (bans, mutes as Solanum's quiets), the key, the limit, the flags. ``n`` is always
set (only a channel's members talk in it)."""

MODES = 6
"""Mode changes with a parameter one MODE may carry; more are ignored."""

KICK_LENGTH = 390

VERSION = "chatroom-0.1"

AWAY_LENGTH = 390
TARGETS = 4
"""Targets one PRIVMSG or NOTICE may name."""


def capabilities(history: bool) -> dict[str, str]:
    """Capability name -> value (empty: none), as ``CAP LS 302`` lists them."""
    caps = dict.fromkeys(CAPS_BASE, "")
    caps["sasl"] = SASL_MECHANISMS
    if history:
        caps[CHATHISTORY] = ""
    return dict(sorted(caps.items()))


@dataclass(frozen=True)
class ServerInfo:
    """The server as IRC clients see it."""

    name: str
    network: str
    created: str
    rules: RoomRules
    history_max: int = 0
    """Most messages one CHATHISTORY answer holds (0: no chathistory)."""
    max_bans: int = 100
    """Bans (and as many mutes) one channel may hold (``--max-bans``)."""

    def isupport(self) -> list[str]:
        tokens = [
            f"AWAYLEN={AWAY_LENGTH}",
            "CASEMAPPING=ascii",
            f"CHANLIMIT=#:{self.rules.max_rooms_per_member}",
            f"CHANMODES={CHANMODES}",
            f"CHANNELLEN={self.rules.max_name + 1}",
            "CHANTYPES=#",
            "EXTBAN=~,a",
            f"KICKLEN={KICK_LENGTH}",
            f"MAXLIST=bq:{self.max_bans}",
            f"MODES={MODES}",
            f"NETWORK={self.network}",
            f"NICKLEN={MAX_NICK_LENGTH}",
            "PREFIX=(ov)@+",
            f"TARGMAX=JOIN:,PART:,NAMES:1,LIST:,WHOIS:1,PRIVMSG:{TARGETS},NOTICE:{TARGETS}",
            f"TOPICLEN={self.rules.max_topic}",
            "UTF8MAPPING=rfc8265",
            "UTF8ONLY",
        ]
        if self.history_max:
            tokens += [f"CHATHISTORY={self.history_max}", "MSGREFTYPES=msgid,timestamp"]
        return sorted(tokens)

    def isupport_lines(self) -> list[list[str]]:
        """The tokens in groups of at most 12, one 005 reply each."""
        tokens = self.isupport()
        return [tokens[i:i + 12] for i in range(0, len(tokens), 12)]
