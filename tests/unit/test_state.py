"""The state file: accounts, registered rooms (topic, modes, bans, mutes, operator
accounts) and server bans written as they change and put back at start; its schema
versioned; and registered rooms in the domain (kept when empty, operators by account)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from chatroom.accounts.keeper import StateKeeper, record, restore
from chatroom.accounts.statedb import (
    MIGRATIONS,
    MaskRecord,
    RoomRecord,
    ServerBanRecord,
    StateError,
    StateStore,
)
from chatroom.accounts.store import Account, AccountBook
from chatroom.domain.chat import Chat, Member
from chatroom.domain.directory import Directory
from chatroom.domain.errors import ChatError
from chatroom.domain.events import AccountSet, RoleSet
from chatroom.domain.moderation import Moderation
from chatroom.hubs.local import LocalHub, LocalNicknames
from tests.unit.test_moderation import value


class Synchronous(StateStore):
    """The real store, its writes done at once on this thread (no reactor in unit tests)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        if self._pool is not None:
            self._pool.close()
        self._pool = None
        self._db = sqlite3.connect(path)

    def _write(self, work: Any) -> Deferred[None]:
        with self._db:
            work(self._db)
        done: Deferred[None] = Deferred()
        done.callback(None)
        return done


def test_a_new_state_file_gets_the_whole_schema_and_an_old_one_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sub" / "state.sqlite3"
    StateStore(str(path)).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer chatroom"):
        StateStore(str(path))
    (tmp_path / "bad").write_bytes(b"not a database, just bytes" * 100)
    with pytest.raises(StateError, match="cannot use"):
        StateStore(str(tmp_path / "bad"))


def test_everything_written_is_read_back_at_start(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite3")
    store = Synchronous(path)
    value(store.save_account(Account("Alice", "$argon2id$h1", 1.0)))
    value(store.save_account(Account("bob", "$argon2id$h2", 2.0)))
    value(store.delete_account("bob"))
    room = RoomRecord("#dev", "#Dev", "plans", "alice", 3.0, "mtk", "sesame", 0, 4.0,
                      ("Alice",), (MaskRecord("b", "203.0.113.0/24", "alice", 5.0, "spam"),
                                   MaskRecord("q", "eve", "alice", 6.0, "")))
    value(store.save_room(room))
    value(store.save_room(room))  # written again: replaced, not doubled
    value(store.save_server_ban(ServerBanRecord("198.51.100.7", "root", 7.0, 0.0, "abuse")))
    value(store.save_server_ban(ServerBanRecord("198.51.100.8", "root", 7.0, 0.0, "")))
    value(store.delete_server_ban("198.51.100.8"))
    again = StateStore(path)
    assert again.accounts == [Account("Alice", "$argon2id$h1", 1.0)]
    assert again.rooms == [room]
    assert again.server_bans == [ServerBanRecord("198.51.100.7", "root", 7.0, 0.0, "abuse")]
    again.close()


def test_a_memory_store_keeps_nothing() -> None:
    store = StateStore(":memory:")
    assert value(store.save_account(Account("a", "h", 1.0))) is None
    assert store.accounts_blocking() == []


# -- registered rooms in the domain ------------------------------------------------------


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "state.sqlite3")
        self.clock = Clock()
        self.clock.advance(1000)
        self.start()

    def start(self) -> None:
        """A server (again), from what the file holds."""
        self.store = Synchronous(self.path)
        self.hub = LocalHub()
        self.chat = Chat(self.hub, LocalNicknames(), self.clock, node="n")
        self.moderation = Moderation(self.chat, self.clock)
        self.book = AccountBook(self.store)
        self.hub.subscribe(self.book)
        restore(self.store, self.chat.directory, self.clock.seconds())
        self.hub.subscribe(StateKeeper(self.store, self.chat.directory, self.clock))

    def person(self, nick: str, account: str | None = None) -> Member:
        member: Member = value(self.chat.sign_in(nick))
        member.account = account
        self.chat.enter(member, "#lobby")
        return member

    def settle(self) -> None:
        self.clock.advance(0)


