"""The in-process hub and nickname registry: one server in one process, no waiting."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from chatroom.domain.events import Event
from chatroom.ports import IHub, INicknames, Listener


@implementer(IHub)
class LocalHub:
    """Delivers events synchronously to listeners in this process; the default hub."""

    _log = Logger()

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def publish(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                # One broken subscriber must not keep the event from the others.
                self._log.failure("listener {listener!r} failed on {event!r}",
                                  listener=listener, event=event)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe


@implementer(INicknames)
class LocalNicknames:
    """Nickname claims in a dict: atomic because the reactor runs one thing at a time."""

    def __init__(self) -> None:
        self._holders: dict[str, tuple[str, str]] = {}

    def claim(self, key: str, nick: str, member: str) -> Deferred[bool]:
        holder = self._holders.get(key)
        if holder is not None and holder[1] != member:
            return succeed(False)
        self._holders[key] = (nick, member)
        return succeed(True)

    def release(self, key: str, member: str) -> None:
        holder = self._holders.get(key)
        if holder is not None and holder[1] == member:
            del self._holders[key]

    def lookup(self, key: str) -> tuple[str, str] | None:
        return self._holders.get(key)

    def members(self) -> list[str]:
        return [nick for nick, _ in self._holders.values()]
