"""The IRC front end's factory: its connections, its fan-out, and what they share.

Like the line and web factories: it admits or refuses each connection (by the server's
shared ``Admission``), keeps every live one so a shutdown reaches them all, and subscribes
the hub's events to its ``Fanout``, which renders each event once as IRC lines. It also
knows this node's IRC members (for echo-message, AWAY and WHOIS), and strips the tags a
reader did not ask for once per batch of lines, not once per reader.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as BaseProtocol
from twisted.logger import Logger

from chatroom.domain import nicknames
from chatroom.domain.chat import Member
from chatroom.domain.events import Acted, Event, Said, Whispered
from chatroom.irc import chathistory, moderation, rehash, sasl
from chatroom.irc.message import build
from chatroom.irc.protocol import IRCProtocol
from chatroom.irc.render import Renderer, keep_tags, source
from chatroom.irc.support import ServerInfo, capabilities
from chatroom.limits import Limits
from chatroom.lines.fanout import Fanout
from chatroom.registry import ConnectionRegistry
from chatroom.session import Services

COMMANDS = (  # modules whose commands the protocol knows
    chathistory.irc_chathistory, moderation.irc_mode, rehash.irc_rehash,
    sasl.irc_authenticate,
)

PING_INTERVAL = 120.0

MOTD = [
    "Rooms here are IRC channels, shared with telnet and web users.",
    "You are in the default room once registered; JOIN #any to make or enter another.",
]


class IRCFactory(Factory):
    _log = Logger()
    noisy = False

    def __init__(
        self,
        services: Services,
        server_name: str | None = None,
        ping_interval: float = PING_INTERVAL,
        network: str = "chatroom",
    ) -> None:
        self.services = services
        self.chat = services.chat
        self.clock = services.clock
        self.warnings = services.warnings
        self.ping_interval = ping_interval
        name = server_name or socket.gethostname() or "chatroom"
        created = datetime.fromtimestamp(services.clock.seconds(), UTC)
        history_max = services.limits.history_max if services.history is not None else 0
        self.info = ServerInfo(name, network, created.strftime("%Y-%m-%d %H:%M:%S UTC"),
                               services.chat.rules, history_max,
                               max_bans=services.limits.max_bans)
        self.caps = capabilities(services.history is not None)
        self.renderer = Renderer(name, self.account_of)
        self.fanout = Fanout(services.clock, render=self.renderer)
        if services.entry is not None:
            services.entry.watch(lambda: self.fanout.busy)
        self.registry: ConnectionRegistry[IRCProtocol] = ConnectionRegistry(
            services.limits, services.clock, kind="irc ", admission=services.admission
        )
        self.members: dict[str, IRCProtocol] = {}
        self.most_here = self.most_everyone = 0
        self._last: bytes | None = None
        self._filtered: dict[tuple[bool, bool, bool], bytes] = {}
        hub = services.chat.hub
        self._unsubscribe = [hub.subscribe(self.fanout.deliver), hub.subscribe(self._echo),
                             hub.subscribe(sasl.AccountNotify(self))]

    @property
    def limits(self) -> Limits:
        """The server's limits now: a reload changes them."""
        return self.services.limits

    def reconfigure(self, options: Any) -> None:
        """A reload applied ``options`` (``chatroom.options.Options``): ISUPPORT gives the
        room rules now in force, and a new PING interval holds for open connections too
        (each one's silence is judged by it from now)."""
        self.info = replace(self.info, rules=self.chat.rules)
        interval = options["irc-ping"]
        if interval != self.ping_interval:
            self.ping_interval = interval
            for protocol in list(self.connections):
                protocol.ping_interval_changed()

    @property
    def motd(self) -> list[str]:
        """The server's message of the day (``--motd``, as last read), or this front
        end's own lines if none is set."""
        lines = self.services.motd
        return MOTD if lines is None else lines

    @property
    def connections(self) -> set[IRCProtocol]:
        return self.registry.connections

    @property
    def stopping(self) -> bool:
        return self.registry.stopping

    def buildProtocol(self, addr: IAddress | None) -> BaseProtocol:
        return self.registry.admit(
            addr, lambda: IRCProtocol(self, addr),
            lambda why: build(None, "ERROR", f"Closing link: {why}"), self.warnings.warn,
        )

    def joined(self, protocol: IRCProtocol, member: Member) -> None:
        self.members[member.id] = protocol
        self.most_here = max(self.most_here, len(self.members))

    def counts(self) -> tuple[int, int, int, int]:
        """LUSERS' 265 and 266: IRC members of this server, with the most there were at
        once since start; people on every front end (and node), with the most any LUSERS
        has counted (counting them walks the registry: not on every join)."""
        everyone = len(self.chat.names.members())
        self.most_everyone = max(self.most_everyone, everyone)
        return len(self.members), self.most_here, everyone, self.most_everyone

    def forget(self, protocol: IRCProtocol, member: Member | None) -> None:
        """``protocol``'s connection is gone."""
        if member is not None and self.members.get(member.id) is protocol:
            del self.members[member.id]
        self.registry.forget(protocol)

    def filtered(self, data: bytes, time: bool, msgid: bool, account: bool = True) -> bytes:
        """``data`` with only the tags asked for; the fan-out hands the same bytes to every
        reader of a room, so each set of tags is made once per batch."""
        if time and msgid and account:
            return data
        if data is not self._last:
            self._last = data
            self._filtered = {}
        kept = self._filtered.get((time, msgid, account))
        if kept is None:
            kept = self._filtered[(time, msgid, account)] = keep_tags(data, time, msgid,
                                                                      account)
        return kept

    def about(self, nick: str) -> tuple[str, str]:
        """``(account or *, realname)`` of the member called ``nick`` (extended-join)."""
        holder = self.chat.names.lookup(nicknames.key(nick))
        if holder is None:
            return "*", nick
        return self.account_of(holder[1]) or "*", self.realname(holder[1], holder[0])

    def account_of(self, member_id: str) -> str | None:
        """The account a member of this node is signed in to (account-tag)."""
        member = self.chat.local(member_id)
        return member.account if member is not None else None

    def _echo(self, event: Event) -> None:
        kind = type(event)
        if kind is Said or kind is Acted or kind is Whispered:
            protocol = self.members.get(event.member)
            if protocol is not None and "echo-message" in protocol.caps:
                protocol.echo(event)

    def away_message(self, member_id: str) -> str | None:
        protocol = self.members.get(member_id)
        return protocol.away if protocol is not None else None

    def realname(self, member_id: str, nick: str) -> str:
        protocol = self.members.get(member_id)
        return (protocol.realname or nick) if protocol is not None else nick

    def tell_away(self, protocol: IRCProtocol, member: Member) -> None:
        """away-notify: IRC members here who share a room with ``member`` learn it."""
        params = (protocol.away,) if protocol.away is not None else ()
        self.tell_sharing(member.id, build(source(member.nick), "AWAY", *params),
                          "away-notify")

    def tell_sharing(self, member_id: str, line: bytes, cap: str) -> None:
        """``line`` to the IRC members here who share a room with ``member_id`` and asked
        for ``cap`` (away-notify, account-notify)."""
        directory = self.chat.directory
        sharing: set[str] = set()
        for name in directory.rooms_of(member_id):
            state = directory.find(name)
            if state is not None:
                sharing.update(state.members)
        sharing.discard(member_id)
        for other_id in sharing:
            other = self.members.get(other_id)
            if other is not None and cap in other.caps:
                other.reply(line)

    def shutdown(self) -> Deferred[object]:
        """Tell every IRC client the server is stopping, close them all, and fire when
        they are gone (cutting those still there after ``shutdown_grace``)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.fanout.flush()
        self.fanout.close()
        return self.registry.close_all()
