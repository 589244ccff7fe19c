"""Signing in with a password: server operators (``/oper``), for every front end.

``Accounts`` holds the operators of ``--opers``, checks passwords through ``Passwords``
(off the reactor thread) after the wait ``Guesses`` imposes, and tells ``Moderation`` who
proved to be a server operator. A front end (a slash command, IRC's OPER) calls ``oper``.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.accounts.guesses import Guesses
from chatroom.accounts.passwords import Passwords
from chatroom.domain.chat import Member
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
    ) -> None:
        self.moderation = moderation
        self.passwords = passwords
        self.guesses = guesses
        self.operators = dict(operators or {})
        self._warnings = RateLimitedLog(self._log, clock)

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
        keys = [f"oper:{name.casefold()}"] + ([f"from:{member.host}"] if member.host else [])
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
