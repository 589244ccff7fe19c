"""Registered nicknames: every account in memory, kept in step with ``AccountSet`` events
and written to a store.

Asking whether a nickname is registered happens on every sign-in and rename, so it must
never wait: the book holds every account (a name and a hash, about 150 bytes each), read
from the store at start. A change is an event on the hub, so every node's book learns it
and writes it to its own store; writes happen in the store's own thread.

With Redis a node may have been down when an account changed: the book's ``kept`` view
(every account, and every one given up since this process started, each with the time of
its change) is traded with the other nodes when one comes (back), and the book keeps the
later of two changes to an account, so the node learns what it missed and the others
what changed on it while it was alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.domain import nicknames
from chatroom.domain.events import AccountSet, Event


@dataclass(frozen=True, slots=True)
class Account:
    """A registered nickname: as registered, its password's Argon2id hash, since when."""

    name: str
    hash: str
    time: float

    @property
    def key(self) -> str:
        return nicknames.key(self.name)


class AccountStore(Protocol):
    """Where accounts outlive the process (``chatroom.accounts.sqlite``)."""

    def accounts_blocking(self) -> list[Account]:
        """Every account; read once, at start, before the reactor runs."""

    def save_account(self, account: Account) -> Deferred[None]: ...

    def delete_account(self, key: str) -> Deferred[None]: ...


class AccountBook:
    """Every account by nickname key; a hub listener."""

    _log = Logger()

    def __init__(self, store: AccountStore | None = None) -> None:
        self.store = store
        self._accounts: dict[str, Account] = {}
        self._given_up: dict[str, tuple[float, str]] = {}  # key -> (when, name)
        if store is not None:
            for account in store.accounts_blocking():
                self._accounts[account.key] = account

    def find(self, nick: str) -> Account | None:
        """The account of the nickname ``nick`` (any spelling of it), if registered."""
        return self._accounts.get(nicknames.key(nick))

    def __len__(self) -> int:
        return len(self._accounts)

    def __call__(self, event: Event) -> None:
        if type(event) is not AccountSet:
            return
        assert isinstance(event, AccountSet)
        key = nicknames.key(event.name)
        if not event.member and event.time < self._changed(key):
            # A view (no member: what a node that comes back is told) older than what
            # this node knows. A live change is later by the stream's order, whatever
            # the clock of the node that made it.
            return
        store = self.store
        if event.hash:
            account = Account(event.name, event.hash, event.time)
            if self._accounts.get(key) == account:
                return  # told again (a node came back): nothing new to write
            self._accounts[key] = account
            self._given_up.pop(key, None)
            if store is not None:
                store.save_account(account).addErrback(self._not_kept, event.name)
            return
        self._given_up[key] = (event.time, event.name)
        if self._accounts.pop(key, None) is not None and store is not None:
            store.delete_account(key).addErrback(self._not_kept, event.name)

    def _changed(self, key: str) -> float:
        """When this node last knew the account ``key`` to change (0: never)."""
        account = self._accounts.get(key)
        given_up = self._given_up.get(key)
        return max(account.time if account is not None else 0.0,
                   given_up[0] if given_up is not None else 0.0)

    def kept(self) -> list[Event]:
        """Every account, and every one given up since this process started, as
        ``AccountSet`` views with the time of their change."""
        events: list[Event] = [AccountSet("", account.time, "", "", account.name, account.hash)
                               for account in self._accounts.values()]
        events += [AccountSet("", when, "", "", name, "")
                   for when, name in self._given_up.values()]
        return events

    def _not_kept(self, failure: Failure, name: str) -> None:
        self._log.failure("could not store the account {name}", failure, name=name)
