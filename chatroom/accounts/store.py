"""Registered nicknames: every account in memory, kept in step with ``AccountSet`` events
and written to a store.

Asking whether a nickname is registered happens on every sign-in and rename, so it must
never wait: the book holds every account (a name and a hash, about 150 bytes each), read
from the store at start. A change is an event on the hub, so every node's book learns it
and writes it to its own store; writes happen in the store's own thread.
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
        store = self.store
        if event.hash:
            account = Account(event.name, event.hash, event.time)
            self._accounts[key] = account
            if store is not None:
                store.save_account(account).addErrback(self._not_kept, event.name)
        elif self._accounts.pop(key, None) is not None and store is not None:
            store.delete_account(key).addErrback(self._not_kept, event.name)

    def _not_kept(self, failure: Failure, name: str) -> None:
        self._log.failure("could not store the account {name}", failure, name=name)
