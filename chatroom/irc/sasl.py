"""Accounts on IRC: SASL PLAIN at registration, and who is signed in to what (account-tag,
account-notify, WHOIS 330).

``AUTHENTICATE PLAIN`` (IRCv3 sasl 3.1/3.2), before registration only: the client's
``authzid NUL authcid NUL password`` (base64, in 400-byte chunks) is checked by the
server's ``Accounts`` like any password (Argon2id off the reactor thread, guessing slowed
per account and per address; the client's input waits meanwhile). The account proved is
the one the connection signs in to when registration completes: its own registered
nickname needs no other password, and a member signed in to an account is named by its
``~a:`` bans whatever its nickname.

An account changes while a member is here when it ``/register``s or ``/unregister``s (on
any front end of this node): ``AccountNotify`` tells the IRC clients that share a channel
with it and asked for account-notify (``ACCOUNT name`` / ``ACCOUNT *``).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chatroom.domain import nicknames
from chatroom.domain.events import AccountSet, Event
from chatroom.irc import numerics as n
from chatroom.irc.message import Message, build
from chatroom.irc.protocol import command
from chatroom.irc.render import HOST, source

if TYPE_CHECKING:
    from chatroom.irc.factory import IRCFactory
    from chatroom.irc.protocol import IRCProtocol

CHUNK = 400
"""The size of every AUTHENTICATE chunk but the last."""

MAX_RESPONSE = 4 * CHUNK
"""The longest PLAIN response taken (base64): room for a nickname twice and a password."""


@command("AUTHENTICATE")
def irc_authenticate(self: IRCProtocol, message: Message) -> Deferred[None] | None:
    if not message.params or not message.params[0]:
        self._numeric(n.ERR_NEEDMOREPARAMS, "AUTHENTICATE", "Not enough parameters")
        return None
    argument = message.params[0]
    if self.account is not None:
        self._numeric(n.ERR_SASLALREADY, "You have already authenticated using SASL")
        return None
    if "sasl" not in self.caps or self.session.member is not None:
        self._numeric(n.ERR_SASLFAIL, "SASL authentication is only available while "
                                      "registering, with the sasl capability")
        return None
    if argument == "*":
        self.sasl_chunks = None
        self._numeric(n.ERR_SASLABORTED, "SASL authentication aborted")
        return None
    chunks = self.sasl_chunks
    if chunks is None:
        if argument.upper() != "PLAIN":
            self._numeric(n.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
            self._numeric(n.ERR_SASLFAIL, "SASL authentication failed")
            return None
        self.sasl_chunks = []
        self.reply(build(None, "AUTHENTICATE", "+", trailing=False))
        return None
    if argument != "+":
        chunks.append(argument)
        if len(argument) > CHUNK or sum(map(len, chunks)) > MAX_RESPONSE:
            self.sasl_chunks = None
            self._numeric(n.ERR_SASLTOOLONG, "SASL message too long")
            return None
        if len(argument) == CHUNK:
            return None  # more to come
    self.sasl_chunks = None
    credentials = _plain("".join(chunks))
    accounts = self.factory.services.accounts
    if credentials is None or accounts is None:
        self._numeric(n.ERR_SASLFAIL, "SASL authentication failed")
        return None
    name, password = credentials
    checking = accounts.check(name, password, self.host)
    checked: Deferred[None] = checking.addCallbacks(
        lambda account: _checked(self, account), _broken, errbackArgs=(self,))
    return checked


def _plain(response: str) -> tuple[str, str] | None:
    """``(account, password)`` of a PLAIN response, or ``None`` if it is not one (or asks
    to act as another account than the one it proves)."""
    try:
        decoded = base64.b64decode(response, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    parts = decoded.split("\0")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    authzid, authcid, password = parts
    try:
        if authzid and nicknames.key(authzid) != nicknames.key(authcid):
            return None
    except ValueError:
        return None
    return authcid, password


def _checked(self: IRCProtocol, account: str | None) -> None:
    if account is None or self.session.member is not None:
        self._numeric(n.ERR_SASLFAIL, "SASL authentication failed")
        return
    self.account = account
    nick = self.nick
    self._numeric(n.RPL_LOGGEDIN, f"{nick}!{nick}@{HOST}", account,
                  f"You are now logged in as {account}")
    self._numeric(n.RPL_SASLSUCCESS, "SASL authentication successful")


def _broken(failure: Failure, self: IRCProtocol) -> None:
    """The check itself failed (too many waiting, say): a failure like a wrong password."""
    self._log.failure("checking a SASL password from {peer}", failure, peer=self.peer)
    self._numeric(n.ERR_SASLFAIL, "SASL authentication failed")


class AccountNotify:
    """account-notify: ``ACCOUNT`` lines when a member of a shared channel signs in to an
    account (``/register``) or out of one (``/unregister``)."""

    def __init__(self, factory: IRCFactory) -> None:
        self.factory = factory

    def __call__(self, event: Event) -> None:
        if type(event) is not AccountSet or not event.member:
            return
        assert isinstance(event, AccountSet)
        factory = self.factory
        member = factory.chat.local(event.member)
        if (event.hash and member is not None and member.account is not None
                and nicknames.key(member.account) == nicknames.key(event.name)):
            return  # a new password: the same account
        line = build(source(event.nick), "ACCOUNT", event.name if event.hash else "*",
                     trailing=False)
        factory.tell_sharing(event.member, line, "account-notify")
