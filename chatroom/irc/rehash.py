"""REHASH: a server operator reloads the configuration, as ``/rehash`` and SIGHUP do.

382 RPL_REHASHING says the reload has started; the outcome follows as NOTICEs in the
log's own sentences (``chatroom.rehash``). Anyone else gets 481 ERR_NOPRIVILEGES.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from chatroom.domain.errors import NotServerOperator
from chatroom.irc import numerics as n
from chatroom.irc.message import Message
from chatroom.irc.protocol import IRCProtocol, command
from chatroom.rehash import rehash, sentences

if TYPE_CHECKING:
    from chatroom.reload import Outcome



@command("REHASH")
def irc_rehash(self: IRCProtocol, message: Message) -> Deferred[None] | None:
    member = self.session.member
    assert member is not None
    reloader = self.factory.services.reloader
    try:
        reloading = rehash(member, reloader)
    except NotServerOperator:
        self._numeric(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        return None
    except LookupError as e:
        self.cmd_notice(str(e))
        return None
    assert reloader is not None
    self._numeric(n.RPL_REHASHING, reloader.options["config"] or "chatroom", "Rehashing")

    def answer(outcome: Outcome) -> None:
        for sentence in sentences(outcome):
            self.cmd_notice(sentence)

    return reloading.addCallback(answer)
