"""Signing in with a password, for every front end: server operators (``/oper``) and
registered nicknames (``/register``, ``/password``, ``/unregister``, and the password a
registered nickname's owner gives when choosing it).

``Accounts`` holds the operators of ``--opers`` and the book of accounts, checks passwords
through ``Passwords`` (off the reactor thread) after the wait ``Guesses`` imposes, tells
``Moderation`` who proved to be a server operator, and reserves registered nicknames
(``Moderation.reserved``, which ``Chat.sign_in`` and ``Chat.rename`` ask). A front end (a
slash command, IRC's OPER or SASL PLAIN) calls these methods.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.accounts.guesses import Guesses
from chatroom.accounts.passwords import Passwords
from chatroom.accounts.store import AccountBook
from chatroom.domain import nicknames
from chatroom.domain.chat import Member
from chatroom.domain.errors import ChatError
from chatroom.domain.events import AccountSet
from chatroom.domain.moderation import Moderation
from chatroom.logs import RateLimitedLog


class Accounts:
    """Password sign-ins on this node."""

    _log = Logger()

    def __init__(
        self,
        moderation: Moderation,
        passwords: Passwords,
        guesses: Guesses,
        clock: IReactorTime,
        operators: dict[str, str] | None = None,
        book: AccountBook | None = None,
    ) -> None:
        self.moderation = moderation
        self.passwords = passwords
        self.guesses = guesses
        self.operators = dict(operators or {})
        self._warnings = RateLimitedLog(self._log, clock)
        self._clock = clock
        self.book = book if book is not None else AccountBook()
        self._chat = moderation.chat
        self._chat.hub.subscribe(self.book)
        kept = getattr(self._chat.hub, "kept", None)
        if isinstance(kept, list):  # a shared hub: trade accounts with nodes that come back
            kept.append(self.book.kept)
        moderation.reserved = self.owner

    def _operator(self, name: str) -> tuple[str, str | None]:
        """``(name as in the file, its hash)``, or ``(name, None)`` for no such operator."""
        for known, hashed in self.operators.items():
            if known.casefold() == name.casefold():
                return known, hashed
        return name, None

    def oper(self, member: Member, name: str, password: str) -> Deferred[bool]:
        """Is ``member`` the server operator ``name``? If so it is one from now on. A wrong
        name costs as much time as a wrong password, and both slow the next guess."""
        name, hashed = self._operator(name)
        keys = self._keys("oper", name, member.host)
        waited = self.guesses.wait(keys)

        def check(_: object) -> Deferred[bool]:
            return self.passwords.verify(hashed, password)

        def checked(right: bool) -> bool:
            if right and member.present:
                self.guesses.succeeded(keys)
                self.moderation.make_server_operator(member, name)
                return True
            self.guesses.failed(keys)
            self._warnings.warn("wrong /oper password for {name} from {nick} at {host}",
                                name=name, nick=member.nick, host=member.host)
            return False

        return waited.addCallback(check).addCallback(checked)

    # -- registered nicknames ---------------------------------------------------------

    def owner(self, nick: str) -> str | None:
        """The account that owns ``nick`` (any spelling), if it is registered."""
        account = self.book.find(nick)
        return None if account is None else account.name

    def asks_password(self, raw: str) -> str | None:
        """The registered nickname ``raw`` names, if choosing it needs its password now
        (``None``: not registered, not a nickname at all, or taken: its owner is here)."""
        try:
            nick = nicknames.normalize(raw)
        except ChatError:
            return None
        account = self.book.find(nick)
        if account is None or self._chat.names.lookup(nicknames.key(nick)) is not None:
            return None
        return account.name

    def check(self, nick: str, password: str, host: str | None) -> Deferred[str | None]:
        """The account ``nick`` is registered to, if ``password`` is its password (after
        the wait earlier wrong guesses on it, or from ``host``, impose)."""
        account = self.book.find(nick)
        name = account.name if account is not None else nick
        keys = self._keys("account", name, host)
        waited = self.guesses.wait(keys)

        def check(_: object) -> Deferred[bool]:
            return self.passwords.verify(account.hash if account else None, password)

        def checked(right: bool) -> str | None:
            if right:
                self.guesses.succeeded(keys)
                return name
            self.guesses.failed(keys)
            self._warnings.warn("wrong password for the account {name} from {host}",
                                name=name, host=host)
            return None

        return waited.addCallback(check).addCallback(checked)

    def register(self, member: Member, password: str) -> Deferred[str]:
        """Reserve ``member``'s nickname for it, with ``password``; returns the name."""
        _good_password(password)
        if self.book.find(member.nick) is not None:
            raise ChatError(f"{member.nick} is registered already")
        name = member.nick

        def hashed(value: str) -> str:
            if self.book.find(name) is not None:
                raise ChatError(f"{name} is registered already")
            self._publish(member, name, value)
            member.account = name
            self.moderation.audit(member, "registered", name, "", "")
            return name

        return self.passwords.hash(password).addCallback(hashed)

    def change_password(self, member: Member, old: str, new: str) -> Deferred[bool]:
        """A new password for the account ``member`` is signed in to, if ``old`` is right."""
        account = self._signed_in(member)
        _good_password(new)

        def checked(name: str | None) -> Deferred[bool] | bool:
            if name is None:
                return False

            def hashed(value: str) -> bool:
                self._publish(member, account, value)
                self.moderation.audit(member, "changed the password of", account, "", "")
                return True

            return self.passwords.hash(new).addCallback(hashed)

        return self.check(account, old, member.host).addCallback(checked)

    def unregister(self, member: Member, password: str) -> Deferred[bool]:
        """Give up the account ``member`` is signed in to, if ``password`` is right."""
        account = self._signed_in(member)

        def checked(name: str | None) -> bool:
            if name is None:
                return False
            self._publish(member, account, "")
            member.account = None
            self.moderation.audit(member, "unregistered", account, "", "")
            return True

        return self.check(account, password, member.host).addCallback(checked)

    def _signed_in(self, member: Member) -> str:
        account = member.account
        if account is None or self.book.find(account) is None:
            raise ChatError("you are not signed in to an account: /register PASSWORD first")
        return account

    def _publish(self, member: Member, name: str, hashed: str) -> None:
        self._chat.hub.publish(AccountSet("", self._clock.seconds(), member.id, member.nick,
                                          name, hashed))

    @staticmethod
    def _keys(kind: str, name: str, host: str | None) -> list[str]:
        keys = [f"{kind}:{nicknames.key(name)}"]
        return [*keys, f"from:{host}"] if host else keys


MIN_PASSWORD = 8
MAX_PASSWORD = 256


def _good_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ChatError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
