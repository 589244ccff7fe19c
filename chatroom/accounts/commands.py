"""The slash commands that take a password: ``/oper`` (and the account commands).

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
