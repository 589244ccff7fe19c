"""Passwords as Argon2id hashes (argon2-cffi), hashed and checked off the reactor thread.

One check costs tens of megabytes and a good fraction of a second of CPU on purpose (that
is what makes a stolen hash slow to guess), so it never runs on the reactor thread, only
``at_once`` run together (each holds ``memory_kib`` of memory), and past ``max_waiting``
queued checks a new one is refused at once rather than queued without bound.

Checking a name that has no hash still costs one check (against a hash of nothing
anyone knows), so the time of an answer does not tell which names exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import Deferred, DeferredSemaphore, maybeDeferred
from twisted.internet.threads import deferToThreadPool

from chatroom.domain.errors import ChatError

T = TypeVar("T")

Run = Callable[..., Deferred[Any]]
"""``run(function, *args)``: call it somewhere that is not the reactor thread."""


@dataclass(frozen=True)
class Cost:
    """Argon2id's parameters for new hashes (a hash keeps its own for checking): RFC 9106's
    second recommended option by default, 64 MiB and 3 passes."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


DEFAULT_COST = Cost()


class PasswordsBusy(ChatError):
    """Too many password checks are queued: this one is refused, not queued."""

    def __init__(self) -> None:
        super().__init__("too many password checks under way; try again in a moment")


class BadHash(ValueError):
    """A string that is not an Argon2id hash (in the operators file, say)."""


def check_hash(text: str) -> str:
    """``text`` if it is an Argon2id hash this library can check, else ``BadHash``."""
    try:
        parameters = extract_parameters(text)
    except (InvalidHashError, ValueError):
        raise BadHash("not an Argon2 hash ($argon2id$v=19$m=...,t=...,p=...$salt$hash)") from None
    if parameters.type is not Type.ID:
        raise BadHash("an Argon2 hash, but not Argon2id")
    return text


def in_threads(reactor: Any) -> Run:
    """Run in the reactor's thread pool."""

    def run(function: Callable[..., T], *args: object) -> Deferred[T]:
        return deferToThreadPool(reactor, reactor.getThreadPool(), function, *args)

    return run


def here(function: Callable[..., T], *args: object) -> Deferred[T]:
    """Run now, on this thread: for tests with cheap hashes only."""
    return maybeDeferred(function, *args)


class Passwords:
    """Hashes new passwords and checks given ones, a few at a time, never on the reactor."""

    def __init__(self, run: Run, cost: Cost = DEFAULT_COST, at_once: int = 2,
                 max_waiting: int = 64) -> None:
        self._hasher = PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib,
                                      parallelism=cost.parallelism)
        self._run = run
        self._semaphore = DeferredSemaphore(at_once)
        self._max_waiting = max_waiting
        self._nobody: str | None = None  # a hash of a password nobody knows

    def hash(self, password: str) -> Deferred[str]:
        """The Argon2id hash of ``password``, with a fresh salt."""
        return self._queue(self._hasher.hash, password)

    def verify(self, hashed: str | None, password: str) -> Deferred[bool]:
        """Is ``password`` the one ``hashed`` was made from? ``None`` (no such name)
        costs as much as a real check and is never right."""
        return self._queue(self._verify, hashed, password)

    def _queue(self, function: Callable[..., T], *args: object) -> Deferred[T]:
        if len(self._semaphore.waiting) >= self._max_waiting:
            raise PasswordsBusy()
        return self._semaphore.run(self._run, function, *args)

    def _verify(self, hashed: str | None, password: str) -> bool:
        """On a worker thread."""
        if hashed is None:
            if self._nobody is None:
                self._nobody = self._hasher.hash(secrets.token_hex(16))
            hashed, password = self._nobody, ""
            wanted = False
        else:
            wanted = True
        try:
            return self._hasher.verify(hashed, password) and wanted
        except (VerificationError, InvalidHashError):
            return False
