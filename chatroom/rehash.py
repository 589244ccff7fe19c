"""``/rehash``: a server operator reloads the configuration from the chat, as SIGHUP does.

The reload is the ``Reloader``'s (``chatroom.reload``), all or nothing as on SIGHUP; its
trigger names who asked, so the log says ``reload (/rehash by alice as root) applied: ...``.
The operator is told the outcome in the log's own sentences, one line each: what changed,
or why the reload was refused (and that nothing of it applied). Anyone else gets the error
every server operator's command gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from chatroom.commands import ABOUT_COMMAND, Commands, Replies
from chatroom.domain.chat import Member
from chatroom.domain.errors import NotServerOperator

if TYPE_CHECKING:
    from chatroom.reload import Outcome, Reloader

NO_CONFIGURATION = "this server has no configuration to reload"


def trigger(member: Member) -> str:
    """How the log names a ``/rehash`` (or IRC ``REHASH``): who asked, as which operator."""
    return f"/rehash by {member.nick} as {member.oper}"


def sentences(outcome: Outcome) -> list[str]:
    """What a reload did, one sentence a line, as the log says it."""
    if outcome.applied:
        return [f"reload applied: {change}" for change in outcome.changes] or [
            "reload applied: nothing changed"]
    return [f"reload refused, the running configuration is unchanged: {reason}"
            for reason in outcome.refusals]


def rehash(member: Member, reloader: Reloader | None) -> Deferred[Outcome]:
    """Reload for ``member``; raises ``NotServerOperator`` unless it is one, and
    ``LookupError`` if the server has nothing to reload (front ends tested alone)."""
    if member.oper is None:
        raise NotServerOperator()
    if reloader is None:
        raise LookupError(NO_CONFIGURATION)
    return reloader.reload(trigger(member))


def install(commands: Commands, reloader: Callable[[], Reloader | None]) -> None:
    """Add ``/rehash`` to ``commands``; ``reloader`` gives the server's at the time (it is
    made after the commands)."""

    def handler(member: Member, rest: str, replies: Replies) -> None:
        try:
            reloading = rehash(member, reloader())
        except LookupError as e:
            replies.cmd_refused(str(e), ABOUT_COMMAND)
            return

        def answer(outcome: Outcome) -> None:
            for sentence in sentences(outcome):
                if outcome.applied:
                    replies.cmd_notice(sentence)
                else:
                    replies.cmd_refused(sentence, ABOUT_COMMAND)

        replies.wait_for(reloading.addCallback(answer))

    commands.add("rehash", handler)