def test_a_registered_room_keeps_its_state_when_empty_and_across_a_restart(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    alice = world.person("alice", account="alice")
    world.hub.publish(AccountSet("", 1.0, alice.id, "alice", "alice", "$argon2id$x"))
    bob = world.person("bob")
    world.chat.enter(alice, "#dev")
    world.chat.enter(bob, "#dev")
    world.moderation.op(alice, "#dev", "bob")
    with pytest.raises(ChatError, match="signed in to an account"):
        world.moderation.register_room(bob, "#dev")
    world.moderation.register_room(alice, "#dev")
    with pytest.raises(ChatError, match="registered already"):
        world.moderation.register_room(alice, "#dev")
    world.chat.set_topic(alice, "#dev", "kept")
    world.moderation.set_modes(alice, "#dev", "+mk", ["sesame"])
    world.moderation.ban(alice, "#dev", "203.0.113.0/24", "spam")
    world.moderation.mute(alice, "#dev", "~a:eve")
    world.settle()
    world.chat.quit(alice, "quit")
    world.chat.quit(bob, "quit")
    state = world.chat.directory.find("#dev")
    assert state is not None and state.members == {}  # empty, and kept

    world.start()  # a restart
    state = world.chat.directory.find("#DEV")
    assert state is not None and state.registered
    assert (state.topic, state.modes, state.key) == ("kept", "mtk", "sesame")
    assert [e.mask.text for e in state.bans.values()] == ["203.0.113.0/24"]
    assert [e.reason for e in state.bans.values()] == ["spam"]
    assert [e.mask.text for e in state.mutes.values()] == ["~a:eve"]
    assert state.operator_accounts == {"alice"}
    assert world.book.find("ALICE") is not None

    # alice comes back signed in: an operator on joining, by account
    events: list[Any] = []
    world.hub.subscribe(events.append)
    again = world.person("alice", account="alice")
    world.chat.enter(again, "#dev", "sesame")
    world.settle()
    assert [e for e in events if isinstance(e, RoleSet)] == [
        RoleSet("#dev", world.clock.seconds(), "", "", again.id, "alice", "+o")]
    assert again.id in state.operators
    dora = world.person("dora", account="dora")
    world.chat.enter(dora, "#dev", "sesame")
    world.moderation.op(again, "#dev", "dora")  # an operator with an account: kept too
    world.moderation.deop(again, "#dev", "alice")
    world.settle()
    assert state.operator_accounts == {"dora"}
    world.start()
    restored = world.chat.directory.find("#dev")
    assert restored is not None and restored.operator_accounts == {"dora"}


def test_server_bans_survive_a_restart_until_they_run_out(tmp_path: Path) -> None:
    world = World(tmp_path)
    root = world.person("root")
    world.moderation.make_server_operator(root, "root")
    world.moderation.gban(root, "203.0.113.7", 60, "abuse")
    world.moderation.gban(root, "203.0.113.8")
    world.moderation.gban(root, "203.0.113.9")
    world.moderation.ungban(root, "203.0.113.9")
    world.start()
    assert world.moderation.server_refusal("203.0.113.7") is not None
    assert world.moderation.server_refusal("203.0.113.8") is not None
    assert world.moderation.server_refusal("203.0.113.9") is None
    world.clock.advance(61)
    world.start()
    assert world.moderation.server_refusal("203.0.113.7") is None
    assert world.moderation.server_refusal("203.0.113.8") is not None


def test_record_of_a_room() -> None:
    d = Directory()
    state = d.ensure("#dev", 1.0)
    state.registered, state.operator_accounts = True, {"b", "a"}
    assert record(state).operators == ("a", "b") and record(state).key == "#dev"
