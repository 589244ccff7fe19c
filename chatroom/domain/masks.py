"""Ban and mute masks: who a ``/ban`` or ``/mute`` names, and whether it names someone.

A mask is one of:

- a nickname (``bob``): compared like nicknames (case and look-alikes);
- an account (``~a:bob``): whoever is signed in to that account, under any nickname;
- an address or a network (``203.0.113.7``, ``2001:db8::/32``): whoever connects from it
  (an IPv4 address seen through an IPv6 socket, ``::ffff:203.0.113.7``, is that address);
- ``*``: everyone.

A mask that names everyone, or a network broader than ``BROADEST`` (a /16 of IPv4, a /32
of IPv6), is *broad*: only a server operator may set one, so that a room operator's slip
cannot lock the whole world out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from chatroom.domain import nicknames
from chatroom.domain.errors import BadMask, NicknameInvalid

ACCOUNT_PREFIX = "~a:"
EVERYONE = "*"

BROADEST = {4: 16, 6: 32}
"""The shortest network prefix a room operator may ban, per IP version."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Identity:
    """What a mask is compared with: a member's nickname, account (``None``: not signed
    in) and the address it connects from (``None``: unknown, e.g. a UNIX socket)."""

    nick: str
    account: str | None = None
    host: str | None = None


@dataclass(frozen=True, slots=True)
class Mask:
    """A parsed mask. ``text`` is how it is shown and stored; ``key`` is what two
    spellings of one mask share (``Bob`` and ``bob``, ``10.0.0.7/8`` and ``10.0.0.0/8``)."""

    text: str
    kind: str  # "nick", "account", "network" or "everyone"
    key: str
    network: Network | None = None

    @property
    def broad(self) -> bool:
        """Does it name everyone, or a network wider than a room operator may ban?"""
        if self.kind == "everyone":
            return True
        network = self.network
        return network is not None and network.prefixlen < BROADEST[network.version]

    def matches(self, who: Identity) -> bool:
        kind = self.kind
        if kind == "nick":
            return nicknames.key(who.nick) == self.key
        if kind == "account":
            return (who.account is not None
                    and ACCOUNT_PREFIX + nicknames.key(who.account) == self.key)
        if kind == "network":
            address = host_address(who.host)
            return (
                address is not None and self.network is not None
                and address.version == self.network.version and address in self.network
            )
        return True  # everyone


def parse(raw: str) -> Mask:
    """The mask ``raw`` names, or ``BadMask`` saying why."""
    text = raw.strip()
    if not text:
        raise BadMask("a mask is a nickname, ~a:ACCOUNT, an address or a network")
    if text == EVERYONE:
        return Mask(EVERYONE, "everyone", EVERYONE)
    if text.startswith(ACCOUNT_PREFIX):
        try:
            account = nicknames.normalize(text[len(ACCOUNT_PREFIX):])
        except NicknameInvalid as e:
            raise BadMask(f"{text} is not an account: {e}") from None
        return Mask(ACCOUNT_PREFIX + account, "account", ACCOUNT_PREFIX + nicknames.key(account))
    if _looks_like_address(text):
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise BadMask(f"{text} is not an address or a network") from None
        mapped = getattr(network.network_address, "ipv4_mapped", None)
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
        shown = str(network.network_address) if _single(network) else str(network)
        return Mask(shown, "network", str(network), network)
    try:
        nick = nicknames.normalize(text)
    except NicknameInvalid as e:
        raise BadMask(
            f"{text} is not a nickname ({e}), ~a:ACCOUNT, an address or a network"
        ) from None
    return Mask(nick, "nick", nicknames.key(nick))


def for_nick(nick: str) -> Mask:
    """The mask naming one nickname (already normalized)."""
    return Mask(nick, "nick", nicknames.key(nick))


def host_address(host: str | None) -> Address | None:
    """The address ``host`` is, as masks compare it (an IPv4-mapped IPv6 address is the
    IPv4 one), or ``None`` when it is not an address."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _looks_like_address(text: str) -> bool:
    """Dotted digits or anything with a colon or a slash: never a nickname."""
    if ":" in text or "/" in text:
        return True
    return text.replace(".", "").isdigit() and "." in text


def _single(network: Network) -> bool:
    return network.prefixlen == network.max_prefixlen
