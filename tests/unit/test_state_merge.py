"""The later change wins when nodes trade what they keep (issue 15 leftovers, point 1):
an account or a server ban told by a node that missed a later change is not taken, nor
written to the state file."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from chatroom.accounts.keeper import StateKeeper
from chatroom.accounts.statedb import ServerBanRecord
from chatroom.accounts.store import Account, AccountBook
from chatroom.domain import roommodes
from chatroom.domain.directory import Directory
from chatroom.domain.events import AccountSet, ServerBanSet


class Written:
    """A store that notes what it is asked to write."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def accounts_blocking(self) -> list[Account]:
        return []

    def save_account(self, account: Account) -> Deferred[None]:
        self.calls.append(("save", account.name))
        return succeed(None)

    def delete_account(self, key: str) -> Deferred[None]:
        self.calls.append(("delete", key))
        return succeed(None)

    def save_server_ban(self, ban: ServerBanRecord) -> Deferred[None]:
        self.calls.append(("save", ban.mask))
        return succeed(None)

    def delete_server_ban(self, mask: str) -> Deferred[None]:
        self.calls.append(("delete", mask))
        return succeed(None)


def account(time: float, hashed: str, name: str = "alice") -> AccountSet:
    return AccountSet("", time, "", "", name, hashed)


def test_an_account_keeps_its_later_change_and_remembers_it_was_given_up() -> None:
    store = Written()
    book = AccountBook(store)
    book(account(10.0, "new"))
    book(account(5.0, "old"))  # told by a node that missed the change at 10
    found = book.find("alice")
    assert found is not None and found.hash == "new"
    book(account(20.0, ""))
    book(account(15.0, "new"))  # the given-up account does not come back
    assert book.find("alice") is None
    assert store.calls == [("save", "alice"), ("delete", "alice")]
    assert book.kept() == [account(20.0, "")]
    book(account(30.0, "again"))
    assert book.kept() == [account(30.0, "again")]


def ban(time: float, change: str = "+", mask: str = "203.0.113.7") -> ServerBanSet:
    return ServerBanSet("", time, "", "root", change, mask, 0.0)


def test_a_server_ban_keeps_its_later_change_and_the_file_only_that() -> None:
    directory = Directory()
    store = Written()
    keeper = StateKeeper(store, directory, Clock())  # type: ignore[arg-type]

    def tell(event: ServerBanSet) -> None:
        roommodes.apply(directory, event)
        keeper(event)

    tell(ban(10.0))
    tell(ban(20.0, "-"))
    tell(ban(15.0))  # told by a node that missed the lifting
    assert directory.server_bans == {}
    tell(ban(5.0, "-", "198.51.100.1"))  # a lifting of a ban this node never had
    tell(ban(30.0))
    assert [b.mask.text for b in directory.server_bans.values()] == ["203.0.113.7"]
    tell(ban(25.0, "-"))  # older than the ban it would lift
    assert [b.mask.text for b in directory.server_bans.values()] == ["203.0.113.7"]
    assert store.calls == [("save", "203.0.113.7"), ("delete", "203.0.113.7"),
                           ("delete", "198.51.100.1"), ("save", "203.0.113.7")]


def test_a_live_change_applies_whatever_the_clock_of_its_node() -> None:
    # Nodes' clocks differ. The stream orders live changes: one made after another is
    # later, even when the node that made it has a clock behind. Only what a node that
    # comes back is told (views, no member) is judged by time. Before, a /password,
    # /unregister, /gban or /ungban made on a node whose clock was behind the previous
    # change's node was confirmed to the person and ignored on every node.
    book = AccountBook(Written())
    book(AccountSet("", 100.0, "m1", "alice", "alice", "first"))  # node A, clock ahead
    book(AccountSet("", 40.0, "m2", "alice", "alice", "second"))  # /password on node B
    found = book.find("alice")
    assert found is not None and found.hash == "second"
    book(AccountSet("", 41.0, "m2", "alice", "alice", ""))  # /unregister on node B
    assert book.find("alice") is None

    directory = Directory()
    roommodes.apply(directory, ServerBanSet("", 100.0, "o1", "root", "+", "203.0.113.7", 0.0))
    roommodes.apply(directory, ServerBanSet("", 40.0, "o2", "op", "-", "203.0.113.7", 0.0))
    assert directory.server_bans == {}
    roommodes.apply(directory, ServerBanSet("", 30.0, "o2", "op", "+", "203.0.113.7", 0.0))
    assert [b.mask.text for b in directory.server_bans.values()] == ["203.0.113.7"]
