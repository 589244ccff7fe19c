"""Moderation and password sign-ins, made and added to the commands for a server's
``Services`` (so ``session.py`` and ``tap.py`` need only a line each)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorThreads

from chatroom import rehash
from chatroom.accounts.commands import AccountCommands
from chatroom.accounts.guesses import Guesses
from chatroom.accounts.keeper import StateKeeper, restore
from chatroom.accounts.passwords import Passwords, here, in_threads
from chatroom.accounts.service import Accounts
from chatroom.accounts.store import AccountBook
from chatroom.domain.moderation import Moderation, Rules
from chatroom.moderation_commands import ModerationCommands

if TYPE_CHECKING:
    from chatroom.session import Services


def equip(services: Services) -> tuple[Moderation, Accounts]:
    """The server's moderation and accounts, their commands installed, and what the state
    file keeps (accounts, registered rooms, server bans) put back. Passwords are checked
    in the reactor's threads (synchronously on a test's ``Clock``)."""
    clock, limits = services.clock, services.limits
    moderation = Moderation(services.chat, clock, Rules(max_bans=limits.max_bans,
                                                    max_mode_changes=limits.max_mode_changes))
    run = in_threads(clock) if IReactorThreads.providedBy(clock) else here
    state = services.state
    book = AccountBook(state) if state is not None else None
    if state is not None:
        restore(state, services.chat.directory, clock.seconds())
        services.chat.hub.subscribe(StateKeeper(state, services.chat.directory, clock))
    accounts = Accounts(moderation, Passwords(run, services.password_cost),
                        Guesses(clock, longest=limits.max_guess_delay), clock,
                        services.operators, book)
    ModerationCommands(moderation).install(services.commands)
    AccountCommands(accounts).install(services.commands)
    rehash.install(services.commands, lambda: services.reloader)
    services.admission_screen(moderation.server_refusal)
    return moderation, accounts
