"""The slash commands that take a password: ``/oper``, ``/register``, ``/password``,
``/unregister``.

A password is never logged nor echoed back; the line that carried it is not kept.
"""

from __future__ import annotations

from twisted.python.failure import Failure

from chatroom.accounts.service import Accounts
from chatroom.commands import ABOUT_COMMAND, Commands, Replies
from chatroom.domain.chat import Member
from chatroom.domain.errors import ChatError

WRONG_OPERATOR = "wrong operator name or password"


class AccountCommands:
    """Adds the password commands to ``Commands``."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def install(self, commands: Commands) -> None:
        commands.add("oper", self._oper)
        commands.add("register", self._register)
        commands.add("password", self._password)
        commands.add("unregister", self._unregister)

    def _register(self, member: Member, rest: str, replies: Replies) -> None:
        if not rest or " " in rest:
            raise ChatError("usage: /register PASSWORD (one word, 8 characters or more)")
        registering = self.accounts.register(member, rest)

        def done(name: str) -> None:
            replies.cmd_notice(f"{name} is registered to you: from now on, whoever chooses it "
                               "must give this password")

        replies.wait_for(registering.addCallbacks(done, _refused, errbackArgs=(replies,)))

    def _password(self, member: Member, rest: str, replies: Replies) -> None:
        old, _, new = rest.partition(" ")
        if not old or not new or " " in new.strip():
            raise ChatError("usage: /password OLD NEW")
        changing = self.accounts.change_password(member, old, new.strip())

        def done(right: bool) -> None:
            if right:
                replies.cmd_notice("your password is changed")
            else:
                replies.cmd_refused("wrong password", ABOUT_COMMAND)

        replies.wait_for(changing.addCallbacks(done, _refused, errbackArgs=(replies,)))

    def _unregister(self, member: Member, rest: str, replies: Replies) -> None:
        if not rest:
            raise ChatError("usage: /unregister PASSWORD")
        name = member.account
        leaving = self.accounts.unregister(member, rest)

        def done(right: bool) -> None:
            if right:
                replies.cmd_notice(f"{name} is no longer registered: anyone may choose it")
            else:
                replies.cmd_refused("wrong password", ABOUT_COMMAND)

        replies.wait_for(leaving.addCallbacks(done, _refused, errbackArgs=(replies,)))

    def _oper(self, member: Member, rest: str, replies: Replies) -> None:
        name, _, password = rest.partition(" ")
        password = password.strip()
        if not name or not password:
            replies.cmd_refused("usage: /oper NAME PASSWORD", ABOUT_COMMAND)
            return
        if member.oper is not None:
            replies.cmd_refused(f"you are a server operator already ({member.oper})",
                                ABOUT_COMMAND)
            return

        def answered(right: bool) -> None:
            if right:
                replies.cmd_notice(f"you are now a server operator ({member.oper}): an "
                                   "operator of every room")
            else:
                replies.cmd_refused(WRONG_OPERATOR, ABOUT_COMMAND)

        signing_in = self.accounts.oper(member, name, password)
        replies.wait_for(signing_in.addCallbacks(answered, _refused, errbackArgs=(replies,)))


def _refused(failure: Failure, replies: Replies) -> None:
    failure.trap(ChatError)
    replies.cmd_refused(str(failure.value), ABOUT_COMMAND)
